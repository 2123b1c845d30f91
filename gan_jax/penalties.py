"""Discriminator regularisers: pure `(d_fn, real, fake, rng) -> scalar` functions, looked up by name.

`d_fn` maps a batch [B, ...] to logits [B]. Penalties return the unweighted term; the train step scales it by
`penalty.weight`. Each penalty declares where it evaluates D (`at`: "real", "fake", or "between" the two): the
step gives `d_fn` the labels and the DiffAugment draw of that side ("between" takes the reals'). Per-example
input gradients come from a single jax.grad of sum(d_fn(x)) with respect to x: when D treats examples
independently, d sum_j D(x_j) / dx_i = dD(x_i) / dx_i. Batch norm in train mode breaks that (every logit
depends on the whole batch through its statistics), so the gradients, and the penalties, stop meaning what the
papers mean; pair penalties with a discriminator without batch norm (none, layer norm, spectral norm), as the
papers do.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gan_jax.registry import Registry

DiscriminatorFn = Callable[[jax.Array], jax.Array]
PenaltyFn = Callable[[DiscriminatorFn, jax.Array, jax.Array, jax.Array], jax.Array]

PENALTIES: Registry[PenaltyFn] = Registry("penalty")
names = PENALTIES.names
SIDES = ("real", "fake", "between")


def register(name: str, *, at: str) -> Callable[[PenaltyFn], PenaltyFn]:
  """Decorator that makes a penalty available to `get(name)` (`penalty.name`); `at` is one of SIDES."""
  if at not in SIDES:
    raise ValueError(f"penalty {name!r}: at={at!r}; expected one of {SIDES}")
  return PENALTIES.register(name, at=at)


def applies_at(name: str) -> str:
  """Where penalty `name` evaluates D: "real", "fake" or "between"."""
  return PENALTIES.meta(name)["at"]


def get(name: str, **options: Any) -> PenaltyFn:
  """The registered penalty `name` with its keyword-only `options` (e.g. wgan_gp's one_sided) bound."""
  fn = PENALTIES.get(name)
  params = inspect.signature(fn).parameters
  accepted = sorted(k for k, p in params.items() if p.kind == p.KEYWORD_ONLY)
  unknown = sorted(set(options) - set(accepted))
  if unknown:
    raise TypeError(f"penalty {name!r} got unknown options {unknown}; it accepts {accepted or 'none'}")
  return functools.partial(fn, **options) if options else fn


def _input_grads(d_fn: DiscriminatorFn, x: jax.Array) -> jax.Array:
  return jax.grad(lambda x: jnp.sum(d_fn(x)))(x)


def _sq_norms(grads: jax.Array) -> jax.Array:
  """Per-example squared L2 norms over every non-batch axis: [B, ...] -> [B]."""
  return jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim)))


def _norms(sq_norms_B: jax.Array) -> jax.Array:
  """sqrt with a finite backward pass at 0 (where sqrt's derivative is infinite and would give NaN)."""
  positive_B = sq_norms_B > 0
  return jnp.where(positive_B, jnp.sqrt(jnp.where(positive_B, sq_norms_B, 1.0)), 0.0)


# penalty.form: "paper" as the papers write it; "compare_gan" as compare_gan v1 computes it (Lucic et al. 2018).
FORMS = ("paper", "compare_gan")


def _gradient_norms(d_fn: DiscriminatorFn, x: jax.Array, form: str) -> jax.Array:
  """‖∇D(x)‖ per example. compare_gan's form is sqrt(1e-4 + ‖g‖²) with g taken with respect to pixels in
  [0, 1], i.e. twice the gradient with respect to gan_jax's [-1, 1] pixels."""
  if form not in FORMS:
    raise ValueError(f"penalty.form={form!r}: expected one of {FORMS}")
  grads = _input_grads(d_fn, x)
  return _norms(_sq_norms(grads)) if form == "paper" else jnp.sqrt(1e-4 + _sq_norms(2.0 * grads))


def _per_example(key: jax.Array, x: jax.Array) -> jax.Array:
  """U[0, 1] draws of shape [B, 1, ..., 1], one per example, broadcasting against x."""
  return jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), x.dtype)


