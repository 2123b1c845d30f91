"""A population of K members equals K separate runs with the same seeds and hyperparameters."""

import os

import numpy as np
import pytest
from helpers import ring_config, snapshot

from gan_jax import parallel
from gan_jax.cli import main
from gan_jax.records import read_jsonl
from gan_jax.train import loop
from gan_jax.train.population import member_configs

MEMBERS = {"seed": [0, 5, 7], "optim.d.lr": [1e-3, 2e-4, 5e-4], "train.ema_decay": [0.0, 0.5, 0.9]}
POPULATION = {
  "population.size": 3,
  "population.seed": (0, 5, 7),
  "population.d_lr": (1e-3, 2e-4, 5e-4),
  "population.ema_decay": (0.0, 0.5, 0.9),
}


@pytest.mark.slow  # test-all; the fast tier's twin: test_small_split_population_matches_separate_runs
def test_population_matches_separate_runs(tmp_path):
  evaluated = {"train.num_devices": 2, "eval.final": True, "eval.num_samples": 500}
  pop = ring_config(**POPULATION, **evaluated)
  loop.train_and_evaluate(pop, str(tmp_path / "pop"))
  rows = read_jsonl(os.path.join(tmp_path, "pop", "metrics.jsonl"))
  assert sorted({r["member"] for r in rows}) == [0, 1, 2]
  for m in range(3):
    alone = ring_config(**{k: v[m] for k, v in MEMBERS.items()}, **evaluated)
    loop.train_and_evaluate(alone, str(tmp_path / f"m{m}"))
    # Training metrics, and the final evaluation (drawn from each member's own seed).
    for filename in ("metrics.jsonl", "eval.jsonl"):
      expected = read_jsonl(os.path.join(tmp_path, f"m{m}", filename))
      got = [
        {k: v for k, v in r.items() if k != "member"}
        for r in read_jsonl(os.path.join(tmp_path, "pop", filename))
        if r["member"] == m
      ]
      assert [r["step"] for r in got] == [r["step"] for r in expected] and got
      for a, b in zip(got, expected, strict=True):
        for k, v in b.items():
          if isinstance(v, float | int):
            np.testing.assert_allclose(a[k], v, rtol=1e-5, atol=1e-6, err_msg=f"member {m} {filename} {k}")
  # The members differ from each other: the population is not one run copied.
  assert len({r["d_loss"] for r in rows if r["step"] == 6}) == 3
  # sample picks a member; its EMA decay differs, so member 0 (decay 0) equals its raw generator.
  out0, raw0 = str(tmp_path / "m0.npz"), str(tmp_path / "raw0.npz")
  assert main(["sample", "--workdir", str(tmp_path / "pop"), "--num", "8", "--out", out0]) == 0
  assert main(["sample", "--workdir", str(tmp_path / "pop"), "--num", "8", "--out", raw0, "--no-ema"]) == 0
  np.testing.assert_array_equal(np.load(out0)["points"], np.load(raw0)["points"])


def member_rows(workdir) -> dict[int, list[dict]]:
  rows = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  return {m: [r for r in rows if r["member"] == m] for m in sorted({r["member"] for r in rows})}


@pytest.mark.slow  # test-all; the fast tier's twin: test_small_split_population_matches_separate_runs
def test_members_split_over_devices_train_as_on_one(tmp_path):
  """Members split over the members axis (auto: 4 of 4 devices; 2 x 2) give each member's run unchanged,
  a run resumes across layouts (a checkpoint of a 2 x 2 split, resumed with every member on every device),
  and `sample` reads one member of a split checkpoint."""
  layout = {
    "population.size": 4,
    "population.seed": (0, 5, 7, 9),
    "population.d_lr": (1e-3, 2e-4, 5e-4, 1e-3),
    "train.num_devices": 4,
  }
  pop = lambda **o: ring_config(**layout, **o)
  assert dict(parallel.make_mesh(4, 4, 0).shape) == {"members": 4, "data": 1}
  assert dict(parallel.make_mesh(4, 4, 2).shape) == {"members": 2, "data": 2}
  loop.train_and_evaluate(pop(**{"train.member_devices": 1}), str(tmp_path / "whole"))
  loop.train_and_evaluate(pop(), str(tmp_path / "auto"))
  loop.train_and_evaluate(pop(**{"train.member_devices": 2, "train.steps": 3}), str(tmp_path / "moved"))
  loop.train_and_evaluate(pop(**{"train.member_devices": 1}), str(tmp_path / "moved"))
  expected = member_rows(tmp_path / "whole")
  assert len(expected) == 4 and all(len(rows) == 6 for rows in expected.values())
  for run in ("auto", "moved"):
    for m, rows in member_rows(tmp_path / run).items():
      for a, b in zip(rows, expected[m], strict=True):
        for k in ("d_loss", "g_loss", "d_real", "d_fake"):
          np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=f"{run} member {m} step {a['step']} {k}")
  # The split run's checkpoint gives member 3 to `sample`, which reads it on this process's devices.
  samples = {}
  for run, member in (("whole", 3), ("auto", 3), ("auto", 0)):
    out = str(tmp_path / f"{run}_{member}.npz")
    assert main(["sample", "--workdir", str(tmp_path / run), "--num", "8", "--out", out, "--member", str(member)]) == 0
    samples[run, member] = np.load(out)["points"]
  np.testing.assert_allclose(samples["auto", 3], samples["whole", 3], rtol=1e-4, atol=1e-5)
  assert not np.allclose(samples["auto", 3], samples["auto", 0], rtol=1e-2)  # --member picked member 3


