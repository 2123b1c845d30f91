"""Shared layers: example-keyed randomness (see gan_jax.parallel), normalisation choice, class conditioning."""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gan_jax import parallel

# N(0, 0.02), the DCGAN initialisation (Radford et al. 2016).
dcgan_init = nn.initializers.normal(0.02)


@jax.custom_vjp
def matmul(x_BI: jax.Array, kernel_IO: jax.Array) -> jax.Array:
  """x [..., I] @ kernel [I, O], its kernel gradient contracting x's and dy's leading axes."""
  return jnp.matmul(x_BI, kernel_IO)


def _matmul_fwd(x_BI, kernel_IO):
  return matmul(x_BI, kernel_IO), (x_BI, kernel_IO)


def _matmul_bwd(residuals, dy_BO):
  x_BI, kernel_IO = residuals
  batch = tuple(range(x_BI.ndim - 1))
  dx_BI = lax.dot_general(dy_BO, kernel_IO, (((dy_BO.ndim - 1,), (1,)), ((), ())))
  # Contracting the batch axes of x and dy gives [I, O] directly. Autodiff's rule computes [O, I] and
  # transposes it; under the population vmap XLA:CPU keeps that transpose and then fuses it into each of
  # Adam's reads of the gradient.
  return dx_BI, lax.dot_general(x_BI, dy_BO, ((batch, batch), ((), ())))


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _dense_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
  """The dot_general nn.Dense calls, (((lhs.ndim - 1,), (0,)), ((), ())), as `matmul`."""
  if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())) or precision is not None or preferred_element_type:
    raise ValueError(f"Dense's dot_general got {dimension_numbers}, precision={precision}: expected nn.Dense's own")
  return matmul(lhs, rhs)


# nn.Dense (same parameters, names and values; gradients equal to float rounding), its kernel gradient
# computed in the kernel's own layout.
Dense = functools.partial(nn.Dense, dot_general=_dense_dot_general)


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


def batch_norm(train: bool, momentum: float = 0.9, affine: bool = True) -> nn.BatchNorm:
  """Batch norm over the *global* batch: statistics are averaged over the data axis (on one device, no
  collective at all). `affine=False` leaves out the scale and bias, for conditional batch norm's own.

  Statistics and output are float32 for any input (bfloat16 under train.compute_dtype): the next layer casts back.
  """
  axis_name = parallel.AXIS if train and parallel.axis_size() > 1 else None
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, axis_name=axis_name, dtype=jnp.float32,
                      use_scale=affine, use_bias=affine)


# The collection holding spectral normalisation's power-iteration state (u and the sigma it gives).
SPECTRAL = "spectral"
D_NORMS = ("none", "batch", "spectral", "layer")


def check_norm(norm: str) -> None:
  if norm not in D_NORMS:
    raise ValueError(f"model.d_norm={norm!r}: expected one of {D_NORMS}")


def normed(norm: str, layer: nn.Module, train: bool, *, post_norm: bool = True) -> Callable[[jax.Array], jax.Array]:
  """`layer` under normalisation `norm`, as a function of the layer's input.

  spectral divides every weight matrix of the layer by its largest singular value (Miyato et al. 2018),
  estimated by one power-iteration step per train-mode call from the u kept in the SPECTRAL collection;
  parameter paths stay those of the bare layer. batch / layer normalise the layer's output, and only where
  `post_norm` (DCGAN leaves D's input and logit layers unnormalised); layer norm is over every non-batch
  axis, the critic of Gulrajani et al. 2017. Create this inside the caller's compact method: the layer and
  any norm module are named in the caller's scope, so "none" leaves an existing model's names untouched.

  No cross-device synchronisation of u is needed: its update reads only the weights and the previous u,
  both replicated, so every device computes the same new u.
  """
  check_norm(norm)
  if norm == "spectral":
    sn = nn.SpectralNorm(layer, collection_name=SPECTRAL)
    return lambda x: sn(x, update_stats=train)
  if norm == "none" or not post_norm:
    return layer
  if norm == "batch":
    bn = batch_norm(train)
    return lambda x: bn(layer(x))

  def layer_normed(x: jax.Array) -> jax.Array:
    y = layer(x)
    return nn.LayerNorm(reduction_axes=tuple(range(1, y.ndim)))(y)

  return layer_normed


