"""`train_and_evaluate(config, workdir)`: the one train loop, composed from pure pieces."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from gan_jax import config as config_lib
from gan_jax import data, parallel
from gan_jax import records as records_lib
from gan_jax.data import synthetic
from gan_jax.eval import evaluate
from gan_jax.eval import metrics as metrics_lib
from gan_jax.images import save_samples
from gan_jax.records import keep_records_until
from gan_jax.train import checkpoint
from gan_jax.train.population import take_member
from gan_jax.train.setup import Setup, build
from gan_jax.train.state import GANState
from gan_jax.train.writers import MetricsWriter

NUM_FIXED_IMAGES, NUM_FIXED_POINTS = 64, 2500


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *, loss_fn=None) -> GANState:
  """Trains (or resumes) the run in `workdir`; returns the final state. `loss_fn` overrides loss.name.

  A run is a population of M >= 1 members: one state stacked on a leading axis, one vmapped step.
  """
  # ------------------------------------------------------------------------ config, data, model, sharded step
  setup = build(config, loss_fn)
  members, mesh = setup.members, setup.mesh
  fresh = setup.init_state()
  train_step = setup.train_step()

  # ------------------------------------------------------------------------ workdir, checkpoint: resume
  # Written only once everything above has accepted the config, so a typo leaves no trace.
  os.makedirs(workdir, exist_ok=True)
  mngr = checkpoint.manager(workdir, config.checkpoint.keep)
  write_config(config, workdir, resuming=mngr.latest_step() is not None)
  state = fresh
  if mngr.latest_step() is not None:
    # Hyperparameters come from the config, so a resumed run (a population too) may change its learning rates.
    state = checkpoint.restore(mngr, fresh).replace(hparams=fresh.hparams)
    print(f"Resuming {workdir} from its checkpoint at step {int(state.step[0])}.", file=sys.stderr)
  del fresh  # on resume, the initial state's buffers are freed rather than held beside the restored ones
  start = int(state.step[0])

  # ------------------------------------------------------------------------ loop
  batches = step_batches(members, start, config.train.d_steps, config.train.batch_size)
  sampler = Sampler(setup)
  evaluator = Evaluator(setup, workdir, resume_step=start)
  writer = MetricsWriter(workdir, resume_step=start, primary=jax.process_index() == 0)
  bar = tqdm.tqdm(
    total=config.train.steps,
    initial=start,
    desc="train",
    disable=jax.process_index() != 0,
    mininterval=0.5 if sys.stderr.isatty() else 30,  # a log file gets a line every 30 s, not a torrent
  )
  previous = None
  try:
    for step in range(start + 1, config.train.steps + 1):
      state, metrics = train_step(state, parallel.put_batch(next(batches), mesh))
      # Wait for the previous step only: the host stays one step ahead, and the bar tells the truth.
      jax.block_until_ready(previous)
      previous = metrics
      bar.update(1)
      if step % config.train.log_every == 0 or step == config.train.steps:
        scalars_M = jax.device_get(metrics)
        for m in range(len(members)):
          writer.write(step, {k: v[m] for k, v in scalars_M.items()}, member=m if len(members) > 1 else None)
        bar.set_postfix({k: f"{float(v[0]):.3f}" for k, v in scalars_M.items() if k in ("d_loss", "g_loss")})
      if step % config.train.sample_every == 0 or step == config.train.steps:
        sampler.save(state, workdir, step)
      if step % config.checkpoint.every == 0 or step == config.train.steps:
        checkpoint.save(mngr, step, state)
      if (config.eval.every and step % config.eval.every == 0) or (step == config.train.steps and config.eval.final):
        evaluator.run(state, step)
  finally:
    bar.close()
    writer.close()
    mngr.wait_until_finished()
    mngr.close()
    evaluator.close()
  evaluator.summarize()
  return state


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


def write_config(config: ml_collections.ConfigDict, workdir: str, resuming: bool) -> None:
  """Writes config.json; refuses to resume a run whose state has other shapes."""
  path = os.path.join(workdir, "config.json")
  resolved = config_lib.run_config_json(config)
  if resuming and os.path.exists(path):
    previous = config_lib.to_dict(config_lib.read_run_config(workdir))
    diff = config_lib.architecture_mismatch(previous, config_lib.to_dict(config))
    if diff:
      raise ValueError(
        f"workdir {workdir!r} holds a run with another architecture ({'; '.join(diff)}); "
        "expected the same model and data keys, or a new --workdir"
      )
  if jax.process_index() == 0:
    with open(path, "w") as f:
      json.dump(resolved, f, indent=2, sort_keys=True)


class Sampler:
  """Samples of the EMA generator on a fixed noise batch, for the PNGs saved during training."""

  def __init__(self, setup: Setup):
    gan, info = setup.gan, setup.info
    n = NUM_FIXED_IMAGES if info.kind == "images" else NUM_FIXED_POINTS
    self.z_NZ = jax.random.normal(jax.random.PRNGKey(setup.config.seed + 1), (n, gan.latent_dim))
    self.kind = info.kind
    self.reference = synthetic.mode_geometry(info.name)[0] if info.kind == "points" else None
    self._generate = jax.jit(gan.generate)

  def save(self, state: GANState, workdir: str, step: int) -> None:
    """Member 0's samples (the only member of a plain run)."""
    if jax.process_index() != 0:
      return
    member = take_member((state.ema_params, state.g.stats), 0)
    samples = np.asarray(self._generate(*member, jnp.asarray(self.z_NZ)))
    save_samples(os.path.join(workdir, "samples", f"step_{step:07d}.png"), samples, self.kind, self.reference)


