"""The train step: a pure function `(state, batch) -> (state, metrics)` of one device's shard.

`train.d_steps` discriminator updates, each on its own real batch, then one generator update.
The generator update reuses the last D step's generator forward pass (its VJP), as the PyTorch
DCGAN recipe does with one `netG(noise)` per iteration. Wrap with `parallel.data_parallel`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from gan_jax import parallel
from gan_jax.train.state import GAN, GANState, Params

Batch = dict[str, jax.Array]  # "x": [d_steps, B, ...] this device's real data, "label": [d_steps, B]
Metrics = dict[str, jax.Array]


def apply_train(module, params: Params, stats: Params, x, key: jax.Array) -> tuple[jax.Array, Params]:
  """Train-mode forward pass returning the updated non-parameter collections."""
  variables, rngs = {"params": params, **stats}, {"dropout": key}
  if not stats:
    return module.apply(variables, x, None, train=True, rngs=rngs), stats
  out, new_stats = module.apply(variables, x, None, train=True, rngs=rngs, mutable=list(stats))
  return out, dict(new_stats)


def latent_noise(key: jax.Array, batch: int, latent_dim: int) -> jax.Array:
  """z for this device's examples, drawn per global example index."""
  ids_B = parallel.example_ids(batch)
  return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (latent_dim,)))(ids_B)


def make_train_step(gan: GAN, config: ml_collections.ConfigDict) -> Callable[[GANState, Batch], tuple]:
  d_steps = config.train.d_steps
  pen_every, pen_weight = config.penalty.every, config.penalty.weight
  ema_decay, ema_start = config.train.ema_decay, config.train.ema_start
  D = gan.discriminator

  def d_logits(d_params, d_stats, x, key):
    return apply_train(D, d_params, d_stats, x, key)

  def d_update(d_params, d_stats, d_opt, real, fake, key, d_count):
    """One discriminator update on d_loss (+ penalty); returns new D pieces and metrics."""

    def objective(p):
      real_logits_B, stats = d_logits(p, d_stats, real, jax.random.fold_in(key, 0))
      fake_logits_B, stats = d_logits(p, stats, fake, jax.random.fold_in(key, 1))
      real_all, fake_all = parallel.gather_batch(real_logits_B), parallel.gather_batch(fake_logits_B)
      d_loss, _ = gan.loss_fn(real_all, fake_all)
      metrics = {"d_loss": d_loss, "d_real": real_all.mean(), "d_fake": fake_all.mean()}
      total = d_loss
      if gan.penalty_fn is not None:
        d_fn = lambda x: d_logits(p, d_stats, x, jax.random.fold_in(key, 2))[0]
        pen_key = jax.random.fold_in(jax.random.fold_in(key, 3), lax.axis_index(parallel.AXIS))
        compute = lambda: gan.penalty_fn(d_fn, real, fake, pen_key)
        # Lazy regularisation (Karras et al. 2020): every k updates, with weight * k.
        pen = compute() if pen_every == 1 else lax.cond(d_count % pen_every == 0, compute, lambda: 0.0)
        metrics["penalty"] = parallel.pmean(pen)
        total = total + pen_weight * pen_every * pen
      return total, (stats, metrics)

    grads, (d_stats, metrics) = jax.grad(objective, has_aux=True)(d_params)
    updates, d_opt = gan.d_tx.update(parallel.pmean(grads), d_opt, d_params)
    return optax.apply_updates(d_params, updates), d_stats, d_opt, metrics

  def step_fn(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
    x_KB = batch["x"]
    B = x_KB.shape[1]
    key = jax.random.fold_in(state.rng, state.step)
    keys = [jax.random.split(jax.random.fold_in(key, k), 3) for k in range(d_steps)]
    g_stats, d_params, d_stats, d_opt = state.g_stats, state.d_params, state.d_stats, state.d_opt

    def generate(g_params, g_stats, z_key, dropout_key):
      return apply_train(gan.generator, g_params, g_stats, latent_noise(z_key, B, gan.latent_dim), dropout_key)

    # ------------------------------------------------------------------ D updates but the last
    for k in range(d_steps - 1):
      z_key, drop_key, d_key = keys[k]
      fake, g_stats = generate(state.g_params, g_stats, z_key, drop_key)
      d_params, d_stats, d_opt, _ = d_update(
          d_params, d_stats, d_opt, x_KB[k], fake, d_key, state.step * d_steps + k
      )

    # ------------------------------------------------------------------ last D update
    z_key, drop_key, d_key = keys[-1]
    fake, g_vjp, g_stats = jax.vjp(lambda p: generate(p, g_stats, z_key, drop_key), state.g_params, has_aux=True)
    real = x_KB[-1]
    d_params, d_stats, d_opt, metrics = d_update(
        d_params, d_stats, d_opt, real, lax.stop_gradient(fake), d_key, state.step * d_steps + d_steps - 1
    )

    # ------------------------------------------------------------------ G update against the new D
    g_key = jax.random.fold_in(key, d_steps)

    def g_objective(fake):
      real_logits_B, _ = d_logits(d_params, d_stats, real, jax.random.fold_in(g_key, 0))
      fake_logits_B, _ = d_logits(d_params, d_stats, fake, jax.random.fold_in(g_key, 1))
      _, g_loss = gan.loss_fn(parallel.gather_batch(real_logits_B), parallel.gather_batch(fake_logits_B))
      return g_loss

    g_loss, dloss_dfake = jax.value_and_grad(g_objective)(fake)
    (g_grads,) = g_vjp(dloss_dfake)
    updates, g_opt = gan.g_tx.update(parallel.pmean(g_grads), state.g_opt, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)

    decay = jnp.where(state.step >= ema_start, ema_decay, 0.0)
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, g_params)
    new_state = state.replace(
        step=state.step + 1,
        g_params=g_params,
        d_params=d_params,
        g_stats=g_stats,
        d_stats=d_stats,
        g_opt=g_opt,
        d_opt=d_opt,
        ema_params=ema,
    )
    return new_state, {**metrics, "g_loss": g_loss}

  return step_fn