def class_labels(labels_B: jax.Array | None, batch: int, num_classes: int) -> jax.Array:
  """The given labels, or the classes in turn (0, 1, ..., C-1, 0, ...) for calls that give none.

  Initialisation and unlabelled sampling (training grids, evaluation) then see every class equally.
  """
  if labels_B is None:
    return jnp.arange(batch, dtype=jnp.int32) % num_classes
  return labels_B.astype(jnp.int32)


def conditional_batch_norm(x_BF: jax.Array, labels_B: jax.Array | None, *, num_classes: int, train: bool) -> jax.Array:
  """Batch norm whose gain and bias are looked up per class (de Vries et al. 2017; Miyato & Koyama 2018).

  With num_classes = 0 it is `batch_norm`. Call it inside the caller's compact method, like `normed`, so an
  unconditional model keeps the parameter names of plain batch norm.
  """
  if not num_classes:
    return batch_norm(train)(x_BF)
  bn = batch_norm(train, affine=False)
  labels_B = class_labels(labels_B, x_BF.shape[0], num_classes)
  features = x_BF.shape[-1]
  gain_BF = nn.Embed(num_classes, features, embedding_init=nn.initializers.ones)(labels_B)
  bias_BF = nn.Embed(num_classes, features, embedding_init=nn.initializers.zeros)(labels_B)
  expand = (slice(None),) + (None,) * (x_BF.ndim - 2) + (slice(None),)
  return bn(x_BF) * gain_BF[expand] + bias_BF[expand]


# The collection HeadFeatures sows φ(x) into: its own, so capture_intermediates' "intermediates" stay the layers'.
HEAD_FEATURES = "head_features"


class HeadFeatures(nn.Module):
  """The identity on D's features φ(x) before its head, sown for feature matching (AnoGAN, gan_jax.anomaly).

  Parameter-free, and never sown by `init`, so checkpoints and the state are unchanged; read it with
  `apply(..., mutable=[HEAD_FEATURES])`.
  """

  @nn.compact
  def __call__(self, h_BF: jax.Array) -> jax.Array:
    if not self.is_initializing():
      self.sow(HEAD_FEATURES, "features", h_BF)
    return h_BF


