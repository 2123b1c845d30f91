"""Running a sweep's points: each one `gan-jax train` process, locally or as a submitit array job.

Every point trains in `DIR/NAME` (with `--vectorize`, a population of points in `DIR/GROUP`) with
its output appended to `train.log` there; the parent alone writes `DIR/manifest.json`. Points already
done are skipped; the rest are (re)started, and `gan-jax train` resumes from a checkpoint in the
workdir when there is one.

Faults: a local run dies with its sweep (SIGTERM from the kernel when the parent dies, kill -9 included, so
it checkpoints first); a point's workdir is locked by its run, so a rerun waits for a stopping run rather
than starting a second; a SLURM rerun re-attaches to the jobs still alive instead of submitting them again.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import submitit
import tqdm

from gan_jax import config as config_lib
from gan_jax.progress import progress_bar
from gan_jax.sweep.manifest import MANIFEST, Manifest, PointRecord, canonical, config_hash, now
from gan_jax.sweep.space import Point, check_points, name_points
from gan_jax.sweep.vectorize import Group
from gan_jax.train import guard
from gan_jax.train import workdir as workdir_lib
from gan_jax.train.setup import check_config

LOG_NAME = "train.log"
ERROR_LINES = 20
SLURM_DEFAULTS = config_lib.to_dict(config_lib.base_config())["slurm"]  # keys a `slurm` section may set
CLUSTERS = {"slurm": "slurm", "submitit-local": "local"}
# `gan-jax train` dies with the process named here (cli.die_with_parent); a fork-time hook would do the same but
# is unsafe in a threaded (JAX) parent.
PARENT_ENV = "GAN_JAX_PARENT_PID"
HELD_WAIT_S = 120  # how long a point waits for a stopping run (an orphan checkpointing) to let its workdir go
SLURM_ALIVE = (
  "PENDING",
  "RUNNING",
  "REQUEUED",
  "REQUEUE_HOLD",
  "REQUEUE_FED",
  "CONFIGURING",
  "COMPLETING",
  "RESIZING",
  "SUSPENDED",
  "STOPPED",
  "SIGNALING",
  "STAGE_OUT",
)


@dataclasses.dataclass
class Sweep:
  config: str  # The experiment spec with an absolute path, valid from any working directory.
  names: list[str]
  points: list[Point]
  configs: list[ml_collections.ConfigDict]  # Each point's resolved config.


def load_sweep(spec: str) -> Sweep:
  """Calls the experiment's `get_sweep(arg)` and checks every point's config as a run would (train.setup)."""
  path, sep, arg = spec.partition(":")
  module = config_lib.import_file(path)
  if not hasattr(module, "get_sweep"):
    raise ValueError(
      f"config file {path!r} defines no get_sweep(); expected one returning a list of override dicts, "
      "e.g. product(sweep('loss.name', ['hinge', 'non_saturating']), seeds(3))"
    )
  with config_lib.user_code(path, "get_sweep()"):
    points = module.get_sweep(arg) if arg else module.get_sweep()
  points = check_points(points)
  if not points:
    raise ValueError(f"get_sweep() of {path!r} returned no points; expected at least one")
  names = name_points(points)
  base = config_lib.config_of(module, path, arg)
  configs = []
  for name, point in zip(names, points, strict=True):
    cfg = base.copy_and_resolve_references()
    try:
      config_lib.apply_overrides(cfg, point)
      check_config(cfg)
    except (KeyError, ValueError, TypeError, ImportError) as e:
      msg = e.args[0] if isinstance(e, KeyError) and e.args else e
      raise ValueError(f"sweep point {name}: {msg}") from e
    configs.append(cfg)
  return Sweep(os.path.abspath(path) + sep + arg, names, points, configs)


def sync_manifest(sweep: Sweep, directory: str, save: bool = True) -> tuple[Manifest, list[PointRecord]]:
  """The manifest for this sweep and its records in sweep order, saved unless `save` is False (--dry-run).

  Records of unchanged points keep their status. A point is the same point when its overrides are, whatever
  their order: a sweep rewritten as `product(seeds(3), losses)` instead of `product(losses, seeds(3))` names
  its points afresh, and its points keep their earlier records (names, workdirs, status) rather than
  training again and being listed twice. Points of an earlier sweep in the same directory stay listed (after
  this sweep's) so the report still shows them, but are not run.
  """
  previous = {}
  if os.path.exists(os.path.join(directory, MANIFEST)):
    previous = {r.name: r for r in Manifest.load(directory).points}
  by_overrides = {canonical(r.overrides): name for name, r in previous.items()}
  records = []
  for name, point, cfg in zip(sweep.names, sweep.points, sweep.configs, strict=True):
    record = previous.pop(name, None)
    if record is None or record.overrides != point:
      earlier = by_overrides.get(canonical(point))
      record = previous.pop(earlier) if earlier in previous else None
    current = config_hash(cfg)
    if record is not None and record.config_hash not in (None, current):  # None: recorded before hashes were
      set_aside_stale(record, records + list(previous.values()), directory, save)
      record = None
    if record is None:
      record = PointRecord(name, point, os.path.join(os.path.abspath(directory), name), config_hash=current)
    records.append(record)
  manifest = Manifest(sweep.config, records + list(previous.values()))
  if save:
    manifest.save(directory)
  return manifest, records


def set_aside_stale(record: PointRecord, others: Sequence[PointRecord], directory: str, move: bool) -> None:
  """A point whose config changed since it ran: its workdir (its population's, with --vectorize, whose other
  members then train again too) is renamed NAME.stale-HASH, never overwritten or deleted, and it trains afresh."""
  if record.status == "running" and record.job_id:
    raise ValueError(
      f"sweep point {record.name}: its config changed while its job {record.job_id} may still run; expected the "
      "job to end first (scancel it, or let it finish), then the same command"
    )
  workdir = os.path.join(os.path.abspath(directory), record.group) if record.group else record.workdir
  kept, n = f"{workdir}.stale-{record.config_hash}", 1
  while os.path.exists(kept):  # edited back and forth: every old workdir is kept
    kept, n = f"{workdir}.stale-{record.config_hash}-{n}", n + 1
  what = "would be kept" if not move else "kept"
  if os.path.exists(workdir):
    if move:
      os.replace(workdir, kept)
    print(f"sweep: {record.name}: its config changed since it ran; old workdir {what} as {kept}", file=sys.stderr)
  for other in others:  # the population's other members lose their workdir with it
    if record.group and other.group == record.group:
      other.status, other.group, other.member = "pending", None, None


@dataclasses.dataclass
class Job:
  """One `gan-jax train` process and the points it trains; they share its outcome."""

  overrides: Point
  workdir: str
  records: list[PointRecord]


def make_jobs(groups: Sequence[Group], records: Sequence[PointRecord], directory: str) -> list[Job]:
  """A job per group, with each of its records pointed at the workdir (and member) that trains it."""
  by_name = {r.name: r for r in records}
  jobs = []
  for group in groups:
    workdir = os.path.join(os.path.abspath(directory), group.name)
    members = [by_name[n] for n in group.members]
    for m, record in enumerate(members):
      record.workdir = workdir
      record.group, record.member = (group.name, m) if group.is_population else (None, None)
    jobs.append(Job(group.overrides, workdir, members))
  return jobs


def train_command(config: str, job: Job) -> list[str]:
  """`python -m gan_jax train` with the job's overrides; strings verbatim, others as literals."""
  overrides = [f"--config.{k}={v if isinstance(v, str) else repr(v)}" for k, v in job.overrides.items()]
  return [sys.executable, "-m", "gan_jax", "train", "--config", config, "--workdir", job.workdir, *overrides]


def log_tail(path: str, offset: int = 0, lines: int = ERROR_LINES) -> str:
  """The last non-blank lines written from `offset` on; progress-bar redraws count as lines."""
  with open(path, "rb") as f:
    f.seek(0, os.SEEK_END)
    f.seek(max(offset, f.tell() - 64 * 1024))
    text = f.read().decode("utf-8", errors="replace")
  return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


class TrainProcess:
  """One point's train process; the local pool polls several, `run_point` waits for one.

  It dies with the process that started it (a SIGTERM, on which `gan-jax train` checkpoints and stops), so
  no run outlives its sweep.
  """

  def __init__(self, command: Sequence[str], workdir: str, env: Mapping[str, str] | None = None):
    os.makedirs(workdir, exist_ok=True)
    self.start_time = now()
    self.log_path = os.path.join(workdir, LOG_NAME)
    with open(self.log_path, "ab") as log:
      log.write(f"\n# {self.start_time}\n$ {shlex.join(command)}\n".encode())
      log.flush()
      self._offset = log.tell()
      self.proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**(env or os.environ), PARENT_ENV: str(os.getpid())},
      )

  def poll(self) -> dict[str, Any] | None:
    returncode = self.proc.poll()
    return None if returncode is None else self._outcome(returncode)

  def wait(self, poll_s: float = 0.5) -> dict[str, Any]:
    """Polls rather than blocking in waitpid, so a signal handler may stop() the process meanwhile."""
    while (outcome := self.poll()) is None:
      time.sleep(poll_s)
    return outcome

  def stop(self, timeout_s: float = 60) -> None:
    """SIGTERM (the run checkpoints and exits), then SIGKILL after `timeout_s`; checkpoints are committed
    atomically, so a re-run resumes cleanly either way."""
    if self.proc.poll() is not None:
      return
    self.proc.terminate()
    deadline = time.monotonic() + timeout_s
    while self.proc.poll() is None and time.monotonic() < deadline:
      time.sleep(0.2)
    if self.proc.poll() is None:
      self.proc.kill()
      while self.proc.poll() is None:
        time.sleep(0.05)

  def _outcome(self, returncode: int) -> dict[str, Any]:
    error = []
    if returncode != 0:
      error.append(log_tail(self.log_path, self._offset))
      if returncode < 0:
        error.append(f"(killed by {signal.Signals(-returncode).name})")
    return {
      "returncode": returncode,
      "error": "\n".join(e for e in error if e),
      "start_time": self.start_time,
      "end_time": now(),
    }


