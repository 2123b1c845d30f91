"""Reference checks: intervals against scipy, false alarms at the stated rate, power, and `curves` exit status."""

import json
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats
from test_curves import fake_run

from gan_jax.cli import main
from gan_jax.eval import curves, reference, stats


def test_welch_interval_is_scipy_s():
  rng = np.random.default_rng(0)
  x, y = rng.normal(0.3, 1.0, 7), rng.normal(0.0, 2.0, 12)
  got = stats.compare(x, y, level=0.9)
  want = scipy_stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.9)
  np.testing.assert_allclose([got.low, got.high], [want.low, want.high], rtol=1e-10)
  assert got.difference == pytest.approx(x.mean() - y.mean()) and (got.n, got.m) == (7, 12)


def test_one_run_gets_the_prediction_interval_of_a_fresh_seed():
  y = np.array([1.0, 2.0, 3.0, 4.0])
  got = stats.compare([10.0], y, level=0.95)
  half = scipy_stats.t.ppf(0.975, 3) * np.std(y, ddof=1) * np.sqrt(1 + 1 / 4)
  np.testing.assert_allclose([got.low, got.high], [10.0 - 2.5 - half, 10.0 - 2.5 + half])
  assert not got.ok and stats.compare([3.0], y, level=0.95).ok


def test_false_alarms_and_power_match_their_design():
  """Same distribution: the interval misses 0 at rate 1 - level; a shift of `detectable` is found ~80% of the time."""
  rng = np.random.default_rng(1)
  level, trials = 0.9, 3000
  for n in (1, 10):
    misses = sum(not stats.compare(rng.normal(size=n), rng.normal(size=10), level).ok for _ in range(trials))
    assert abs(misses / trials - (1 - level)) < 4 * np.sqrt(0.1 * 0.9 / trials)  # 4 standard errors
  shift = stats.compare(np.zeros(10) + rng.normal(size=10), rng.normal(size=10), level).detectable
  found = np.mean([not stats.compare(rng.normal(shift, 1, 10), rng.normal(size=10), level).ok for _ in range(trials)])
  assert 0.7 < found < 0.9  # the detectable shift is computed from one sample's spread, so only about 0.8


def test_the_floor_keeps_a_step_metric_from_an_empty_interval():
  assert not stats.compare([7.0], [8.0] * 10, 0.99).ok  # no spread: any other value fails
  assert stats.compare([7.0], [8.0] * 10, 0.99, floor=0.5).ok  # modes move in steps of 1
  with pytest.raises(ValueError, match="at least 1 run and 2 reference seeds"):
    stats.compare([1.0], [2.0], 0.9)


def runs(tmp_path, name, seeds, **kwargs):
  return [s for seed in seeds for s in curves.load_series(fake_run(tmp_path / f"{name}{seed}", seed, **kwargs))]


def test_export_holds_every_seed_recipe_and_code(tmp_path):
  path = str(tmp_path / "ref.json")
  ref = reference.export(runs(tmp_path, "r", range(5)), path, window=3)
  assert reference.load(path) == json.loads(json.dumps(ref))
  assert ref["seeds"] == [0, 1, 2, 3, 4] and ref["recipe"]["loss.name"] == "hinge" and "seed" not in ref["recipe"]
  assert ref["code"]["layout"] == 2 and "gan_jax" in ref["code"]
  assert np.shape(ref["curves"]["d_loss"]["per_seed"]) == (5, 40)
  with pytest.raises(ValueError, match="--export takes the seeds of one recipe"):
    reference.export(runs(tmp_path, "h", [0]) + runs(tmp_path, "m", [1], loss="minimax"), path, 3)
  with pytest.raises(ValueError, match="at least 2 seeds"):
    reference.export(runs(tmp_path, "one", [0]), path, 3)


