"""DCGAN (Radford et al. 2016) for 28x28, 32x32 and 64x64 images.

G: z -> Dense(s*s*C0, no bias) -> BN -> ReLU -> [ConvT(4x4, stride 2, no bias) -> BN -> ReLU]*
   -> ConvT(channels, 4x4, stride 2) -> tanh, with s = 7 (28x28) or 4 (32x32, 64x64: the paper's G).
D: Conv(4x4, stride 2) -> LeakyReLU(0.2) -> [Conv(4x4, s2, no bias) -> BN -> LeakyReLU(0.2)]* -> Dense(1).
`model.d_norm` swaps D's batch norm for none, layer or spectral normalisation; `model.conditional` makes G's
batch norm class-conditional and gives D a projection or ACGAN head; `model.g_spectral_norm` normalises G.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conditioning_classes, d_norm, register
from gan_jax.models.layers import (
  conditional_batch_norm,
  conv_transpose_4x4_s2,
  dcgan_init,
  dense,
  discriminator_head,
  normed,
)

# Image side -> G's upsamplings (D's downsamplings): each doubles from s = 7 or 4 up to the side.
UPSAMPLES = {28: 2, 32: 3, 64: 4}


def _num_upsamples(height: int) -> int:
  if height not in UPSAMPLES:
    raise ValueError(f"model.name='dcgan' supports images of side {tuple(UPSAMPLES)} (data.resolution); got {height}")
  return UPSAMPLES[height]


class DCGANGenerator(nn.Module):
  out_shape: tuple[int, int, int]
  width: int = 64
  num_classes: int = 0  # > 0: class-conditional batch norm (de Vries et al. 2017), as SNGAN's conditional G
  spectral_norm: bool = False  # on every layer (SAGAN, Zhang et al. 2019)
  dtype: jax.typing.DTypeLike | None = None  # the layers' compute dtype (train.compute_dtype); samples are float32
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)

  @nn.compact
  def __call__(self, z_BZ: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    H, _, C = self.out_shape
    n_up = _num_upsamples(H)
    s = H // 2**n_up
    widths = [self.width * 2**i for i in reversed(range(n_up))]  # e.g. [128, 64] for 28x28
    norm = "spectral" if self.spectral_norm else "none"
    layer = lambda module: normed(norm, module, train, post_norm=False)
    bn = lambda x: conditional_batch_norm(x, labels_B, num_classes=self.num_classes, train=train)
    h = layer(
      dense(s * s * widths[0], fast_ops=self.fast_ops, use_bias=False, kernel_init=dcgan_init, dtype=self.dtype)
    )(z_BZ)
    h = nn.relu(bn(h)).reshape((-1, s, s, widths[0]))
    # Explicit names are flax's auto-names for nn.ConvTranspose, so both layer choices share checkpoints. Only
    # the hidden layers take fast_ops' gradients: on the 1-3 channel output layer they measured no faster.
    for i, w in enumerate(widths[1:]):
      up = conv_transpose_4x4_s2(
        w, fast_ops=self.fast_ops, use_bias=False, kernel_init=dcgan_init, dtype=self.dtype, name=f"ConvTranspose_{i}"
      )
      h = nn.relu(bn(layer(up)(h)))
    out = nn.ConvTranspose(
      C, (4, 4), (2, 2), "SAME", kernel_init=dcgan_init, dtype=self.dtype, name=f"ConvTranspose_{n_up - 1}"
    )
    return jnp.tanh(layer(out)(h).astype(jnp.float32))


class DCGANDiscriminator(nn.Module):
  width: int = 64
  norm: str = "batch"  # layers.D_NORMS: batch / layer norm follow the hidden convolutions, spectral norm all layers
  num_classes: int = 0  # > 0: conditional, as `conditioning` says (layers.discriminator_head)
  conditioning: str = "projection"
  dtype: jax.typing.DTypeLike | None = None  # the layers' compute dtype; the logits are float32
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)

  @nn.compact
  def __call__(self, x_BHWC: jax.Array, labels_B: jax.Array | None = None, *, train: bool):
    n_down = _num_upsamples(x_BHWC.shape[1])
    conv = lambda w, **kw: nn.Conv(w, (4, 4), (2, 2), "SAME", kernel_init=dcgan_init, dtype=self.dtype, **kw)
    h = nn.leaky_relu(normed(self.norm, conv(self.width), train, post_norm=False)(x_BHWC), 0.2)
    for i in range(1, n_down):
      # A bias before batch / layer norm is cancelled by the normalisation (whose own bias takes its place).
      hidden = conv(self.width * 2**i, use_bias=self.norm not in ("batch", "layer"))
      h = nn.leaky_relu(normed(self.norm, hidden, train)(h), 0.2)
    return discriminator_head(
      h.reshape((h.shape[0], -1)),
      labels_B,
      num_classes=self.num_classes,
      conditioning=self.conditioning,
      norm=self.norm,
      train=train,
      kernel_init=dcgan_init,
      dtype=self.dtype,
      fast_ops=self.fast_ops,
    )


@register("dcgan", default_d_norm="batch")
def dcgan(cfg, info):
  """model.d_norm "" is batch norm, Radford et al.'s; conditional runs use conditional BN in G and `d_conditioning`."""
  if info.kind != "images":
    raise ValueError(f"model.name='dcgan' needs an image dataset; data.name={info.name!r} is {info.kind}")
  height, width, _ = info.shape
  if height != width or height not in UPSAMPLES:
    raise ValueError(
      f"model.name='dcgan' supports square images of side {tuple(UPSAMPLES)} (data.resolution); "
      f"data.name={info.name!r} is {height}x{width}"
    )
  norm = d_norm(cfg)
  classes = conditioning_classes(cfg, info)
  generator = DCGANGenerator(info.shape, cfg.g_width, num_classes=classes, spectral_norm=cfg.g_spectral_norm)
  return generator, DCGANDiscriminator(cfg.d_width, norm, num_classes=classes, conditioning=cfg.d_conditioning)
