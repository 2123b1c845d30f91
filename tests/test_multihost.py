"""Multi-host for real: 2 processes x 4 CPU devices on 127.0.0.1 (jax.distributed, gloo collectives), started
as the README says, against 1 process x 8 devices."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import assert_runs_close, losses_of

from gan_jax.records import read_jsonl

pytestmark = pytest.mark.slow  # fast twin: test_train's 1-vs-8-device runs (the same mesh in one process)

EXPERIMENT = """
from helpers import ring_config

def get_config(arg=None):
  return ring_config(**{"train.num_devices": 0, "train.steps": 6, "eval.every": 3, "eval.num_samples": 256})
"""


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def train(exp, workdir, processes: int, steps: int) -> list[str]:
  """`gan-jax train` as `processes` processes sharing 8 CPU devices; returns each process's stderr."""
  port = free_port()
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.getcwd()]),
    "JAX_NUM_CPU_DEVICES": str(8 // processes),
  }
  if processes > 1:
    env.update(GAN_JAX_DISTRIBUTED="1", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes))
  cmd = [sys.executable, "-m", "gan_jax", "train", "--config", str(exp), "--workdir", str(workdir)]
  procs = [
    subprocess.Popen(
      [*cmd, f"--config.train.steps={steps}"],
      env={**env, "JAX_PROCESS_ID": str(i)},
      stderr=subprocess.PIPE,
      stdout=subprocess.DEVNULL,
      text=True,
    )
    for i in range(processes)
  ]
  errs = [p.communicate(timeout=300)[1] for p in procs]
  assert [p.returncode for p in procs] == [0] * processes, "\n".join(e[-2000:] for e in errs)
  return errs


def files(workdir) -> list[str]:
  return sorted(os.path.relpath(os.path.join(r, f), workdir) for r, _, fs in os.walk(workdir) for f in fs)


def test_two_processes_equal_one_and_resume_across(tmp_path):
  exp = tmp_path / "exp.py"
  exp.write_text(EXPERIMENT)
  two, one = tmp_path / "two", tmp_path / "one"
  errs = train(exp, two, processes=2, steps=6)
  train(exp, one, processes=1, steps=6)
  assert "process 1 of 2" in errs[1] and "final evaluation" in errs[0] and "final evaluation" not in errs[1]
  assert_runs_close(losses_of(two), losses_of(one))
  assert_runs_close(
    [{k: v for k, v in r.items() if k != "protocol"} for r in read_jsonl(two / "eval.jsonl")],
    [{k: v for k, v in r.items() if k != "protocol"} for r in read_jsonl(one / "eval.jsonl")],
  )
  # Only process 0 writes the run's files (one row per step, one events file); orbax has each process write
  # its own part of a checkpoint, by design.
  assert [r["step"] for r in losses_of(two)] == list(range(1, 7))
  assert len([f for f in files(two) if f.startswith("tensorboard/")]) == 1
  ours = lambda run: {f for f in files(run) if not f.startswith(("checkpoints", "tensorboard"))}
  assert ours(two) == ours(one)
  assert sorted(os.listdir(two / "checkpoints")) == sorted(os.listdir(one / "checkpoints"))
  config = json.loads((two / "config.json").read_text())
  assert config["provenance"]["process_count"] == 2 and config["provenance"]["device_count"] == 8

  # A checkpoint moves between the two layouts, either way.
  for first, then, name in ((2, 1, "two_then_one"), (1, 2, "one_then_two")):
    train(exp, tmp_path / name, processes=first, steps=3)
    train(exp, tmp_path / name, processes=then, steps=6)
    assert_runs_close(losses_of(tmp_path / name), losses_of(one))


LATE_PEER = """
import os
import sys
import time

from helpers import ring_config

from gan_jax import losses

slept = []


def in_train_loop() -> bool:
  frame = sys._getframe()
  while frame is not None and frame.f_code.co_name != "_train":
    frame = frame.f_back
  return frame is not None


def late_on_process_1(real_logits, fake_logits):
  # non_saturating, whose first trace in the train loop (the step's compilation; the config check traced it
  # before) takes 35 s longer on process 1: a peer that compiles while the other loaded the step from its cache.
  if os.environ["JAX_PROCESS_ID"] == "1" and not slept and in_train_loop():
    slept.append(1)
    open(os.environ["LATE_MARKER"], "w").close()  # the test checks that the delay happened
    time.sleep(35)
  return losses.get("non_saturating")(real_logits, fake_logits)


def get_config(arg=None):
  return ring_config(**{"train.num_devices": 0, "eval.every": 0, "loss.name": "exp:late_on_process_1"})
"""


