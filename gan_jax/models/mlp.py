"""MLP GANs: the classic 28x28 tutorial GAN, a small pair for the 2D mode-collapse benchmarks and PacGAN's.

Their discriminators take the mode-collapse remedies model.pac (PacGAN packing) and model.minibatch_std.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models import conditioning_classes, d_norm, register
from gan_jax.models.layers import (
  ExampleDropout,
  batch_norm,
  class_labels,
  dense,
  discriminator_head,
  init_batch,
  maxout,
  minibatch_std,
  normed,
  pack,
)


class MLPGenerator(nn.Module):
  widths: tuple[int, ...]
  out_shape: tuple[int, ...]
  activation: str = "leaky_relu"  # leaky_relu (tutorial GAN) | relu
  batch_norm: bool = False
  tanh: bool = True  # images live in [-1, 1]; 2D points do not
  num_classes: int = 0  # > 0: conditional on a one-hot label concatenated to z (Mirza & Osindero 2014)
  spectral_norm: bool = False  # on every layer, as in SAGAN's generator (Zhang et al. 2019)
  dtype: jax.typing.DTypeLike | None = None  # the Dense layers' compute dtype (train.compute_dtype)
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)

  @nn.compact
  def __call__(self, z_BZ: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    h = z_BZ
    if self.num_classes:
      labels_B = class_labels(labels_B, z_BZ.shape[0], self.num_classes)
      h = jnp.concatenate([z_BZ, jax.nn.one_hot(labels_B, self.num_classes, dtype=z_BZ.dtype)], axis=-1)
    norm = "spectral" if self.spectral_norm else "none"
    for w in self.widths:
      h = normed(norm, dense(w, fast_ops=self.fast_ops, dtype=self.dtype), train, post_norm=False)(h)
      if self.batch_norm:
        h = batch_norm(train)(h)
      h = nn.leaky_relu(h, 0.2) if self.activation == "leaky_relu" else nn.relu(h)
    h = normed(
      norm, dense(int(np.prod(self.out_shape)), fast_ops=self.fast_ops, dtype=self.dtype), train, post_norm=False
    )(h)
    h = h.astype(jnp.float32)  # samples are float32 whatever the compute dtype
    h = jnp.tanh(h) if self.tanh else h
    return h.reshape((z_BZ.shape[0], *self.out_shape))


class MLPDiscriminator(nn.Module):
  widths: tuple[int, ...]
  dropout: float = 0.0
  norm: str = "none"  # layers.D_NORMS; batch / layer norm follow every hidden layer
  num_classes: int = 0  # > 0: conditional, as `conditioning` says (layers.discriminator_head)
  conditioning: str = "projection"
  dtype: jax.typing.DTypeLike | None = None  # the Dense layers' compute dtype; the logits are float32
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)
  pac: int = 1  # > 1: scores `pac` examples joined (layers.pack), returning B / pac logits (PacGAN)
  minibatch_std: bool = False  # the last hidden layer also sees layers.minibatch_std's feature
  pieces: int = 1  # > 1: hidden layers are maxout units of this many pieces instead of LeakyReLU (PacGAN's D)

  @nn.compact
  def __call__(self, x: jax.Array, labels_B: jax.Array | None = None, *, train: bool):
    h = x.reshape((x.shape[0], -1))
    if self.pac > 1:
      h = pack(init_batch(h, self.pac) if self.is_initializing() else h, self.pac)
    for i, w in enumerate(self.widths):
      if self.minibatch_std and i == len(self.widths) - 1:
        h = minibatch_std(h, train)
      h = normed(self.norm, dense(w * self.pieces, fast_ops=self.fast_ops, dtype=self.dtype), train)(h)
      h = maxout(h, self.pieces) if self.pieces > 1 else nn.leaky_relu(h, 0.2)
      h = ExampleDropout(self.dropout)(h, train=train)
    return discriminator_head(
      h,
      labels_B,
      num_classes=self.num_classes,
      conditioning=self.conditioning,
      norm=self.norm,
      train=train,
      dtype=self.dtype,
      fast_ops=self.fast_ops,
    )


def _discriminator(cfg, info, widths: tuple[int, ...], dropout: float, pieces: int = 1) -> MLPDiscriminator:
  norm = d_norm(cfg)
  classes = conditioning_classes(cfg, info)
  return MLPDiscriminator(
    widths,
    dropout,
    norm=norm,
    num_classes=classes,
    conditioning=cfg.d_conditioning,
    pac=cfg.get("pac", 1),
    minibatch_std=cfg.get("minibatch_std", False),
    pieces=pieces,
  )


@register("mlp_gan", default_d_norm="none")
def mlp_gan(cfg, info):
  """G z->w->2w->4w->image (LeakyReLU 0.2, tanh); D image->4w->2w->w->1 with dropout. w = 256."""
  w_g, w_d = cfg.g_width, cfg.d_width
  classes = conditioning_classes(cfg, info)
  return (
    MLPGenerator((w_g, 2 * w_g, 4 * w_g), info.shape, num_classes=classes, spectral_norm=cfg.g_spectral_norm),
    _discriminator(cfg, info, (4 * w_d, 2 * w_d, w_d), cfg.dropout),
  )


@register("mlp2d", default_d_norm="none")
def mlp2d(cfg, info):
  """Three hidden layers each side; G with ReLU and no output squashing, D with LeakyReLU."""
  classes = conditioning_classes(cfg, info)
  generator = MLPGenerator(
    (cfg.g_width,) * 3,
    info.shape,
    activation="relu",
    tanh=False,
    num_classes=classes,
    spectral_norm=cfg.g_spectral_norm,
  )
  return generator, _discriminator(cfg, info, (cfg.d_width,) * 3, 0.0)


# Maxout pieces per unit of PacGAN's discriminator.
PACGAN_PIECES = 5


@register("pacgan_mlp", default_d_norm="none")
def pacgan_mlp(cfg, info):
  """PacGAN's 2D networks (Lin et al. 2018, after VEEGAN's): G 4 x [Dense g_width, BatchNorm, ReLU] then a
  linear output; D 3 x maxout(d_width units, 5 pieces) then Dense 1. The paper's sizes: g_width 400,
  d_width 200 (experiments/pacgan_2d.py)."""
  classes = conditioning_classes(cfg, info)
  generator = MLPGenerator(
    (cfg.g_width,) * 4,
    info.shape,
    activation="relu",
    batch_norm=True,
    tanh=False,
    num_classes=classes,
    spectral_norm=cfg.g_spectral_norm,
  )
  return generator, _discriminator(cfg, info, (cfg.d_width,) * 3, 0.0, pieces=PACGAN_PIECES)
