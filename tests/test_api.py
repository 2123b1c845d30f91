"""The Python API: `gan_jax.load_run`, `train_and_evaluate`, `__version__`; `import gan_jax` loads none of them."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from importlib import metadata

import numpy as np
import pytest
from helpers import ring_config

import gan_jax
from gan_jax import data, provenance
from gan_jax.train import loop
from gan_jax.train import run as run_lib

PYPROJECT = pathlib.Path(gan_jax.__file__).resolve().parent.parent / "pyproject.toml"
tomllib = pytest.importorskip("tomllib")  # Python 3.11+: the independent reading of pyproject.toml


def test_version_is_the_projects():
  project_version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
  assert gan_jax.__version__ == project_version


def test_version_without_installed_metadata_reads_pyproject(monkeypatch):
  def not_installed(name):
    raise metadata.PackageNotFoundError(name)

  monkeypatch.setattr(metadata, "version", not_installed)
  assert provenance.package_version() == tomllib.loads(PYPROJECT.read_text())["project"]["version"]


def test_import_stays_light_until_the_api_is_used():
  probe = (
    "import sys, gan_jax; v = gan_jax.__version__; light = 'jax' not in sys.modules; "
    "f = gan_jax.train_and_evaluate; print(light, 'jax' in sys.modules, sorted(gan_jax.__all__))"
  )
  out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
  assert out.split("\n")[0] == "True True ['__version__', 'load_run', 'train_and_evaluate']"
  assert gan_jax.train_and_evaluate is loop.train_and_evaluate and gan_jax.load_run is run_lib.load_run
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    gan_jax.nope  # noqa: B018


@pytest.mark.parametrize(
  "info",
  [
    data.DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10, 60000),
    data.DatasetInfo("folder:/data/pics", "images", (64, 64, 3), 0, 17),
    data.DatasetInfo("ring8", "points", (2,), 8, None),
  ],
)
def test_info_round_trips_through_json(info):
  saved = json.loads(json.dumps(data.info_to_json(info)))
  assert saved["shape"] == list(info.shape) and data.info_from_json(saved) == info


def test_info_from_json_reads_null_classes_and_refuses_other_dicts():
  loaded = data.info_from_json(
    {"name": "npz:a.npz", "kind": "images", "shape": [32, 32, 3], "num_classes": None, "num_examples": 9}
  )
  assert loaded == data.DatasetInfo("npz:a.npz", "images", (32, 32, 3), 0, 9)
  with pytest.raises(ValueError, match="expected the keys"):
    data.info_from_json({"name": "ring8", "kind": "points", "shape": [2]})
  with pytest.raises(ValueError, match="kind images or points"):
    data.info_from_json({"name": "x", "kind": "audio", "shape": [2], "num_classes": 0, "num_examples": 1})


def test_load_run_of_2d_data_uses_the_saved_data_info(tmp_path):
  workdir = str(tmp_path / "run")
  gan_jax.train_and_evaluate(ring_config(**{"train.steps": 3}), workdir)
  run = gan_jax.load_run(workdir)
  points = run.generate(10, seed=0)
  assert points.dtype == np.float32 and points.shape == (10, 2) and run.step == 3
  np.testing.assert_array_equal(points, run_lib.generate(run, 10, seed=0))
  path = os.path.join(workdir, "config.json")
  with open(path) as f:
    resolved = json.load(f)
  assert data.info_from_json(resolved[run_lib.DATA_INFO_KEY]) == run.info == data.get_info(ring_config())
  resolved["data"]["name"] = "gone"  # a dataset that cannot be found: only the saved data_info describes it
  with open(path, "w") as f:
    json.dump(resolved, f)
  loaded = gan_jax.load_run(workdir)
  assert loaded.info == run.info and "data_info" not in loaded.config
  np.testing.assert_array_equal(loaded.generate(10, seed=0), points)
  del resolved[run_lib.DATA_INFO_KEY]  # as a workdir written before config.json kept it: the dataset is asked
  with open(path, "w") as f:
    json.dump(resolved, f)
  with pytest.raises(ValueError, match="unknown data.name 'gone'"):
    gan_jax.load_run(workdir)


def test_load_run_reads_again_while_a_live_run_moves_its_checkpoints(tmp_path, monkeypatch):
  """A reader racing a training run: a read that fails while the checkpoint list changes is retried on the
  settled list, not reported as a damaged run; a failure on an unchanged list is reported at once."""
  workdir = str(tmp_path / "run")
  gan_jax.train_and_evaluate(ring_config(**{"train.steps": 3}), workdir)
  real_restore, real_steps = run_lib.checkpoint.restore_newest, run_lib.checkpoint.saved_steps
  calls = {"restore": 0, "listing": 0}

  def restore_racing(mngr, like):
    calls["restore"] += 1
    if calls["restore"] == 1:
      raise ValueError("no checkpoint in 'checkpoints' restores (step 4: a save in progress)")
    return real_restore(mngr, like)

  def listing(path, folder="checkpoints"):
    calls["listing"] += 1
    return real_steps(path, folder) + ([4] if calls["listing"] == 2 else [])  # a step appears, then settles

  monkeypatch.setattr(run_lib, "READ_RETRY_S", 0.0)
  monkeypatch.setattr(run_lib.checkpoint, "restore_newest", restore_racing)
  monkeypatch.setattr(run_lib.checkpoint, "saved_steps", listing)
  assert gan_jax.load_run(workdir).step == 3 and calls["restore"] == 2
  calls.update(restore=0, listing=10)  # the list no longer changes: the first failure is the answer
  with pytest.raises(ValueError, match="a save in progress"):
    gan_jax.load_run(workdir)
  assert calls["restore"] == 1


LIVE_EXPERIMENT = """
from helpers import ring_config

