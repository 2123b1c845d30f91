"""The InfoGAN-style pair of Lucic et al. 2018 ("Are GANs Created Equal?"), as compare_gan v1 builds it.

G: z_BZ -> FC 1024 -> BN -> lrelu -> FC (H/4)(W/4)128 -> BN -> lrelu -> deconv 64 (4x4, stride 2) -> BN -> lrelu
   -> deconv C (4x4, stride 2) -> sigmoid.
D: conv 64 (4x4, stride 2) -> lrelu -> conv 128 (4x4, stride 2) -> [BN] -> lrelu -> FC 1024 -> [BN] -> lrelu -> FC 1.
lrelu has slope 0.2 everywhere, G included. Weights N(0, 0.02), the convolutions' truncated at 2 std as TF1's
truncated_normal_initializer (no variance correction); biases 0; BN decay 0.999, epsilon 1e-3, with scale.

compare_gan works on pixels in [0, 1]; gan_jax's pipeline carries [-1, 1]. So D maps its input to (x + 1) / 2
first and G returns 2·sigmoid - 1: the networks compute on exactly compare_gan's pixels. A penalty's input
gradient is then taken with respect to [-1, 1] pixels, half the [0, 1] one; penalty.form="compare_gan" doubles
it (penalties.py). `model.latent_dist="uniform"` gives compare_gan's z ~ U(-1, 1) (layers.latent).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import d_norm, register
from gan_jax.models.layers import batch_norm, conv_transpose_4x4_s2, dcgan_init, dense, latent

# compare_gan's ops.batch_norm: tf.contrib.layers.batch_norm(decay=0.999, epsilon=0.001, scale=True).
BN_DECAY, BN_EPSILON = 0.999, 1e-3
# TF1's truncated_normal_initializer(0.02): N(0, 0.02) cut at 2 std, not rescaled (jax's truncated_normal alike).
conv_init = nn.initializers.truncated_normal(0.02)


def _bn(train: bool) -> nn.BatchNorm:
  return batch_norm(train, momentum=BN_DECAY, epsilon=BN_EPSILON)


class InfoGANGenerator(nn.Module):
  out_shape: tuple[int, int, int]
  latent_dist: str = "normal"  # layers.LATENT_DISTS: the prior G's z is drawn from
  dtype: jax.typing.DTypeLike | None = None
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)

  @nn.compact
  def __call__(self, z_BZ: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    H, W, C = self.out_shape
    lrelu = lambda x: nn.leaky_relu(x, 0.2)
    h = nn.Dense(1024, kernel_init=dcgan_init, dtype=self.dtype)(latent(z_BZ, self.latent_dist))
    h = lrelu(_bn(train)(h))
    fc = dense((H // 4) * (W // 4) * 128, fast_ops=self.fast_ops, kernel_init=dcgan_init, dtype=self.dtype)
    h = lrelu(_bn(train)(fc(h))).reshape((-1, H // 4, W // 4, 128))
    # Named as flax names nn.ConvTranspose, so that both layer choices share checkpoints.
    up = conv_transpose_4x4_s2(
      64, fast_ops=self.fast_ops, kernel_init=dcgan_init, dtype=self.dtype, name="ConvTranspose_0"
    )
    h = lrelu(_bn(train)(up(h)))
    logits = nn.ConvTranspose(
      C, (4, 4), (2, 2), "SAME", kernel_init=dcgan_init, dtype=self.dtype, name="ConvTranspose_1"
    )(h)
    return 2.0 * jax.nn.sigmoid(logits.astype(jnp.float32)) - 1.0  # compare_gan's [0, 1] sigmoid, as [-1, 1]


class InfoGANDiscriminator(nn.Module):
  norm: str = "batch"  # "batch" (compare_gan's discriminator_batchnorm) or "none"
  dtype: jax.typing.DTypeLike | None = None
  fast_ops: bool = False  # models.fast_ops' custom gradients (CPU; see train.xla_cpu)

  @nn.compact
  def __call__(self, x_BHWC: jax.Array, labels_B: jax.Array | None = None, *, train: bool) -> jax.Array:
    lrelu = lambda x: nn.leaky_relu(x, 0.2)
    bn = (lambda x: _bn(train)(x)) if self.norm == "batch" else (lambda x: x)
    conv = lambda w: nn.Conv(w, (4, 4), (2, 2), "SAME", kernel_init=conv_init, dtype=self.dtype)
    h = lrelu(conv(64)((x_BHWC + 1.0) / 2.0))  # compare_gan's pixels in [0, 1]
    h = lrelu(bn(conv(128)(h)))
    fc = dense(1024, fast_ops=self.fast_ops, kernel_init=dcgan_init, dtype=self.dtype)
    h = lrelu(bn(fc(h.reshape((h.shape[0], -1)))))
    return nn.Dense(1, kernel_init=dcgan_init, dtype=self.dtype)(h)[:, 0].astype(jnp.float32)


@register("infogan", default_d_norm="batch")
def infogan(cfg, info):
  """model.d_norm: "batch" (""), or "none" (Lucic et al.'s search switches D's batch norm off)."""
  if info.kind != "images":
    raise ValueError(f"model.name='infogan' needs an image dataset; data.name={info.name!r} is {info.kind}")
  height, width, _ = info.shape
  if height % 4 or width % 4:
    raise ValueError(
      f"model.name='infogan' upsamples twice by 2; expected an image side divisible by 4, got {height}x{width}"
    )
  if cfg.conditional:
    raise ValueError("model.name='infogan' is unconditional (Lucic et al.); expected model.conditional=False")
  norm = d_norm(cfg)
  if norm not in ("batch", "none"):
    raise ValueError(f"model.d_norm={norm!r}: model.name='infogan' takes 'batch' or 'none' (Lucic et al.)")
  return InfoGANGenerator(info.shape, latent_dist=cfg.latent_dist), InfoGANDiscriminator(norm)
