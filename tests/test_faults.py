"""Faults a run survives without losing anything: a death between steps' duties, a second process, stop
signals, divergence, damaged checkpoints, a failed resume. Each compares against an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import losses_of, ring_config

from gan_jax import cli, files, losses
from gan_jax import config as config_lib
from gan_jax.records import read_jsonl
from gan_jax.train import checkpoint, guard, loop
from gan_jax.train import workdir as workdir_lib
from gan_jax.train.evaluator import Evaluator
from gan_jax.train.writers import MetricsWriter


def snapshot(directory) -> dict[str, bytes]:
  """Every file under `directory` by relative path, with its bytes."""
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = f.read()
  return out


def steps_in(workdir, folder="checkpoints"):
  return checkpoint.saved_steps(str(workdir), folder)


def train_cli(tmp_path, workdir, capsys, *flags, **overrides) -> tuple[int, list[str]]:
  """`gan-jax train` of a ring_config experiment written to tmp_path, in this process: (status, stderr lines
  that are not progress bars)."""
  exp = tmp_path / "exp.py"
  if not exp.exists():
    exp.write_text("from helpers import ring_config\n\ndef get_config(arg=None):\n  return ring_config()\n")
  capsys.readouterr()
  args = ["train", "--config", str(exp), "--workdir", str(workdir), *flags]
  status = cli.main(args + [f"--config.{k}={v}" for k, v in overrides.items()])
  err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "it/s" not in line]
  return status, err


def errors_of(lines):
  return [line for line in lines if line.startswith("gan-jax")]


# ------------------------------------------------------------------------------- what a checkpoint owes


def test_a_step_evaluates_before_its_checkpoint(tmp_path, monkeypatch):
  """A run dying in its final evaluation leaves the final step unsaved; the rerun trains and scores it."""
  config = lambda: ring_config(**{"eval.num_samples": 256})
  loop.train_and_evaluate(config(), str(tmp_path / "full"))
  real_run = Evaluator.run

  def dies_in_final_eval(self, state, step, final=False):
    raise KeyboardInterrupt

  monkeypatch.setattr(Evaluator, "run", dies_in_final_eval)
  with pytest.raises(KeyboardInterrupt):
    loop.train_and_evaluate(config(), str(tmp_path / "killed"))
  assert steps_in(tmp_path / "killed") == [3]  # step 6 owes its evaluation, so it has no checkpoint
  monkeypatch.setattr(Evaluator, "run", real_run)
  loop.train_and_evaluate(config(), str(tmp_path / "killed"))
  for name in ("metrics.jsonl", "eval.jsonl"):
    assert read_jsonl(tmp_path / "killed" / name) == read_jsonl(tmp_path / "full" / name)
  assert steps_in(tmp_path / "killed", "checkpoints_best") == steps_in(tmp_path / "full", "checkpoints_best") == [6]


def test_resume_does_what_the_checkpointed_step_still_owes(tmp_path):
  """A checkpoint without its evaluation (eval.final off then, on now): the rerun evaluates, keeps the best."""
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(ring_config(**{"eval.final": False}), workdir)
  assert not os.path.exists(os.path.join(workdir, "eval.jsonl"))
  loop.train_and_evaluate(ring_config(**{"eval.num_samples": 256}), workdir)
  assert [r["step"] for r in read_jsonl(os.path.join(workdir, "eval.jsonl"))] == [6]
  assert steps_in(workdir, "checkpoints_best") == [6]
  loop.train_and_evaluate(ring_config(**{"eval.num_samples": 256}), workdir)  # owes nothing now
  assert [r["step"] for r in read_jsonl(os.path.join(workdir, "eval.jsonl"))] == [6]


def test_resume_after_eval_jsonl_was_deleted(tmp_path):
  """Whatever log files a user removed, a resume works: the rescored step keeps its best checkpoint."""
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(ring_config(**{"eval.num_samples": 256}), workdir)
  assert steps_in(workdir, "checkpoints_best") == [6]
  os.remove(os.path.join(workdir, "eval.jsonl"))
  loop.train_and_evaluate(ring_config(**{"eval.num_samples": 256}), workdir)
  assert [r["step"] for r in read_jsonl(os.path.join(workdir, "eval.jsonl"))] == [6]
  assert steps_in(workdir, "checkpoints_best") == [6]


# ------------------------------------------------------------------------------- one process per workdir


def test_a_second_process_is_refused_in_one_line(tmp_path, capsys):
  workdir = tmp_path / "run"
  status, _ = train_cli(tmp_path, workdir, capsys)
  assert status == 0
  before = snapshot(workdir)
  holder = subprocess.Popen(
    [sys.executable, "-c", "import sys, time; from gan_jax.train.workdir import WorkdirLock\n"
     f"WorkdirLock({str(workdir)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
    stdout=subprocess.PIPE, text=True,
  )  # fmt: skip
  try:
    assert holder.stdout.readline().strip() == "held"
    status, err = train_cli(tmp_path, workdir, capsys, **{"train.steps": 9})
    assert status == 2 and len(err) == 1 and f"in use by pid {holder.pid} on" in err[0], err
    assert snapshot(workdir) == {
      **before,
      ".lock": f"pid {holder.pid} on ".encode() + before[".lock"].split(b" on ")[1],
    }
  finally:
    holder.kill()  # kill -9: the kernel drops the lock with the process
    holder.wait()
  status, _ = train_cli(tmp_path, workdir, capsys, **{"train.steps": 9})
  assert status == 0 and steps_in(workdir)[-1] == 9


def test_refused_run_leaves_no_lock_file_behind(tmp_path):
  workdir = str(tmp_path / "run")
  lock = workdir_lib.WorkdirLock(workdir)
  os.makedirs(workdir)
  lock.acquire()
  assert workdir_lib.holder(workdir) == f"pid {os.getpid()} on {os.uname().nodename}"
  lock.release(undo=True)
  assert os.listdir(workdir) == [] and workdir_lib.holder(workdir) is None


# ------------------------------------------------------------------------------- stop signals


# SIGINT in test-all only: the same handler and path as SIGTERM (fast tier budget).
@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_stop_signal_checkpoints_then_resumes_bitwise(signum, tmp_path, monkeypatch, capsys):
  status, _ = train_cli(tmp_path, tmp_path / "full", capsys, **{"train.steps": 8})
  assert status == 0
  real_write = MetricsWriter.write

  def signal_at_step_four(self, step, scalars, member=None):
    real_write(self, step, scalars, member)
    if step == 4:
      os.kill(os.getpid(), signum)

  monkeypatch.setattr(MetricsWriter, "write", signal_at_step_four)
  status, err = train_cli(tmp_path, tmp_path / "run", capsys, **{"train.steps": 8})
  assert status == 128 + signum
  assert errors_of(err) == [
    f"gan-jax train: stopped by {signal.Signals(signum).name}: checkpoint saved at step 4; the same command resumes "
    f"{str(tmp_path / 'run')!r}"
  ]
  assert steps_in(tmp_path / "run") == [3, 4]  # 4 is off the checkpoint.every=3 schedule: saved for the stop
  assert signal.getsignal(signum) is not None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
  monkeypatch.setattr(MetricsWriter, "write", real_write)
  status, err = train_cli(tmp_path, tmp_path / "run", capsys, **{"train.steps": 8})
  assert status == 0 and f"Resuming {tmp_path / 'run'} from its checkpoint at step 4." in err
  assert losses_of(tmp_path / "run") == losses_of(tmp_path / "full")


# ------------------------------------------------------------------------------- divergence


def nan_loss(real_logits, fake_logits):
  """Finite on losses.check's probe batch of 4, NaN on the training batch (16): a run that diverges."""
  value = jnp.mean(real_logits - fake_logits) * (0.0 if real_logits.shape[0] == 4 else jnp.nan)
  return value, value


