"""The resizes of the published FID pipelines, each as the 1-D interpolation matrix its library computes.

A separable resize is `out_OxP = W_OxH @ in_HxW @ V_PxW^T`; each function below builds one W (out x in, rows
summing to 1) from the library's own index arithmetic, so the three pipelines' pixels are reproduced, not
approximated by a generic kernel:

* `tf1_bilinear`: TensorFlow 1's `tf.image.resize_bilinear(align_corners=False)`, the legacy kernel
  without half-pixel centres (TTUR, TF-GAN, compare_gan; StyleGAN2-ADA's grid_sample computes the same):
  source = i * in/out.
* `torch_bilinear`: `F.interpolate(mode="bilinear", align_corners=False)` (pytorch-fid): half-pixel centres,
  source = (i + 0.5) * in/out - 0.5 clamped at 0, no antialiasing.
* `pil_bicubic`: PIL's `Image.resize(BICUBIC)` (clean-fid): the cubic kernel with a = -0.5, support 2 widened by
  the reduction factor when shrinking (antialiasing), centres at (i + 0.5) * in/out, weights normalised per row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gan_jax.registry import Registry

ResizeMatrix = Callable[[int, int], np.ndarray]
RESIZES: Registry[ResizeMatrix] = Registry("resize")


def _linear_rows(src_O: np.ndarray, size_in: int) -> np.ndarray:
  """Rows interpolating linearly between floor(src) and the next pixel (the last pixel repeats at the edge)."""
  lo_O = np.floor(src_O).astype(np.int64)
  hi_O = np.minimum(lo_O + 1, size_in - 1)
  frac_O = src_O - lo_O
  rows = np.arange(len(src_O))
  weights_OI = np.zeros((len(src_O), size_in))
  np.add.at(weights_OI, (rows, lo_O), 1.0 - frac_O)
  np.add.at(weights_OI, (rows, hi_O), frac_O)
  return weights_OI


@RESIZES.register("tf1_bilinear")
def tf1_bilinear(size_in: int, size_out: int) -> np.ndarray:
  """TF1 resize_bilinear, align_corners=False: the output pixel i samples the input at i * in/out."""
  scale = np.float32(size_in) / np.float32(size_out)  # TF computes the scale and the source in float32
  return _linear_rows(np.arange(size_out, dtype=np.float32) * scale, size_in)


@RESIZES.register("torch_bilinear")
def torch_bilinear(size_in: int, size_out: int) -> np.ndarray:
  """torch bilinear, align_corners=False: source (i + 0.5) * in/out - 0.5, negative sources clamped to 0."""
  scale = np.float32(size_in) / np.float32(size_out)
  src_O = np.maximum((np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
  return _linear_rows(src_O, size_in)


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
  x = np.abs(x)
  near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
  far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
  return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@RESIZES.register("pil_bicubic")
def pil_bicubic(size_in: int, size_out: int) -> np.ndarray:
  """PIL's BICUBIC coefficients (Resample.c precompute_coeffs): float64, window clipped to the image."""
  scale = size_in / size_out
  filter_scale = max(scale, 1.0)
  support = 2.0 * filter_scale
  weights_OI = np.zeros((size_out, size_in))
  for i in range(size_out):
    centre = (i + 0.5) * scale
    lo = max(int(centre - support + 0.5), 0)  # int() truncates toward zero, as C's cast
    hi = min(int(centre + support + 0.5), size_in)
    taps = _cubic((np.arange(lo, hi) - centre + 0.5) / filter_scale)
    total = taps.sum()
    weights_OI[i, lo:hi] = taps / total if total != 0.0 else taps
  return weights_OI


def resize_matrices(name: str, size_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """(rows_OxH, cols_PxW) of resize `name` from size_hw to out_hw; identities where a side keeps its size.

  PIL and TF skip the pass of a side that keeps its size, so the identity is what they compute there too.
  """
  make = RESIZES.get(name)
  (h, w), (oh, ow) = size_hw, out_hw
  rows = np.eye(h) if h == oh else make(h, oh)
  cols = np.eye(w) if w == ow else make(w, ow)
  return rows.astype(np.float32), cols.astype(np.float32)


def resize_numpy(name: str, images_NHWC: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
  """The reference form of the resize on the host, float64: for tests and for one-off use."""
  rows_OH, cols_PW = (m.astype(np.float64) for m in resize_matrices(name, images_NHWC.shape[1:3], out_hw))
  return np.einsum("oh,nhwc,pw->nopc", rows_OH, images_NHWC.astype(np.float64), cols_PW)