def test_a_peer_that_compiles_late_is_waited_for(tmp_path, monkeypatch):
  """Gloo abandons a collective after 30 s; a process that compiles the step later than that (a cold compilation
  cache beside a warm one, a loaded machine) is waited for at a barrier, not left behind."""
  exp = tmp_path / "exp.py"
  exp.write_text(LATE_PEER)
  monkeypatch.setenv("LATE_MARKER", str(tmp_path / "slept"))
  train(exp, tmp_path / "run", processes=2, steps=3)  # both exit 0
  assert (tmp_path / "slept").exists()
  assert [r["step"] for r in losses_of(tmp_path / "run")] == [1, 2, 3]


def start_long_run(tmp_path, workdir) -> list[subprocess.Popen]:
  """Two `gan-jax train` processes of a long run, returned once it has logged 12 rows."""
  exp = tmp_path / "exp.py"
  exp.write_text(EXPERIMENT)
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.getcwd()]),
    "JAX_NUM_CPU_DEVICES": "4",
    "GAN_JAX_DISTRIBUTED": "1",
    "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{free_port()}",
    "JAX_NUM_PROCESSES": "2",
  }
  cmd = [sys.executable, "-m", "gan_jax", "train", "--config", str(exp), "--workdir", str(workdir)]
  cmd += ["--config.train.steps=100000", "--config.checkpoint.every=5", "--config.eval.every=0"]
  procs = [
    subprocess.Popen(
      cmd, env={**env, "JAX_PROCESS_ID": str(i)}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    for i in range(2)
  ]
  deadline = time.monotonic() + 240
  while len(read_jsonl(workdir / "metrics.jsonl")) < 12 and time.monotonic() < deadline:
    time.sleep(0.5)
  return procs


def test_sigterm_to_one_watcher_stops_both_processes_with_a_checkpoint(tmp_path):
  """The watcher forwards SIGTERM to its training child; the two processes agree on the stop at a log step,
  save one checkpoint and exit 143 with their one line."""
  workdir = tmp_path / "run"
  procs = start_long_run(tmp_path, workdir)
  procs[0].send_signal(signal.SIGTERM)
  errs = [p.communicate(timeout=240)[1] for p in procs]
  assert [p.returncode for p in procs] == [143, 143], [e[-2000:] for e in errs]
  for err in errs:
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("gan-jax train: stopped by SIGTERM: checkpoint saved at step "), err[-2000:]


def test_a_lost_peer_is_one_line_and_exit_1(tmp_path):
  """kill -9 of process 1 mid-run: process 0 stops within seconds with one line naming its lost peer and the
  checkpoint to resume from, no traceback; the same command on both processes then resumes."""
  workdir = tmp_path / "run"
  procs = start_long_run(tmp_path, workdir)
  # Each `gan-jax train` of a multi-process job watches its training child (cli.supervise); kill -9 that child.
  trainer = subprocess.run(["pgrep", "-P", str(procs[1].pid)], capture_output=True, text=True).stdout.split()
  os.kill(int(trainer[0]), signal.SIGKILL)
  err = procs[0].communicate(timeout=240)[1]
  err1 = procs[1].communicate(timeout=60)[1]
  assert procs[1].returncode == 1 and err1.splitlines()[-1].startswith(
    "gan-jax train: error: process 1 of 2 was killed by SIGKILL (kill -9 or the out-of-memory killer)"
  ), err1[-2000:]
  lines = [line for line in err.splitlines() if line.strip() and "it/s" not in line]
  assert procs[0].returncode == 1, err[-3000:]
  # Whichever way the survivor learns of it (a Python error from a collective, gloo's abort, the coordination
  # service's termination), it ends with the one line and no traceback or native dump on the terminal.
  assert not any(s in err for s in ("Traceback", "terminate called", "Check failure", "    @ ")), err[-3000:]
  assert lines[-1].startswith("gan-jax train: error: lost a peer"), lines[-3:]
  assert "this is process 0 of 2" in lines[-1] and "process 1" in lines[-1]
  assert "is kept: restart all 2 processes with the same command to resume" in lines[-1]
