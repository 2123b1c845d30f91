"""Custom gradients that make the CPU step faster: the same functions as flax's layers, other backward passes.

Models use these only when built with `fast_ops=True` (models.get), which train.setup does when the CPU
speed settings are on (train.xla_cpu.enable). They were tuned and measured on XLA:CPU only (docs/speed.md);
on GPU and TPU the plain flax layers run. tests/test_fast_ops.py checks each against the plain layer.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


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


def dense_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
  """The dot_general nn.Dense calls, (((lhs.ndim - 1,), (0,)), ((), ())), as `matmul`."""
  if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())) or precision is not None or preferred_element_type:
    raise ValueError(f"Dense's dot_general got {dimension_numbers}, precision={precision}: expected nn.Dense's own")
  return matmul(lhs, rhs)


class ConvTranspose4x4S2(nn.Module):
  """`nn.ConvTranspose(features, (4, 4), (2, 2), "SAME")` with its gradients as two matmuls: same parameters, same maps.

  XLA runs a strided transposed convolution as a convolution over the input dilated with zeros, and on CPU
  the kernel gradient autodiff derives from that form costs many times its forward pass (docs/speed.md).
  Here the forward pass stays XLA's and the gradients take the column form of
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
  are one matmul each, dx = dcols @ K^T and dK = x^T @ dcols. Other forward passes measured slower on CPU
  (docs/speed.md): a sub-pixel matmul over the 2x2 windows of the padded input, one matmul per output
  phase, and the column form's matmul then overlap-add.
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
  dcols_BHWJ = cols.transpose(0, 1, 3, 2, 4, 5).reshape(B, H, W, 16 * F)
  kernel_CJ = kernel_HWIO.transpose(2, 0, 1, 3).reshape(C, 16 * F)
  dx = lax.dot_general(dcols_BHWJ, kernel_CJ, (((3,), (1,)), ((), ())))
  dkernel_CJ = lax.dot_general(x_BHWC, dcols_BHWJ, (((0, 1, 2), (0, 1, 2)), ((), ())))
  return dx, dkernel_CJ.reshape(C, 4, 4, F).transpose(1, 2, 0, 3)


conv_transpose_4x4_s2.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)