def test_verdicts_of_groups_and_single_runs(tmp_path):
  ref = reference.export(runs(tmp_path, "r", range(10)), str(tmp_path / "ref.json"), window=3)
  same = reference.check(runs(tmp_path, "same", range(20, 30)), ref)
  assert same["ok"] and same["comparisons"] == 4 and same["level"] == pytest.approx(1 - 0.05 / 4)
  assert same["curves"]["d_loss"]["late"]["n"] == 10 and same["curves"]["d_loss"]["steps"] == [10, 400]
  shifted = reference.check(runs(tmp_path, "off", range(30, 40), shift=0.05), ref)
  assert not shifted["ok"] and not shifted["curves"]["d_loss"]["late"]["ok"]
  one = reference.check(runs(tmp_path, "one", [41]), ref)
  assert one["ok"] and one["curves"]["d_loss"]["late"]["n"] == 1
  other = runs(tmp_path, "mm", range(50, 55), loss="minimax")
  names, notes = reference.comparable_curves(other, ref)
  assert names == [] and "objective differs (loss.name='minimax' (reference 'hinge'))" in notes[0]
  with pytest.raises(ValueError, match="nothing to check"):
    reference.check(other, ref)  # these runs log loss curves only


def test_estimator_noise_is_checked_only_when_asked(tmp_path):
  seeds = {}
  for seed in range(4):
    run = fake_run(tmp_path / f"e{seed}", seed)
    with open(os.path.join(run, "eval.jsonl"), "w") as f:
      f.write(json.dumps({"step": 400, "fid": 0.5 + 2.0 * seed, "kid_std": 0.01 * seed}) + "\n")
    seeds[seed] = run
  ref = reference.export([s for r in seeds.values() for s in curves.load_series(r)], str(tmp_path / "r.json"), 1)
  group = curves.load_series(seeds[0])
  assert set(reference.check(group, ref)["curves"]) == {"d_loss", "g_loss", "fid"}
  assert set(reference.check(group, ref, asked=["kid_std"])["curves"]) == {"kid_std"}
  _, _, low, _ = reference.band(ref["curves"]["fid"], "fid")
  assert low.min() >= 0.0  # clipped to FID's range


def test_curves_cli_exit_status(tmp_path, capsys):
  refs = [fake_run(tmp_path / f"r{s}", s) for s in range(8)]
  ref = str(tmp_path / "ref.json")
  assert main(["curves", "--export", *refs, "--out", ref]) == 0
  fresh = [fake_run(tmp_path / f"n{s}", s) for s in range(20, 26)]
  assert main(["curves", *fresh, "--reference", ref, "--out", str(tmp_path / "ok.png")]) == 0
  assert os.path.exists(tmp_path / "ok.png") and os.path.exists(tmp_path / "ok.svg")
  assert "reproduces the reference (4 comparisons" in capsys.readouterr().out
  off = [fake_run(tmp_path / f"o{s}", s, shift=0.5) for s in range(30, 33)]
  assert main(["curves", *off, "--reference", ref, "--out", str(tmp_path / "bad.png")]) == 1
  out = capsys.readouterr().out
  assert "d_loss (late half of steps 10-400): n=3 m=8" in out and "does NOT reproduce" in out
  with open(ref) as f:
    old = {k: v for k, v in json.load(f).items() if k != "format"}
  with open(tmp_path / "old.json", "w") as f:
    json.dump(old, f)
  assert main(["curves", *fresh, "--reference", str(tmp_path / "old.json"), "--out", str(tmp_path / "x.png")]) == 2
  assert "is of format 1; expected format 2" in capsys.readouterr().err
  assert main(["curves", *fresh, "--reference", ref, "--alpha", "1.5", "--out", str(tmp_path / "x.png")]) == 2
  assert "--alpha 1.5: expected a false-alarm rate in (0, 1)" in capsys.readouterr().err


REFERENCES = sorted(
  p
  for p in os.listdir(os.path.join(os.path.dirname(__file__), "..", "experiments", "references"))
  if p.endswith("json")
)


@pytest.mark.parametrize("name", REFERENCES)
def test_shipped_references_hold_their_recipe_and_seeds(name):
  ref = reference.load(os.path.join(os.path.dirname(__file__), "..", "experiments", "references", name))
  assert len(ref["seeds"]) >= (5 if "dcgan" in name else 10) and ref["recipe"]["loss.name"]
  for curve in ref["curves"].values():
    assert np.shape(curve["per_seed"]) == (len(ref["seeds"]), len(curve["step"]))
    assert np.all(np.diff(curve["step"]) > 0)