def test_divergence_stops_and_keeps_the_finite_checkpoint(tmp_path, monkeypatch, capsys):
  workdir = tmp_path / "run"
  assert train_cli(tmp_path, workdir, capsys, **{"train.steps": 3})[0] == 0
  monkeypatch.setitem(losses.LOSSES._entries, "nan_loss", nan_loss)
  status, err = train_cli(
    tmp_path, workdir, capsys, "--allow-config-change", **{"train.steps": 9, "loss.name": "nan_loss"}
  )
  assert status == 1, err
  assert errors_of(err) == [
    "gan-jax train: diverged: d_loss is nan at step 4 (member 0); its newest checkpoint, step 3, is finite. "
    "Expected finite losses: lower the learning rates, or add a penalty (train.check_finite=False trains on "
    "regardless)"
  ]
  assert steps_in(workdir) == [3]
  # Opting out trains through to the end, and an evaluation of NaN samples is a failed run, not bad input.
  opt_out = {"train.steps": 6, "loss.name": "nan_loss", "train.check_finite": False}
  status, _ = train_cli(tmp_path, workdir, capsys, "--allow-config-change", **opt_out, **{"eval.final": False})
  assert status == 0 and steps_in(workdir) == [3, 6]
  status, err = train_cli(tmp_path, workdir, capsys, **{**opt_out, "train.steps": 9})
  assert status == 1 and errors_of(err)[0].startswith("gan-jax train: diverged: member 0's generator holds NaN")


