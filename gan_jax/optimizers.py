"""Optimizers by name (`optim.g.name`, `optim.d.name`): each a function `(optim_config) -> direction`.

A direction is an optax transformation whose updates the step scales by -lr (the rate lives in the state, so a
population's members can each have their own) and by the unit-peak schedule (train.state.make_optimizer). So an
entry gives only the direction: Adam's is `optax.scale_by_adam`, plain SGD's the gradient itself.

  @gan_jax.optimizers.register("lion")
  def lion(o):
    return optax.scale_by_lion(b1=o.b1, b2=o.b2)
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections
import optax

from gan_jax.registry import Registry

DirectionFn = Callable[[ml_collections.ConfigDict], optax.GradientTransformation]

OPTIMIZERS: Registry[DirectionFn] = Registry("optimizer")
register = OPTIMIZERS.register
get = OPTIMIZERS.get
names = OPTIMIZERS.names


@register("adam")
def adam(o: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Kingma & Ba 2015 with betas (b1, b2): with a constant rate, optax.adam(lr) to the bit."""
  return optax.scale_by_adam(b1=o.b1, b2=o.b2)


@register("rmsprop")
def rmsprop(o: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """RMSProp (the original WGAN's optimizer) with decay b2 of the squared-gradient average."""
  return optax.scale_by_rms(decay=o.b2, eps=1e-8)


@register("sgd")
def sgd(o: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Gradient descent, with momentum b1 (0: none)."""
  return optax.trace(decay=o.b1) if o.b1 else optax.identity()
