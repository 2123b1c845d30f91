"""`data.name = "folder:PATH"`: one's own PNG/JPEG images, fitted, labelled by subfolder, cached, trained on."""

from __future__ import annotations

import doctest
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ring_config
from PIL import Image

import gan_jax
from gan_jax import data, files
from gan_jax.data import folder, pipeline
from gan_jax.eval import evaluate, feature_net, features
from gan_jax.images import to_uint8
from gan_jax.records import read_jsonl
from gan_jax.train import loop
from gan_jax.train import run as run_lib

CLASSES = ("circles", "squares")
PER_CLASS = 32  # 64 readable images: a held-out split of 6, enough for evaluation's 5-nearest-neighbour metrics


def _shade(cls: int, i: int) -> tuple[int, int, int]:
  """A flat colour per image, so a fitted image still says which file it came from."""
  return (40 + 150 * cls, 4 * i, 255 - 4 * i)


def make_pictures(root, classes=CLASSES, per_class=PER_CLASS, gray=False) -> str:
  """Flat-coloured images of assorted sizes and formats in one subfolder per class, plus a truncated PNG."""
  rng = np.random.default_rng(0)
  for c, name in enumerate(classes):
    os.makedirs(root / name)
    for i in range(per_class):
      height, width = (int(s) for s in rng.integers(12, 80, 2))
      pixels = np.broadcast_to(np.asarray(_shade(c, i), np.uint8), (height, width, 3))
      image = Image.fromarray(np.ascontiguousarray(pixels)).convert("L" if gray else "RGB")
      image.save(root / name / f"{i:02d}.{'png' if i % 4 else 'jpg'}")
  good = (root / classes[-1] / "01.png").read_bytes()
  (root / classes[-1] / "zz_truncated.png").write_bytes(good[:60])  # its header opens; its pixels do not
  (root / "README.txt").write_text("not an image: ignored")
  return str(root)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> str:
  return make_pictures(tmp_path_factory.mktemp("pictures"))


def folder_config(path, data_dir, **overrides):
  c = ring_config(**overrides)
  c.data.name = f"folder:{path}"
  c.data.data_dir = str(data_dir)
  c.data.resolution = 32  # base_config gains data.resolution / data.channels with this feature; set them here too
  c.data.channels = 0
  return c