class Evaluator:
  """Scores every member's EMA generator under the evaluation protocol; keeps the best checkpoints.

  Records go to eval.jsonl (with `member` in populations); checkpoints_best/ keeps the
  `checkpoint.keep_best` best states by `eval.best_metric`, averaged over the members. A resumed run
  drops the records and best checkpoints past its checkpoint (it trains and scores those steps again) and
  counts the earlier records, `gan-jax eval --workdir` rows included, in its best score.
  """

  def __init__(self, setup: Setup, workdir: str, resume_step: int = 0):
    gan, config, info = setup.gan, setup.config, setup.info
    self.gan, self.config, self.workdir = gan, config, workdir
    # Each member is scored with its own seed, so its record equals the one its run alone would write.
    self.members = setup.members
    self.metric = config.eval.best_metric or ("modes" if info.kind == "points" else "fid")
    self.direction = metrics_lib.direction(self.metric)
    self._generate = jax.jit(gan.generate)
    self.best: dict | None = None
    self.last: list[dict] = []
    if jax.process_index() == 0:
      by_step: dict[int, list[dict]] = {}
      for r in keep_records_until(os.path.join(workdir, records_lib.EVAL_FILE), resume_step):
        if self.metric in r:
          by_step.setdefault(r["step"], []).append(r)
      for step, records in by_step.items():
        self._note_score(step, records)
    self._best_mngr = None
    if config.checkpoint.keep_best:
      self._best_mngr = checkpoint.manager(
        workdir,
        config.checkpoint.keep_best,
        folder="checkpoints_best",
        best_metric=self.metric,
        best_mode=self.direction,
      )
      for stale in [s for s in self._best_mngr.all_steps() if s > resume_step]:
        self._best_mngr.delete(stale)  # from before an interruption: this run trains and scores them again

  def run(self, state: GANState, step: int) -> None:
    records = []
    for m, member in enumerate(self.members):
      params, stats = take_member((state.ema_params, state.g.stats), m)
      generate_fn = evaluate.noise_sampler(
        lambda z_NZ, params=params, stats=stats: self._generate(params, stats, z_NZ),
        self.gan.latent_dim,
        seed=member.seed,
      )
      result = evaluate.evaluate(
        generate_fn,
        member,
        num_samples=member.eval.num_samples or None,
        feature_net=member.eval.feature_net,
        inception_weights=member.eval.inception_weights,
        seed=member.seed,
        ema=True,
        step=step,
      )
      records.append({"step": step, **({"member": m} if len(self.members) > 1 else {}), **result})
    if jax.process_index() == 0:
      for r in records:
        records_lib.append_record(self.workdir, r)
    self.last = records
    score = self._note_score(step, records) if self.metric in records[0] else None
    if self._best_mngr is not None and score is not None:
      self._best_mngr.save(step, args=checkpoint.save_args(state), metrics={self.metric: score}, force=True)

  def _note_score(self, step: int, records: list[dict]) -> float:
    """The members' mean of the metric at `step`, kept as the best when it beats the best so far."""
    score = float(np.mean([r[self.metric] for r in records]))
    if self.best is None or self._better(score, self.best["score"]):
      self.best = {"step": step, "score": score}
    return score

  def _better(self, a: float, b: float) -> bool:
    return a > b if self.direction == "max" else a < b

  def summarize(self) -> None:
    if not self.last or jax.process_index() != 0:
      return
    final = {k: v for k, v in self.last[0].items() if k not in ("protocol", "member") and isinstance(v, float | int)}
    print(f"final evaluation (member 0): {json.dumps(final)}", file=sys.stderr)
    if self.best is not None:
      best = f"{self.best['score']:.4g} at step {self.best['step']}"
      print(f"best {self.metric} (mean over members): {best}", file=sys.stderr)

  def close(self) -> None:
    if self._best_mngr is not None:
      self._best_mngr.wait_until_finished()
      self._best_mngr.close()