def test_state_check_counts_each_member():
  state = {"a": jnp.ones((3, 4)), "b": jnp.ones((3,), jnp.int32), "c": jnp.ones((3, 2, 2)).at[1, 0, 1].set(jnp.inf)}
  assert guard.finite_members(state).tolist() == [True, False, True]
  assert guard.first_non_finite({"d_loss": np.array([0.1, np.nan])}) == (
    "d_loss",
    1,
    pytest.approx(np.nan, nan_ok=True),
  )


# ------------------------------------------------------------------------------- damaged checkpoints


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path, capsys):
  full, run = tmp_path / "full", tmp_path / "run"
  assert train_cli(tmp_path, full, capsys, **{"train.steps": 9})[0] == 0
  assert train_cli(tmp_path, run, capsys, **{"train.steps": 6})[0] == 0
  for root, _, names in os.walk(run / "checkpoints" / "6"):
    for name in names:
      if os.path.basename(root) == "d":  # the array data files
        open(os.path.join(root, name), "wb").close()
  stale = run / "checkpoints" / "7.orbax-checkpoint-tmp-1234"
  os.makedirs(stale / "default")
  (run / "metrics.jsonl.tmp-999").write_text('{"step": 1')  # a log being cut when its process was killed
  status, err = train_cli(tmp_path, run, capsys, **{"train.steps": 9})
  assert status == 0, err
  warnings = [line for line in err if line.startswith("warning")]
  assert len(warnings) == 1 and warnings[0].startswith("warning: checkpoint 6 does not restore (")
  assert warnings[0].endswith(f"moved to {run / 'checkpoints_unreadable' / 'checkpoints_6'}")
  assert f"Resuming {run} from its checkpoint at step 3." in err
  assert not stale.exists() and not (run / "metrics.jsonl.tmp-999").exists() and steps_in(run) == [3, 6, 9]
  assert losses_of(run) == losses_of(full)


def test_checkpoint_folders_hold_what_keep_says_after_a_crash(tmp_path):
  workdir = str(tmp_path / "run")
  config = lambda **kw: ring_config(**{"eval.every": 1, "eval.num_samples": 256, "checkpoint.every": 1, **kw})
  loop.train_and_evaluate(config(**{"checkpoint.keep": 5, "checkpoint.keep_best": 5}), workdir)
  assert len(steps_in(workdir)) == 5 and len(steps_in(workdir, "checkpoints_best")) == 5
  # A process killed between a save and orbax's clean-up leaves more than keep; a resume trims to keep.
  loop.train_and_evaluate(config(**{"train.steps": 7, "checkpoint.keep": 2, "checkpoint.keep_best": 2}), workdir)
  assert steps_in(workdir) == [6, 7]
  scores = {}
  for r in read_jsonl(os.path.join(workdir, "eval.jsonl")):
    scores[r["step"]] = r["modes"]
  best = sorted(scores, key=lambda s: (-scores[s], -s))
  assert len(steps_in(workdir, "checkpoints_best")) == 2
  assert scores[steps_in(workdir, "checkpoints_best")[-1]] == scores[best[0]]


