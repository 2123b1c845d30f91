"""The config, validated once into what the train step reads: `Options.from_config(config)`.

train.setup builds every run from it, and `gan-jax sweep` checks every point with it before any trains.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Callable, Iterator

import ml_collections

from gan_jax import diffaugment, losses, models, optimizers, penalties
from gan_jax.train import writers

UPDATE_ORDERS = ("alternating", "simultaneous")


@dataclasses.dataclass(frozen=True)
class Options:
  """The static choices of one member's step; the float hyperparameters live in the state (state.HPARAMS)."""

  d_steps: int  # D updates per step, each on its own real batch
  update_order: str  # "alternating": G against the updated D; "simultaneous": both from one D pass
  loss_fn: losses.LossFn
  penalty_fn: penalties.PenaltyFn | None
  penalty_at: str  # where penalty_fn evaluates D: penalties.SIDES
  penalty_every: int  # lazy regularisation: every k-th D update, weighted by k
  acgan_weight: float  # > 0: an ACGAN class head's cross-entropy joins both losses
  augment_policy: tuple[str, ...]  # DiffAugment ops before every D call
  weight_clip: float  # > 0: D's parameters clipped to [-c, c] after each update
  ema_start: int  # steps before which the EMA copies G
  g_fresh_noise: bool = False  # G's update draws its own z rather than reusing the last D update's fakes

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, loss_fn: Callable | None = None) -> Options:
    """Checks every value the step depends on; `loss_fn` overrides loss.name. Raises ValueError in one line."""
    check_run_values(config)
    train, penalty = config.train, config.penalty
    if train.update_order not in UPDATE_ORDERS:
      raise ValueError(f"train.update_order={train.update_order!r}: expected one of {UPDATE_ORDERS}")
    if train.update_order == "simultaneous" and train.d_steps != 1:
      raise ValueError(
        f"train.update_order='simultaneous' takes one D update per step; got train.d_steps={train.d_steps}"
      )
    if train.g_fresh_noise and train.update_order != "alternating":
      raise ValueError(
        "train.g_fresh_noise=True draws G's own pass after D's updates; expected train.update_order='alternating'"
      )
    models.check_d_conditioning(config.model)
    acgan = config.model.conditional and config.model.d_conditioning == "acgan"
    weight = config.loss.acgan_weight
    if weight < 0 or (weight > 0) != acgan:
      raise ValueError(
        f"loss.acgan_weight={weight} with model.conditional={config.model.conditional}, "
        f"model.d_conditioning={config.model.d_conditioning!r}: the ACGAN class head needs all of "
        "model.conditional=True, model.d_conditioning='acgan' and loss.acgan_weight > 0 (1.0 in Odena et al. 2017)"
      )
    loss = losses.get(loss_fn or config.loss.name, label_smoothing=config.loss.label_smoothing)
    # The logits the step gives it: the whole (gathered) batch, packed by model.pac (PacGAN) where it is.
    losses.check(loss, batch_sizes=(4, train.batch_size, max(1, train.batch_size // max(1, config.model.pac))))
    pen_options = {"one_sided": True} if penalty.one_sided else {}
    if penalty.form != "paper":
      if penalty.form not in penalties.FORMS or penalty.name not in ("wgan_gp", "dragan"):
        raise ValueError(
          f"penalty.form={penalty.form!r} with penalty.name={penalty.name!r}: expected 'paper', or 'compare_gan' "
          "with penalty.name 'wgan_gp' or 'dragan'"
        )
      pen_options["form"] = penalty.form
    pen = None
    if penalty.name != "none":  # a packed D's penalty is on its packed inputs (models.packed_penalty)
      pen = models.packed_penalty(penalties.get(penalty.name, **pen_options), config.model.pac)
    return cls(
      d_steps=train.d_steps,
      update_order=train.update_order,
      loss_fn=loss,
      penalty_fn=pen,
      penalty_at=penalties.applies_at(penalty.name),
      penalty_every=penalty.every,
      acgan_weight=float(weight),
      augment_policy=diffaugment.parse_policy(config.augment.policy),
      weight_clip=float(train.weight_clip),
      ema_start=train.ema_start,
      g_fresh_noise=bool(train.g_fresh_noise),
    )

  @property
  def acgan(self) -> bool:
    return self.acgan_weight > 0


# (key, lowest allowed value): counts and periods of the loop, the model and the evaluation.
_INTEGERS = (
  ("train.steps", 1),
  ("train.batch_size", 1),
  ("train.log_every", 1),
  ("train.sample_every", 1),
  ("train.num_devices", 0),
  ("train.member_devices", 0),
  ("checkpoint.every", 1),
  ("checkpoint.keep", 1),
  ("checkpoint.keep_best", 0),
  ("eval.every", 0),
  ("eval.num_samples", 0),
  ("model.latent_dim", 1),
  ("model.g_width", 1),
  ("model.d_width", 1),
  ("optim.g.warmup_steps", 0),
  ("optim.d.warmup_steps", 0),
  ("train.d_steps", 1),
  ("train.ema_start", 0),
  ("penalty.every", 1),
  ("model.pac", 1),
  ("data.resolution", 0),
  ("data.channels", 0),
  ("population.size", 1),
  ("slurm.timeout_min", 1),
  ("slurm.gpus_per_node", 0),
  ("slurm.cpus_per_task", 1),
  ("slurm.mem_gb", 0),
)


# Step counters and periods live in int32 arrays; seeds become uint32 PRNG keys (jax.random.PRNGKey).
INT32_MAX, SEED_MAX = 2**31 - 1, 2**32 - 1


def check_run_values(config: ml_collections.ConfigDict) -> None:
  """The values every run needs in range, each member's too; raises ValueError in one line naming the first bad
  one. What depends on the data (eval.best_metric, the image size) is checked where the data is known."""
  for key, low in _INTEGERS:
    _check_int(key, _get(config, key), low, high=INT32_MAX)
  for key, value in _int_leaves(config):  # an experiment's own keys too: TensorBoard's hparams take int64 at most
    _check_int(key, value, -(2**63), high=2**63 - 1)
  size = config.population.size if isinstance(config.population.size, int) else 1
  _check_int("seed", config.seed, 0, high=SEED_MAX - max(0, size - 1), why="(member m takes seed + m)")
  for value in tuple(config.population.seed):
    _check_int("population.seed value", value, 0, high=SEED_MAX)
  if config.log.wandb and importlib.util.find_spec("wandb") is None:
    raise ValueError("log.wandb=True: Weights & Biases is not installed; expected `pip install 'gan-jax[wandb]'`")
  if config.log.wandb:
    writers.check_wandb_credentials()
  for net in ("g", "d"):
    o = config.optim[net]
    if o.name not in optimizers.OPTIMIZERS:
      raise ValueError(f"optim.{net}.name={o.name!r}: expected one of {optimizers.names()} (gan_jax.optimizers)")
    _check_float(f"optim.{net}.b1", o.b1, 0.0, 1.0, "[0, 1)")
    _check_float(f"optim.{net}.b2", o.b2, 0.0, 1.0, "[0, 1)")
    _check_float(f"optim.{net}.grad_clip", o.grad_clip, 0.0, math.inf, ">= 0 (0 disables)")
  _check_float("loss.label_smoothing", config.loss.label_smoothing, 0.0, 1.0, "[0, 1)")
  _check_float("train.weight_clip", config.train.weight_clip, 0.0, math.inf, ">= 0 (0 disables)")
  _check_float("model.dropout", config.model.dropout, 0.0, 1.0, "[0, 1)")
  for key, target in (("g_lr", "optim.g.lr"), ("d_lr", "optim.d.lr")):
    for value in tuple(config.population[key]) or (_get(config, target),):
      where = f"population.{key} value" if config.population[key] else target
      _check_float(where, value, 0.0, math.inf, "a positive finite learning rate", open_low=True)
  for value in tuple(config.population.ema_decay) or (config.train.ema_decay,):
    where = "population.ema_decay value" if config.population.ema_decay else "train.ema_decay"
    _check_float(where, value, 0.0, 1.0, "[0, 1) (0 disables the EMA)")
  for value in tuple(config.population.penalty_weight) or (config.penalty.weight,):
    where = "population.penalty_weight value" if config.population.penalty_weight else "penalty.weight"
    _check_float(where, value, 0.0, math.inf, ">= 0")


def _int_leaves(config: ml_collections.ConfigDict, prefix: str = "") -> Iterator[tuple[str, int]]:
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from _int_leaves(value, f"{prefix}{key}.")
    elif isinstance(value, int) and not isinstance(value, bool):
      yield f"{prefix}{key}", value


def _get(config: ml_collections.ConfigDict, dotted: str) -> object:
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node


def _check_float(key: str, value: object, low: float, high: float, expected: str, open_low: bool = False) -> None:
  """A finite number in [low, high), or (low, high) with `open_low`."""
  ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
  ok = ok and (value > low if open_low else value >= low) and value < high
  if not ok:
    raise ValueError(f"{key}={value!r}: expected {expected}")


def _check_int(key: str, value: object, low: int, why: str = "", high: int | None = None) -> None:
  ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
  if not ok:
    bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
    raise ValueError(f"{key}={value!r}: expected an integer {bounds}{' ' + why if why else ''}")
