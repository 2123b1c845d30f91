"""`train_and_evaluate(config, workdir)`: the one train loop, composed from pure pieces.

A step's work ends with its checkpoint: logs, samples and the evaluation (with its best checkpoint) come
first, so a checkpointed step owes nothing, and a run resumed from it repeats only later steps. What a step
may still owe after an older version of a run (an evaluation, a sample grid) is done on resume.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Iterator

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from gan_jax import config as config_lib
from gan_jax import data, files, losses, parallel, registry
from gan_jax.train import checkpoint, guard, history
from gan_jax.train import workdir as workdir_lib
from gan_jax.train import writers as writers_lib
from gan_jax.train.evaluator import Evaluator, Sampler, sample_path
from gan_jax.train.setup import Setup, build
from gan_jax.train.state import GANState


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  loss_fn: losses.LossFn | None = None,
  allow_config_change: bool = False,
) -> GANState:
  """Trains (or resumes) the run in `workdir`; returns the final state. `loss_fn` overrides loss.name.

  A resume whose config changes what trained steps mean (train.history) is refused unless `allow_config_change`;
  every start is recorded in DIR/history.jsonl.

  A run is a population of M >= 1 members: one state stacked on a leading axis, one vmapped step. Bad input
  raises ValueError before anything in `workdir` changes; the workdir is locked for the run's life. Past that
  point a failure is a guard.RunFailed (or RunStopped, Diverged, a full disk), its checkpoint kept.
  """
  # From here to the end a stop signal is a flag: the loop stops at a checkpoint, and one that comes when no step
  # is left (the final save, the teardown) lets the finished run end in one line rather than die without one.
  with guard.StopSignals() as stop:
    state = _start(config, workdir, loss_fn, allow_config_change, stop)
  if stop.signum:  # it came when no step was left to stop at (the final save, the teardown)
    name = signal.Signals(stop.signum).name
    print(f"{name} was not acted on: the run completed all its steps; its final checkpoint is saved", file=sys.stderr)
  return state


def _start(
  config: ml_collections.ConfigDict,
  workdir: str,
  loss_fn: losses.LossFn | None,
  allow_config_change: bool,
  stop: guard.StopSignals,
) -> GANState:
  setup = build(config, loss_fn)
  changed = check_resumable(config, workdir, loss_fn, allow_config_change)
  primary = jax.process_index() == 0
  created = not os.path.exists(workdir)
  os.makedirs(workdir, exist_ok=True)
  lock = hold(workdir, primary)
  try:
    state, mngr = resume(setup, workdir)
  except BaseException:
    lock.release(undo=True)  # refused: the workdir is left as it was found
    if primary and created and not os.listdir(workdir):
      os.rmdir(workdir)
    raise
  try:  # an I/O fault once the run started (its logs, its records, its teardown): a failed run, not bad input
    with contextlib.ExitStack() as cleanup:  # each runs, whatever the others raise
      cleanup.callback(lock.release)
      cleanup.callback(mngr.close)
      resolved = run_config_json(setup, loss_fn)
      if primary:  # the history first: a kill between the two never loses a change config.json already shows
        history.record(workdir, int(state.step[0]), changed, resolved["provenance"])
        files.write_json_atomic(os.path.join(workdir, "config.json"), resolved)
        if changed:
          print(f"Changed since the last start: {history.describe(changed)} (DIR/history.jsonl).", file=sys.stderr)
      state = _train(setup, workdir, state, mngr, cleanup, resolved, stop)
  except OSError as e:
    if workdir_lib.is_disk_full(e):
      raise
    newest = newest_saved(workdir, mngr)
    try:
      step = int(state.step[0])
    except RuntimeError:  # donated to a step that then failed: the teardown's error came on top of that one
      step = newest or 0
    raise guard.failed(step, newest, e) from e
  return state


def newest_saved(workdir: str, mngr: ocp.CheckpointManager) -> int | None:
  """The step of the newest checkpoint on disk once a save in flight has ended (its failure may be the one
  being reported): what a failed run really keeps, not what it last asked to save."""
  with contextlib.suppress(Exception):
    mngr.wait_until_finished()
  return max(checkpoint.saved_steps(workdir), default=None)


def hold(workdir: str, primary: bool) -> workdir_lib.WorkdirLock:
  """The workdir's lock, taken by process 0; when it is refused, every process raises WorkdirBusy."""
  lock, busy = workdir_lib.WorkdirLock(workdir), None
  if primary:
    try:
      lock.acquire()
    except workdir_lib.WorkdirBusy as e:
      busy = e
  if parallel.max_over_processes(int(busy is not None)):
    raise busy or workdir_lib.WorkdirBusy(f"workdir {workdir!r} is in use; process 0 could not lock it")
  return lock


