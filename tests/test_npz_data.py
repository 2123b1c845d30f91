"""`data.name = "npz:PATH"`: arrays of one's own (images or 2D points), checked, split, fitted and trained on."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from helpers import ring_config

from gan_jax import data, files
from gan_jax.records import read_jsonl
from gan_jax.train import loop
from gan_jax.train import run as run_lib

N = 80  # a held-out split of 8: enough for evaluation's 5-nearest-neighbour metrics


def npz_config(path, **overrides):
  c = ring_config(**overrides)
  c.data.name = f"npz:{path}"
  c.data.resolution = 0  # base_config gains data.resolution / data.channels with this feature; set them here too
  c.data.channels = 0
  return c


def _images(n=N):
  """Image i is flat at level i (uint8), so a split shows which examples it holds."""
  return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 28, 28, 1)).copy()


def test_splits_partition_the_file_and_keep_order(tmp_path):
  images_NHWC, labels_N = _images(), np.arange(N) % 4
  np.savez(tmp_path / "a.npz", images=images_NHWC, labels=labels_N)
  c = npz_config(tmp_path / "a.npz")
  assert data.get_info(c) == data.DatasetInfo(f"npz:{tmp_path / 'a.npz'}", "images", (28, 28, 1), 4, N - N // 10)
  ids = {}
  for split in ("train", "test"):
    x, labels = data.load_split(c, split)
    ids[split] = np.rint((x[:, 0, 0, 0] + 1) * 127.5).astype(int)
    np.testing.assert_array_equal(labels, ids[split] % 4)  # each example keeps its label
    assert (np.diff(ids[split]) > 0).all()  # stored order
  assert len(ids["test"]) == N // 10 and sorted([*ids["train"], *ids["test"]]) == list(range(N))
  # Floats in [-1, 1] are the same images: x / 127.5 - 1 of the uint8 ones.
  np.savez(tmp_path / "f.npz", images=images_NHWC / 127.5 - 1, labels=labels_N)
  for split in ("train", "test"):
    np.testing.assert_array_equal(
      data.load_split(npz_config(tmp_path / "f.npz"), split)[0], data.load_split(c, split)[0]
    )


def test_float_images_are_read_in_their_declared_range(tmp_path):
  """ToTensor's [0, 1], the model's [-1, 1] and [0, 255] floats of the same pixels give the same uint8 images."""
  pixels = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 1)).astype(np.uint8)
  pixels[0, 0, 0, 0] = 0  # a negative value in the [-1, 1] file: unambiguous without a range
  files_ = {
    "u8": {"images": pixels},
    "unit": {"images": pixels / 255.0, "range": [0, 1]},
    "signed": {"images": pixels / 127.5 - 1.0},
    "byte": {"images": pixels.astype(np.float32), "range": [0.0, 255.0]},
  }
  loaded = {}
  for name, arrays in files_.items():
    np.savez(tmp_path / f"{name}.npz", **arrays)
    loaded[name] = data.load_split(npz_config(tmp_path / f"{name}.npz"), "train")[0]
  for name in ("unit", "signed", "byte"):
    np.testing.assert_array_equal(loaded[name], loaded["u8"], err_msg=name)


def test_images_fitted_to_resolution_and_channels(tmp_path):
  rgb = np.zeros((10, 20, 40, 3), np.uint8)
  rgb[:, :, 5:35] = (0, 200, 0)  # green beyond the centred 20 x 20 square by more than the filter's reach
  np.savez(tmp_path / "rgb.npz", images=rgb)
  c = npz_config(tmp_path / "rgb.npz")
  c.data.resolution = 64
  assert data.get_info(c) == data.DatasetInfo(c.data.name, "images", (64, 64, 3), 0, 9)
  x, labels = data.load_split(c, "train")
  np.testing.assert_array_equal(np.rint((x + 1) * 127.5), np.broadcast_to([0, 200, 0], x.shape))
  assert (labels == 0).all()
  c.data.channels = 1
  x, _ = data.load_split(c, "test")
  assert x.shape == (1, 64, 64, 1) and np.allclose(np.rint((x + 1) * 127.5), round(200 * 0.587))  # ITU-R 601 luma
  gray = npz_config(tmp_path / "gray.npz")
  np.savez(tmp_path / "gray.npz", images=np.zeros((5, 16, 16), np.uint8))  # N x H x W: gray
  assert data.get_info(gray).shape == (16, 16, 1)


def test_points_stream_and_split(tmp_path):
  points_N2 = np.stack([np.arange(N), -np.arange(N)], 1).astype(np.float64)
  np.savez(tmp_path / "p.npz", points=points_N2, labels=np.arange(N) % 2)
  c = npz_config(tmp_path / "p.npz")
  assert data.get_info(c) == data.DatasetInfo(c.data.name, "points", (2,), 2, N - N // 10)
  train_N2, train_labels = data.load_split(c, "train")
  test_N2, _ = data.load_split(c, "test")
  assert train_N2.dtype == np.float32 and sorted([*train_N2[:, 0], *test_N2[:, 0]]) == list(range(N))
  np.testing.assert_array_equal(train_labels, train_N2[:, 0].astype(int) % 2)
  # One epoch of the training stream is every training point once.
  batches = list(itertools.islice(data.make_batches(c, start_step=0, examples_per_step=8), len(train_N2) // 8))
  seen = np.concatenate([b["x"][:, 0] for b in batches])
  assert len(set(seen)) == len(seen) and set(seen) <= set(train_N2[:, 0])
  np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches])[:, 1], -seen)


@pytest.mark.parametrize(
  "arrays, message",
  [
    (None, "does not exist; expected an .npz"),
    ("text", "cannot be read as an .npz archive"),
    ("npy", "is a .npy array; expected an .npz archive"),
    ({"pixels": np.zeros((4, 8, 8, 1), np.uint8)}, r"holds \['pixels'\]; expected exactly one of `images`"),
    ({"images": np.zeros((4, 8, 8, 1), np.uint8), "points": np.zeros((4, 2))}, "exactly one of"),
    ({"images": np.zeros((4, 8, 8, 2), np.uint8)}, r"`images` has shape \(4, 8, 8, 2\); expected N x H x W x C"),
    ({"images": np.zeros((4, 8), np.uint8)}, "`images` has shape"),
    ({"images": np.zeros((4, 8, 8, 1), np.int16)}, "`images` are int16; expected uint8"),
    ({"images": np.full((4, 8, 8, 1), 2.0)}, r"`images` span \[2, 2\]; expected floats in \[-1, 1\]"),
    ({"images": np.full((4, 8, 8, 1), np.nan)}, "`images` hold NaN or inf"),
    ({"images": np.full((4, 8, 8, 1), 0.5)}, r"fits both \[0, 1\] and \[-1, 1\]; expected the file to declare"),
    ({"images": np.full((4, 8, 8, 1), 0.5), "range": [0, 2]}, r"`range` is \[0, 2\]; expected one of"),
    ({"images": np.full((4, 8, 8, 1), -0.5), "range": [0, 1]}, r"span \[-0.5, -0.5\]; expected floats in \[0, 1\]"),
    ({"images": np.zeros((0, 8, 8, 1), np.uint8)}, "`images` holds 0 examples; expected at least 2"),
    ({"points": np.zeros((4, 3))}, r"`points` has shape \(4, 3\); expected N x 2"),
    ({"points": np.zeros((0, 2))}, "`points` holds 0 examples"),
    ({"points": np.array([[0.0, np.inf]] * 4)}, "`points` hold NaN or inf"),
    ({"points": np.zeros((4, 2)), "labels": np.zeros(3, int)}, r"`labels` are int64 \(3,\); expected 4 integers"),
    ({"points": np.zeros((4, 2)), "labels": np.zeros(4)}, "`labels` are float64"),
    ({"points": np.zeros((4, 2)), "labels": -np.ones(4, int)}, "`labels` go down to -1"),
  ],
)
def test_bad_npz_is_one_line(arrays, message, tmp_path):
  path = tmp_path / "d.npz"
  if arrays == "text":
    path.write_text("images = [1, 2, 3]\n")
  elif arrays == "npy":
    with open(path, "wb") as f:
      np.save(f, np.zeros((4, 8, 8, 1), np.uint8))
  elif arrays is not None:
    np.savez(path, **arrays)
  with pytest.raises(ValueError, match=message) as e:
    data.get_info(npz_config(path))
  assert "\n" not in str(e.value)


def test_rewritten_file_is_read_again(tmp_path):
  path = tmp_path / "a.npz"
  np.savez(path, images=_images(20))
  c = npz_config(path)
  assert data.get_info(c).num_examples == 18
  np.savez(path, images=_images(30))
  os.utime(path, ns=(0, 0))  # a new mtime even on a coarse clock
  assert data.get_info(c).num_examples == 27


@pytest.mark.slow  # fast twins: test_folder_data's folder run (the same image path end to end), the npz unit tests
def test_npz_run_trains_evaluates_and_loads(tmp_path, monkeypatch):
  """A 28x28 gray npz scores with the shipped Fashion-MNIST classifier; its run loads from config.json alone."""
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "a.npz", images=rng.integers(0, 256, (N, 28, 28, 1), dtype=np.uint8), labels=np.arange(N) % 3)
  c = npz_config(tmp_path / "a.npz", **{"model.name": "dcgan", "train.steps": 2, "train.batch_size": 8})
  c.model.latent_dim, c.model.g_width, c.model.d_width = 8, 8, 8
  c.eval.final, c.eval.num_samples, c.eval.feature_net = True, 20, "fashion_mnist"
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(c, workdir)
  (record,) = read_jsonl(os.path.join(workdir, "eval.jsonl"))
  assert np.isfinite(record["fid"]) and record["protocol"]["real_count"] == N // 10
  run = run_lib.load_run(workdir)
  images = run.generate(5, seed=1)
  assert images.dtype == np.uint8 and images.shape == (5, 28, 28, 1) and run.step == 2


def test_own_rgb_data_trains_without_inception_weights_and_says_so_once(tmp_path, monkeypatch, capfd):
  """eval.feature_net=auto scores other images with the Inception; without its weights the run trains, evaluates
  nothing and says once what to run, rather than refusing to start."""
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))  # no `make inception` there
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "rgb.npz", images=rng.integers(0, 256, (N, 28, 28, 3), dtype=np.uint8))
  c = npz_config(tmp_path / "rgb.npz", **{"model.name": "dcgan", "train.steps": 2, "train.batch_size": 8})
  c.model.latent_dim, c.model.g_width, c.model.d_width = 8, 8, 8
  c.eval.every, c.eval.num_samples = 1, 20
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(c, workdir)
  err = capfd.readouterr().err
  assert err.count("make inception") == 1 and "evaluation skipped" in err
  assert not os.path.exists(os.path.join(workdir, "eval.jsonl"))
  assert run_lib.load_run(workdir).step == 2
