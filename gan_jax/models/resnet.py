"""The SNGAN ResNet for 32x32 images (Miyato et al. 2018, appendix B, Table 4), also at 28x28 and 64x64.

G: z -> Dense(s*s*ch) -> [ResBlock up]*n -> BN -> ReLU -> Conv3x3(channels) -> tanh, with s = 4, n = 3 at
   32x32 (s = 7, n = 2 at 28x28; s = 4, n = 4 at 64x64); a ResBlock is BN -> ReLU -> up -> Conv3x3 -> BN -> ReLU
   -> Conv3x3, plus up -> Conv1x1 as shortcut. Conditional G uses class-conditional batch norm in the blocks.
D: OptimizedBlock down -> ResBlock down -> ResBlock -> ResBlock -> ReLU -> global sum pool -> Dense(1), with
   one more ResBlock down per doubling past 32x32 (so the pooled maps stay at most 8x8),
   spectrally normalised throughout (model.d_norm, "" = spectral); conditional D adds the projection
   <embed(y), φ(x)> (Miyato & Koyama 2018) or an ACGAN class head.
Convolutions start from Glorot-uniform, with gain sqrt(2) on the residual paths, as the authors' Chainer code.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conditioning_classes, d_norm, register
from gan_jax.models.layers import batch_norm, conditional_batch_norm, dense, discriminator_head, normed

residual_init = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")
shortcut_init = nn.initializers.xavier_uniform()
MAX_POOLED_SIDE = 8  # D downsamples until its maps are at most this side (32x32 inputs: exactly SNGAN's D)


def start_size(height: int) -> tuple[int, int]:
  """(s, n): G starts at s x s and doubles n times; s = 4 (SNGAN) or 7 (28x28)."""
  for s in (4, 7):
    n = (height // s).bit_length() - 1
    if height % s == 0 and height == s * 2**n and n >= 1:
      return s, n
  raise ValueError(
    f"resnet needs square images of side 4 * 2^n or 7 * 2^n (e.g. 28, 32, 64; data.resolution); got height {height}"
  )


def _conv(
  features: int,
  kernel: int,
  init,
  norm: str,
  train: bool,
  post_norm: bool = False,
  dtype: jax.typing.DTypeLike | None = None,
):
  conv = nn.Conv(features, (kernel, kernel), padding="SAME", kernel_init=init, dtype=dtype)
  return normed(norm, conv, train, post_norm=post_norm)


def _upsample(x_BHWC: jax.Array) -> jax.Array:
  return jnp.repeat(jnp.repeat(x_BHWC, 2, axis=1), 2, axis=2)


def _downsample(x_BHWC: jax.Array) -> jax.Array:
  return nn.avg_pool(x_BHWC, (2, 2), (2, 2))


class GBlock(nn.Module):
  features: int
  num_classes: int = 0
  norm: str = "none"  # "spectral" for a spectrally normalised G (model.g_spectral_norm)
  dtype: jax.typing.DTypeLike | None = None

  @nn.compact
  def __call__(self, x_BHWC: jax.Array, labels_B: jax.Array | None, *, train: bool) -> jax.Array:
    cbn = lambda x: conditional_batch_norm(x, labels_B, num_classes=self.num_classes, train=train)
    conv = lambda k, init: _conv(self.features, k, init, self.norm, train, dtype=self.dtype)
    h = conv(3, residual_init)(_upsample(nn.relu(cbn(x_BHWC))))
    h = nn.relu(cbn(h))
    h = conv(3, residual_init)(h)
    return h + conv(1, shortcut_init)(_upsample(x_BHWC))


class DBlock(nn.Module):
  features: int
  down: bool
  optimized: bool = False  # the first block: no ReLU on the image, shortcut pools before its 1x1 conv
  norm: str = "spectral"
  dtype: jax.typing.DTypeLike | None = None

  @nn.compact
  def __call__(self, x_BHWC: jax.Array, *, train: bool) -> jax.Array:
    conv = lambda k, init, post: _conv(self.features, k, init, self.norm, train, post_norm=post, dtype=self.dtype)
    h = x_BHWC if self.optimized else nn.relu(x_BHWC)
    h = conv(3, residual_init, True)(h)
    h = conv(3, residual_init, True)(nn.relu(h))
    h = _downsample(h) if self.down else h
    if self.optimized:
      return h + conv(1, shortcut_init, False)(_downsample(x_BHWC))
    if self.down or x_BHWC.shape[-1] != self.features:
      shortcut = conv(1, shortcut_init, False)(x_BHWC)
      return h + (_downsample(shortcut) if self.down else shortcut)
    return h + x_BHWC


class ResNetGenerator(nn.Module):
  out_shape: tuple[int, int, int]
  width: int = 256
  num_classes: int = 0
  spectral_norm: bool = False
  dtype: jax.typing.DTypeLike | None = None  # the layers' compute dtype (train.compute_dtype); samples are float32
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)

  @nn.compact
  def __call__(self, z_BZ: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    s, n_up = start_size(self.out_shape[0])
    norm = "spectral" if self.spectral_norm else "none"
    dense_in = dense(s * s * self.width, fast_ops=self.fast_ops, kernel_init=shortcut_init, dtype=self.dtype)
    h = normed(norm, dense_in, train, post_norm=False)(z_BZ).reshape((-1, s, s, self.width))
    for _ in range(n_up):
      h = GBlock(self.width, self.num_classes, norm, self.dtype)(h, labels_B, train=train)
    h = nn.relu(batch_norm(train)(h))
    out = _conv(self.out_shape[-1], 3, shortcut_init, norm, train, dtype=self.dtype)
    return jnp.tanh(out(h).astype(jnp.float32))


class ResNetDiscriminator(nn.Module):
  width: int = 128
  norm: str = "spectral"
  num_classes: int = 0
  conditioning: str = "projection"
  dtype: jax.typing.DTypeLike | None = None  # the layers' compute dtype; the logits are float32
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)

  @nn.compact
  def __call__(self, x_BHWC: jax.Array, labels_B: jax.Array | None = None, *, train: bool):
    block = lambda down, **kw: DBlock(self.width, down=down, norm=self.norm, dtype=self.dtype, **kw)
    h = block(True, optimized=True)(x_BHWC, train=train)
    h = block(True)(h, train=train)
    while h.shape[1] > MAX_POOLED_SIDE:  # past 32x32: SNGAN's 8x8 before the pooling
      h = block(True)(h, train=train)
    h = block(False)(h, train=train)
    h = block(False)(h, train=train)
    h_BF = jnp.sum(nn.relu(h), axis=(1, 2), dtype=jnp.float32)  # the pooled sum accumulates in float32
    return discriminator_head(
      h_BF,
      labels_B,
      num_classes=self.num_classes,
      conditioning=self.conditioning,
      norm=self.norm,
      train=train,
      kernel_init=shortcut_init,
      dtype=self.dtype,
      fast_ops=self.fast_ops,
    )


@register("resnet", default_d_norm="spectral")
def resnet(cfg, info):
  """SNGAN's CIFAR-10 ResNet: g_width 256 and d_width 128 in the paper."""
  if info.kind != "images" or info.shape[0] != info.shape[1]:
    raise ValueError(f"model.name='resnet' needs square images; data.name={info.name!r} has shape {info.shape}")
  start_size(info.shape[0])
  norm = d_norm(cfg)
  classes = conditioning_classes(cfg, info)
  generator = ResNetGenerator(info.shape, cfg.g_width, num_classes=classes, spectral_norm=cfg.g_spectral_norm)
  return generator, ResNetDiscriminator(cfg.d_width, norm, num_classes=classes, conditioning=cfg.d_conditioning)
