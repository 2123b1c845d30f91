"""What a run leaves besides its checkpoints: sample grids (Sampler) and evaluations with the best checkpoints
(Evaluator)."""

from __future__ import annotations

import functools
import json
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import records as records_lib
from gan_jax.data import synthetic
from gan_jax.eval import evaluate, inception
from gan_jax.eval import metrics as metrics_lib
from gan_jax.eval.features import resolve_feature_net
from gan_jax.images import save_samples
from gan_jax.records import keep_records_until
from gan_jax.train import checkpoint, guard
from gan_jax.train.population import take_member
from gan_jax.train.setup import Setup, best_metric
from gan_jax.train.state import GANState

NUM_FIXED_IMAGES, NUM_FIXED_POINTS = 64, 2500


def sample_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, "samples", f"step_{step:07d}.png")


class Sampler:
  """Samples of the EMA generator on a fixed noise batch, for the PNGs saved during training."""

  def __init__(self, setup: Setup):
    gan, info = setup.gan, setup.info
    n = NUM_FIXED_IMAGES if info.kind == "images" else NUM_FIXED_POINTS
    self.z_NZ = jax.random.normal(jax.random.PRNGKey(setup.config.seed + 1), (n, gan.latent_dim))
    self.kind = info.kind
    self.reference = synthetic.MODES[info.name][0] if info.name in synthetic.MODES else None
    self._generate = jax.jit(gan.generate)

  def save(self, state: GANState, workdir: str, step: int) -> np.ndarray | None:
    """Member 0's samples (the only member of a plain run); returns the picture written (process 0 only)."""
    if jax.process_index() != 0:
      return None
    member = take_member((state.ema_params, state.g.stats), 0)
    samples = np.asarray(self._generate(*member, jnp.asarray(self.z_NZ)))
    return save_samples(sample_path(workdir, step), samples, self.kind, self.reference)


