"""MLP GANs: the classic 28x28 tutorial GAN and a small pair for the 2D mode-collapse benchmarks."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models import register
from gan_jax.models.layers import ExampleDropout, batch_norm


class MLPGenerator(nn.Module):
  widths: tuple[int, ...]
  out_shape: tuple[int, ...]
  activation: str = "leaky_relu"  # leaky_relu (tutorial GAN) | relu
  batch_norm: bool = False
  tanh: bool = True  # images live in [-1, 1]; 2D points do not

  @nn.compact
  def __call__(self, z_BZ: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    h = z_BZ
    for w in self.widths:
      h = nn.Dense(w)(h)
      if self.batch_norm:
        h = batch_norm(train)(h)
      h = nn.leaky_relu(h, 0.2) if self.activation == "leaky_relu" else nn.relu(h)
    h = nn.Dense(int(np.prod(self.out_shape)))(h)
    h = jnp.tanh(h) if self.tanh else h
    return h.reshape((z_BZ.shape[0], *self.out_shape))


class MLPDiscriminator(nn.Module):
  widths: tuple[int, ...]
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    h = x.reshape((x.shape[0], -1))
    for w in self.widths:
      h = nn.leaky_relu(nn.Dense(w)(h), 0.2)
      h = ExampleDropout(self.dropout)(h, train=train)
    return nn.Dense(1)(h)[:, 0]


@register("mlp_gan")
def mlp_gan(cfg, info):
  """G z->w->2w->4w->image (LeakyReLU 0.2, tanh); D image->4w->2w->w->1 with dropout. w = 256."""
  w_g, w_d = cfg.g_width, cfg.d_width
  return (
      MLPGenerator((w_g, 2 * w_g, 4 * w_g), info.shape),
      MLPDiscriminator((4 * w_d, 2 * w_d, w_d), dropout=cfg.dropout),
  )


@register("mlp2d")
def mlp2d(cfg, info):
  """Three hidden layers each side; G with ReLU and no output squashing, D with LeakyReLU."""
  return (
      MLPGenerator((cfg.g_width,) * 3, info.shape, activation="relu", tanh=False),
      MLPDiscriminator((cfg.d_width,) * 3),
  )
