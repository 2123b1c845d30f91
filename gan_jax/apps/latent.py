"""Latent-space tools: interpolation, the truncation trick and latent search (optimising z for a loss of G(z)).

All pure and traceable but map_batches, the host loop that feeds a jitted search its batches; jit them with the
data as arguments (arrays closed over under jit become constants).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from gan_jax.progress import progress_bar

METHODS = ("linear", "slerp")
# Below this angle (radians) slerp's sin(omega) division loses precision; the arc is a line there anyway.
_SLERP_EPS = 1e-4


def interpolate(z_a: jax.Array, z_b: jax.Array, n: int, method: str = "linear") -> jax.Array:
  """`n` codes from z_a to z_b (both included) along the last axis: z_a [..., Z] -> [..., n, Z].

  slerp (Shoemake 1985; White 2016 for GANs) moves along the great circle between the directions of z_a and
  z_b, so equal-norm endpoints keep their norm, where a line through the Gaussian's shell would dip towards its
  low-density centre. For unequal norms it is White's formula, sin((1-t)w)/sin w * z_a + sin(t w)/sin w * z_b.
  """
  if method not in METHODS:
    raise ValueError(f"interpolation method={method!r}: expected one of {METHODS}")
  if n < 2:
    raise ValueError(f"n={n} interpolation steps: expected at least 2 (the endpoints)")
  t_n1 = jnp.linspace(0.0, 1.0, n, dtype=z_a.dtype)[:, None]
  a, b = z_a[..., None, :], z_b[..., None, :]
  if method == "linear":
    return (1 - t_n1) * a + t_n1 * b
  unit = lambda z: z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  cos = jnp.clip(jnp.sum(unit(a) * unit(b), axis=-1, keepdims=True), -1.0, 1.0)
  omega = jnp.arccos(cos)
  small = omega < _SLERP_EPS
  sin = jnp.where(small, 1.0, jnp.sin(omega))
  wa = jnp.where(small, 1 - t_n1, jnp.sin((1 - t_n1) * omega) / sin)
  wb = jnp.where(small, t_n1, jnp.sin(t_n1 * omega) / sin)
  return wa * a + wb * b


def truncated_normal(key: jax.Array, shape: tuple[int, ...], psi: float) -> jax.Array:
  """N(0, I) codes with every coordinate beyond |psi| resampled (the truncation trick, Brock et al. 2019).

  Resampling, not clipping: clipping would pile mass at ±psi. jax.random.truncated_normal draws the resampled
  distribution exactly (by inverse CDF), without a rejection loop. Smaller psi trades diversity for fidelity.
  """
  if not psi > 0:
    raise ValueError(f"truncation psi={psi}: expected a positive threshold (e.g. 0.5..2)")
  return jax.random.truncated_normal(key, -psi, psi, shape, jnp.float32)


def latent_normal(key: jax.Array, shape: tuple[int, ...], truncation: float | None = None) -> jax.Array:
  """N(0, I) codes, truncated at `truncation` (truncated_normal) when given."""
  if truncation is None:
    return jax.random.normal(key, shape, jnp.float32)
  return truncated_normal(key, shape, truncation)


GenerateFn = Callable[[jax.Array], jax.Array]  # z_NZ -> x_N...
LossFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x_N..., z_NZ) -> loss_N


def latent_search(
  generate_fn: GenerateFn, loss_fn: LossFn, z0_RNZ: jax.Array, *, steps: int, lr: float = 0.01
) -> tuple[jax.Array, jax.Array]:
  """(z_NZ, loss_N): per example, the code of least loss_fn(generate_fn(z), z) seen over R restarts."""
  best_z_RNZ, best_l_RN = latent_search_restarts(generate_fn, loss_fn, z0_RNZ, steps=steps, lr=lr)
  r_N = jnp.argmin(best_l_RN, axis=0)
  n_N = jnp.arange(z0_RNZ.shape[1])
  return best_z_RNZ[r_N, n_N], best_l_RN[r_N, n_N]


def latent_search_restarts(
  generate_fn: GenerateFn, loss_fn: LossFn, z0_RNZ: jax.Array, *, steps: int, lr: float = 0.01
) -> tuple[jax.Array, jax.Array]:
  """(z_RNZ, loss_RN): per restart and example, the code of least loss_fn(generate_fn(z), z) on its path.

  Each of the R restarts z0_RNZ[r] runs `steps` Adam steps (optax) under lax.scan. Adam is per coordinate and
  the loss per example, so examples and restarts do not interact: generate_fn must treat examples
  independently (inference-mode batch norm). The best code seen anywhere on a trajectory wins, not only the
  last: Adam on these non-convex losses need not end at its best point.
  """
  if z0_RNZ.ndim != 3:
    raise ValueError(f"z0_RNZ has shape {z0_RNZ.shape}; expected [restarts, examples, latent_dim]")
  if steps < 0:
    raise ValueError(f"steps={steps}: expected a non-negative number of optimisation steps")
  loss_RN = jax.vmap(lambda z_NZ: loss_fn(generate_fn(z_NZ), z_NZ))

  def total(z_RNZ):
    l_RN = loss_RN(z_RNZ)
    return jnp.sum(l_RN), l_RN

  value_and_grad = jax.value_and_grad(total, has_aux=True)
  tx = optax.adam(lr)

  def keep_best(best, z_RNZ, l_RN):
    best_z, best_l = best
    better_RN = l_RN < best_l
    return jnp.where(better_RN[..., None], z_RNZ, best_z), jnp.where(better_RN, l_RN, best_l)

  def step(carry, _):
    z_RNZ, opt, best = carry
    (_, l_RN), g_RNZ = value_and_grad(z_RNZ)
    best = keep_best(best, z_RNZ, l_RN)
    updates, opt = tx.update(g_RNZ, opt, z_RNZ)
    return (optax.apply_updates(z_RNZ, updates), opt, best), None

  z0_RNZ = z0_RNZ.astype(jnp.float32)
  best = (z0_RNZ, jnp.full(z0_RNZ.shape[:2], jnp.inf, jnp.float32))
  (z_RNZ, _, best), _ = lax.scan(step, (z0_RNZ, tx.init(z0_RNZ), best), None, length=steps)
  return keep_best(best, z_RNZ, loss_RN(z_RNZ))


def initial_latents(key: jax.Array, restarts: int, ids_N: jax.Array, latent_dim: int) -> jax.Array:
  """z0_RNZ for latent_search, drawn per example id: a result does not depend on how examples are batched."""
  z_NRZ = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (restarts, latent_dim)))(ids_N)
  return jnp.swapaxes(z_NRZ, 0, 1)


def map_batches(
  fn: Callable[[np.ndarray], tuple[jax.Array, ...]], n: int, batch_size: int, desc: str = ""
) -> tuple[np.ndarray, ...]:
  """fn(ids_B) over the ids 0..n-1 in batches of `batch_size`, each output concatenated over the batches.

  The last batch repeats ids up to the full size, so a jitted fn compiles once; the repeats are dropped.
  With codes keyed per id (initial_latents), the results then do not depend on batch_size. A `desc` shows
  a progress bar of the examples done, under that name.
  """
  if n < 1 or batch_size < 1:
    raise ValueError(f"n={n} examples in batches of {batch_size}: expected both positive")
  parts = []
  with progress_bar(n, desc, "ex") if desc else contextlib.nullcontext() as bar:
    for start in range(0, n, batch_size):
      ids_B = np.arange(start, min(start + batch_size, n))
      outs = fn(np.resize(ids_B, min(batch_size, n)))
      parts.append([np.asarray(o)[: len(ids_B)] for o in outs])  # np.asarray waits: the bar tells the truth
      if bar is not None:
        bar.update(len(ids_B))
  return tuple(np.concatenate(column) for column in zip(*parts, strict=True))