def own_scores(records: list[dict], metric: str, net_name: str) -> dict[int, float]:
  """{step: the members' mean of `metric`} over the records of the run's own feature network (a `gan-jax eval
  --feature-net` row of another network is another currency: never compared)."""
  by_step: dict[int, list[float]] = {}
  for r in records:
    if metric in r and r.get("protocol", {}).get("feature_net", net_name) == net_name:
      by_step.setdefault(r["step"], []).append(r[metric])
  return {step: float(np.mean(values)) for step, values in by_step.items()}


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
    # Scores of another network (a `gan-jax eval --feature-net` row) are another currency: never compared.
    self.net_name = resolve_feature_net(config.eval.feature_net, info.name, tuple(info.shape))
    self.metric = best_metric(config, info.kind)
    self.direction = metrics_lib.direction(self.metric)
    self._generate = jax.jit(gan.generate)
    # eval.feature_net=auto on data only the Inception scores, without its weights: train, say so once, skip.
    self.skip_note = evaluate.check_evaluable(config, info) if config.eval.every or config.eval.final else None
    if self.skip_note and jax.process_index() == 0:
      print(self.skip_note, file=sys.stderr)
    self.best: dict | None = None
    self.last: list[dict] = []
    self._scores: dict[int, float] = {}  # step -> the members' mean of the metric
    self._said_no_inception = False
    self._scored_steps: set[int] = set()
    # Every process reads the records (so all agree on what a resumed step still owes); the primary alone cuts.
    path = os.path.join(workdir, records_lib.EVAL_FILE)
    kept = [r for r in records_lib.read_jsonl(path) if r.get("step", 0) <= resume_step]
    if jax.process_index() == 0:
      keep_records_until(path, resume_step)
    self._scored_steps.update(r["step"] for r in kept)
    for step, score in own_scores(kept, self.metric, self.net_name).items():
      self._note_score(step, score)
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
      self._keep_best(config.checkpoint.keep_best)

  def has_record(self, step: int) -> bool:
    return step in self._scored_steps

  def _keep_best(self, keep: int) -> None:
    """Trims checkpoints_best/ to the `keep` best by their eval.jsonl scores: a process killed between a save
    and orbax's clean-up after it leaves one more."""
    steps = self._best_mngr.all_steps()
    if len(steps) <= keep:
      return
    ranked = sorted(steps, key=lambda s: self._scores.get(s, math.inf if self.direction == "min" else -math.inf))
    ranked = ranked if self.direction == "min" else ranked[::-1]
    for step in ranked[keep:]:
      self._best_mngr.delete(step)

  def run(self, state: GANState, step: int, final: bool = False) -> None:
    """Scores each member at `step`; appends the records, then saves the best checkpoint and waits for it.

    The `final` evaluation adds the FID Inception's scores (`inception_fid`, ...) where the run is scored with
    another network and the Inception weights are there (eval.final_inception): a number a paper can quote.
    """
    self.last = []
    if self.skip_note:
      return
    finite_M = np.asarray(guard.finite_members((state.ema_params, state.g.stats)))
    if not finite_M.all():  # reached with train.check_finite=False only
      raise guard.Diverged(
        f"diverged: member {int(np.argmin(finite_M))}'s generator holds NaN or inf at step {step}, which leaves "
        "nothing to evaluate; expected finite parameters (or eval.every=0 and eval.final=False)"
      )
    records = []
    for m, member in enumerate(self.members):
      params, stats = take_member((state.ema_params, state.g.stats), m)
      # A fresh sampler per scoring: the Inception sees the same samples as the run's own network.
      new_sampler = functools.partial(
        evaluate.noise_sampler,
        lambda z_NZ, params=params, stats=stats: self._generate(params, stats, z_NZ),
        self.gan.latent_dim,
        seed=member.seed,
      )
      evaluate_with = functools.partial(
        evaluate.evaluate,
        num_samples=member.eval.num_samples or None,
        inception_weights=member.eval.inception_weights,
        fid_protocol=member.eval.protocol,
        seed=member.seed,
        ema=True,
        step=step,
      )
      result = evaluate_with(new_sampler(), member, feature_net=member.eval.feature_net)
      if final and self._adds_inception(result):
        try:
          extra = evaluate_with(new_sampler(), member, feature_net="inception")
        except (ValueError, OSError) as e:  # damaged weights: the run's own record stands, said in one line
          print(f"no inception_fid: {e}", file=sys.stderr)
        else:
          result |= {f"inception_{k}": v for k, v in extra.items() if k != "protocol"}
          result["protocol"] = {**result["protocol"], "inception": evaluate.without_provenance(extra["protocol"])}
      records.append({"step": step, **({"member": m} if len(self.members) > 1 else {}), **result})
    if jax.process_index() == 0:
      for r in records:
        records_lib.append_record(self.workdir, r)
    self.last = records
    self._scored_steps.add(step)
    score = (
      self._note_score(step, own_scores(records, self.metric, self.net_name)[step])
      if self.metric in records[0]
      else None
    )
    # A step can be in checkpoints_best/ without its record (eval.jsonl deleted by hand): that checkpoint holds
    # this very state, so it stays.
    if self._best_mngr is not None and score is not None and step not in self._best_mngr.all_steps():
      self._best_mngr.save(step, args=checkpoint.save_args(state), metrics={self.metric: score}, force=True)
      # Committed before the step's own checkpoint: a checkpointed step never still owes its best checkpoint.
      self._best_mngr.wait_until_finished()

  def _adds_inception(self, result: dict) -> bool:
    """Whether the final evaluation should add the Inception's scores: asked for, not scored so already, and
    the weights present (absent, the run says so once instead)."""
    if not self.config.eval.final_inception or "fid" not in result or result["protocol"]["feature_net"] == "inception":
      return False
    try:
      inception.weights_path(self.config.eval.inception_weights or None)
    except FileNotFoundError:
      if not self._said_no_inception and jax.process_index() == 0:
        print(
          f"no inception_fid: the FID Inception weights are absent; `{inception.FETCH_COMMAND}` once, then "
          f"`gan-jax eval --workdir {self.workdir} --feature-net inception` scores this run",
          file=sys.stderr,
        )
      self._said_no_inception = True
      return False
    return True

  def _note_score(self, step: int, score: float) -> float:
    """Keeps `step`'s score, and as the best when it beats the best so far."""
    self._scores[step] = score
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
