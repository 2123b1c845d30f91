"""The run state (one immutable pytree) and the static pieces that act on it."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import config as config_lib
from gan_jax import models
from gan_jax import optimizers as optimizers_lib
from gan_jax.data import DatasetInfo

Params = Any


@flax.struct.dataclass
class NetState:
  """One network: its parameters, its non-parameter collections (batch norm statistics, spectral-norm
  vectors) and its optimizer's state."""

  params: Params
  stats: Params
  opt: optax.OptState


@flax.struct.dataclass
class GANState:
  """Everything a run needs to continue bit-for-bit: checkpointing this is checkpointing the run."""

  step: jax.Array  # int32 scalar: generator updates done
  rng: jax.Array  # uint32[2] root key; step s draws from fold_in(rng, s)
  g: NetState
  d: NetState
  ema_params: Params  # EMA of g.params: the generator used for samples and evaluation
  hparams: dict[str, jax.Array]  # HPARAMS below: per-run (per-member) float hyperparameters


@dataclasses.dataclass(frozen=True)
class GAN:
  """The static half of a run: networks, optimizers and objective, closed over by the step."""

  generator: nn.Module
  discriminator: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  latent_dim: int
  data_shape: tuple[int, ...]

  def generate(self, params: Params, stats: Params, z_BZ: jax.Array, labels_B=None) -> jax.Array:
    """Inference-mode samples (running batch-norm statistics), float32 whatever train.compute_dtype."""
    return self.generator.apply({"params": params, **stats}, z_BZ, labels_B, train=False).astype(jnp.float32)


# Float hyperparameters kept in the state rather than closed over by the step, so that each member
# of a population (jax.vmap over stacked states) can carry its own value: name -> config key.
HPARAMS = {name: key for name, key in config_lib.MEMBER_KEYS.items() if name != "seed"}


def hparams_of(config: ml_collections.ConfigDict) -> dict[str, float]:
  flat = config_lib.flatten(config_lib.to_dict(config))
  return {name: float(flat[key]) for name, key in HPARAMS.items()}


def make_optimizer(opt: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """The direction of optimizer `opt.name` (gan_jax.optimizers) on a unit-peak warm-up/decay schedule; the step
  scales it by -lr from the state. For Adam at a constant rate this is optax.adam(lr) to the bit."""
  parts = [optax.clip_by_global_norm(opt.grad_clip)] if opt.grad_clip else []
  parts.append(optimizers_lib.get(opt.name)(opt))
  schedule = _unit_schedule(opt, total_steps)
  if schedule is not None:
    parts.append(optax.scale_by_schedule(schedule))
  return optax.chain(*parts)


def _unit_schedule(opt: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule | None:
  rest = max(total_steps - opt.warmup_steps, 1)
  decays = {
    "constant": lambda: optax.constant_schedule(1.0),
    "cosine": lambda: optax.cosine_decay_schedule(1.0, rest),
    "linear": lambda: optax.linear_schedule(1.0, 0.0, rest),
  }
  if opt.schedule not in decays:
    raise ValueError(f"unknown optim schedule {opt.schedule!r}; expected one of {sorted(decays)}")
  if not opt.warmup_steps:
    return None if opt.schedule == "constant" else decays[opt.schedule]()
  warmup = optax.linear_schedule(0.0, 1.0, opt.warmup_steps)
  return optax.join_schedules([warmup, decays[opt.schedule]()], [opt.warmup_steps])


def optimizers(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """G's and D's optimizers; D's schedule counts its updates, train.d_steps per step."""
  return (
    make_optimizer(config.optim.g, config.train.steps),
    make_optimizer(config.optim.d, config.train.steps * config.train.d_steps),
  )


def create_gan(config: ml_collections.ConfigDict, info: DatasetInfo, fast_ops: bool = False) -> GAN:
  """Builds the networks and optimizers the config names; `fast_ops`: see models.get."""
  generator, discriminator = models.get(config.model, info, config.train.compute_dtype, fast_ops)
  g_tx, d_tx = optimizers(config)
  return GAN(generator, discriminator, g_tx, d_tx, config.model.latent_dim, tuple(info.shape))


def init_state(gan: GAN, seed: int | jax.Array, hparams: dict[str, float | jax.Array]) -> GANState:
  """A fresh state: parameters and the root key from `seed`, optimizer states and EMA from the parameters."""
  init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
  g_key, d_key = jax.random.split(init_key)
  z_BZ = jnp.zeros((2, gan.latent_dim), jnp.float32)
  x = jnp.zeros((2, *gan.data_shape), jnp.float32)
  g_vars = gan.generator.init(g_key, z_BZ, None, train=False)
  d_vars = gan.discriminator.init(d_key, x, None, train=False)
  g_params, g_stats = _split(g_vars)
  d_params, d_stats = _split(d_vars)
  return GANState(
    step=jnp.zeros((), jnp.int32),
    rng=rng,
    g=NetState(g_params, g_stats, gan.g_tx.init(g_params)),
    d=NetState(d_params, d_stats, gan.d_tx.init(d_params)),
    ema_params=jax.tree.map(jnp.copy, g_params),  # own buffers: the state is donated
    hparams={k: jnp.asarray(v, jnp.float32) for k, v in hparams.items()},
  )


def _split(variables: dict) -> tuple[Params, Params]:
  variables = dict(variables)
  return variables.pop("params"), variables