def test_small_split_population_matches_separate_runs(tmp_path):
  """Two members split over two devices (one each) train as their separate one-device runs."""
  pop = {"population.size": 2, "population.seed": (0, 5), "population.d_lr": (1e-3, 2e-4), "train.steps": 3}
  loop.train_and_evaluate(ring_config(**pop, **{"train.num_devices": 2}), str(tmp_path / "pop"))
  got = member_rows(tmp_path / "pop")
  for m, (seed, lr) in enumerate(((0, 1e-3), (5, 2e-4))):
    alone = ring_config(**{"seed": seed, "optim.d.lr": lr, "train.steps": 3, "train.num_devices": 1})
    loop.train_and_evaluate(alone, str(tmp_path / f"m{m}"))
    expected = read_jsonl(os.path.join(tmp_path, f"m{m}", "metrics.jsonl"))
    assert [r["step"] for r in got[m]] == [r["step"] for r in expected] == [1, 2, 3]
    for a, b in zip(got[m], expected, strict=True):
      for k in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=f"member {m} step {a['step']} {k}")


@pytest.mark.parametrize("split, message", [(3, "train.member_devices=3: expected 0"), (-1, "member_devices=-1")])
def test_bad_member_split_is_one_clear_error(split, message):
  with pytest.raises(ValueError, match=message):
    parallel.make_mesh(4, 4, split)


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"population.size": 0}, "population.size=0: expected a positive number"),
    ({"population.size": 2, "population.seed": "(1,)"}, r"population.seed=\(1,\): expected 2 values"),
    ({"population.size": 2, "population.g_lr": "[1e-3, 2e-3, 3e-3]"}, r"population.g_lr=\(0.001, 0.002, 0.003\)"),
  ],
)
def test_bad_population_is_one_clear_error(overrides, message):
  with pytest.raises(ValueError, match=message):
    member_configs(ring_config(**overrides))
  with pytest.raises(KeyError, match="unknown config key 'population.g_width'"):
    ring_config(**{"population.g_width": "(1, 2)"})


def test_default_member_seeds_count_up_and_members_are_separate_runs():
  members = member_configs(ring_config(**{"population.size": 3, "seed": 4, "population.d_lr": "(1e-3, 2e-3, 3e-3)"}))
  assert [m.seed for m in members] == [4, 5, 6] and [m.optim.d.lr for m in members] == [1e-3, 2e-3, 3e-3]
  alone = ring_config(**{"seed": 5, "optim.d.lr": 2e-3})
  assert members[1].to_dict() == alone.to_dict()


def test_population_resumes_with_new_learning_rates(tmp_path, capsys):
  """Only population.size fixes the state's shapes: a resumed population may change its members' rates."""
  pop = {"population.size": 2, "train.num_devices": 1, "train.steps": 3}
  loop.train_and_evaluate(ring_config(**pop), str(tmp_path))
  faster = ring_config(**{**pop, "train.steps": 6, "population.g_lr": (1e-3, 2e-3)})
  before = snapshot(tmp_path)
  with pytest.raises(ValueError, match=r"population.g_lr \(\[\] -> \[0.001, 0.002\]\).*--allow-config-change"):
    loop.train_and_evaluate(faster, str(tmp_path))  # new rates redefine the steps to come, so they are asked for
  assert snapshot(tmp_path) == before
  state = loop.train_and_evaluate(faster, str(tmp_path), allow_config_change=True)
  assert "Resuming" in capsys.readouterr().err and int(state.step[0]) == 6
  np.testing.assert_allclose(np.asarray(state.hparams["g_lr"]), [1e-3, 2e-3])
  with pytest.raises(ValueError, match=r"population.size: 2 -> 3"):
    loop.train_and_evaluate(ring_config(**{**pop, "population.size": 3}), str(tmp_path))
