"""The evaluator: protocol, real-vs-real against noise, streaming, the reference cache, 2D modes, the CLI."""

import argparse
import json
import os
import types

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import data, files, images, provenance, records
from gan_jax.cli import commands
from gan_jax.cli import parser as cli_parser
from gan_jax.data import synthetic
from gan_jax.eval import evaluate, features
from gan_jax.train import loop
from gan_jax.train import run as run_lib

IMAGE_METRICS = {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage"}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
  """A fresh reference cache per test (nothing leaks into ~/.cache); KID over 10 subsets, not 100.

  KID's arithmetic is tested in test_metrics.py; here the subset count only costs time.
  """
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
  monkeypatch.setattr(evaluate, "KID_SUBSETS", 10)
  return tmp_path / "cache"


@pytest.fixture(scope="module")
def image_config(fashion_idx_dir, tmp_path_factory):
  c = config_lib.base_config()
  c.data.source_dir = fashion_idx_dir
  c.data.data_dir = str(tmp_path_factory.mktemp("tfds"))
  return c


@pytest.fixture(scope="module")
def train_images(image_config):
  return data.load_split(image_config, "train")[0]  # 256 blobs; the test split holds 64 others


def ring_config():
  c = config_lib.base_config()
  c.data.name = "ring8"
  return c


def test_protocol_fields(image_config, train_images):
  result = evaluate.evaluate(
    evaluate.array_sampler(train_images), image_config, num_samples=100, seed=3, ema=False, step=np.int64(7)
  )
  assert set(result) == IMAGE_METRICS | {"protocol"}
  assert all(np.isfinite(result[k]) for k in IMAGE_METRICS)
  p = result["protocol"]
  assert p["feature_net"] == "fashion_mnist"
  assert p["feature_weights_sha256"] == features.FASHION_WEIGHTS_SHA256
  assert (p["dataset"], p["kind"], p["source"]) == ("fashion_mnist", "images", "generator")
  assert (p["real_split"], p["real_count"], p["generated_count"]) == ("test", 64, 100)
  assert (p["ema"], p["seed"], p["step"]) == (False, 3, 7)
  assert p["image_shape"] == [28, 28, 1] and "[-1, 1]" in p["image_check"]
  assert p["kid"] == {"num_subsets": 10, "subset_size": 64}
  assert p["quantized"] == "uint8"
  assert p["provenance"] == provenance.provenance() and "jax" in p["provenance"]["versions"]
  assert json.loads(json.dumps(result)) == result


def test_real_vs_real_far_below_real_vs_noise(image_config, train_images):
  real = evaluate.evaluate(evaluate.array_sampler(train_images), image_config, num_samples=128)
  noise_NHWC = np.random.default_rng(0).uniform(-1, 1, train_images[:128].shape).astype(np.float32)
  noise = evaluate.evaluate(evaluate.array_sampler(noise_NHWC), image_config, num_samples=128)
  assert real["fid"] < 0.05 * noise["fid"]
  assert real["kid_mean"] < 0.05 * noise["kid_mean"]
  assert real["precision"] > 0.8 > 0.2 > noise["precision"]
  assert real["coverage"] > 0.8 > 0.2 > noise["coverage"]
  floor = evaluate.real_floor(image_config, num_samples=128)
  assert floor["protocol"]["source"] == "real train split" and floor["protocol"]["ema"] is None
  assert floor["fid"] == pytest.approx(real["fid"], rel=1e-9)  # the floor is the first 128 train images


def test_streaming_equals_one_shot(image_config, train_images):
  streamed = evaluate.evaluate(evaluate.array_sampler(train_images), image_config, num_samples=150, batch_size=7)
  one_shot = evaluate.evaluate(evaluate.array_sampler(train_images), image_config, num_samples=150, batch_size=150)
  for key in IMAGE_METRICS:
    assert streamed[key] == pytest.approx(one_shot[key], rel=1e-6, abs=1e-9), key


def test_reference_cache_hit(image_config, cache):
  net = features.get_feature_net("fashion_mnist")
  first = evaluate.real_features(image_config, net, "test")
  assert not first.from_cache and first.path.startswith(str(cache))
  second = evaluate.real_features(image_config, net, "test")
  assert second.from_cache and second.path == first.path
  np.testing.assert_array_equal(second.feats_ND, first.feats_ND)
  np.testing.assert_array_equal(second.stats.sigma_DD, first.stats.sigma_DD)
  with np.load(first.path) as f:  # the file really is what is read: doctor it and look
    doctored = {k: f[k] for k in f.files}
  doctored["feats"] = doctored["feats"] + 1.0
  np.savez(first.path, **doctored)
  assert evaluate.real_features(image_config, net, "test").feats_ND[0, 0] == first.feats_ND[0, 0] + 1.0
  other = evaluate.real_features(image_config, net, "test", count=32)  # another count, another entry
  assert not other.from_cache and other.stats.count == 32


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda n: np.zeros((n, 32, 32, 1), np.float32), "shape"),
    (lambda n: np.full((n, 28, 28, 1), 2.0, np.float32), r"\[-1, 1\]"),
    (lambda n: np.zeros((n, 784), np.float32), "shape"),
    (lambda n: np.full((n, 28, 28, 1), np.nan, np.float32), "NaN"),  # refused, not rounded to a pixel value
  ],
)
def test_wrong_samples_are_refused(image_config, make, message):
  with pytest.raises(ValueError, match=message):
    evaluate.evaluate(make, image_config, num_samples=20)


