"""DIR/history.jsonl: every start recorded; changes that redefine trained steps refused unless asked for; an
extended run with constant rates equals the uninterrupted one, one with a decaying schedule is refused."""

import pytest
from helpers import losses_of, ring_config, snapshot

import gan_jax
from gan_jax import cli
from gan_jax.train import history, loop


def test_every_start_is_recorded_with_its_changes(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(ring_config(**{"train.steps": 3}), workdir)
  loop.train_and_evaluate(ring_config(**{"train.steps": 6, "eval.every": 2}), workdir)
  assert "Changed since the last start: eval.every (0 -> 2), train.steps (3 -> 6)" in capsys.readouterr().err
  hinge = ring_config(**{"train.steps": 9, "eval.every": 2, "loss.name": "hinge"})
  before = snapshot(workdir)
  with pytest.raises(ValueError, match=r"loss.name \('non_saturating' -> 'hinge'\); expected the recorded"):
    loop.train_and_evaluate(hinge, workdir)
  assert snapshot(workdir) == before
  loop.train_and_evaluate(hinge, workdir, allow_config_change=True)
  entries = history.read(workdir)
  assert [e["start_step"] for e in entries] == [0, 3, 6]
  assert [e["changed"] for e in entries] == [
    {},
    {"eval.every": [0, 2], "train.steps": [3, 6]},
    {"loss.name": ["non_saturating", "hinge"], "train.steps": [6, 9]},
  ]
  assert all(e["argv"] and e["provenance"]["backend"] == "cpu" for e in entries)
  assert gan_jax.load_run(workdir).history == entries
  capsys.readouterr()
  assert cli.main(["curves", workdir, "--out", str(tmp_path / "c.png")]) == 0
  out = capsys.readouterr().out
  assert f"{workdir}: config changed on resume at step 6: loss.name ('non_saturating' -> 'hinge')" in out


@pytest.mark.slow  # test-all; the fast tier's resumes are bitwise (test_faults.py::test_stop_signal_...)
def test_extending_constant_rates_equals_the_uninterrupted_run(tmp_path):
  whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
  loop.train_and_evaluate(ring_config(**{"eval.final": False}), whole)
  loop.train_and_evaluate(ring_config(**{"train.steps": 3, "eval.final": False}), split)
  loop.train_and_evaluate(ring_config(**{"eval.final": False}), split)
  assert losses_of(split) == losses_of(whole)


@pytest.mark.parametrize("schedule", ["cosine", pytest.param("linear", marks=pytest.mark.slow)])
def test_extending_a_decaying_schedule_is_refused(tmp_path, schedule):
  """The horizon of a decaying rate is train.steps: a longer run would re-decay from a rate the trained steps
  never saw, so the extension is a redefinition, asked for explicitly or not made."""
  workdir = str(tmp_path / "run")
  decaying = {"optim.g.schedule": schedule, "eval.final": False}
  loop.train_and_evaluate(ring_config(**{**decaying, "train.steps": 3}), workdir)
  before = snapshot(workdir)
  with pytest.raises(ValueError, match=r"train.steps \(3 -> 6\) \(a decaying schedule's horizon\)"):
    loop.train_and_evaluate(ring_config(**decaying), workdir)
  assert snapshot(workdir) == before
  loop.train_and_evaluate(ring_config(**decaying), workdir, allow_config_change=True)
  assert history.read(workdir)[-1]["changed"] == {"train.steps": [3, 6]}


def test_bookkeeping_keys():
  constant = {"optim": {"g": {"schedule": "constant"}, "d": {"schedule": "constant"}}}
  cosine = {"optim": {"g": {"schedule": "cosine"}, "d": {"schedule": "constant"}}}
  for key in ("eval.every", "checkpoint.keep", "train.log_every", "log.wandb", "train.num_devices"):
    assert history.is_bookkeeping(key, constant)
  for key in ("loss.name", "optim.g.lr", "seed", "train.d_steps", "penalty.weight", "train.batch_size"):
    assert not history.is_bookkeeping(key, constant)
  assert history.is_bookkeeping("train.steps", constant) and not history.is_bookkeeping("train.steps", cosine)