def test_a_failed_resume_writes_nothing(tmp_path, capsys):
  """config.json lost, another architecture given: refused in one line, the workdir unchanged; the right
  config then resumes."""
  workdir = tmp_path / "run"
  assert train_cli(tmp_path, workdir, capsys)[0] == 0
  os.remove(workdir / "config.json")
  os.makedirs(workdir / "checkpoints" / "9.orbax-checkpoint-tmp-7" / "default")  # stays: the resume is refused
  before = snapshot(workdir)
  status, err = train_cli(tmp_path, workdir, capsys, **{"train.steps": 9, "model.g_width": 32})
  assert status == 2 and len(err) == 1
  assert err[0].startswith("gan-jax train: error: checkpoint 6 in ") and "holds a state of other shapes" in err[0]
  assert snapshot(workdir) == before
  status, err = train_cli(tmp_path, workdir, capsys, **{"train.steps": 9})
  assert status == 0 and f"Resuming {workdir} from its checkpoint at step 6." in err
  written = json.loads((workdir / "config.json").read_text())
  assert written["train"]["steps"] == 9 and written["layout_version"] == config_lib.LAYOUT_VERSION
  assert written["data_info"]["shape"] == [2] and "provenance" in written


def test_config_json_is_written_atomically(tmp_path, monkeypatch):
  path = tmp_path / "config.json"
  path.write_text('{"old": true}')

  def fails(*args, **kwargs):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, "fsync", fails)
  with pytest.raises(OSError):
    files.write_json_atomic(str(path), {"new": True})
  assert path.read_text() == '{"old": true}' and os.listdir(tmp_path) == ["config.json"]  # no temporary left


# ------------------------------------------------------------------------------- full disk


