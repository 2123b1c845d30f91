"""Image-restoration metrics of a fill against the ground truth, over a region: PSNR and SSIM (Wang et al. 2004).

Images live in [-1, 1] (data range 2); region_NHW is 1 on the pixels scored (an inpainting's missing ones).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

DATA_RANGE = 2.0  # images live in [-1, 1]
SSIM_SIGMA, SSIM_TRUNCATE = 1.5, 3.5  # Wang et al.'s 11x11 Gaussian window, as skimage's gaussian_weights=True
SSIM_K1, SSIM_K2 = 0.01, 0.03


@jax.jit
def psnr(x_NHWC: jax.Array, truth_NHWC: jax.Array, region_NHW: jax.Array) -> jax.Array:
  """psnr_N in dB over the region's pixels (all channels), data range 2 ([-1, 1]); an exact match gives 100 dB."""
  sq_N = jnp.sum(region_NHW[..., None] * (x_NHWC - truth_NHWC) ** 2, axis=(1, 2, 3))
  mse_N = sq_N / (jnp.sum(region_NHW, axis=(1, 2)) * x_NHWC.shape[-1])
  return 10 * jnp.log10(DATA_RANGE**2 / jnp.maximum(mse_N, DATA_RANGE**2 * 1e-10))


def _gaussian_filter(x_NHW: jax.Array) -> jax.Array:
  """scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5, mode='reflect') over H and W, separably."""
  r = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
  k = np.exp(-0.5 * (np.arange(-r, r + 1) / SSIM_SIGMA) ** 2)
  k = jnp.asarray(k / k.sum(), jnp.float32)
  H, W = x_NHW.shape[1:]
  pad = jnp.pad(x_NHW, ((0, 0), (r, r), (r, r)), mode="symmetric")  # scipy's 'reflect' is numpy's 'symmetric'
  rows = sum(k[i] * pad[:, i : i + H, :] for i in range(2 * r + 1))
  return sum(k[i] * rows[:, :, i : i + W] for i in range(2 * r + 1))


@jax.jit
def ssim_map(x_NHWC: jax.Array, truth_NHWC: jax.Array) -> jax.Array:
  """S_NHW: Wang et al. 2004's SSIM at every pixel (Gaussian window, population covariances), channel mean.

  Equal to skimage's structural_similarity(gaussian_weights=True, use_sample_covariance=False, data_range=2,
  full=True) map.
  """
  c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2

  def one_channel(a_NHW, b_NHW):
    mu_a, mu_b = _gaussian_filter(a_NHW), _gaussian_filter(b_NHW)
    var_a = _gaussian_filter(a_NHW * a_NHW) - mu_a**2
    var_b = _gaussian_filter(b_NHW * b_NHW) - mu_b**2
    cov = _gaussian_filter(a_NHW * b_NHW) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))

  maps_CNHW = jax.vmap(one_channel, in_axes=-1)(x_NHWC.astype(jnp.float32), truth_NHWC.astype(jnp.float32))
  return jnp.mean(maps_CNHW, axis=0)


def ssim(x_NHWC: jax.Array, truth_NHWC: jax.Array, region_NHW: jax.Array) -> jax.Array:
  """ssim_N: the SSIM map of the whole image, averaged over the region's pixels.

  Windows near the hole's edge also see known pixels, equal in both images: that is the same for every fill.
  """
  s_NHW = ssim_map(x_NHWC, truth_NHWC)
  return jnp.sum(region_NHW * s_NHW, axis=(1, 2)) / jnp.sum(region_NHW, axis=(1, 2))
