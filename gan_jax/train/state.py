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

from gan_jax import losses, models, penalties
from gan_jax.data import DatasetInfo

Params = Any


@flax.struct.dataclass
class GANState:
  """Everything a run needs to continue bit-for-bit: checkpointing this is checkpointing the run."""

  step: jax.Array  # int32 scalar: generator updates done
  rng: jax.Array  # uint32[2] root key; step s draws from fold_in(rng, s)
  g_params: Params
  d_params: Params
  g_stats: Params  # non-parameter collections (batch norm statistics, spectral-norm vectors)
  d_stats: Params
  g_opt: optax.OptState
  d_opt: optax.OptState
  ema_params: Params  # EMA of g_params: the generator used for samples and evaluation


@dataclasses.dataclass(frozen=True)
class GAN:
  """The static half of a run: networks, optimizers and objective, closed over by the step."""

  generator: nn.Module
  discriminator: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  loss_fn: losses.LossFn
  penalty_fn: penalties.PenaltyFn | None
  latent_dim: int
  data_shape: tuple[int, ...]

  def generate(self, params: Params, stats: Params, z_BZ: jax.Array, labels_B=None) -> jax.Array:
    """Inference-mode samples (running batch-norm statistics)."""
    return self.generator.apply({"params": params, **stats}, z_BZ, labels_B, train=False)


def make_optimizer(opt: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Adam on an optional warm-up + decay schedule, with optional global-norm clipping."""
  adam = optax.adam(_learning_rate(opt, total_steps), b1=opt.b1, b2=opt.b2)
  return optax.chain(optax.clip_by_global_norm(opt.grad_clip), adam) if opt.grad_clip else adam


def _learning_rate(opt: ml_collections.ConfigDict, total_steps: int) -> float | optax.Schedule:
  rest = max(total_steps - opt.warmup_steps, 1)
  decays = {
      "constant": lambda: optax.constant_schedule(opt.lr),
      "cosine": lambda: optax.cosine_decay_schedule(opt.lr, rest),
      "linear": lambda: optax.linear_schedule(opt.lr, 0.0, rest),
  }
  if opt.schedule not in decays:
    raise ValueError(f"unknown optim schedule {opt.schedule!r}; expected one of {sorted(decays)}")
  if not opt.warmup_steps:
    return opt.lr if opt.schedule == "constant" else decays[opt.schedule]()
  warmup = optax.linear_schedule(0.0, opt.lr, opt.warmup_steps)
  return optax.join_schedules([warmup, decays[opt.schedule]()], [opt.warmup_steps])


def create_gan(config: ml_collections.ConfigDict, info: DatasetInfo, loss_fn=None) -> GAN:
  """Builds the static pieces by name from the config; `loss_fn` overrides `loss.name`."""
  generator, discriminator = models.get(config.model, info)
  loss = losses.get(loss_fn or config.loss.name, label_smoothing=config.loss.label_smoothing)
  losses.check(loss)
  penalty = None if config.penalty.name == "none" else penalties.get(config.penalty.name)
  return GAN(
      generator=generator,
      discriminator=discriminator,
      g_tx=make_optimizer(config.optim.g, config.train.steps),
      d_tx=make_optimizer(config.optim.d, config.train.steps * config.train.d_steps),
      loss_fn=loss,
      penalty_fn=penalty,
      latent_dim=config.model.latent_dim,
      data_shape=tuple(info.shape),
  )


def init_state(gan: GAN, seed: int) -> GANState:
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
      g_params=g_params,
      d_params=d_params,
      g_stats=g_stats,
      d_stats=d_stats,
      g_opt=gan.g_tx.init(g_params),
      d_opt=gan.d_tx.init(d_params),
      ema_params=jax.tree.map(jnp.copy, g_params),  # own buffers: the state is donated
  )


def _split(variables: dict) -> tuple[Params, Params]:
  variables = dict(variables)
  return variables.pop("params"), variables