@pytest.mark.slow  # fast twin: test_config_json_is_written_atomically (an ENOSPC write keeps the old file)
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_stops_in_one_line_and_resumes(tmp_path):
  disk = tmp_path / "disk"
  disk.mkdir()
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=False).returncode:
    pytest.skip("cannot mount a tmpfs here")
  overrides = ["--config.train.steps=200", "--config.checkpoint.every=20", "--config.checkpoint.keep=100"]
  train = lambda workdir: subprocess.run(
    [sys.executable, "-m", "gan_jax", "train", "--config", "experiments/mlp2d_baseline.py", "--workdir", str(workdir),
     *overrides, "--config.eval.final=False"],
    capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  try:
    result = train(disk / "run")
    err = [line for line in result.stderr.splitlines() if line.strip() and "it/s" not in line]
    assert result.returncode == 1 and len(err) == 1, result.stderr[-3000:]
    assert err[0].startswith("gan-jax train: error: no space left on device")
    kept = steps_in(disk / "run")
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # space freed
    assert train(disk / "run").returncode == 0
    assert train(tmp_path / "full").returncode == 0
    assert losses_of(disk / "run") == losses_of(tmp_path / "full")
    assert kept and steps_in(disk / "run") == steps_in(tmp_path / "full")
  finally:
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_recorded_config_json_trains_the_same_run(tmp_path, capsys):
  """`--config DIR/config.json` re-creates a run from its record: the same losses, step for step."""
  status, _ = train_cli(tmp_path, tmp_path / "a", capsys)
  assert status == 0
  capsys.readouterr()
  assert cli.main(["train", "--config", str(tmp_path / "a" / "config.json"), "--workdir", str(tmp_path / "b")]) == 0
  assert losses_of(tmp_path / "a") == losses_of(tmp_path / "b")


@pytest.mark.slow  # test-all; the fast tier sets an unreadable checkpoint aside (test_corrupt_latest_...)
def test_an_empty_step_folder_is_no_checkpoint(tmp_path, capsys):
  """An empty checkpoints/999 (a copy cut short, a stray mkdir) neither blocks the resume as a later step nor is
  read: the run resumes from its real checkpoint and sets the folder aside with a warning."""
  workdir = tmp_path / "run"
  assert train_cli(tmp_path, workdir, capsys, **{"train.steps": 3})[0] == 0
  os.makedirs(workdir / "checkpoints" / "999")
  status, err = train_cli(tmp_path, workdir, capsys, **{"train.steps": 6})
  assert status == 0, err
  assert any("Resuming" in line and "step 3" in line for line in err), err
  assert steps_in(workdir) == [3, 6] and not (workdir / "checkpoints" / "999").exists()


@pytest.mark.parametrize("target", ["metrics.jsonl", "checkpoints"])
def test_an_io_error_mid_run_is_a_failed_run_naming_the_checkpoint_on_disk(tmp_path, capsys, target):
  """An unwritable log or checkpoint folder once the run has started is a failed run (exit 1), not bad input, and
  its line names the newest checkpoint that is on disk, not the one whose save just failed."""
  workdir = tmp_path / "run"
  flags = {"train.steps": 4, "checkpoint.every": 2, "train.log_every": 1}
  assert train_cli(tmp_path, workdir, capsys, **flags)[0] == 0
  if subprocess.run(["chattr", "+i", str(workdir / target)], capture_output=True, check=False).returncode:
    pytest.skip("chattr +i (an immutable file, unwritable even by root) is not available here")
  try:
    status, err = train_cli(tmp_path, workdir, capsys, **{**flags, "train.steps": 8})
  finally:
    subprocess.run(["chattr", "-i", str(workdir / target)], check=True)
  assert status == 1, err
  assert errors_of(err)[-1].endswith("its newest checkpoint, step 4, is kept"), err
  assert "PermissionError" in errors_of(err)[-1] and steps_in(workdir) == [2, 4]


def signal_then(signum, real):
  """`real`, after sending this process `signum` (as from another terminal)."""

  def wrapped(*args, **kwargs):
    os.kill(os.getpid(), signum)
    return real(*args, **kwargs)

  return wrapped


def test_a_stop_signal_during_start_up_stops_at_the_first_checkpoint(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(loop, "resume", signal_then(signal.SIGTERM, loop.resume))
  status, err = train_cli(tmp_path, tmp_path / "run", capsys, **{"train.steps": 8})
  assert status == 143 and steps_in(tmp_path / "run") == [1], err
  assert errors_of(err) == [
    f"gan-jax train: stopped by SIGTERM: checkpoint saved at step 1; the same command resumes {str(tmp_path / 'run')!r}"
  ]


# The teardown variant is test-all only: the final-save one takes the same path (a signal seen after the loop).
@pytest.mark.parametrize("where", ["final save", pytest.param("teardown", marks=pytest.mark.slow)])
def test_ctrl_c_after_the_last_step_ends_the_complete_run_in_one_line(tmp_path, monkeypatch, capsys, where):
  """Ctrl-C during the final save or the teardown: the save completes, the run is complete (exit 0), one line
  says so; no traceback, no claim that the run was interrupted."""
  real_save = checkpoint.save
  if where == "final save":
    monkeypatch.setattr(
      checkpoint, "save", lambda m, s, st: (s == 4 and os.kill(os.getpid(), signal.SIGINT), real_save(m, s, st))
    )
  else:
    monkeypatch.setattr(Evaluator, "close", signal_then(signal.SIGINT, Evaluator.close))
  status, err = train_cli(tmp_path, tmp_path / "run", capsys, **{"train.steps": 4})
  assert status == 0 and steps_in(tmp_path / "run")[-1] == 4, err
  assert err[-1] == "SIGINT was not acted on: the run completed all its steps; its final checkpoint is saved", err
  assert not [line for line in err if "Traceback" in line or "interrupted" in line]
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