def test_inception_without_weights_is_one_clear_error(image_config, monkeypatch):
  monkeypatch.delenv("GAN_JAX_INCEPTION_WEIGHTS", raising=False)
  with pytest.raises(FileNotFoundError, match="make inception"):
    evaluate.evaluate(lambda n: np.zeros((n, 28, 28, 1)), image_config, num_samples=20, feature_net="inception")


def test_ring8_modes_of_the_distribution_and_of_a_collapse():
  # A 2D Gaussian puts 1 - exp(-9/2) = 98.9% of its mass within 3 sigma.
  points_N2, _ = synthetic.sample("ring8", np.random.default_rng(1), 2500)
  full = evaluate.evaluate(evaluate.array_sampler(points_N2), ring_config(), step=5)
  assert full["modes"] == 8 and full["high_quality"] > 0.98 and full["reverse_kl"] < 0.01
  assert full["protocol"]["generated_count"] == 2500 and full["protocol"]["num_modes"] == 8
  collapsed_N2 = np.array([1.0, 0.0]) + 0.01 * np.random.default_rng(2).standard_normal((2500, 2))
  collapsed = evaluate.evaluate(evaluate.array_sampler(collapsed_N2), ring_config())
  assert collapsed["modes"] == 1 and collapsed["reverse_kl"] == pytest.approx(np.log(8))
  assert evaluate.real_floor(ring_config())["modes"] == 8


def run_eval(*argv):
  """`gan-jax eval ARGV` with its errors raised, not mapped to exit status 2."""
  parser = argparse.ArgumentParser()
  cli_parser.add_eval_parser(parser.add_subparsers(dest="command"))
  return commands.eval_(parser.parse_args(["eval", *argv]), {})


def test_cli_scores_a_samples_file(image_config, train_images, tmp_path, capsys):
  path = tmp_path / "samples.npz"
  np.savez(path, images=np.round((train_images[:100] + 1) * 127.5).astype(np.uint8))
  dirs = ["--data-dir", image_config.data.data_dir, "--source-dir", image_config.data.source_dir]
  assert run_eval("--samples", str(path), *dirs) == 0
  result = json.loads(capsys.readouterr().out)
  direct = evaluate.evaluate(evaluate.array_sampler(train_images), image_config, num_samples=100)
  assert result["fid"] == pytest.approx(direct["fid"], rel=1e-4)
  assert result["protocol"]["source"] == "samples file samples.npz"
  assert run_eval("--floor", "--num", "64", *dirs) == 0
  assert json.loads(capsys.readouterr().out)["protocol"]["source"] == "real train split"
  np.savez(path, images=train_images[:100])  # floats, not uint8
  with pytest.raises(ValueError, match="uint8"):
    run_eval("--samples", str(path), *dirs)


def test_cli_reads_png_folders_and_arr_0_as_the_images_key(image_config, train_images, tmp_path, capsys):
  """The pytorch-fid / clean-fid folder convention and the ADM evaluator's `arr_0` give the same record."""
  from PIL import Image

  uint8_NHWC = images.to_uint8(train_images[:40])
  np.savez(tmp_path / "images.npz", images=uint8_NHWC)
  np.savez(tmp_path / "adm.npz", uint8_NHWC)  # np.savez names a positional array arr_0
  folder = tmp_path / "pngs"
  folder.mkdir()
  for i, image in enumerate(uint8_NHWC):
    Image.fromarray(image[..., 0]).save(folder / f"{i:05d}.png")
  (folder / "notes.txt").write_text("not an image")
  dirs = ["--data-dir", image_config.data.data_dir, "--source-dir", image_config.data.source_dir]
  results = []
  for source in ("images.npz", "adm.npz", "pngs"):
    assert run_eval("--samples", str(tmp_path / source), *dirs) == 0
    results.append(json.loads(capsys.readouterr().out))
  assert results[0]["fid"] == results[1]["fid"] == results[2]["fid"]
  assert results[2]["protocol"]["generated_count"] == 40
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "zz_small.png")
  with pytest.raises(ValueError, match="2 sizes"):
    run_eval("--samples", str(folder), *dirs)


