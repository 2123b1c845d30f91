"""What many test modules share: small run configs and comparisons of runs' logs."""

import os

import numpy as np

from gan_jax import config as config_lib
from gan_jax import models
from gan_jax.records import read_jsonl


def ring_config(**overrides):
  c = config_lib.base_config()
  c.data.name = "ring8"
  c.model.name = "mlp2d"
  c.model.latent_dim = 2
  c.model.g_width = c.model.d_width = 16
  c.train.steps = 6
  c.train.batch_size = 16
  c.train.log_every = 1
  c.train.sample_every = 1000
  c.train.ema_decay = 0.9
  c.checkpoint.every = 3
  c.train.num_devices = 1  # one device compiles fastest; tests of the data-parallel path ask for more
  config_lib.apply_overrides(c, overrides)
  return c


def image_config(idx_dir, tfds_dir, model="dcgan", **overrides):
  c = ring_config(**overrides)
  c.data.name = "fashion_mnist"
  c.data.source_dir = idx_dir
  c.data.data_dir = str(tfds_dir)
  c.model.name = model
  c.model.latent_dim = 8
  c.model.g_width = c.model.d_width = 8 if model == "dcgan" else 4
  c.eval.final = False  # image evaluation has its own tests
  return c


def losses_of(workdir):
  return [{k: v for k, v in r.items()} for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))]


def assert_runs_close(a, b, tol=1e-5):
  assert [r["step"] for r in a] == [r["step"] for r in b]
  for ra, rb in zip(a, b, strict=True):
    assert ra.keys() == rb.keys()
    for k in ra:
      np.testing.assert_allclose(ra[k], rb[k], rtol=tol, atol=tol, err_msg=f"step {ra['step']} {k}")


def register_model(monkeypatch, name: str, family, default_d_norm: str = "none") -> None:
  """Registers a model family for one test (monkeypatch undoes it)."""
  monkeypatch.setitem(models.MODELS._entries, name, family)
  monkeypatch.setitem(models.MODELS._meta, name, {"default_d_norm": default_d_norm})


def snapshot(directory) -> dict[str, tuple[bytes, int]]:
  out = {}
  for root, dirs, files in os.walk(directory):
    for name in files + dirs:
      path = os.path.join(root, name)
      data = b""
      if not os.path.isdir(path):
        with open(path, "rb") as f:
          data = f.read()
      out[os.path.relpath(path, directory)] = (data, os.stat(path).st_mode)
  return out