def _check_same_shape(name: str, real: jax.Array, fake: jax.Array) -> None:
  if real.shape != fake.shape:
    raise ValueError(f"penalty {name!r} pairs real and fake examples; got shapes {real.shape} and {fake.shape}")


@register("none", at="real")
def no_penalty(d_fn: DiscriminatorFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
  """Zero, so that callers can treat 'no penalty' like any other."""
  return jnp.zeros((), real.dtype)


@register("wgan_gp", at="between")
def wgan_gp(
  d_fn: DiscriminatorFn,
  real: jax.Array,
  fake: jax.Array,
  rng: jax.Array,
  *,
  one_sided: bool = False,
  form: str = "paper",
) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017): a soft 1-Lipschitz constraint, E (‖∇D(x̂)‖ - 1)².

  x̂ = ε·real + (1 - ε)·fake with ε ~ U[0, 1] per example, the paper's sampling between the two
  distributions. `one_sided` penalises only norms above 1, E max(0, ‖∇D(x̂)‖ - 1)² (WGAN-LP, Petzka et
  al. 2018), which is what a Lipschitz constraint actually requires. `form`: see _gradient_norms.
  """
  _check_same_shape("wgan_gp", real, fake)
  eps = _per_example(rng, real)
  x_hat = eps * real + (1.0 - eps) * fake
  excess_B = _gradient_norms(d_fn, x_hat, form) - 1.0
  if one_sided:
    excess_B = jax.nn.relu(excess_B)
  return jnp.mean(jnp.square(excess_B))


@register("r1", at="real")
def r1(d_fn: DiscriminatorFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
  """R1 (Mescheder et al. 2018): E_real ‖∇D(x)‖², zero-centred on the data, so training converges locally.

  This is the bare mean squared norm. The paper writes R1 = (γ/2)·E‖∇D(x)‖², so penalty.weight = γ/2
  (γ = 10 -> weight 5).
  """
  return jnp.mean(_sq_norms(_input_grads(d_fn, real)))


@register("r2", at="fake")
def r2(d_fn: DiscriminatorFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
  """R2 (Mescheder et al. 2018): R1 on generated samples, E_fake ‖∇D(x)‖²; same γ/2 weight convention."""
  return jnp.mean(_sq_norms(_input_grads(d_fn, fake)))


@register("dragan", at="real")
def dragan(
  d_fn: DiscriminatorFn, real: jax.Array, fake: jax.Array, rng: jax.Array, *, form: str = "paper"
) -> jax.Array:
  """DRAGAN (Kodali et al. 2017): E (‖∇D(x̂)‖ - 1)² near the real data, where sharp D gradients collapse modes.

  Samples x̂ as the authors' reference implementation (github.com/kodalinaveen3/DRAGAN) does, not with the
  paper's Gaussian noise: x_p = real + 0.5·std(real)·u, u ~ U[0, 1] elementwise, std over every element of
  this batch (this device's shard under data parallelism); then x̂ = real + α·(x_p - real), α ~ U[0, 1]
  per example. compare_gan's form penalises the gradient of sigmoid(D), not of the logit (and see
  _gradient_norms); the perturbation is linear, so drawing it on [-1, 1] pixels equals drawing it on [0, 1] ones.
  """
  noise_key, alpha_key = jax.random.split(rng)
  perturbed = real + 0.5 * jnp.std(real) * jax.random.uniform(noise_key, real.shape, real.dtype)
  x_hat = real + _per_example(alpha_key, real) * (perturbed - real)
  penalised = d_fn if form == "paper" else (lambda x: jax.nn.sigmoid(d_fn(x)))
  return jnp.mean(jnp.square(_gradient_norms(penalised, x_hat, form) - 1.0))


def weight_clip(params: Any, c: float) -> Any:
  """Clips every parameter to [-c, c] after each D update: the original WGAN's crude Lipschitz constraint.

  Arjovsky et al. 2017 use c = 0.01.
  """
  if isinstance(c, (int, float)) and not c > 0:
    raise ValueError(f"weight_clip c={c!r}; expected a positive bound")
  return jax.tree.map(lambda p: jnp.clip(p, -c, c), params)
