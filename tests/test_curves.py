"""Curves: seed grouping, smoothing, plots (references and their checks: test_reference.py)."""

import glob
import json
import os

import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.cli import main
from gan_jax.eval import curves


def fake_run(path, seed, loss="hinge", shift=0.0, member_seeds=(), model="dcgan", d_norm=""):
  """A workdir with config.json and a noisy decaying d_loss / g_loss."""
  os.makedirs(path, exist_ok=True)
  c = config_lib.base_config()
  c.seed, c.loss.name, c.population.seed = seed, loss, tuple(member_seeds)
  c.model.name, c.model.d_norm = model, d_norm
  members = len(member_seeds) or 1
  c.population.size = members
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config_lib.run_config_json(c), f)
  rng = np.random.default_rng(seed)
  with open(os.path.join(path, "metrics.jsonl"), "w") as f:
    for step in range(10, 410, 10):
      for m in range(members):
        row = {"step": step, "d_loss": 1 + np.exp(-step / 100) + 0.02 * rng.normal() + shift, "g_loss": 2.0 - shift}
        f.write(json.dumps({**row, **({"member": m} if members > 1 else {})}) + "\n")
  return str(path)


def test_smooth_is_a_centred_truncated_mean():
  np.testing.assert_allclose(curves.smooth(np.array([1.0, 2, 3, 4, 10]), 3), [1.5, 2, 3, 17 / 3, 7])
  np.testing.assert_array_equal(curves.smooth(np.array([3.0, 1.0]), 1), [3.0, 1.0])


def test_a_non_finite_value_spoils_only_its_own_windows():
  y = np.array([1.0, 2.0, np.inf, 4.0, 5.0, 6.0, 7.0, 8.0])
  out = curves.smooth(y, 3)
  assert np.isnan(out[1:4]).all() and not np.isnan(out[[0, 4, 5, 6, 7]]).any()
  np.testing.assert_allclose(out[[0, 4, 5, 6, 7]], [1.5, 5.0, 6.0, 7.0, 7.5])


def test_evaluation_metrics_are_never_smoothed(tmp_path):
  run = fake_run(tmp_path / "r", 0)
  with open(os.path.join(run, "eval.jsonl"), "w") as f:
    for step, modes in ((100, 4), (200, 6), (300, 8)):
      f.write(json.dumps({"step": step, "modes": modes, "protocol": {"seed": 0}}) + "\n")
  (series,) = curves.load_series(run)
  steps, mean, _ = curves.band([series], "modes", 5)
  np.testing.assert_array_equal(steps, [100, 200, 300])
  np.testing.assert_array_equal(mean, [4, 6, 8])
  _, d_loss, _ = curves.band([series], "d_loss", 5)
  np.testing.assert_allclose(d_loss, curves.smooth(series.curves["d_loss"][1], 5))


def test_groups_split_on_config_not_seed(tmp_path):
  runs = [fake_run(tmp_path / f"h{s}", s) for s in range(3)]
  runs += [fake_run(tmp_path / f"n{s}", s, "minimax") for s in (0, 1)]
  groups = curves.group_by_seed([s for r in runs for s in curves.load_series(r)])
  assert {k: len(v) for k, v in groups.items()} == {"loss.name=hinge": 3, "loss.name=minimax": 2}
  steps, mean, std = curves.band(groups["loss.name=hinge"], "g_loss", 1)
  assert len(steps) == 40 and np.allclose(mean, 2.0) and np.allclose(std, 0.0)
  _, _, std = curves.band(groups["loss.name=hinge"], "d_loss", 1)
  d_loss_SK = np.stack([s.curves["d_loss"][1] for s in groups["loss.name=hinge"]])
  np.testing.assert_allclose(std, np.sqrt(np.sum((d_loss_SK - d_loss_SK.mean(0)) ** 2, 0) / 2))  # sample std


def test_runs_from_before_a_new_config_key_group_with_newer_ones(tmp_path):
  old, new = fake_run(tmp_path / "old", 0), fake_run(tmp_path / "new", 1)
  with open(os.path.join(old, "config.json")) as f:
    config = json.load(f)
  del config["train"]["compute_dtype"]  # written before the key existed
  with open(os.path.join(old, "config.json"), "w") as f:
    json.dump(config, f)
  groups = curves.group_by_seed([s for r in (old, new) for s in curves.load_series(r)])
  assert {k: len(v) for k, v in groups.items()} == {"all": 2}


def test_the_default_d_norm_named_or_not_is_one_group(tmp_path):
  runs = [fake_run(tmp_path / "a", 0), fake_run(tmp_path / "b", 1, d_norm="batch")]
  runs += [fake_run(tmp_path / "c", 0, d_norm="layer"), fake_run(tmp_path / "d", 0, model="resnet")]
  groups = curves.group_by_seed([s for r in runs for s in curves.load_series(r)])
  assert {k: len(v) for k, v in groups.items()} == {
    "model.d_norm=batch,model.name=dcgan": 2,
    "model.d_norm=layer,model.name=dcgan": 1,
    "model.d_norm=spectral,model.name=resnet": 1,
  }


def test_population_members_are_series_of_one_group(tmp_path):
  run = fake_run(tmp_path / "pop", 0, member_seeds=(0, 1, 2))
  series = curves.load_series(run)
  assert [s.label for s in series] == ["pop[0]", "pop[1]", "pop[2]"]
  assert list(curves.group_by_seed(series)) == ["all"]


def test_sweep_globs_skip_files_and_unstarted_points(tmp_path, capsys):
  """`gan-jax curves runs/sweep/*` matches manifest.json, results.* and failed points' empty folders too."""
  for seed in range(2):
    fake_run(tmp_path / f"r{seed}", seed)
  (tmp_path / "manifest.json").write_text("{}")
  os.makedirs(tmp_path / "failed_early")
  paths = sorted(glob.glob(str(tmp_path / "*")))
  assert main(["curves", *paths, "--out", str(tmp_path / "c.png")]) == 0
  captured = capsys.readouterr()
  assert "manifest.json': not a run workdir" in captured.err and "failed_early': not a run workdir" in captured.err
  with pytest.raises(FileNotFoundError, match="no run among .*failed_early"):
    curves.run_dirs([str(tmp_path / "failed_early"), str(tmp_path / "manifest.json")])


def test_population_members_carry_their_own_seeds(tmp_path):
  """Members of a population without population.seed count up from `seed`, as population.member_configs does."""
  import json

  from gan_jax import config as config_lib
  from gan_jax.eval import curves as curves_lib
  from gan_jax.train.population import member_configs

  c = config_lib.base_config()
  c.data.name, c.seed, c.population.size = "ring8", 5, 3
  (tmp_path / "config.json").write_text(json.dumps(config_lib.run_config_json(c)))
  rows = [{"step": 1, "member": m, "d_loss": 1.0 + m} for m in range(3)]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  seeds = [s.config["seed"] for s in curves_lib.load_series(str(tmp_path))]
  assert seeds == [m.seed for m in member_configs(c)] == [5, 6, 7]
