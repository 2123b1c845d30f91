"""Layers whose randomness is keyed by global example index (see gan_jax.parallel)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import parallel

# N(0, 0.02), the DCGAN initialisation (Radford et al. 2016).
dcgan_init = nn.initializers.normal(0.02)


class ExampleDropout(nn.Module):
  """Dropout whose mask for example i depends only on (rng, i), not on the device layout."""

  rate: float

  @nn.compact
  def __call__(self, x_BF: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x_BF
    rng = self.make_rng("dropout")
    ids_B = parallel.example_ids(x_BF.shape[0])
    keep = jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(rng, i), 1 - self.rate, x_BF.shape[1:]))
    return jnp.where(keep(ids_B), x_BF / (1 - self.rate), 0.0)


def batch_norm(train: bool, momentum: float = 0.9) -> nn.BatchNorm:
  """Batch norm over the *global* batch: statistics are averaged over the data axis."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, axis_name=parallel.AXIS if train else None)
