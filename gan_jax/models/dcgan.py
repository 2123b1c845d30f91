"""DCGAN (Radford et al. 2016) for 28x28 and 32x32 images.

G: z -> Dense(s*s*C0, no bias) -> BN -> ReLU -> [ConvT(4x4, stride 2, no bias) -> BN -> ReLU]*
   -> ConvT(channels, 4x4, stride 2) -> tanh, with s = 7 (28x28) or 4 (32x32).
D: Conv(4x4, stride 2) -> LeakyReLU(0.2) -> [Conv(4x4, s2, no bias) -> BN -> LeakyReLU(0.2)]* -> Dense(1).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import register
from gan_jax.models.layers import SubPixelConvTranspose, batch_norm, dcgan_init


def _num_upsamples(height: int) -> int:
  ups = {28: 2, 32: 3}
  if height not in ups:
    raise ValueError(f"dcgan supports 28x28 and 32x32 images; got height {height}")
  return ups[height]


class DCGANGenerator(nn.Module):
  out_shape: tuple[int, int, int]
  width: int = 64

  @nn.compact
  def __call__(self, z_BZ: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    H, _, C = self.out_shape
    n_up = _num_upsamples(H)
    s = H // 2**n_up
    widths = [self.width * 2**i for i in reversed(range(n_up))]  # e.g. [128, 64] for 28x28
    h = nn.Dense(s * s * widths[0], use_bias=False, kernel_init=dcgan_init)(z_BZ)
    h = nn.relu(batch_norm(train)(h)).reshape((-1, s, s, widths[0]))
    # Explicit names are flax's auto-names for nn.ConvTranspose: parameters, initial values and checkpoints
    # are those of the all-nn.ConvTranspose generator. Hidden layers take the sub-pixel form (its kernel
    # gradient is ~25x cheaper on CPU); the 1-3 channel output layer keeps flax's, whose transposed
    # convolution is cheap there and beats a matmul only 4*C columns wide.
    for i, w in enumerate(widths[1:]):
      h = SubPixelConvTranspose(w, use_bias=False, kernel_init=dcgan_init, name=f"ConvTranspose_{i}")(h)
      h = nn.relu(batch_norm(train)(h))
    out = nn.ConvTranspose(C, (4, 4), (2, 2), "SAME", kernel_init=dcgan_init, name=f"ConvTranspose_{n_up - 1}")
    return jnp.tanh(out(h))


class DCGANDiscriminator(nn.Module):
  width: int = 64

  @nn.compact
  def __call__(self, x_BHWC: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    n_down = _num_upsamples(x_BHWC.shape[1])
    h = nn.leaky_relu(nn.Conv(self.width, (4, 4), (2, 2), "SAME", kernel_init=dcgan_init)(x_BHWC), 0.2)
    for i in range(1, n_down):
      h = nn.Conv(self.width * 2**i, (4, 4), (2, 2), "SAME", use_bias=False, kernel_init=dcgan_init)(h)
      h = nn.leaky_relu(batch_norm(train)(h), 0.2)
    h = h.reshape((h.shape[0], -1))
    return nn.Dense(1, kernel_init=dcgan_init)(h)[:, 0]


@register("dcgan")
def dcgan(cfg, info):
  if info.kind != "images":
    raise ValueError(f"model.name='dcgan' needs an image dataset; data.name={info.name!r} is {info.kind}")
  return DCGANGenerator(info.shape, cfg.g_width), DCGANDiscriminator(cfg.d_width)
