"""`train_and_evaluate(config, workdir)`: the one train loop, composed from pure pieces.

A step's work ends with its checkpoint: logs, samples and the evaluation (with its best checkpoint) come
first, so a checkpointed step owes nothing, and a run resumed from it repeats only later steps. What a step
may still owe after an older version of a run (an evaluation, a sample grid) is done on resume.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from gan_jax import config as config_lib
from gan_jax import data, losses, parallel
from gan_jax.train import checkpoint, guard
from gan_jax.train import workdir as workdir_lib
from gan_jax.train import writers as writers_lib
from gan_jax.train.evaluator import Evaluator, Sampler, sample_path
from gan_jax.train.setup import Setup, build
from gan_jax.train.state import GANState


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, *, loss_fn: losses.LossFn | None = None
) -> GANState:
  """Trains (or resumes) the run in `workdir`; returns the final state. `loss_fn` overrides loss.name.

  A run is a population of M >= 1 members: one state stacked on a leading axis, one vmapped step. Bad input
  raises ValueError before anything in `workdir` changes; the workdir is locked for the run's life.
  """
  setup = build(config, loss_fn)
  check_resumable(config, workdir)
  primary = jax.process_index() == 0
  created = not os.path.exists(workdir)
  os.makedirs(workdir, exist_ok=True)
  lock = workdir_lib.WorkdirLock(workdir).acquire() if primary else None
  try:
    state, mngr = resume(setup, workdir)
  except BaseException:
    if lock is not None:  # refused: the workdir is left as it was found
      lock.release(undo=True)
      if created and not os.listdir(workdir):
        os.rmdir(workdir)
    raise
  try:
    if primary:
      workdir_lib.write_json_atomic(os.path.join(workdir, "config.json"), run_config_json(setup))
    return _train(setup, workdir, state, mngr)
  finally:
    mngr.close()
    if lock is not None:
      lock.release()


def _train(setup: Setup, workdir: str, state: GANState, mngr: ocp.CheckpointManager) -> GANState:
  config, members, mesh = setup.config, setup.members, setup.mesh
  start, steps = int(state.step[0]), config.train.steps
  train_step = setup.train_step()
  batches = step_batches(members, start, config.train.d_steps, config.train.batch_size)
  sampler = Sampler(setup)
  evaluator = Evaluator(setup, workdir, resume_step=start)
  writer = writers_lib.open_writers(
    workdir,
    resume_step=start,
    primary=jax.process_index() == 0,
    wandb=config.log.wandb,
    wandb_project=config.log.wandb_project,
  )
  writer.write_config(run_config_json(setup), step=start)

  def sample(state: GANState, step: int) -> None:
    picture = sampler.save(state, workdir, step)
    if picture is not None:
      writer.write_image(step, picture)

  def score(state: GANState, step: int) -> None:
    evaluator.run(state, step)
    writer.write_eval(step, evaluator.last)

  eval_due = lambda s: bool(config.eval.every and s % config.eval.every == 0) or (s == steps and config.eval.final)
  sample_due = lambda s: s % config.train.sample_every == 0 or s == steps
  check = FiniteCheck(config.train.check_finite, mngr)
  bar = tqdm.tqdm(
    total=steps,
    initial=start,
    desc="train",
    disable=jax.process_index() != 0,
    mininterval=0.5 if sys.stderr.isatty() else 30,  # a log file gets a line every 30 s, not a torrent
  )
  try:
    # What the checkpointed step still owes: its run came from an older gan_jax, or eval.final was turned on since.
    if start and sample_due(start) and not os.path.exists(sample_path(workdir, start)):
      sample(state, start)
    if start and eval_due(start) and not evaluator.has_record(start):
      score(state, start)
    previous = None
    with guard.StopSignals() as stop:
      for step in range(start + 1, steps + 1):
        state, metrics = train_step(state, parallel.put_batch(next(batches), mesh))
        # Wait for the previous step only: the host stays one step ahead, and the bar tells the truth.
        jax.block_until_ready(previous)
        previous = metrics
        bar.update(1)
        if step % config.train.log_every == 0 or step == steps:
          scalars_M = jax.device_get(metrics)
          for m in range(len(members)):
            writer.write(step, {k: v[m] for k, v in scalars_M.items()}, member=m if len(members) > 1 else None)
          bar.set_postfix({k: f"{float(v[0]):.3f}" for k, v in scalars_M.items() if k in ("d_loss", "g_loss")})
          check.scalars(step, scalars_M)
        stopping = stop_agreed(stop.signum, step, config.train.log_every)
        saving = step % config.checkpoint.every == 0 or step == steps or stopping
        if sample_due(step) or eval_due(step) or saving:
          check.state(step, state)
        if sample_due(step):
          sample(state, step)
        if eval_due(step):
          score(state, step)
        if saving:
          checkpoint.save(mngr, step, state)
          check.saved(step)
        if stopping:
          mngr.wait_until_finished()
          raise guard.RunStopped(stopping, f"checkpoint saved at step {step}; the same command resumes {workdir!r}")
  finally:
    bar.close()
    writer.close()
    mngr.wait_until_finished()
    evaluator.close()
  evaluator.summarize()
  return state


def check_resumable(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Everything that can refuse a workdir, checked before anything in it changes: a usable path, the same
  architecture as its config.json, its checkpoints' layout and a step count that reaches its checkpoint."""
  workdir_lib.check_writable(workdir)
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    previous = config_lib.to_dict(config_lib.read_run_config(workdir))
    diff = config_lib.architecture_mismatch(previous, config_lib.to_dict(config))
    if diff:
      raise ValueError(
        f"workdir {workdir!r} holds a run with another architecture ({'; '.join(diff)}); "
        "expected the same model and data keys, or a new --workdir"
      )
  for folder in ("checkpoints", "checkpoints_best"):
    checkpoint.check_layout(os.path.join(os.path.abspath(workdir), folder))
  saved = checkpoint.saved_steps(workdir)
  if saved and max(saved) > config.train.steps:
    raise ValueError(
      f"train.steps={config.train.steps} is below the step of {workdir!r}'s checkpoint, {max(saved)}; expected "
      f"train.steps >= {max(saved)} to resume it, or a new --workdir"
    )


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
  mngr = checkpoint.manager(workdir, config.checkpoint.keep)
  if step:
    if primary:
      checkpoint.keep_newest(mngr, config.checkpoint.keep)
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


def run_config_json(setup: Setup) -> dict:
  """config.json: the resolved config, the data's shape and classes (so loading a run needs no dataset) and
  provenance."""
  from gan_jax import provenance

  return config_lib.run_config_json(
    setup.config, data_info=data.info_to_json(setup.info), provenance=provenance.provenance()
  )


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