def run_point(command: Sequence[str], workdir: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
  """Trains one point to completion; the outcome is what `PointRecord.finish` records."""
  return TrainProcess(command, workdir, env).wait()


def default_parallel() -> int:
  return max(1, (os.cpu_count() or 2) // 2)


def child_env(parallel: int) -> dict[str, str]:
  """The parent's environment, with runs that share the machine kept from oversubscribing it."""
  env = dict(os.environ)
  env.setdefault("PYTHONUNBUFFERED", "1")  # train.log shows progress as it happens.
  if parallel > 1:
    flags = env.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
      env["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # Else the first run takes 75% of each GPU.
  return env


def _log_status(record: PointRecord) -> None:
  last = record.error.splitlines()[-1:] if record.status == "failed" else []
  where = f" (member {record.member} of {record.group})" if record.group else ""
  tqdm.tqdm.write(f"sweep: {record.status:<7} {record.name}{where}" + "".join(f": {ln}" for ln in last), sys.stderr)


class SweepBar:
  """Points done of all, with how many run and failed, and the ETA; the status lines print above it."""

  def __init__(self, jobs: Sequence[Job]):
    self.bar = progress_bar(sum(len(j.records) for j in jobs), "sweep", "point")
    self.running = self.failed = 0

  def started(self, job: Job) -> None:
    self.running += len(job.records)
    self.bar.set_postfix(running=self.running, failed=self.failed)

  def finished(self, job: Job) -> None:
    self.running -= len(job.records)
    self.failed += sum(r.status == "failed" for r in job.records)
    self.bar.set_postfix(running=self.running, failed=self.failed, refresh=False)
    self.bar.update(len(job.records))

  def close(self) -> None:
    self.bar.close()


class _Interrupted(Exception):
  def __init__(self, signum: int):
    self.signum = signum


def _interrupt(signum: int, _frame) -> None:
  raise _Interrupted(signum)


def wait_for_workdir(job: Job) -> str | None:
  """Waits (up to HELD_WAIT_S) while another process holds the job's workdir, e.g. a run of an earlier
  invocation still checkpointing after its sweep was killed; returns the holder if it never lets go."""
  who = workdir_lib.holder(job.workdir)
  if who is None:
    return None
  print(f"sweep: waiting for {who} to release {job.workdir}", file=sys.stderr)
  return workdir_lib.wait_until_free(job.workdir, HELD_WAIT_S)


def _held_outcome(who: str) -> dict[str, Any]:
  error = f"workdir held by {who} for over {HELD_WAIT_S} s: another process trains this point"
  return {"returncode": 2, "error": error, "start_time": now(), "end_time": now()}


def run_local(manifest: Manifest, directory: str, jobs: Sequence[Job], parallel: int) -> None:
  """Runs `jobs` as `parallel` processes at a time.

  Interrupted (Ctrl-C, or SIGTERM from a job scheduler), it stops its runs and leaves them marked
  running, for the next invocation to resume.
  """
  env = child_env(parallel)
  queue, running = list(jobs), []
  previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
  bar = SweepBar(jobs)
  try:
    while queue or running:
      while queue and len(running) < parallel:
        job = queue.pop(0)
        who = wait_for_workdir(job)
        if who is not None:
          for record in job.records:
            record.finish(_held_outcome(who))
            _log_status(record)
          manifest.save(directory)
          bar.finished(job)
          continue
        proc = TrainProcess(train_command(manifest.config, job), job.workdir, env)
        for record in job.records:
          record.start(proc.start_time)
          _log_status(record)
        manifest.save(directory)
        bar.started(job)
        running.append((job, proc))
      still = []
      for job, proc in running:
        outcome = proc.poll()
        if outcome is None:
          still.append((job, proc))
          continue
        for record in job.records:
          record.finish(outcome)
          _log_status(record)
        manifest.save(directory)
        bar.finished(job)
      running = still
      if running:
        time.sleep(0.2)
  except _Interrupted as e:
    for _, proc in running:
      proc.stop()
    running = []
    raise guard.RunStopped(e.signum, "its runs checkpointed and stopped; the same command resumes the sweep") from None
  finally:
    bar.close()
    for s, handler in previous.items():
      signal.signal(s, handler)
    for _, proc in running:
      proc.stop()


def resources(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """A point's job resources from the optional `slurm` section of its config. Keys beyond the defaults'
  (account, qos, constraint, ...) pass through to submitit as `slurm_<key>`."""
  section = dict(config.get("slurm") or {})
  extra = {f"slurm_{k}": v for k, v in sorted(section.items()) if k not in SLURM_DEFAULTS}
  return {**{k: section.get(k, default) for k, default in SLURM_DEFAULTS.items()}, **extra}


class _SubmititPoint(submitit.helpers.Checkpointable):
  """Requeued with the same command on preemption or timeout; train resumes from its checkpoint.

  SLURM's warning signal (submitit's USR2) calls `checkpoint` in this job's process: the train run gets
  SIGTERM, checkpoints and exits, and only then is the job requeued.
  """

  def __call__(self, command: Sequence[str], workdir: str) -> dict[str, Any]:
    self._proc = TrainProcess(command, workdir)
    return self._proc.wait()

  def checkpoint(self, command: Sequence[str], workdir: str) -> submitit.helpers.DelayedSubmission:
    proc = getattr(self, "_proc", None)
    if proc is not None:
      proc.stop()
    return submitit.helpers.DelayedSubmission(_SubmititPoint(), command, workdir)

  def __getstate__(self) -> dict:
    return {k: v for k, v in self.__dict__.items() if k != "_proc"}


def live_slurm_job(directory: str, job_id: str | None) -> submitit.Job | None:
  """The SLURM job of an earlier invocation when it is still queued or running, else None."""
  if not job_id:
    return None
  job = submitit.SlurmJob(folder=os.path.join(directory, ".submitit", "%j"), job_id=job_id)
  try:
    state = job.state
  except Exception:  # sacct unreachable: assume the worst case, a second submission, is worse than waiting
    return job
  return job if state.split()[0].rstrip("+") in SLURM_ALIVE else None


def _submit_array(
  manifest: Manifest, directory: str, group: list[Job], res: dict, cluster: str, parallel: int | None
) -> list[tuple[Any, Job]]:
  """One array job of `group`'s points, which share the resources `res`; each point's records marked started."""
  partition = res.pop("partition")
  # One executor per set of resources: update_parameters adds to an executor's earlier settings.
  executor = submitit.AutoExecutor(folder=os.path.join(directory, ".submitit", "%j"), cluster=cluster)
  executor.update_parameters(
    name=f"gan-jax-sweep-{os.path.basename(os.path.abspath(directory))}",
    tasks_per_node=1,
    **res,
    **({"slurm_partition": partition} if partition else {}),
    **({"slurm_array_parallelism": parallel} if parallel else {}),
  )
  submitted = executor.map_array(
    _SubmititPoint(), [train_command(manifest.config, j) for j in group], [j.workdir for j in group]
  )
  for job, handle in zip(group, submitted, strict=True):
    for record in job.records:
      record.start(now(), job_id=handle.job_id)
      _log_status(record)
  return list(zip(submitted, group, strict=True))


def run_submitit(
  manifest: Manifest,
  directory: str,
  jobs: Sequence[Job],
  configs: Mapping[str, ml_collections.ConfigDict],
  cluster: str,
  parallel: int | None,
) -> None:
  """One array job per distinct set of resources; waits for all, and cancels them if interrupted.

  `cluster` is "slurm", or "local" for submitit's LocalExecutor (tests, machines without SLURM).
  """
  by_resources: dict[tuple, list[Job]] = {}
  submitted_jobs, finished = [], set()
  for job in jobs:
    live = live_slurm_job(directory, job.records[0].job_id) if cluster == "slurm" else None
    if live is not None:  # still queued or running from an earlier invocation: wait for it, do not resubmit
      print(f"sweep: re-attached to live job {live.job_id} of {job.workdir}", file=sys.stderr)
      submitted_jobs.append((live, job))
      continue
    # A population's points agree on every key but the per-member ones, `slurm.*` included.
    by_resources.setdefault(tuple(resources(configs[job.records[0].name]).items()), []).append(job)
  try:
    for key, group in by_resources.items():
      submitted_jobs += _submit_array(manifest, directory, group, dict(key), cluster, parallel)
    manifest.save(directory)
    bar = SweepBar(jobs)
    for _, job in submitted_jobs:
      bar.started(job)
    by_id = {handle.job_id: job for handle, job in submitted_jobs}
    poll_s = 1 if cluster == "local" else 30
    for handle in submitit.helpers.as_completed([h for h, _ in submitted_jobs], poll_frequency=poll_s):
      try:
        outcome = handle.result()
      except Exception as e:  # The job itself died (time limit, node failure, out of memory).
        outcome = {"returncode": None, "error": "\n".join(str(e).splitlines()[-ERROR_LINES:])}
      for record in by_id[handle.job_id].records:
        record.finish(outcome)
        _log_status(record)
      finished.add(handle.job_id)
      manifest.save(directory)
      bar.finished(by_id[handle.job_id])
    bar.close()
  finally:
    for handle, _ in submitted_jobs:
      if handle.job_id not in finished:
        handle.cancel(check=False)
