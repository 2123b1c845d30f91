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

from gan_jax import parallel, penalties
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


def apply_lr(params: Params, direction: Params, lr: jax.Array) -> Params:
  """params - lr * direction: the learning rate lives in the state (see state.HPARAMS)."""
  return optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, direction))


def latent_noise(key: jax.Array, batch: int, latent_dim: int) -> jax.Array:
  """z for this device's examples, drawn per global example index."""
  ids_B = parallel.example_ids(batch)
  return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (latent_dim,)))(ids_B)


def make_train_step(gan: GAN, config: ml_collections.ConfigDict) -> Callable[[GANState, Batch], tuple]:
  d_steps, update = config.train.d_steps, config.train["update"]  # .update is ConfigDict.update
  pen_every, ema_start, clip = config.penalty.every, config.train.ema_start, config.train.weight_clip
  if update not in ("alternating", "simultaneous"):
    raise ValueError(f"train.update={update!r}: expected 'alternating' or 'simultaneous'")
  if update == "simultaneous" and d_steps != 1:
    raise ValueError(f"train.update='simultaneous' shares one generator pass with one D update; got d_steps={d_steps}")

  def objectives(d_params, d_stats, real, fake, key, d_count, hp, with_penalty=True):
    """(d_loss [+ penalty], g_loss) from one discriminator pass over real and fake."""
    real_logits_B, stats = apply_train(gan.discriminator, d_params, d_stats, real, jax.random.fold_in(key, 0))
    fake_logits_B, stats = apply_train(gan.discriminator, d_params, stats, fake, jax.random.fold_in(key, 1))
    # The loss sees the global batch's logits, exactly as on one device (e.g. RaGAN's batch means).
    real_all, fake_all = parallel.gather_batch(real_logits_B), parallel.gather_batch(fake_logits_B)
    d_loss, g_loss = gan.loss_fn(real_all, fake_all)
    metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_all.mean(), "d_fake": fake_all.mean()}
    if gan.penalty_fn is None or not with_penalty:
      return (d_loss, g_loss), (stats, metrics)
    d_fn = lambda x: apply_train(gan.discriminator, d_params, d_stats, x, jax.random.fold_in(key, 2))[0]
    pen_key = jax.random.fold_in(jax.random.fold_in(key, 3), lax.axis_index(parallel.AXIS))
    compute = lambda: gan.penalty_fn(d_fn, real, fake, pen_key)
    # Lazy regularisation (Karras et al. 2020): every k updates, with weight * k.
    pen = compute() if pen_every == 1 else lax.cond(d_count % pen_every == 0, compute, lambda: 0.0)
    metrics["penalty"] = parallel.pmean(pen)
    return (d_loss + hp["penalty_weight"] * pen_every * pen, g_loss), (stats, metrics)

  def apply_d(d_params, d_opt, grads, hp):
    updates, d_opt = gan.d_tx.update(parallel.pmean(grads), d_opt, d_params)
    d_params = apply_lr(d_params, updates, hp["d_lr"])
    return (penalties.weight_clip(d_params, clip) if clip else d_params), d_opt

  def d_update(d_params, d_stats, d_opt, real, fake, key, d_count, hp):
    def d_total(p):
      (d_loss, _), aux = objectives(p, d_stats, real, fake, key, d_count, hp)
      return d_loss, aux

    grads, (d_stats, metrics) = jax.grad(d_total, has_aux=True)(d_params)
    return (*apply_d(d_params, d_opt, grads, hp), d_stats, metrics)

  def step_fn(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
    x_KB = batch["x"]
    B = x_KB.shape[1]
    hp, d_base = state.hparams, state.step * d_steps
    key = jax.random.fold_in(state.rng, state.step)
    keys = [jax.random.split(jax.random.fold_in(key, k), 3) for k in range(d_steps)]
    g_stats, d_params, d_stats, d_opt = state.g_stats, state.d_params, state.d_stats, state.d_opt

    def generate(g_params, g_stats, z_key, dropout_key):
      return apply_train(gan.generator, g_params, g_stats, latent_noise(z_key, B, gan.latent_dim), dropout_key)

    # ------------------------------------------------------------------ D updates but the last
    for k in range(d_steps - 1):
      z_key, drop_key, d_key = keys[k]
      fake, g_stats = generate(state.g_params, g_stats, z_key, drop_key)
      d_params, d_opt, d_stats, _ = d_update(d_params, d_stats, d_opt, x_KB[k], fake, d_key, d_base + k, hp)

    # ------------------------------------------------------------------ last D update and the G update
    # One generator forward serves both; G's gradient is pulled back through its VJP.
    z_key, drop_key, d_key = keys[-1]
    fake, g_vjp, g_stats = jax.vjp(lambda p: generate(p, g_stats, z_key, drop_key), state.g_params, has_aux=True)
    real, d_count = x_KB[-1], d_base + d_steps - 1
    if update == "simultaneous":
      # Both losses from the same D pass, before either network moves (the TF DCGAN tutorial).
      _, both_vjp, (new_d_stats, metrics) = jax.vjp(
          lambda p, f: objectives(p, d_stats, real, f, d_key, d_count, hp), d_params, fake, has_aux=True
      )
      d_grads, _ = both_vjp((jnp.ones(()), jnp.zeros(())))
      _, dg_dfake = both_vjp((jnp.zeros(()), jnp.ones(())))
      d_params, d_opt = apply_d(d_params, d_opt, d_grads, hp)
      d_stats = new_d_stats
    else:
      d_params, d_opt, d_stats, metrics = d_update(
          d_params, d_stats, d_opt, real, lax.stop_gradient(fake), d_key, d_count, hp
      )
      # G's loss against the updated D; D's statistics from this pass are not kept.
      g_key = jax.random.fold_in(key, d_steps)
      g_loss_of = lambda f: objectives(d_params, d_stats, real, f, g_key, d_count, hp, with_penalty=False)[0][1]
      metrics["g_loss"], dg_dfake = jax.value_and_grad(g_loss_of)(fake)

    (g_grads,) = g_vjp(dg_dfake)
    updates, g_opt = gan.g_tx.update(parallel.pmean(g_grads), state.g_opt, state.g_params)
    g_params = apply_lr(state.g_params, updates, hp["g_lr"])

    decay = jnp.where(state.step >= ema_start, hp["ema_decay"], 0.0)
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
    return new_state, metrics

  return step_fn
