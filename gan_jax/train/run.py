"""Loading a trained run from its workdir and drawing samples from it: `gan_jax.load_run(workdir).generate(64)`."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import config as config_lib
from gan_jax import data, limits, models
from gan_jax.eval import evaluate
from gan_jax.eval.features import resolve_feature_net
from gan_jax.eval.metrics import direction
from gan_jax.images import to_uint8
from gan_jax.progress import progress_bar
from gan_jax.records import EVAL_FILE, read_jsonl
from gan_jax.train import checkpoint, history, xla_cpu
from gan_jax.train.evaluator import own_scores
from gan_jax.train.population import member_configs, stacked_seeds_and_hparams, take_member
from gan_jax.train.setup import best_metric
from gan_jax.train.state import GAN, GANState, create_gan, init_state

# The entry of config.json's run metadata (config.RUN_METADATA) that holds the DatasetInfo (data.info_to_json).
DATA_INFO_KEY = "data_info"


@dataclasses.dataclass
class Run:
  """A trained run: its resolved config, dataset metadata, networks and latest checkpointed state."""

  config: ml_collections.ConfigDict
  info: data.DatasetInfo
  gan: GAN
  state: GANState
  history: list[dict] = dataclasses.field(default_factory=list)  # DIR/history.jsonl: each start and its changes

  @property
  def step(self) -> int:
    """The training step of the loaded checkpoint."""
    return int(np.asarray(self.state.step).reshape(-1)[0])

  def generate(
    self,
    num: int,
    seed: int = 0,
    *,
    ema: bool = True,
    member: int = 0,
    labels: np.ndarray | list[int] | str | None = None,
    batch_size: int = 500,
  ) -> np.ndarray:
    """`num` samples as a user keeps them: uint8 NHWC images (0..255), or float32 N x 2 points for 2D data.

    `labels` (conditional runs): one class per sample, or "all" / "3,1" (sample_labels); None lets the classes
    take turns. The samples are those of `generate(run, ...)`, quantized as `gan-jax sample` writes them.
    """
    labels_N = labels
    if isinstance(labels, str):
      labels_N = sample_labels(labels, num, models.generator_classes(self.gan.generator))
    elif labels is not None:
      labels_N = np.asarray(labels, np.int32)
    x = generate(self, num, seed=seed, ema=ema, member=member, batch_size=batch_size, labels_N=labels_N)
    return to_uint8(x) if self.info.kind == "images" else x.astype(np.float32)


def saved_info(workdir: str) -> data.DatasetInfo | None:
  """The DatasetInfo config.json keeps under DATA_INFO_KEY; None for workdirs written before it did."""
  saved = config_lib.read_run_metadata(workdir).get(DATA_INFO_KEY)
  return None if saved is None else data.info_from_json(saved)


def load_run(workdir: str, step: int | None = None, best: bool = False) -> Run:
  """The resolved config and a checkpointed state of a workdir: the latest, the one of `step` (in checkpoints/
  or checkpoints_best/), or with `best` the best of checkpoints_best/ by the run's eval.best_metric in
  eval.jsonl. Needs no dataset when config.json keeps the dataset's metadata (older workdirs read it from it)."""
  config = config_lib.read_run_config(workdir)
  info = saved_info(workdir) or data.get_info(config)
  # Only the networks: sampling needs no loss, and a user's loss module need not be importable here. The latent
  # searches (inpaint, anomaly) differentiate through G and D: models.fast_ops' gradients where xla_cpu is on.
  gan = create_gan(config, info, fast_ops=xla_cpu.enabled())
  like = jax.jit(jax.vmap(functools.partial(init_state, gan)))(*stacked_seeds_and_hparams(member_configs(config)))
  if best or step is not None:
    return Run(config, info, gan, _restore_chosen(workdir, config, info, like, step, best), history.read(workdir))
  if not checkpoint.saved_steps(workdir):
    raise FileNotFoundError(f"workdir {workdir!r} has no checkpoint yet; expected checkpoints/ from a train run")
  state, step, skipped = _restore_committed(workdir, config, like)
  for s, why in skipped:
    print(f"warning: checkpoint {s} of {workdir} does not restore ({why}); loaded step {step}", file=sys.stderr)
  return Run(config, info, gan, state, history.read(workdir))