def test_a_generator_and_its_uint8_samples_file_get_the_same_metrics(
  image_config, train_images, tmp_path, capsys, monkeypatch
):
  """The train loop's path (float images from generate_fn) and `gan-jax eval --samples` on the same images
  written as uint8, as `gan-jax sample` writes them: equal metrics, to the last bit."""
  rng = np.random.default_rng(0)
  floats_NHWC = np.clip(train_images[:100] + rng.normal(0, 0.05, train_images[:100].shape), -1, 1).astype(np.float32)
  assert not np.array_equal(images.quantize(floats_NHWC), floats_NHWC)  # off the uint8 levels: rounding matters
  in_memory = evaluate.evaluate(evaluate.array_sampler(floats_NHWC), image_config, num_samples=100)
  path = tmp_path / "samples.npz"
  np.savez(path, images=images.to_uint8(floats_NHWC))
  assert (
    run_eval(
      "--samples", str(path), "--data-dir", image_config.data.data_dir, "--source-dir", image_config.data.source_dir
    )
    == 0
  )
  from_file = json.loads(capsys.readouterr().out)
  assert {k: from_file[k] for k in IMAGE_METRICS} == {k: in_memory[k] for k in IMAGE_METRICS}
  assert from_file["protocol"]["quantized"] == in_memory["protocol"]["quantized"] == "uint8"
  # Without the quantization the two paths disagree: the equality above is not a coincidence.
  monkeypatch.setattr(evaluate.images, "quantize", lambda x: x)
  raw = evaluate.evaluate(evaluate.array_sampler(floats_NHWC), image_config, num_samples=100)
  assert raw["fid"] != in_memory["fid"]


def test_cli_scores_a_workdir_and_appends_eval_jsonl(tmp_path, capsys):
  c = ring_config()
  c.model.name, c.model.latent_dim, c.model.g_width, c.model.d_width = "mlp2d", 2, 16, 16
  c.train.steps, c.train.batch_size, c.train.num_devices, c.checkpoint.every = 2, 16, 1, 2
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(c, workdir)
  path = records.append_record(workdir, {"fid": 1.0})  # appended to, never overwritten
  with open(path) as f:
    before = [json.loads(line) for line in f]
  assert run_eval("--workdir", workdir, "--num", "500", "--no-ema") == 0
  printed = json.loads(capsys.readouterr().out)
  with open(path) as f:
    after = [json.loads(line) for line in f]
  assert path == os.path.join(workdir, "eval.jsonl") and after == [*before, printed] and before[-1] == {"fid": 1.0}
  assert {"modes", "high_quality", "reverse_kl"} <= set(printed)
  assert printed["step"] == printed["protocol"]["step"] == 2 and printed["protocol"]["ema"] is False
  assert printed["protocol"]["generated_count"] == 500


def test_run_sampler_takes_one_member_and_cycles_classes():
  def generate(params, stats, z_NZ, labels_N):  # echoes what the sampler passed in
    return jnp.stack([jnp.broadcast_to(params["w"] + stats["s"], z_NZ.shape[:1]), labels_N.astype(z_NZ.dtype)], 1)

  gan = types.SimpleNamespace(generate=generate, generator=types.SimpleNamespace(num_classes=3), latent_dim=4)
  state = types.SimpleNamespace(
    ema_params={"w": jnp.array([10.0, 20.0])},
    g=types.SimpleNamespace(params={"w": jnp.array([1.0, 2.0])}, stats={"s": jnp.zeros(2)}),
    d=types.SimpleNamespace(params={"v": jnp.zeros(2)}, stats={}),
  )
  run = types.SimpleNamespace(
    config=types.SimpleNamespace(population=types.SimpleNamespace(size=2)), gan=gan, state=state
  )
  sample = run_lib.run_sampler(run, ema=False, member=1)
  out_N2 = np.concatenate([sample(4), sample(3)])
  np.testing.assert_array_equal(out_N2[:, 0], 2.0)  # member 1 of the raw generator
  np.testing.assert_array_equal(out_N2[:, 1], [0, 1, 2, 0, 1, 2, 0])  # classes in turn across calls
  assert run_lib.run_sampler(run, member=0)(2)[0, 0] == 10.0
  with pytest.raises(ValueError, match="member=2"):
    run_lib.run_sampler(run, member=2)
