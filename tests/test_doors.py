"""The doors for a new metric: one function and one registration, seen by the evaluation record, the best
checkpoint, the report's sort direction and the best_metric check."""

import json

import numpy as np
import pytest
from helpers import ring_config

from gan_jax.eval import metrics
from gan_jax.records import read_jsonl
from gan_jax.train import checkpoint, setup
from gan_jax.train.loop import train_and_evaluate


@pytest.fixture
def spread_metric():
  """A point metric: the generated points' mean distance from the origin's nearest mode ring (lower is better)."""

  @metrics.register("ring_error", outputs={"ring_error": "min", "ring_error_std": ""}, kind="points")
  def ring_error(s):
    radius = np.linalg.norm(s.means_K2, axis=1).mean()
    err = np.abs(np.linalg.norm(s.points_N2, axis=1) - radius)
    return {"ring_error": float(err.mean()), "ring_error_std": float(err.std())}

  yield ring_error
  metrics.METRICS._entries.pop("ring_error")
  metrics.METRICS._meta.pop("ring_error")


def test_a_registered_metric_is_recorded_and_ranks_checkpoints(tmp_path, spread_metric):
  assert metrics.direction("ring_error") == "min" and metrics.direction("best.ring_error") == "min"
  assert "ring_error" in metrics.best_metrics("points") and "ring_error_std" not in metrics.best_metrics("points")
  config = ring_config(
    **{"train.steps": 6, "eval.every": 2, "eval.best_metric": "ring_error", "checkpoint.keep_best": 1}
  )
  train_and_evaluate(config, str(tmp_path / "run"))
  records = read_jsonl(tmp_path / "run" / "eval.jsonl")
  assert [r["step"] for r in records] == [2, 4, 6] and all("modes" in r for r in records)
  best = min(records, key=lambda r: r["ring_error"])["step"]
  assert checkpoint.saved_steps(str(tmp_path / "run"), "checkpoints_best") == [best]


def test_an_unregistered_best_metric_is_refused_in_one_line():
  config = ring_config(**{"eval.best_metric": "ring_error"})
  with pytest.raises(ValueError, match="eval.best_metric='ring_error': expected one of"):
    setup.check_config(config)


def test_the_shipped_directions_are_unchanged():
  """Every name the old MAXIMIZE set made "max" still is, with its seed-mean and report-column forms; the
  Inception's copies in a final record (inception_precision, ...) now follow their metric."""
  old_maximize = {"modes", "high_quality", "precision", "recall", "is", "inception_score", "coverage", "density"}
  for name in old_maximize | {"accuracy"}:
    for form in (name, f"{name}_mean", f"best.{name}", f"best.{name}_mean"):
      assert metrics.direction(form) == "max", form
  for name in ("fid", "kid_mean", "kid_std", "reverse_kl", "d_loss", "g_loss", "inception_fid", "best.fid", "fid_mean"):
    assert metrics.direction(name) == "min", name
  for name in ("inception_precision", "inception_is_mean", "inception_recall"):
    assert metrics.direction(name) == "max", name
  assert metrics.best_metrics("images") == ("fid", "kid_mean", "precision", "recall", "density", "coverage", "is_mean")


@pytest.mark.slow  # two console-script starts; the fast tier imports losses by path (test_losses, test_bad_input)
def test_the_gan_jax_command_imports_a_loss_beside_the_user_as_python_m_does(tmp_path):
  """`loss.name=mylosses:fn` for a module in the working directory, from the console script (no PYTHONPATH);
  then a read-only tool on the run prints no absl warnings."""
  import os
  import subprocess
  import sys

  script = os.path.join(os.path.dirname(sys.executable), "gan-jax")
  if not os.path.exists(script):
    pytest.skip("the gan-jax console script is not installed beside this Python")
  (tmp_path / "mylosses.py").write_text(
    "import jax.numpy as jnp\n\n"
    "def margin(r, f):\n  return jnp.mean(jnp.maximum(0, 1 - r)) + jnp.mean(jnp.maximum(0, 1 + f)), -jnp.mean(f)\n"
  )
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  experiment = os.path.abspath("experiments/ring8.py")
  run = lambda *args: subprocess.run(
    [script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
  )
  flags = ["--config.loss.name=mylosses:margin", "--config.train.steps=1", "--config.eval.final=False"]
  trained = run("train", "--config", experiment, "--workdir", "run", *flags)
  assert trained.returncode == 0, trained.stderr[-2000:]
  assert json.loads((tmp_path / "run" / "config.json").read_text())["loss"]["name"] == "mylosses:margin"
  sampled = run("sample", "--workdir", "run", "--num", "4", "--out", "s.npz")
  assert sampled.returncode == 0 and "WARNING" not in sampled.stderr, sampled.stderr


def test_boolean_overrides_take_config_flags_syntax():
  """`--config.flag` sets a boolean True and `--noconfig.flag` False, as ml_collections' config_flags do."""
  from gan_jax import config as config_lib

  overrides, rest = config_lib.parse_override_args(
    ["--config.model.conditional", "--noconfig.train.check_finite", "--config.train.steps", "7", "--workdir", "w"]
  )
  assert rest == ["--workdir", "w"]
  c = ring_config()
  config_lib.apply_overrides(c, overrides)
  assert c.model.conditional is True and c.train.check_finite is False and c.train.steps == 7