def _train(
  setup: Setup,
  workdir: str,
  state: GANState,
  mngr: ocp.CheckpointManager,
  cleanup: contextlib.ExitStack,
  resolved: dict,
  stop: guard.StopSignals,
) -> GANState:
  config, mesh = setup.config, setup.mesh
  start, steps = int(state.step[0]), config.train.steps
  step, previous = start, None
  try:
    duties = StepDuties(setup, workdir, start, mngr, cleanup, resolved)
    put = lambda batch: parallel.put_batch(batch, mesh)
    if start < steps:  # a finished run reads no data and compiles nothing
      batches = step_batches(setup.members, start, config.train.d_steps, config.train.batch_size)
      first = next(batches)
      batches = itertools.chain([first], batches)
      train_step = parallel.compiled_together("gan_jax.train_step", setup.train_step(), lambda: (state, put(first)))
    duties.owed(state, start)
    for step in range(start + 1, steps + 1):
      state, metrics = train_step(state, put(next(batches)))
      # Wait for the previous step only: the host stays one step ahead, and the bar tells the truth.
      jax.block_until_ready(previous)
      previous = metrics
      duties.log(step, metrics)
      stopping = stop_agreed(stop.signum, step, config.train.log_every) if step < steps else None
      duties.finish(step, state, checkpoint_now=bool(stopping))
      if stopping:
        mngr.wait_until_finished()
        raise guard.RunStopped(stopping, f"checkpoint saved at step {step}; the same command resumes {workdir!r}")
  except (guard.RunStopped, guard.Diverged):
    raise
  except Exception as e:
    if workdir_lib.is_disk_full(e):
      raise
    raise guard.failed(step, newest_saved(workdir, mngr), e) from e
  duties.evaluator.summarize()
  return state


class StepDuties:
  """What a step owes besides its update, in this order: its log row, the sample grid, the evaluation (with its
  best checkpoint), then its checkpoint. What it opens closes with the run's `cleanup`."""

  def __init__(
    self,
    setup: Setup,
    workdir: str,
    start: int,
    mngr: ocp.CheckpointManager,
    cleanup: contextlib.ExitStack,
    resolved: dict,
  ):
    config, primary = setup.config, jax.process_index() == 0
    self.config, self.workdir, self.mngr, self.members = config, workdir, mngr, len(setup.members)
    self.steps = config.train.steps
    self.sampler = Sampler(setup)
    self.evaluator = cleanup.enter_context(contextlib.closing(Evaluator(setup, workdir, resume_step=start)))
    wandb = {"wandb": config.log.wandb, "wandb_project": config.log.wandb_project}
    writer = writers_lib.open_writers(workdir, resume_step=start, primary=primary, **wandb)
    self.writer = cleanup.enter_context(contextlib.closing(writer))
    cleanup.callback(mngr.wait_until_finished)
    self.writer.write_config(resolved, step=start)
    self.check = FiniteCheck(config.train.check_finite, mngr)
    self.bar = cleanup.enter_context(
      tqdm.tqdm(
        total=self.steps,
        initial=start,
        desc="train",
        mininterval=0.5 if sys.stderr.isatty() else 30,  # a log file gets a line every 30 s, not a torrent
        **({} if primary else {"disable": True}),  # an explicit disable=False would override TQDM_DISABLE
      )
    )

  def sample_due(self, step: int) -> bool:
    return step % self.config.train.sample_every == 0 or step == self.steps

  def eval_due(self, step: int) -> bool:
    every = self.config.eval.every
    return bool(every and step % every == 0) or (step == self.steps and self.config.eval.final)

  def owed(self, state: GANState, start: int) -> None:
    """What the checkpointed step still owes: its run came from an older gan_jax, or eval.final was turned on."""
    if start and self.sample_due(start) and not os.path.exists(sample_path(self.workdir, start)):
      self.sample(state, start)
    if start and self.eval_due(start) and not self.evaluator.has_record(start):
      self.score(state, start)

  def log(self, step: int, metrics: dict[str, jax.Array]) -> None:
    self.bar.update(1)
    if step % self.config.train.log_every and step != self.steps:
      return
    scalars_M = jax.device_get(metrics)
    for m in range(self.members):
      self.writer.write(step, {k: v[m] for k, v in scalars_M.items()}, member=m if self.members > 1 else None)
    self.bar.set_postfix({k: f"{float(v[0]):.3f}" for k, v in scalars_M.items() if k in ("d_loss", "g_loss")})
    self.check.scalars(step, scalars_M)

  def finish(self, step: int, state: GANState, checkpoint_now: bool = False) -> None:
    """The sample grid, the evaluation and the checkpoint that are due at `step` (a checkpoint if `checkpoint_now`)."""
    saving = step % self.config.checkpoint.every == 0 or step == self.steps or checkpoint_now
    if self.sample_due(step) or self.eval_due(step) or saving:
      self.check.state(step, state)
    if self.sample_due(step):
      self.sample(state, step)
    if self.eval_due(step):
      self.score(state, step)
    if saving:
      checkpoint.save(self.mngr, step, state)
      self.check.saved(step)

  def sample(self, state: GANState, step: int) -> None:
    picture = self.sampler.save(state, self.workdir, step)
    if picture is not None:
      self.writer.write_image(step, picture)

  def score(self, state: GANState, step: int) -> None:
    self.evaluator.run(state, step, final=step == self.steps)
    self.writer.write_eval(step, self.evaluator.last)