def get_config(arg=None):
  return ring_config(**{"train.steps": 400, "checkpoint.every": 1, "checkpoint.keep": 2, "train.log_every": 10})
"""


@pytest.mark.slow  # test-all; the fast tier races load_run against a checkpoint list that moves (above)
def test_readers_of_a_real_live_run_never_fail(tmp_path):
  """`gan-jax train` saving a checkpoint every step (keeping 2, so each save also deletes one) while load_run and
  `gan-jax sample` poll the workdir: every read returns a committed step, none is reported as bad input."""
  exp = tmp_path / "exp.py"
  exp.write_text(LIVE_EXPERIMENT)
  workdir = tmp_path / "run"
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.getcwd()])}
  cmd = [sys.executable, "-m", "gan_jax", "train", "--config", str(exp), "--workdir", str(workdir)]
  trainer = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
  try:
    while not ((workdir / "config.json").exists() and run_lib.checkpoint.saved_steps(str(workdir))):
      assert trainer.poll() is None, trainer.stderr.read()
      time.sleep(0.2)
    steps, samples = [], 0
    while trainer.poll() is None and len(steps) < 25:
      steps.append(gan_jax.load_run(str(workdir)).step)
      if len(steps) % 10 == 0:
        out = tmp_path / f"s{len(steps)}.npz"
        sample = [sys.executable, "-m", "gan_jax", "sample", "--workdir", str(workdir), "--num", "8", "--out", str(out)]
        done = subprocess.run(sample, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        samples += 1
  finally:
    trainer.terminate()
    trainer.communicate(timeout=120)
  assert len(steps) >= 10 and samples >= 1 and steps == sorted(steps) and steps[-1] > steps[0], steps


def test_load_run_at_a_step_or_its_best_checkpoint(tmp_path, capsys):
  """step=N reads that checkpoint (from checkpoints/ or checkpoints_best/); best=True the kept best one by the
  run's eval.best_metric, as eval.jsonl ranks them; `gan-jax sample --best` and `--step` read the same."""
  from gan_jax import cli
  from gan_jax.eval.metrics import direction
  from gan_jax.records import read_jsonl

  workdir = str(tmp_path / "run")
  config = ring_config(**{"train.steps": 8, "eval.every": 2, "checkpoint.every": 2, "checkpoint.keep": 1})
  config.eval.num_samples = 256
  loop.train_and_evaluate(config, workdir)
  kept_best = run_lib.checkpoint.saved_steps(workdir, "checkpoints_best")
  scored = {r["step"]: r["modes"] for r in read_jsonl(os.path.join(workdir, "eval.jsonl")) if r["step"] in kept_best}
  pick = max if direction("modes") == "max" else min
  expected = pick(sorted(scored), key=lambda s: scored[s])
  assert gan_jax.load_run(workdir, best=True).step == expected
  assert gan_jax.load_run(workdir).step == 8
  for s in kept_best:
    assert gan_jax.load_run(workdir, step=s).step == s
  with pytest.raises(ValueError, match=r"--step 5: .* keeps checkpoints of steps \["):
    gan_jax.load_run(workdir, step=5)
  best = gan_jax.load_run(workdir, best=True).generate(16, seed=3)
  assert (
    cli.main(["sample", "--workdir", workdir, "--best", "--num", "16", "--seed", "3", "--out", str(tmp_path / "b.npz")])
    == 0
  )
  np.testing.assert_array_equal(np.load(tmp_path / "b.npz")["points"], best)