def _restore_chosen(
  workdir: str, config: ml_collections.ConfigDict, info: data.DatasetInfo, like: GANState, step: int | None, best: bool
) -> GANState:
  """The state of `step`, or of the best checkpoint in checkpoints_best/ (ranked as the run ranked them)."""
  kept_best = checkpoint.saved_steps(workdir, "checkpoints_best")
  if best:  # ranked as train.evaluator ranks them: its own network's records, the members' mean
    metric = best_metric(config, info.kind)
    net = resolve_feature_net(config.eval.feature_net, info.name, tuple(info.shape))
    scored = own_scores(read_jsonl(os.path.join(workdir, EVAL_FILE)), metric, net)
    ranked = [s for s in kept_best if s in scored]
    if not ranked:
      raise ValueError(f"--best: {workdir!r} keeps no best checkpoint scored by {metric!r}; expected checkpoints_best/")
    step = (max if direction(metric) == "max" else min)(ranked, key=lambda s: scored[s])
  folder = "checkpoints" if step in checkpoint.saved_steps(workdir) else "checkpoints_best"
  if step not in checkpoint.saved_steps(workdir, folder):
    kept = sorted(set(checkpoint.saved_steps(workdir)) | set(kept_best))
    raise ValueError(f"--step {step}: {workdir!r} keeps checkpoints of steps {kept}; expected one of them")
  with contextlib.closing(checkpoint.manager(workdir, config.checkpoint.keep, folder, read_only=True)) as mngr:
    return checkpoint.restore(mngr, like, step)


# A run training in the workdir commits new checkpoints and deletes old ones while a reader lists and reads them.
READ_ATTEMPTS, READ_RETRY_S = 5, 0.5


def _restore_committed(workdir: str, config: ml_collections.ConfigDict, like: GANState) -> tuple:
  """checkpoint.restore_newest of a workdir that may be live: where a read failed or skipped a step and the list
  of checkpoints changed meanwhile (a save committed, an old step deleted), it reads the settled list again
  rather than call the run damaged."""
  for _ in range(READ_ATTEMPTS - 1):
    listed = checkpoint.saved_steps(workdir)
    try:
      state, step, skipped = _read_newest(workdir, config, like)
    except (ValueError, FileNotFoundError):  # orbax lists the steps, then stats each: one may go in between
      if checkpoint.saved_steps(workdir) == listed:
        raise
    else:
      if not skipped or checkpoint.saved_steps(workdir) == listed:
        return state, step, skipped
    time.sleep(READ_RETRY_S)
  return _read_newest(workdir, config, like)


def _read_newest(workdir: str, config: ml_collections.ConfigDict, like: GANState) -> tuple:
  with contextlib.closing(checkpoint.manager(workdir, config.checkpoint.keep, read_only=True)) as mngr:
    return checkpoint.restore_newest(mngr, like)


def sample_labels(spec: str, num: int, num_classes: int) -> np.ndarray:
  """labels_N for `--labels`: "all" cycles through the classes, "3,1" repeats the given ones to `num`."""
  if not num_classes:
    raise ValueError(f"--labels {spec!r}: this run is not conditional (model.conditional=False)")
  if spec == "all":
    return np.arange(num, dtype=np.int32) % num_classes
  try:
    given = [int(s) for s in spec.split(",")]
  except ValueError:
    raise ValueError(f"--labels {spec!r}: expected 'all' or comma-separated class indices like 0,1,2") from None
  bad = [c for c in given if not 0 <= c < num_classes]
  if bad:
    raise ValueError(f"--labels {spec!r}: classes {bad} outside 0..{num_classes - 1}")
  return np.resize(np.asarray(given, np.int32), num)