def check_resumable(
  config: ml_collections.ConfigDict,
  workdir: str,
  loss_fn: losses.LossFn | None = None,
  allow_config_change: bool = False,
) -> dict:
  """Everything that can refuse a workdir, checked before anything in it changes: a usable path, the same
  architecture as its config.json, its checkpoints' layout, a step count that reaches its checkpoint, and no
  change that redefines trained steps unless allowed. Returns the config's changes since the last start."""
  workdir_lib.check_writable(workdir)
  for folder in ("checkpoints", "checkpoints_best"):
    checkpoint.check_layout(os.path.join(os.path.abspath(workdir), folder))
  saved = checkpoint.saved_steps(workdir)
  if not os.path.exists(os.path.join(workdir, "config.json")):
    changed = {}
  else:
    previous, new = config_lib.to_dict(config_lib.read_run_config(workdir)), config_lib.to_dict(config)
    if loss_fn is not None:  # recorded by its import path (run_config_json)
      new["loss"]["name"] = registry.describe(loss_fn)
    diff = config_lib.architecture_mismatch(previous, new)
    if diff:
      raise ValueError(
        f"workdir {workdir!r} holds a run with another architecture ({'; '.join(diff)}); "
        "expected the same model and data keys, or a new --workdir"
      )
    # Before its first checkpoint a workdir has no trained step to redefine.
    changed = history.check(workdir, previous, new, allow_config_change or not saved)
  if saved and max(saved) > config.train.steps:
    raise ValueError(
      f"train.steps={config.train.steps} is below the step of {workdir!r}'s checkpoint, {max(saved)}; expected "
      f"train.steps >= {max(saved)} to resume it, or a new --workdir"
    )
  return changed