def test_images_are_fitted_labelled_by_subfolder_and_split(pictures, tmp_path, capsys):
  c = folder_config(pictures, tmp_path / "tfds")
  info = data.get_info(c)
  n = 2 * PER_CLASS
  assert info == data.DatasetInfo(f"folder:{pictures}", "images", (32, 32, 3), 2, n - n // 10)
  warnings = [line for line in capsys.readouterr().err.splitlines() if "unreadable" in line]
  assert len(warnings) == 1 and "skipped 1 unreadable of 65 image files" in warnings[0], warnings
  shades = {}
  for split in ("train", "test"):
    x, labels = data.load_split(c, split)
    assert x.shape == (info.num_examples if split == "train" else n // 10, 32, 32, 3)
    pixels = np.rint((x + 1) * 127.5)
    flat = pixels.reshape(len(x), -1, 3)
    # Every fitted image is its file's flat colour: nothing of another image, no border from the crop.
    assert np.abs(flat - flat[:, :1]).max() <= 3
    for colour, label in zip(flat[:, 0], labels, strict=True):
      shades.setdefault(split, []).append((label, tuple(colour)))
  expected = {(c_, _shade(c_, i)) for c_ in range(2) for i in range(PER_CLASS)}
  found = shades["train"] + shades["test"]
  assert len(found) == n and not {s for s in shades["train"]} & {s for s in shades["test"]}
  # JPEG moves a flat colour by a level or two; match each found image to its nearest expected one.
  for label, colour in found:
    nearest = min(expected, key=lambda e: np.abs(np.subtract(e[1], colour)).max())
    assert nearest[0] == label and np.abs(np.subtract(nearest[1], colour)).max() <= 3


def test_shorter_side_scaled_and_centre_cropped(tmp_path):
  """A 30 x 120 image whose middle half is green: its centred 30 x 30 square, scaled to 32, is all green."""
  row = np.zeros((120, 3), np.uint8)
  row[:30], row[30:90], row[90:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
  (tmp_path / "pics").mkdir()
  Image.fromarray(np.ascontiguousarray(np.broadcast_to(row, (30, 120, 3)))).save(tmp_path / "pics" / "wide.png")
  Image.fromarray(np.zeros((64, 40, 3), np.uint8)).save(tmp_path / "pics" / "tall.png")
  c = folder_config(tmp_path / "pics", tmp_path / "tfds")
  assert data.get_info(c).num_classes == 0  # files at the top level: unlabelled
  x_train, _ = data.load_split(c, "train")
  x_test, _ = data.load_split(c, "test")
  wide = [x for x in (*x_train, *x_test) if x.max() > 0]
  assert len(wide) == 1 and wide[0].shape == (32, 32, 3)
  np.testing.assert_array_equal(np.rint((wide[0] + 1) * 127.5), np.broadcast_to([0, 255, 0], (32, 32, 3)))


def test_gray_inputs_give_one_channel_unless_asked(tmp_path):
  root = make_pictures(tmp_path / "gray", per_class=3, gray=True)
  assert data.get_info(folder_config(root, tmp_path / "tfds")).shape == (32, 32, 1)
  rgb = folder_config(root, tmp_path / "tfds")
  rgb.data.channels, rgb.data.resolution = 3, 28
  assert data.get_info(rgb).shape == (28, 28, 3)
  x, _ = data.load_split(rgb, "train")
  np.testing.assert_array_equal(x[..., 0], x[..., 2])  # gray repeated
  # The RGB folder asked for gray: one channel, the luminance of the flat colour.
  colour = folder_config(make_pictures(tmp_path / "colour", per_class=3), tmp_path / "tfds")
  colour.data.channels = 1
  assert data.get_info(colour).shape == (32, 32, 1)


def test_one_subfolder_is_unlabelled_and_images_beside_classes_are_refused(tmp_path):
  one = make_pictures(tmp_path / "one", classes=("all",), per_class=3)
  assert data.get_info(folder_config(one, tmp_path / "tfds")).num_classes == 0
  mixed = make_pictures(tmp_path / "mixed", per_class=2)
  shutil.copy(os.path.join(mixed, "circles", "01.png"), os.path.join(mixed, "stray.png"))
  with pytest.raises(ValueError, match="1 images .* lie beside 2 class subfolders") as e:
    data.get_info(folder_config(mixed, tmp_path / "tfds"))
  assert "\n" not in str(e.value)


def test_prepared_once_and_again_when_the_folder_changes(tmp_path, monkeypatch):
  root = make_pictures(tmp_path / "pics", per_class=3)
  c = folder_config(root, tmp_path / "tfds")
  first = data.get_info(c)
  cached = lambda: sorted(os.listdir(tmp_path / "tfds" / folder.FolderImages.name))
  assert len(cached()) == 1
  pipeline._builder.cache_clear()
  pipeline._image_source.cache_clear()
  monkeypatch.setattr(folder.FolderImages, "download_and_prepare", lambda self: pytest.fail("prepared twice"))
  assert data.get_info(c) == first  # read from the prepared copy
  monkeypatch.undo()
  Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(os.path.join(root, "squares", "new.png"))
  assert data.get_info(c).num_examples == first.num_examples + 1  # seen in the same process: the key changed
  with open(os.path.join(root, "squares", "new.png"), "ab") as f:
    f.write(b"\0")  # same names, another size
  data.get_info(c)
  assert len(cached()) == 3


@pytest.mark.parametrize(
  "layout, message",
  [
    ("missing", "does not exist; expected a folder of PNG/JPEG images"),
    ("file", "is not a folder"),
    ("empty", "no png/jpg/jpeg files under"),
    ("garbage", "none of the 2 image files under .* opens"),
    ("single", "one readable image; expected at least 2"),
    ("truncated", "too few of the 2 image files under .* decode to fill both the train and the held-out split"),
  ],
)
def test_bad_folders_are_one_line(layout, message, tmp_path):
  root = tmp_path / "pics"
  if layout == "file":
    root.write_text("x")
  elif layout != "missing":
    root.mkdir()
    (root / "notes.txt").write_text("x")
  if layout == "garbage":
    (root / "a.png").write_bytes(b"not a png")
    (root / "b.jpg").write_bytes(b"")
  if layout == "single":
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")
  if layout == "truncated":  # headers that open, pixels that do not: found only while preparing
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), np.uint8)).save(root / "a.png")
    (root / "b.png").write_bytes((root / "a.png").read_bytes()[:100])
    (root / "a.png").write_bytes((root / "b.png").read_bytes())
  with pytest.raises(ValueError, match=message) as e:
    data.get_info(folder_config(root, tmp_path / "tfds"))
  assert "\n" not in str(e.value)
  prepared = [f for _, _, files in os.walk(tmp_path / "tfds") for f in files]
  assert not prepared  # nothing half-prepared left to be mistaken for a dataset


