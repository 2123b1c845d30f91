"""GAN objectives: pure `(real_logits, fake_logits) -> (d_loss, g_loss)` functions, by name or import path.

Both losses are scalars averaged over the batch (and over any extra logit axes, e.g. patch logits). The
train step differentiates d_loss with respect to D and g_loss with respect to G, so each loss is written
as the quantity its player minimises. Logistic terms go through log_sigmoid / softplus so that saturated
logits give exact small gradients rather than log(0).

A new loss is one function and one decorator (or, without registering, `loss.name = "package.module:function"`):

  @losses.register("my_loss")
  def my_loss(real_logits, fake_logits):
    ...

A loss that supports one-sided label smoothing takes it as a keyword-only `label_smoothing` argument;
`get` binds it, and refuses a nonzero value for any loss without that argument.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from gan_jax.registry import Registry, describe

LossPair = tuple[jax.Array, jax.Array]  # (d_loss, g_loss), both scalars
LossFn = Callable[[jax.Array, jax.Array], LossPair]

LOSSES: Registry[LossFn] = Registry("loss")
register, names = LOSSES.register, LOSSES.names


def get(loss: str | LossFn, *, label_smoothing: float = 0.0) -> LossFn:
  """A registered name, a `package.module:function` path, or a callable (returned as is)."""
  if callable(loss):
    fn = loss
  elif isinstance(loss, str):
    fn = _import(loss) if ":" in loss else _lookup(loss)
  else:
    raise TypeError(
      f"loss {loss!r} is a {type(loss).__name__}; expected a name, 'package.module:function' or a callable"
    )
  return _with_smoothing(fn, loss if isinstance(loss, str) else describe(fn), label_smoothing)


def _lookup(name: str) -> LossFn:
  if name not in LOSSES:
    raise ValueError(
      f"unknown loss {name!r}; expected one of {LOSSES.names()} or a custom loss as 'package.module:function'"
    )
  return LOSSES.get(name)


def _import(path: str) -> LossFn:
  module_name, _, attr_path = path.partition(":")
  if not module_name or not attr_path:
    raise ValueError(f"loss path {path!r} is malformed; expected 'package.module:function'")
  try:
    obj = importlib.import_module(module_name)
  except ImportError as err:
    raise ImportError(f"loss {path!r}: cannot import module {module_name!r} ({err})") from err
  for attr in attr_path.split("."):
    if not hasattr(obj, attr):
      raise ImportError(f"loss {path!r}: {obj.__name__!r} has no attribute {attr!r}")
    obj = getattr(obj, attr)
  if not callable(obj):
    raise TypeError(
      f"loss {path!r} is a {type(obj).__name__}, not callable; expected a function (real, fake) -> (d_loss, g_loss)"
    )
  return obj


def _with_smoothing(fn: LossFn, desc: str, label_smoothing: float) -> LossFn:
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing={label_smoothing!r}; expected a value in [0, 1)")
  if not label_smoothing:
    return fn
  if not _takes_smoothing(fn):
    supported = [n for n in LOSSES.names() if _takes_smoothing(LOSSES.get(n))]
    raise ValueError(
      f"loss {desc!r} does not support label_smoothing={label_smoothing}; "
      f"expected 0 or one of the logistic losses {supported}"
    )
  return functools.partial(fn, label_smoothing=label_smoothing)


def _takes_smoothing(fn: Callable) -> bool:
  try:
    params = inspect.signature(fn).parameters
  except (TypeError, ValueError):  # builtins and some C callables have no signature
    return False
  p = params.get("label_smoothing")
  return p is not None and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)


def check(loss_fn: LossFn, batch_sizes: tuple[int, ...] = (4,)) -> None:
  """Fails at start-up, with the loss named, rather than deep inside a compiled train step.

  The shape check runs under jax.eval_shape (tracing, as jit will) at every batch size given (the run's own
  among them: a loss can be scalar at 4 and not at 64); the real call then catches losses that only fail, or
  return non-finite values, on concrete numbers.
  """
  for batch_size in sorted(set(batch_sizes))[1:]:
    where = f"float32 logits of shape ({batch_size},)"
    logits_B = jax.ShapeDtypeStruct((batch_size,), jnp.float32)
    try:
      out = jax.eval_shape(loss_fn, logits_B, logits_B)
    except Exception as err:
      raise ValueError(f"loss {describe(loss_fn)} raised on {where}: {type(err).__name__}: {err}") from err
    _check_pair(out, describe(loss_fn), where)
  batch_size = min(batch_sizes)
  desc = describe(loss_fn)
  real_logits_B = jnp.linspace(-2.0, 2.0, batch_size, dtype=jnp.float32)
  fake_logits_B = jnp.linspace(1.5, -2.5, batch_size, dtype=jnp.float32)
  where = f"float32 logits of shape ({batch_size},)"
  for run in (functools.partial(jax.eval_shape, loss_fn), loss_fn):
    try:
      out = run(real_logits_B, fake_logits_B)
    except Exception as err:
      raise ValueError(f"loss {desc} raised on {where}: {type(err).__name__}: {err}") from err
    _check_pair(out, desc, where)
  d_loss, g_loss = (float(v) for v in out)
  if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
    raise ValueError(f"loss {desc} is not finite on {where}: d_loss={d_loss}, g_loss={g_loss}")


def _check_pair(out: object, desc: str, where: str) -> None:
  expected = "a pair (d_loss, g_loss) of float scalars"
  if not isinstance(out, (tuple, list)) or len(out) != 2:
    got = jax.tree.map(_shape_of, out)
    raise TypeError(f"loss {desc} must return {expected}; on {where} it returned {got}")
  if not all(getattr(x, "shape", None) == () and jnp.issubdtype(x.dtype, jnp.floating) for x in out):
    got = ", ".join(_shape_of(x) for x in out)
    raise TypeError(f"loss {desc} must return {expected}; on {where} it returned shapes {got}")


def _shape_of(x: object) -> str:
  return f"{x.shape} {x.dtype}" if hasattr(x, "shape") and hasattr(x, "dtype") else type(x).__name__


# ---------------------------------------------------------------------------------------------- losses


def _bce(logits: jax.Array, target: float) -> jax.Array:
  """Elementwise sigmoid cross-entropy -[t log σ(x) + (1 - t) log(1 - σ(x))], stable for any x."""
  return -(target * jax.nn.log_sigmoid(logits) + (1.0 - target) * jax.nn.log_sigmoid(-logits))


def _logistic_d_loss(real_logits: jax.Array, fake_logits: jax.Array, label_smoothing: float) -> jax.Array:
  return jnp.mean(_bce(real_logits, 1.0 - label_smoothing)) + jnp.mean(_bce(fake_logits, 0.0))


@register("minimax")
def minimax(real_logits: jax.Array, fake_logits: jax.Array, *, label_smoothing: float = 0.0) -> LossPair:
  """The saturating game of Goodfellow et al. 2014 (eq. 1): G minimises E log(1 - D(G(z))).

  One-sided label smoothing (Salimans et al. 2016) only moves D's real targets to 1 - s; G is unchanged.
  """
  return _logistic_d_loss(real_logits, fake_logits, label_smoothing), -jnp.mean(jax.nn.softplus(fake_logits))


@register("non_saturating")
def non_saturating(real_logits: jax.Array, fake_logits: jax.Array, *, label_smoothing: float = 0.0) -> LossPair:
  """Goodfellow et al. 2014, sec. 3: G maximises log D(G(z)), which keeps gradients when D wins early."""
  return _logistic_d_loss(real_logits, fake_logits, label_smoothing), jnp.mean(jax.nn.softplus(-fake_logits))


@register("wasserstein")
def wasserstein(real_logits: jax.Array, fake_logits: jax.Array) -> LossPair:
  """WGAN (Arjovsky et al. 2017): the critic estimates W1; needs a Lipschitz constraint (clip or penalty)."""
  fake_mean = jnp.mean(fake_logits)
  return fake_mean - jnp.mean(real_logits), -fake_mean


@register("hinge")
def hinge(real_logits: jax.Array, fake_logits: jax.Array) -> LossPair:
  """Hinge D loss (Lim & Ye 2017; Miyato et al. 2018) with the Wasserstein-style G loss -E D(G(z))."""
  d_loss = jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))
  return d_loss, -jnp.mean(fake_logits)


@register("least_squares")
def least_squares(real_logits: jax.Array, fake_logits: jax.Array) -> LossPair:
  """LSGAN (Mao et al. 2017) with 0-1 targets (a=0, b=c=1) and the paper's (and TF-GAN's) 1/2 factors."""
  d_loss = 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))
  return d_loss, 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


@register("least_squares_sigmoid")
def least_squares_sigmoid(real_logits: jax.Array, fake_logits: jax.Array) -> LossPair:
  """LSGAN as compare_gan v1 (Lucic et al. 2018) has it: least_squares on D's sigmoid, not on its logit."""
  return least_squares(jax.nn.sigmoid(real_logits), jax.nn.sigmoid(fake_logits))