def discriminator_head(
    h_BF: jax.Array,
    labels_B: jax.Array | None,
    *,
    num_classes: int,
    conditioning: str,
    norm: str,
    train: bool,
    kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init,
    dtype: jax.typing.DTypeLike | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
  """D's output from its features φ(x): logits_B, or (logits_B, class_logits_BC) for ACGAN.

  Unconditional: ψ(φ). projection: ψ(φ) + <embed(y), φ> (Miyato & Koyama 2018). acgan: ψ(φ) and a class
  head beside it (Odena et al. 2017), so the adversarial logit keeps the loss contract. Call it inside the
  caller's compact method (names stay in its scope); weights take `norm`'s spectral normalisation. The heads
  compute in `dtype`; the logits come out float32, for the loss. φ is sown by HeadFeatures.
  """
  h_BF = HeadFeatures()(h_BF)
  dense = lambda features: Dense(features, kernel_init=kernel_init, dtype=dtype)
  logits_B = normed(norm, dense(1), train, post_norm=False)(h_BF)[:, 0].astype(jnp.float32)
  if not num_classes:
    return logits_B
  if conditioning == "acgan":
    return logits_B, normed(norm, dense(num_classes), train, post_norm=False)(h_BF).astype(jnp.float32)
  if conditioning != "projection":
    raise ValueError(f"model.d_conditioning={conditioning!r}: expected 'projection' or 'acgan'")
  embed = nn.Embed(num_classes, h_BF.shape[-1], embedding_init=nn.initializers.xavier_uniform())
  embed_BF = normed(norm, embed, train, post_norm=False)(class_labels(labels_B, h_BF.shape[0], num_classes))
  return logits_B + jnp.sum(embed_BF * h_BF, axis=-1)


class ConvTranspose4x4S2(nn.Module):
  """`nn.ConvTranspose(features, (4, 4), (2, 2), "SAME")` with its gradients as two matmuls: same parameters, same maps.

  XLA runs a strided transposed convolution as a convolution over the input dilated with zeros, and on CPU
  the kernel gradient autodiff derives from that form costs ~25x its forward pass (the whole DCGAN step,
  2.5x). Here the forward pass stays XLA's and the gradients take the column form of
  `conv_transpose_4x4_s2`. The parameters ("kernel" [4, 4, C_in, features] in flax's layout, "bias") are
  flax's, so checkpoints move freely between the two layers.
  """

  features: int
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
  dtype: jax.typing.DTypeLike | None = None
  param_dtype: jax.typing.DTypeLike = jnp.float32

  @nn.compact
  def __call__(self, x_BHWC: jax.Array) -> jax.Array:
    C = x_BHWC.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (4, 4, C, self.features), self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    x_BHWC, kernel, bias = nn.dtypes.promote_dtype(x_BHWC, kernel, bias, dtype=self.dtype)
    y = conv_transpose_4x4_s2(x_BHWC, kernel)
    return y + bias if bias is not None else y


def _xla_conv_transpose(x_BHWC: jax.Array, kernel_HWIO: jax.Array) -> jax.Array:
  return lax.conv_transpose(x_BHWC, kernel_HWIO, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def conv_transpose_4x4_s2(x_BHWC: jax.Array, kernel_HWIO: jax.Array) -> jax.Array:
  """lax.conv_transpose(x, kernel, (2, 2), "SAME") for a 4x4 kernel: XLA's forward, column-form gradients.

  y[2n + 2 - t] sums x[n] K[t], so with dy gathered into columns dcols [B, H, W, 16 * F] both gradients
  are one matmul each, dx = dcols @ K^T and dK = x^T @ dcols. Forward passes tried instead, all slower on
  CPU (README, Speed): a sub-pixel matmul over the 2x2 windows of the padded input (1.2x slower on the
  DCGAN-28 step), one matmul per output phase, and the column form's matmul then overlap-add.
  """
  return _xla_conv_transpose(x_BHWC, kernel_HWIO)


def _conv_transpose_fwd(x_BHWC, kernel_HWIO):
  return _xla_conv_transpose(x_BHWC, kernel_HWIO), (x_BHWC, kernel_HWIO)


def _conv_transpose_bwd(residuals, dy_BYXO):
  x_BHWC, kernel_HWIO = residuals
  B, H, W, C = x_BHWC.shape
  F = kernel_HWIO.shape[-1]
  # y[2n + 2 - t] sums x[n] K[t]: so dy's columns dcols[n, t] = dy_padded[2n + 3 - t], the 4 rows from 2n reversed.
  padded = jnp.pad(dy_BYXO, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(B, H + 1, 2, W + 1, 2, F)
  rows = jnp.concatenate([padded[:, :H], padded[:, 1:]], axis=2)
  cols = jnp.concatenate([rows[:, :, :, :W], rows[:, :, :, 1:]], axis=4)[:, :, ::-1, :, ::-1]
  dcols_BHWK = cols.transpose(0, 1, 3, 2, 4, 5).reshape(B, H, W, 16 * F)
  kernel_CK = kernel_HWIO.transpose(2, 0, 1, 3).reshape(C, 16 * F)
  dx = lax.dot_general(dcols_BHWK, kernel_CK, (((3,), (1,)), ((), ())))
  dkernel_CK = lax.dot_general(x_BHWC, dcols_BHWK, (((0, 1, 2), (0, 1, 2)), ((), ())))
  return dx, dkernel_CK.reshape(C, 4, 4, F).transpose(1, 2, 0, 3)


conv_transpose_4x4_s2.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)