def tiny_feature_net(weights: str = "", protocol: str = "") -> feature_net.FeatureNet:
  """Any-size images -> a fixed random projection of their 8x8 thumbnails: evaluation's plumbing without Inception."""
  rng = np.random.default_rng(0)
  variables = {"feats": rng.normal(size=(8 * 8 * 3, 16)).astype(np.float32)}
  variables["logits"] = rng.normal(size=(16, 10)).astype(np.float32)

  @jax.jit
  def apply(v, x_NHWC):
    x_NHWC = jnp.broadcast_to(x_NHWC, (*x_NHWC.shape[:3], 3))
    thumbs = jax.image.resize(x_NHWC, (x_NHWC.shape[0], 8, 8, 3), "linear")
    feats_ND = jnp.tanh(thumbs.reshape(len(x_NHWC), -1) @ v["feats"])
    return feats_ND, jax.nn.softmax(feats_ND @ v["logits"], axis=-1)

  return feature_net.FeatureNet(
    "tiny", "0" * 64, 16, 10, None, (1, 3), variables, apply, 64, "any HxW, 1 or 3 channels; 8x8 thumbnails"
  )


@pytest.fixture(scope="module")
def folder_run(pictures, tmp_path_factory):
  """A conditional DCGAN at 32x32 on the pictures, evaluated at its end: (workdir, config)."""
  base = tmp_path_factory.mktemp("folder_run")
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv(files.CACHE_ENV, str(base / "cache"))
    mp.setitem(features.FEATURE_NETS._entries, "tiny", tiny_feature_net)
    mp.setitem(features.FEATURE_NETS._meta, "tiny", {})
    config = folder_config(
      pictures,
      base / "tfds",
      **{"model.name": "dcgan", "model.conditional": True, "train.steps": 4, "train.batch_size": 8},
    )
    config.model.latent_dim, config.model.g_width, config.model.d_width = 8, 8, 8
    config.eval.final, config.eval.num_samples, config.eval.feature_net = True, 20, "tiny"
    workdir = str(base / "run")
    loop.train_and_evaluate(config, workdir)
  return workdir, config


def test_folder_run_trains_and_evaluates(folder_run):
  workdir, _ = folder_run
  (record,) = read_jsonl(os.path.join(workdir, "eval.jsonl"))
  assert record["step"] == 4 and np.isfinite(record["fid"])
  assert record["protocol"]["image_shape"] == [32, 32, 3] and record["protocol"]["real_count"] == 6
  assert os.path.exists(os.path.join(workdir, "samples", "step_0000004.png"))


def _saved_info(workdir: str):
  with open(os.path.join(workdir, "config.json")) as f:
    return data.info_from_json(json.load(f)[run_lib.DATA_INFO_KEY])


LOAD_RUN_EXAMPLE = """
>>> import gan_jax
>>> run = gan_jax.load_run(workdir)
>>> images = run.generate(16, seed=0)
>>> images.dtype, images.shape
(dtype('uint8'), (16, 32, 32, 3))
>>> run.step
4
>>> run.info.num_classes, run.gan.data_shape
(2, (32, 32, 3))
"""


def test_load_run_generates_uint8_without_the_dataset(folder_run, tmp_path):
  workdir, config = folder_run
  moved = str(tmp_path / "run")
  shutil.copytree(workdir, moved)
  assert _saved_info(moved) == data.get_info(config)  # the train loop keeps the data's shape and classes
  gone = tmp_path / "gone"
  shutil.copytree(config.data.name[len("folder:") :], gone / "pictures")
  with open(os.path.join(moved, "config.json")) as f:
    resolved = json.load(f)
  resolved["data"]["name"], resolved["data"]["data_dir"] = f"folder:{gone / 'pictures'}", str(gone / "tfds")
  with open(os.path.join(moved, "config.json"), "w") as f:
    json.dump(resolved, f)
  shutil.rmtree(gone)  # neither the images nor their prepared copy exist any more
  parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
  runner.run(parser.get_doctest(LOAD_RUN_EXAMPLE, {"workdir": moved}, "load_run", None, 0))
  assert runner.summarize(verbose=False).failed == 0
  run = gan_jax.load_run(moved)
  assert "data_info" not in run.config
  assert run.info == data.get_info(config)


