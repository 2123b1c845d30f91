"""The train step: a pure function `(state, batch) -> (state, metrics)`, one member's math on one device's shard.

`member_step` is the whole algorithm (D updates, then G's update through the last one's generator pass, then
the EMA); train.objective holds its terms. `sharded_train_step` vmaps it over a
population's members and runs it data-parallel (gan_jax.parallel), the state donated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax import parallel
from gan_jax.train.objective import Labels, Metrics, Terms, apply_update
from gan_jax.train.options import Options
from gan_jax.train.state import GAN, GANState, NetState

Batch = dict[str, jax.Array]  # "x": [U, B, ...] this device's real data for the U D updates; "label": [U, B]


class GeneratorPass(NamedTuple):
  """A D update's generator pass, kept for G's update after the last one."""

  fake: jax.Array
  g_vjp: Callable  # pulls d(g_loss)/d(fake) back to G's parameters
  real: jax.Array
  labels: Labels
  dg_dfake: jax.Array | None  # simultaneous updates: d(g_loss)/d(fake) from the D update's own pass


def make_member_step(gan: GAN, opts: Options) -> Callable[[GANState, Batch, jax.Array], tuple[GANState, Metrics]]:
  """One member's step `(state, batch, step) -> (state, metrics)`; `step` is state.step, passed apart so that
  it stays unbatched under the population vmap (see sharded_train_step)."""
  terms = Terms(gan, opts)

  def generator_pass(g: NetState, key: jax.Array, labels_B: jax.Array | None, batch: int) -> tuple:
    """(fake, its VJP to G's parameters, G's updated collections); z and dropout from split(key, 3)[:2]."""
    z_key, drop_key, _ = jax.random.split(key, 3)
    generate = lambda p: terms.generate(p, g.stats, z_key, drop_key, labels_B, batch)
    return jax.vjp(generate, g.params, has_aux=True)

  def d_update(
    u: int, key: jax.Array, g: NetState, d: NetState, batch: Batch, step: jax.Array, hp: dict[str, jax.Array]
  ) -> tuple[NetState, NetState, GeneratorPass, Metrics]:
    """D update u on its own real batch; G moves only its collections. fold_in(key, u) is this update's."""
    d_key = jax.random.split(jax.random.fold_in(key, u), 3)[2]
    labels = terms.labels(batch, u, jax.random.fold_in(key, opts.d_steps + 1 + u))
    real, d_count = batch["x"][u], step * opts.d_steps + u
    fake, g_vjp, g_stats = generator_pass(g, jax.random.fold_in(key, u), labels[1], real.shape[0])
    objective = lambda p, f: terms.d_and_g_loss(d.replace(params=p), real, f, labels, d_key, d_count, hp)
    dg_dfake = None
    if opts.update_order == "simultaneous":  # both losses from one D pass, before either network moves
      _, objective_vjp, (d_stats, metrics) = jax.vjp(objective, d.params, fake, has_aux=True)
      d_grads, _ = objective_vjp((jnp.ones(()), jnp.zeros(())))
      _, dg_dfake = objective_vjp((jnp.zeros(()), jnp.ones(())))
    else:
      d_loss = lambda p: terms.d_loss(d.replace(params=p), real, lax.stop_gradient(fake), labels, d_key, d_count, hp)
      d_grads, (d_stats, metrics) = jax.grad(d_loss, has_aux=True)(d.params)
    d = apply_update(d, d_grads, gan.d_tx, hp["d_lr"], opts.weight_clip).replace(stats=d_stats)
    return g.replace(stats=g_stats), d, GeneratorPass(fake, g_vjp, real, labels, dg_dfake), metrics

  def member_step(state: GANState, batch: Batch, step: jax.Array) -> tuple[GANState, Metrics]:
    # fold_in(key, ·): u < U for D update u, U for G's update, U + 1 + u for D update u's fake labels.
    key, g, d, hp = jax.random.fold_in(state.rng, state.step), state.g, state.d, state.hparams
    for u in range(opts.d_steps):
      g, d, last, metrics = d_update(u, key, g, d, batch, step, hp)
    # G's update reuses the last D update's generator pass, pulled back through its VJP, or draws its own z.
    if opts.g_fresh_noise:  # fold_in(key, 2U + 1): after the fake labels' salts
      fake, g_vjp, g_stats = generator_pass(
        g, jax.random.fold_in(key, 2 * opts.d_steps + 1), last.labels[1], len(last.real)
      )
      g, last = g.replace(stats=g_stats), last._replace(fake=fake, g_vjp=g_vjp)
    dg_dfake = last.dg_dfake
    if opts.update_order == "alternating":  # G against the updated D, whose collections from this pass are dropped
      g_loss = lambda f: terms.losses(d, last.real, f, last.labels, jax.random.fold_in(key, opts.d_steps))[0][1]
      metrics["g_loss"], dg_dfake = jax.value_and_grad(g_loss)(last.fake)
    (g_grads,) = last.g_vjp(dg_dfake)
    g = apply_update(g, g_grads, gan.g_tx, hp["g_lr"])
    decay = jnp.where(state.step >= opts.ema_start, hp["ema_decay"], 0.0)
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, g.params)
    return state.replace(step=state.step + 1, g=g, d=d, ema_params=ema), metrics

  return member_step


def sharded_train_step(
  gan: GAN, opts: Options, mesh: jax.sharding.Mesh, compiler_options: dict | None = None
) -> Callable:
  """The step train.loop runs: `member_step` vmapped over the population's members, jit(shard_map) over `mesh`,
  the state donated, compiled with `compiler_options` (train.xla_cpu's, or none).

  Members always step together, so the step count enters the vmap unbatched: under vmap a `lax.cond` on a
  batched predicate becomes a select that runs both branches, and lazy regularisation would save nothing.
  """
  member_step = make_member_step(gan, opts)

  def population_step(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
    return jax.vmap(member_step, in_axes=(0, 0, None))(state, batch, state.step[0])

  return parallel.data_parallel(population_step, mesh, compiler_options)
