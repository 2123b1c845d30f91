"""Sweeps under faults: runs die with their sweep, never run twice at once, and a preempted job requeues."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import submitit

from gan_jax import cli
from gan_jax.records import read_jsonl
from gan_jax.sweep import launch
from gan_jax.sweep.launch import load_sweep, sync_manifest
from gan_jax.sweep.manifest import Manifest
from gan_jax.sweep.vectorize import group_points
from gan_jax.train import workdir as workdir_lib

EXPERIMENT = """
from helpers import ring_config
from gan_jax.sweep import seeds

def get_config(arg=None):
  return ring_config(**{{"train.steps": {steps}, "train.log_every": 10, "checkpoint.every": 1000, "eval.final": False}})

def get_sweep(arg=None):
  return seeds(1)
"""


def write_experiment(tmp_path, steps: int = 600) -> str:
  path = tmp_path / "exp.py"
  path.write_text(EXPERIMENT.format(steps=steps))
  return str(path)


def env() -> dict:
  return {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.getcwd()])}


def wait_for(predicate, timeout_s: float = 120, what: str = "") -> None:
  deadline = time.monotonic() + timeout_s
  while not predicate():
    assert time.monotonic() < deadline, f"timed out waiting for {what}"
    time.sleep(0.1)


def holder_pid(workdir) -> int | None:
  who = workdir_lib.holder(str(workdir))
  return int(who.split()[1]) if who else None


def alive(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().split()[2] != "Z"
  except FileNotFoundError:
    return False


def test_a_second_sweep_on_a_directory_is_refused(tmp_path, capsys):
  exp, out = write_experiment(tmp_path), tmp_path / "sweep"
  os.makedirs(out)
  with workdir_lib.WorkdirLock(str(out)):
    assert cli.main(["sweep", "--config", exp, "--workdir", str(out)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and f"is in use by pid {os.getpid()}" in err[0]
  assert sorted(os.listdir(out)) == [".lock"]  # the holder's; no manifest, no point


def test_a_point_waits_for_the_run_still_holding_it(tmp_path, monkeypatch, capsys):
  exp, out = write_experiment(tmp_path), str(tmp_path / "sweep")
  plan = load_sweep(exp)
  monkeypatch.setattr(launch, "train_command", lambda *_: [sys.executable, "-c", "print('ok')"])
  point = os.path.join(out, plan.names[0])
  os.makedirs(point)
  lock = workdir_lib.WorkdirLock(point).acquire()
  threading.Timer(1.0, lock.release).start()  # an orphan of a killed sweep, checkpointing, then gone
  manifest, records = sync_manifest(plan, out)
  launch.run_local(
    manifest, out, launch.make_jobs(group_points(plan.names, plan.points, plan.configs, 1), records, out), 1
  )
  assert [p.status for p in Manifest.load(out).points] == ["done"]
  assert f"sweep: waiting for pid {os.getpid()}" in capsys.readouterr().err
  # One that never lets go fails the point in one line, and the next invocation retries it.
  monkeypatch.setattr(launch, "HELD_WAIT_S", 0.5)
  with workdir_lib.WorkdirLock(point):
    manifest, records = sync_manifest(plan, out)
    records[0].status = "pending"
    launch.run_local(
      manifest, out, launch.make_jobs(group_points(plan.names, plan.points, plan.configs, 1), records, out), 1
    )
  (point_record,) = Manifest.load(out).points
  assert point_record.status == "failed" and point_record.returncode == 2 and "held by pid" in point_record.error


class FakeJob:
  def __init__(self, job_id: str):
    self.job_id = job_id

  def done(self) -> bool:
    return True

  def result(self) -> dict:
    return {"returncode": 0, "error": "", "end_time": "now"}

  def cancel(self, check: bool = False) -> None:
    raise AssertionError("nothing should be cancelled")


def test_a_slurm_rerun_reattaches_to_live_jobs(tmp_path, monkeypatch):
  """A point whose job is still queued or running is waited for, not submitted again."""
  exp, out = write_experiment(tmp_path), str(tmp_path / "sweep")
  with open(exp) as f:
    (tmp_path / "two.py").write_text(f.read().replace("seeds(1)", "seeds(2)"))
  plan = load_sweep(str(tmp_path / "two.py"))
  manifest, records = sync_manifest(plan, out)
  records[0].start("earlier", job_id="111")  # submitted by an invocation that was killed
  submitted = []

  class Executor:
    def __init__(self, folder, cluster):
      pass

    def update_parameters(self, **kwargs):
      pass

    def map_array(self, fn, commands, workdirs):
      submitted.extend(workdirs)
      return [FakeJob(str(200 + i)) for i in range(len(workdirs))]

  monkeypatch.setattr(submitit, "AutoExecutor", Executor)
  monkeypatch.setattr(launch, "live_slurm_job", lambda directory, job_id: FakeJob(job_id) if job_id == "111" else None)
  monkeypatch.setattr(submitit.helpers, "as_completed", lambda jobs, poll_frequency: iter(jobs))
  jobs = launch.make_jobs(group_points(plan.names, plan.points, plan.configs, 1), records, out)
  launch.run_submitit(manifest, out, jobs, dict(zip(plan.names, plan.configs, strict=True)), "slurm", None)
  assert submitted == [jobs[1].workdir]  # the live job's point was not submitted again
  assert [(p.status, p.job_id) for p in Manifest.load(out).points] == [("done", "111"), ("done", "200")]


@pytest.mark.slow  # fast twins: test_a_point_waits_for_the_run_still_holding_it, tests/test_faults.py (SIGTERM)
def test_runs_die_with_a_killed_sweep_and_the_rerun_finishes_once(tmp_path):
  exp, out = write_experiment(tmp_path, steps=3000), tmp_path / "sweep"
  sweep = lambda: subprocess.Popen(
    [sys.executable, "-m", "gan_jax", "sweep", "--config", exp, "--workdir", str(out)],
    env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
  )  # fmt: skip
  parent = sweep()
  point = out / "seed=0"
  wait_for(lambda: len(read_jsonl(point / "metrics.jsonl")) >= 3, what="the point's first log rows")
  child = holder_pid(point)
  assert child is not None and child != parent.pid
  parent.kill()  # kill -9: no handler of the sweep runs
  parent.wait()
  wait_for(lambda: not alive(child), timeout_s=60, what="the orphaned run to stop")
  log = (point / "train.log").read_text()
  assert "stopped by SIGTERM: checkpoint saved at step" in log
  assert holder_pid(point) is None
  rerun = sweep()
  assert rerun.wait(timeout=600) == 0
  assert [r["step"] for r in read_jsonl(point / "metrics.jsonl")] == list(range(10, 3001, 10))
  assert [p.status for p in Manifest.load(str(out)).points] == ["done"]


@pytest.mark.slow  # fast twin: test_a_slurm_rerun_reattaches_to_live_jobs (the launcher's side)
def test_a_preempted_submitit_job_checkpoints_requeues_and_resumes(tmp_path, monkeypatch):
  exp, workdir = write_experiment(tmp_path, steps=3000), tmp_path / "point"
  executor = submitit.AutoExecutor(folder=str(tmp_path / "submitit"), cluster="local")
  executor.update_parameters(timeout_min=10)
  command = [sys.executable, "-m", "gan_jax", "train", "--config", exp, "--workdir", str(workdir)]
  monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])  # the local executor's job inherits this environment
  job = executor.submit(launch._SubmititPoint(), command, str(workdir))
  wait_for(lambda: len(read_jsonl(workdir / "metrics.jsonl")) >= 3, what="the job's first log rows")
  trainer = holder_pid(workdir)
  with open(f"/proc/{trainer}/stat") as f:
    job_process = int(f.read().split()[3])  # the submitit process that runs _SubmititPoint
  os.kill(job_process, signal.SIGUSR2)  # what SLURM sends before preempting or at the time limit
  outcome = job.result()
  assert outcome["returncode"] == 0, outcome
  log = (workdir / "train.log").read_text()
  assert "stopped by SIGTERM: checkpoint saved at step" in log and "Resuming" in log
  assert [r["step"] for r in read_jsonl(workdir / "metrics.jsonl")] == list(range(10, 3001, 10))