def test_run_generate_matches_the_cli_path(folder_run):
  workdir, config = folder_run
  run = run_lib.load_run(workdir)
  assert run.info == data.get_info(config)
  images = run.generate(8, seed=3)
  labels_N = run_lib.sample_labels("all", 8, 2)
  np.testing.assert_array_equal(images, to_uint8(run_lib.generate(run, 8, seed=3, labels_N=labels_N)))
  assert not np.array_equal(images, run.generate(8, seed=4))
  assert not np.array_equal(images, run.generate(8, seed=3, ema=False))
  # Class 1 throughout: samples 1, 3, 5, 7 (class 1 when the classes take turns) are unchanged, the others not.
  ones = run.generate(8, seed=3, labels=[1] * 8)
  np.testing.assert_array_equal(ones[1::2], images[1::2])
  assert not np.array_equal(ones[0::2], images[0::2])
  np.testing.assert_array_equal(run.generate(8, seed=3, labels="1"), ones)
  with pytest.raises(ValueError, match="member=1: expected 0..0"):
    run.generate(2, member=1)


def test_sample_cli_writes_the_npz_and_the_same_images_as_pngs(folder_run, tmp_path, capsys):
  from PIL import Image

  from gan_jax.cli import main

  workdir, _ = folder_run
  out, pngs = str(tmp_path / "s.npz"), tmp_path / "pngs"
  assert main(["sample", "--workdir", workdir, "--num", "6", "--out", out, "--png", str(pngs), "--seed", "2"]) == 0
  with np.load(out) as f:
    images, labels = f["images"], f["labels"]
  files = sorted(os.listdir(pngs))
  assert files == [f"{i:05d}_label{labels[i]}.png" for i in range(6)]
  for i, name in enumerate(files):
    np.testing.assert_array_equal(np.asarray(Image.open(pngs / name)), images[i])
  np.testing.assert_array_equal(images, gan_jax.load_run(workdir).generate(6, seed=2))


def test_final_evaluation_adds_the_inception_scores(fashion_idx_dir, tmp_path, monkeypatch):
  """A Fashion-MNIST run scores its curve with the classifier and adds inception_* at the final step only, on the
  same samples; a stand-in network takes the Inception's place (the real one: test_inception_golden.py)."""
  from helpers import image_config

  from gan_jax.eval import inception

  weights = tmp_path / "weights.npz"
  weights.write_bytes(b"a stand-in: the registry entry below never reads it")
  monkeypatch.setenv(inception.ENV_VAR, str(weights))
  monkeypatch.setitem(features.FEATURE_NETS._entries, "inception", tiny_feature_net)
  c = image_config(fashion_idx_dir, tmp_path / "tfds", **{"train.steps": 4, "train.batch_size": 8})
  c.eval.every, c.eval.final, c.eval.num_samples = 2, True, 20
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(c, workdir)
  first, final = read_jsonl(os.path.join(workdir, "eval.jsonl"))
  assert (first["step"], final["step"]) == (2, 4)
  assert first["protocol"]["feature_net"] == final["protocol"]["feature_net"] == "fashion_mnist"
  assert not any(k.startswith("inception_") for k in first)
  assert final["protocol"]["inception"]["feature_net"] == "tiny" and "provenance" not in final["protocol"]["inception"]
  assert np.isfinite(final["inception_fid"]) and final["inception_fid"] != final["fid"]
  # The same samples as `gan-jax eval --workdir --feature-net inception` draws with the run's seed.
  sampler = run_lib.run_sampler(run_lib.load_run(workdir), seed=c.seed)
  direct = evaluate.evaluate(sampler, c, num_samples=20, feature_net="inception", seed=c.seed)
  assert direct["fid"] == pytest.approx(final["inception_fid"], rel=1e-6)