@register("relativistic")
def relativistic(real_logits: jax.Array, fake_logits: jax.Array, *, label_smoothing: float = 0.0) -> LossPair:
  """RSGAN (Jolicoeur-Martineau 2018): D scores how much more real x_r looks than its paired x_f.

  Pairs are elementwise, so real and fake logits must have the same shape.
  """
  if real_logits.shape != fake_logits.shape:
    raise ValueError(
      f"relativistic loss pairs real and fake elementwise; got logits of shapes {real_logits.shape} "
      f"and {fake_logits.shape}, expected equal shapes"
    )
  diff = real_logits - fake_logits
  return jnp.mean(_bce(diff, 1.0 - label_smoothing)), jnp.mean(_bce(-diff, 1.0))


@register("relativistic_average")
def relativistic_average(real_logits: jax.Array, fake_logits: jax.Array, *, label_smoothing: float = 0.0) -> LossPair:
  """RaSGAN (Jolicoeur-Martineau 2018): each sample is compared with the other side's mean."""
  real_rel, fake_rel = real_logits - jnp.mean(fake_logits), fake_logits - jnp.mean(real_logits)
  d_loss = jnp.mean(_bce(real_rel, 1.0 - label_smoothing)) + jnp.mean(_bce(fake_rel, 0.0))
  g_loss = jnp.mean(_bce(fake_rel, 1.0)) + jnp.mean(_bce(real_rel, 0.0))
  return d_loss, g_loss


@register("relativistic_hinge")
def relativistic_hinge(real_logits: jax.Array, fake_logits: jax.Array) -> LossPair:
  """RaHinge (Jolicoeur-Martineau 2018): the hinge loss on relativistic-average logits."""
  real_rel, fake_rel = real_logits - jnp.mean(fake_logits), fake_logits - jnp.mean(real_logits)
  d_loss = jnp.mean(jax.nn.relu(1.0 - real_rel)) + jnp.mean(jax.nn.relu(1.0 + fake_rel))
  g_loss = jnp.mean(jax.nn.relu(1.0 - fake_rel)) + jnp.mean(jax.nn.relu(1.0 + real_rel))
  return d_loss, g_loss


# ---------------------------------------------------------------------------------------------- auxiliary


def class_cross_entropy(class_logits_BC: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Per-example cross-entropy [B] of ACGAN's auxiliary classifier (Odena et al. 2017).

  Per example, not averaged: the train step averages it over the global batch, as it does the logits.
  """
  log_probs_BC = jax.nn.log_softmax(class_logits_BC, axis=-1)
  return -jnp.take_along_axis(log_probs_BC, labels_B[:, None].astype(jnp.int32), axis=-1)[:, 0]
