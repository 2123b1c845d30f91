"""The data pipeline: TF-free Fashion-MNIST builder, deterministic resumable sharded order, 2D mixtures."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import os
import struct

import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import data
from gan_jax.data import fashion_mnist, synthetic

NUM_TRAIN, NUM_TEST = 50, 20
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


def _write_idx(path: str, array: np.ndarray) -> None:
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _fake_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
  """Pixel (0, 0) of image i is i, so a batch shows which examples it holds."""
  images_NHW = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
  images_NHW[:, 0, 0] = np.arange(n)
  return images_NHW, rng.integers(0, 10, size=n).astype(np.uint8)


@pytest.fixture(scope="module")
def idx():
  """IDX arrays by split, plus the dir holding them: train gzipped, test raw."""
  rng = np.random.default_rng(0)
  return {"train": _fake_split(rng, NUM_TRAIN), "test": _fake_split(rng, NUM_TEST)}


@pytest.fixture(scope="module")
def cfg(idx, tmp_path_factory):
  source_dir = tmp_path_factory.mktemp("idx")
  for split, prefix, ext in (("train", "train", ".gz"), ("test", "t10k", "")):
    images_NHW, labels_N = idx[split]
    _write_idx(str(source_dir / f"{prefix}-images-idx3-ubyte{ext}"), images_NHW)
    _write_idx(str(source_dir / f"{prefix}-labels-idx1-ubyte{ext}"), labels_N)
  c = config_lib.base_config()
  c.data.source_dir = str(source_dir)
  c.data.data_dir = str(tmp_path_factory.mktemp("tfds"))
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(fashion_mnist, "SEARCH_DIRS", [])
    mp.setattr(fashion_mnist, "MIRRORS", [])
    data.get_info(c)  # Prepares, with the machine's own copy and the network out of reach.
  return c


def _ids(batch: dict[str, np.ndarray]) -> np.ndarray:
  return np.rint((batch["x"][:, 0, 0, 0] + 1) * 127.5).astype(int)


def _take(config, n: int, **kwargs) -> list[dict[str, np.ndarray]]:
  return list(itertools.islice(data.make_batches(config, **kwargs), n))


def test_builder_round_trips_idx_values(cfg, idx):
  info = data.get_info(cfg)
  assert info == data.DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10, NUM_TRAIN)
  for split, n in (("train", NUM_TRAIN), ("test", NUM_TEST)):
    x, labels = data.load_split(cfg, split)
    images_NHW, labels_N = idx[split]
    assert x.dtype == np.float32 and x.shape == (n, 28, 28, 1) and labels.dtype == np.int32
    np.testing.assert_allclose(x[..., 0], images_NHW / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(labels, labels_N)
  x, labels = data.load_split(cfg, "test", limit=5)
  np.testing.assert_array_equal(labels, idx["test"][1][:5])
  assert x.shape == (5, 28, 28, 1)


def test_batches_carry_matching_images_and_labels(cfg, idx):
  (batch,) = _take(cfg, 1, start_step=3, examples_per_step=16)
  images_NHW, labels_N = idx["train"]
  ids = _ids(batch)
  np.testing.assert_allclose(batch["x"][..., 0], images_NHW[ids] / 127.5 - 1, atol=1e-6)
  np.testing.assert_array_equal(batch["label"], labels_N[ids])
  assert batch["x"].dtype == np.float32 and batch["label"].dtype == np.int32


def test_each_epoch_is_a_new_permutation(cfg):
  # 7 does not divide 50: batches straddle epoch boundaries.
  stream = np.concatenate([_ids(b) for b in _take(cfg, 15, start_step=0, examples_per_step=7)])
  epoch0, epoch1 = stream[:NUM_TRAIN], stream[NUM_TRAIN : 2 * NUM_TRAIN]
  np.testing.assert_array_equal(np.sort(epoch0), np.arange(NUM_TRAIN))
  np.testing.assert_array_equal(np.sort(epoch1), np.arange(NUM_TRAIN))
  assert not np.array_equal(epoch0, epoch1)
  assert not np.array_equal(epoch0, np.arange(NUM_TRAIN))
  other_seed = cfg.copy_and_resolve_references()
  other_seed.seed = 1
  assert not np.array_equal(_ids(_take(other_seed, 1, start_step=0, examples_per_step=50)[0]), epoch0)


def test_batches_are_slices_of_one_stream_of_seeded_permutations(cfg):
  # Steps 3-5 at 8 examples and steps 2-3 at 12 both hold stream positions 24..47, across epoch 0's end (50).
  by_8 = np.concatenate([_ids(b) for b in _take(cfg, 3, start_step=3, examples_per_step=8)])
  by_12 = np.concatenate([_ids(b) for b in _take(cfg, 2, start_step=2, examples_per_step=12)])
  np.testing.assert_array_equal(by_8, by_12)
  # The stream, written out from its definition: epoch e is RandomState's permutation under (seed, stream, e).
  words = [np.random.SeedSequence([cfg.seed, 0x6F72646572, e]).generate_state(4) for e in (0, 1)]
  epochs = [np.random.RandomState(w).permutation(NUM_TRAIN) for w in words]
  np.testing.assert_array_equal(by_8, np.concatenate(epochs)[24:48])


@pytest.mark.parametrize("name", ["fashion_mnist", "ring8"])
def test_resume_sees_what_an_uninterrupted_run_saw(cfg, name):
  c = cfg.copy_and_resolve_references()
  c.data.name = name
  full = _take(c, 12, start_step=0, examples_per_step=8)
  resumed = _take(c, 7, start_step=5, examples_per_step=8)
  for a, b in zip(full[5:], resumed, strict=True):
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["label"], b["label"])


@pytest.mark.parametrize("name", ["fashion_mnist", "grid25"])
def test_process_shards_partition_the_global_batch(cfg, name):
  c = cfg.copy_and_resolve_references()
  c.data.name = name
  steps, global_size, process_count = 6, 12, 3
  global_batches = _take(c, steps, start_step=2, examples_per_step=global_size)
  shards = [
    _take(c, steps, start_step=2, examples_per_step=global_size, process_index=p, process_count=process_count)
    for p in range(process_count)
  ]
  for step, whole in enumerate(global_batches):
    parts = [shards[p][step] for p in range(process_count)]
    assert all(len(part["x"]) == global_size // process_count for part in parts)
    for key in ("x", "label"):
      np.testing.assert_array_equal(np.concatenate([part[key] for part in parts]), whole[key])
    if name == "fashion_mnist":
      ids = np.concatenate([_ids(part) for part in parts])
      assert len(set(ids.tolist())) == global_size  # Disjoint: 12 distinct examples within one epoch.


def test_indivisible_batch_names_both_numbers(cfg):
  with pytest.raises(ValueError, match=r"examples_per_step=10.*process_count=3"):
    data.make_batches(cfg, start_step=0, examples_per_step=10, process_index=0, process_count=3)


@pytest.fixture(params=["in_memory", "records"])
def source_kind(request, monkeypatch):
  """Reads the train split held in memory, or decoded batch by batch (a split over IN_MEMORY_LIMIT_BYTES)."""
  from gan_jax.data import pipeline

  if request.param == "records":
    monkeypatch.setattr(pipeline, "IN_MEMORY_LIMIT_BYTES", 0)
  pipeline._image_source.cache_clear()
  yield request.param
  pipeline._image_source.cache_clear()


def test_excluded_classes_never_reach_a_batch(cfg, idx, source_kind):
  c = cfg.copy_and_resolve_references()
  c.data.exclude_classes = (5, 3)
  labels_N = idx["train"][1]
  kept = np.flatnonzero(~np.isin(labels_N, [3, 5]))
  assert 0 < len(kept) < NUM_TRAIN and len(kept) % 7  # batches of 7 straddle the epoch boundary
  batches = _take(c, -(-2 * len(kept) // 7), start_step=0, examples_per_step=7)  # two epochs and a bit
  assert not np.isin(np.concatenate([b["label"] for b in batches]), [3, 5]).any()
  stream = np.concatenate([_ids(b) for b in batches])
  epoch0, epoch1 = stream[: len(kept)], stream[len(kept) : 2 * len(kept)]
  np.testing.assert_array_equal(np.sort(epoch0), kept)  # each kept example once an epoch
  np.testing.assert_array_equal(np.sort(epoch1), kept)
  assert not np.array_equal(epoch0, epoch1)
  # (seed, step) determinism: a resumed stream and process shards read what the whole stream read.
  resumed = _take(c, 3, start_step=4, examples_per_step=7)
  np.testing.assert_array_equal(np.concatenate([_ids(b) for b in resumed]), stream[28:49])
  whole = _take(c, 2, start_step=3, examples_per_step=8)
  shards = [_take(c, 2, start_step=3, examples_per_step=8, process_index=p, process_count=2) for p in range(2)]
  for step in range(2):
    np.testing.assert_array_equal(np.concatenate([shards[p][step]["x"] for p in range(2)]), whole[step]["x"])
  x_test, _ = data.load_split(c, "test")  # whole splits, the evaluation's, keep every class
  assert len(x_test) == NUM_TEST
  from gan_jax.data import pipeline

  assert isinstance(pipeline._source_for(c, "train"), pipeline._RecordSource) == (source_kind == "records")


@pytest.mark.parametrize(
  "text, match",
  [
    ("shoes", "--config.data.exclude_classes='shoes' is not a Python literal; expected a tuple"),
    ("3,,5", "is not a Python literal; expected a tuple"),
    ("3.5", r"data.exclude_classes=\(3.5,\): expected a tuple of class indices"),
    ("10", r"data.exclude_classes=\(10,\): classes \[10\] outside 0..9"),
    ("-1,2", r"data.exclude_classes=\(-1, 2\): classes \[-1\] outside 0..9"),
    (",".join(map(str, range(10))), "leaves no class to train on"),
  ],
)
def test_bad_exclude_classes_is_a_one_line_error(cfg, text, match):
  """As `--config.data.exclude_classes=TEXT` gives it: parsed to a tuple, then checked against the dataset."""
  c = cfg.copy_and_resolve_references()
  with pytest.raises(ValueError, match=match) as e:
    config_lib.apply_overrides(c, {"data.exclude_classes": text})
    for fail in (lambda: data.get_info(c), lambda: data.make_batches(c, start_step=0, examples_per_step=8)):
      fail()
  assert "\n" not in str(e.value)
  assert data.excluded_classes(cfg, "images", 10) == ()


def test_exclude_classes_needs_labelled_images():
  c = config_lib.base_config()
  c.data.name, c.data.exclude_classes = "ring8", (3,)
  with pytest.raises(ValueError, match="data.name='ring8' has no image classes; expected a labelled image dataset"):
    data.get_info(c)


def test_missing_idx_files_say_how_to_get_them(tmp_path, monkeypatch):
  empty = tmp_path / "empty"
  empty.mkdir()
  monkeypatch.setattr(fashion_mnist, "SEARCH_DIRS", [])
  monkeypatch.setattr(fashion_mnist, "MIRRORS", ["http://127.0.0.1:9/"])  # Refused at once.
  c = config_lib.base_config()
  c.data.source_dir = str(empty)
  c.data.data_dir = str(tmp_path / "tfds")
  with pytest.raises(FileNotFoundError) as error:
    data.get_info(c)
  message = str(error.value)
  assert str(empty) in message and "download failed" in message and "127.0.0.1" in message
  assert "apt-get install dataset-fashion-mnist" in message and "--config.data.source_dir=DIR" in message
  assert DEBIAN_DIR not in message


def test_catalog_name_reads_a_prepared_dataset_without_tensorflow(cfg, idx):
  c = cfg.copy_and_resolve_references()
  c.data.name = "tfds:gan_jax_fashion_mnist"
  info = data.get_info(c)
  assert (info.kind, info.shape, info.num_examples) == ("images", (28, 28, 1), NUM_TRAIN)
  _, labels = data.load_split(c, "train")
  np.testing.assert_array_equal(labels, idx["train"][1])


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed")
def test_unprepared_catalog_dataset_asks_for_tensorflow(tmp_path):
  c = config_lib.base_config()
  c.data.name = "tfds:mnist"
  c.data.data_dir = str(tmp_path)
  with pytest.raises(ValueError, match=r"pip install 'gan_jax\[tf\]'"):
    data.get_info(c)


def test_ring8_has_eight_distinct_modes_on_the_unit_circle():
  means_K2, sigma = synthetic.mode_geometry("ring8")
  assert means_K2.shape == (8, 2) and sigma == 0.01
  np.testing.assert_allclose(np.linalg.norm(means_K2, axis=1), 1.0)
  gaps = np.linalg.norm(means_K2[:, None] - means_K2[None], axis=-1) + np.eye(8)
  np.testing.assert_allclose(gaps.min(), 2 * np.sin(np.pi / 8))  # Equally spaced, none repeated.


def test_grid25_modes_are_the_5x5_grid():
  means_K2, sigma = synthetic.mode_geometry("grid25")
  expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
  assert {tuple(m) for m in means_K2.tolist()} == expected and len(means_K2) == 25 and sigma == 0.05


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_points_scatter_around_their_mode_with_sigma(name):
  c = config_lib.base_config()
  c.data.name = name
  means_K2, sigma = synthetic.MODES[name]
  info = data.get_info(c)
  assert info == data.DatasetInfo(name, "points", (2,), len(means_K2), None)
  (batch,) = _take(c, 1, start_step=0, examples_per_step=8000)
  assert batch["x"].dtype == np.float32 and batch["label"].dtype == np.int32
  assert set(batch["label"].tolist()) == set(range(len(means_K2)))
  offsets_N2 = batch["x"] - means_K2[batch["label"]]
  np.testing.assert_allclose(offsets_N2.std(axis=0), sigma, rtol=0.05)
  np.testing.assert_allclose(offsets_N2.mean(axis=0), 0, atol=4 * sigma / np.sqrt(len(offsets_N2)))
  x, labels = data.load_split(c, "test", limit=100)
  assert x.shape == (100, 2) and not np.array_equal(labels, batch["label"][:100])
  with pytest.raises(ValueError, match="limit"):
    data.load_split(c, "test")


def test_unknown_name_lists_the_known_ones():
  c = config_lib.base_config()
  c.data.name = "mnist_typo"
  with pytest.raises(ValueError, match=r"'mnist_typo'.*fashion_mnist.*ring8.*grid25.*tfds:"):
    data.get_info(c)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR), reason=f"{DEBIAN_DIR} absent: apt-get install dataset-fashion-mnist")
@pytest.mark.slow  # test-all: all 70,000 images; the fast tier reads the same IDX format from small files
def test_debian_files_load(tmp_path):
  c = config_lib.base_config()
  c.data.data_dir = str(tmp_path)
  assert data.get_info(c).num_examples == 60000
  x, labels = data.load_split(c, "test")
  assert x.shape == (10000, 28, 28, 1) and labels.shape == (10000,)
  assert -1.0 <= x.min() < x.max() <= 1.0 and set(labels.tolist()) == set(range(10))