def resume(setup: Setup, workdir: str) -> tuple[GANState, ocp.CheckpointManager]:
  """The state to train from (the newest checkpoint that restores, else a fresh one) and the checkpoint
  manager. Then, and only then (a refused restore changes nothing), clears what a killed process left
  behind: unfinished saves, half-rewritten logs, checkpoints past `keep`, unreadable ones set aside."""
  config, primary = setup.config, jax.process_index() == 0
  mngr = checkpoint.manager(workdir, config.checkpoint.keep)
  fresh = setup.init_state()
  state, step, skipped = fresh, 0, []
  if mngr.latest_step() is not None:
    try:
      state, step, skipped = checkpoint.restore_newest(mngr, fresh)
    except BaseException:
      mngr.close()
      raise
    # Hyperparameters come from the config, so a resumed run (a population too) may change its learning rates.
    state = state.replace(hparams=fresh.hparams)
  del fresh  # on resume, its buffers are freed rather than held beside the restored ones
  mngr.close()
  if primary:
    workdir_lib.remove_stale_files(workdir)
    for (s, why), where in zip(skipped, checkpoint.set_aside(workdir, [s for s, _ in skipped]), strict=True):
      print(f"warning: checkpoint {s} does not restore ({why}); moved to {where}", file=sys.stderr)
  parallel.sync("gan_jax.resume.clean")
  if parallel.max_over_processes(step) != -parallel.max_over_processes(-step):
    raise RuntimeError(f"the processes restored checkpoints of different steps (this one: {step}); check {workdir!r}")
  mngr = checkpoint.manager(workdir, config.checkpoint.keep)
  if step:
    checkpoint.keep_newest(mngr, config.checkpoint.keep)  # on every process: orbax's delete waits for all
    print(f"Resuming {workdir} from its checkpoint at step {step}.", file=sys.stderr)
  return state, mngr


def stop_agreed(signum: int | None, step: int, log_every: int) -> int | None:
  """The stop signal every process acts on at this step. One process stops alone; several agree at log steps
  (a process that stopped alone would leave the others waiting in a collective)."""
  if jax.process_count() == 1:
    return signum
  if step % log_every:
    return None
  return parallel.max_over_processes(signum or 0) or None


class FiniteCheck:
  """`train.check_finite`: losses at log steps and the whole state before anything is saved, on device; a
  non-finite value stops the run (guard.Diverged) with the newest saved checkpoint still finite."""

  def __init__(self, on: bool, mngr: ocp.CheckpointManager):
    self.on, self.last_saved = on, mngr.latest_step()

  def scalars(self, step: int, scalars_M: dict[str, np.ndarray]) -> None:
    bad = self.on and guard.first_non_finite(scalars_M)
    if bad:
      name, member, value = bad
      self._stop(f"{name} is {value} at step {step} (member {member})")

  def state(self, step: int, state: GANState) -> None:
    if not self.on:
      return
    finite_M = np.asarray(jax.device_get(guard.finite_members(state)))
    if not finite_M.all():
      self._stop(f"the state of member {int(np.argmin(finite_M))} holds NaN or inf at step {step}")

  def saved(self, step: int) -> None:
    self.last_saved = step

  def _stop(self, what: str) -> None:
    kept = f"its newest checkpoint, step {self.last_saved}, is finite" if self.last_saved else "no checkpoint saved"
    raise guard.Diverged(
      f"diverged: {what}; {kept}. Expected finite losses: lower the learning rates, or add a penalty "
      "(train.check_finite=False trains on regardless)"
    )


def run_config_json(setup: Setup, loss_fn: losses.LossFn | None = None) -> dict:
  """config.json: the resolved config, the data's shape and classes (so loading a run needs no dataset) and
  provenance. A `loss_fn` given in Python is recorded as loss.name by its import path, so a resume from the
  command line uses the same loss, or refuses in one line when the function cannot be imported."""
  from gan_jax import provenance

  config = setup.config
  if loss_fn is not None:
    config = config.copy_and_resolve_references()
    config.loss.name = registry.describe(loss_fn)
  return config_lib.run_config_json(config, data_info=data.info_to_json(setup.info), provenance=provenance.provenance())


def step_batches(
  members: list[ml_collections.ConfigDict], start: int, d_steps: int, batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
  """This process's data for each step from `start + 1` on: arrays [M, U, B, ...] (members, D updates, examples).

  Member m reads its own stream (its seed's order); D update u of step s reads data step s*U + u.
  """
  streams = [
    data.make_batches(
      m,
      start_step=start * d_steps,
      examples_per_step=batch_size,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
    )
    for m in members
  ]
  while True:
    per_member = [[next(s) for _ in range(d_steps)] for s in streams]
    yield {key: np.stack([np.stack([b[key] for b in bs]) for bs in per_member]) for key in per_member[0][0]}