def member_variables(run: Run, member: int = 0, ema: bool = True) -> tuple[dict, dict]:
  """(g_vars, d_vars) of one member, as Flax `apply` takes them: G's EMA (or raw) parameters, D's."""
  size = run.config.population.size
  if not 0 <= member < size:
    raise ValueError(f"member={member}: expected 0..{size - 1} for this population of {size}")
  s = run.state
  g_params, g_stats, d_params, d_stats = take_member(
    (s.ema_params if ema else s.g.params, s.g.stats, s.d.params, s.d.stats), member
  )
  return {"params": g_params, **g_stats}, {"params": d_params, **d_stats}


def generate(
  run: Run,
  num: int,
  seed: int = 0,
  ema: bool = True,
  member: int = 0,
  batch_size: int = 500,
  labels_N: np.ndarray | None = None,
) -> np.ndarray:
  """`num` samples in [-1, 1] (images NHWC or points N2) of one member, from noise seeded by `seed`.

  A conditional run's sample i is of class labels_N[i]; without labels_N the classes take turns
  (sample_labels "all").
  """
  per_sample = 4 * run.gan.latent_dim + 5 * math.prod(run.info.shape)  # the code, the float sample, its uint8 copy
  limits.check_fits("num", num, per_sample, f"samples of shape {tuple(run.info.shape)}")
  z_NZ = jax.random.normal(jax.random.PRNGKey(seed), (num, run.gan.latent_dim))
  return generate_from(run, z_NZ, ema=ema, member=member, batch_size=batch_size, labels_N=labels_N)


def generate_from(
  run: Run,
  z_NZ: jax.Array,
  ema: bool = True,
  member: int = 0,
  batch_size: int = 500,
  labels_N: np.ndarray | None = None,
) -> np.ndarray:
  """The samples of given codes z_NZ (see `generate`): for interpolations and truncated noise."""
  num = len(z_NZ)
  g_vars, _ = member_variables(run, member, ema)
  params, stats = g_vars["params"], {k: v for k, v in g_vars.items() if k != "params"}
  fn = jax.jit(run.gan.generate)
  num_classes = models.generator_classes(run.gan.generator)
  if labels_N is None and num_classes:
    labels_N = sample_labels("all", num, num_classes)
  if labels_N is not None:
    if not num_classes:
      raise ValueError("labels_N given, but this run is not conditional (model.conditional=False)")
    if len(labels_N) != num:
      raise ValueError(f"labels_N has {len(labels_N)} labels for {num} samples; expected one per sample")
    labels_N = jnp.asarray(labels_N, jnp.int32)
  chunk = lambda i: None if labels_N is None else labels_N[i : i + batch_size]
  out = []
  with progress_bar(num, "generate", "sample") as bar:
    for i in range(0, num, batch_size):
      out.append(np.asarray(fn(params, stats, z_NZ[i : i + batch_size], chunk(i))))
      bar.update(len(out[-1]))
  return np.concatenate(out) if out else np.zeros((0, *run.gan.data_shape), np.float32)


def run_sampler(run: Run, *, seed: int = 0, ema: bool = True, member: int = 0) -> evaluate.GenerateFn:
  """generate_fn of one member of a loaded run (gan_jax.train.run.Run), jitted once.

  A conditional generator's classes take turns across the whole stream, so its samples are
  class-balanced like the real test split.
  """
  g_vars, _ = member_variables(run, member, ema)
  params, stats = g_vars["params"], {k: v for k, v in g_vars.items() if k != "params"}
  fn = jax.jit(run.gan.generate)
  num_classes = models.generator_classes(run.gan.generator)
  produced = 0

  def generate_z(z_NZ: jax.Array) -> jax.Array:
    nonlocal produced
    labels_N = None
    if num_classes:
      labels_N = jnp.asarray((produced + np.arange(len(z_NZ))) % num_classes, jnp.int32)
    produced += len(z_NZ)
    return fn(params, stats, z_NZ, labels_N)

  return evaluate.noise_sampler(generate_z, run.gan.latent_dim, seed)
