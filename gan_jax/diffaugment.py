"""DiffAugment (Zhao et al. 2020): differentiable augmentation of real and fake images before D.

Augmenting only the real data teaches G the augmentations; augmenting both, differentiably, in every D
call (D updates, G update, penalties) lets D see more varied data without leaking them into G. The ops
and their ranges follow the authors' code (github.com/mit-han-lab/data-efficient-gans): color = random
brightness, saturation and contrast; translation by up to 1/8 of the image side with zero padding;
cutout of a square of half the side whose centre may lie anywhere in the image, so it is clipped at the
borders and removes about 19% of the pixels on average, not 25%.

Each example's draws come from (key, its global example index), as dropout's do (gan_jax.parallel), so
an augmented batch does not depend on how many devices share it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def _color(x_HWC: jax.Array, key: jax.Array) -> jax.Array:
  u_3 = jax.random.uniform(key, (3,), x_HWC.dtype)
  x_HWC = x_HWC + (u_3[0] - 0.5)  # brightness in [-0.5, 0.5)
  mean_HW1 = jnp.mean(x_HWC, axis=-1, keepdims=True)
  x_HWC = (x_HWC - mean_HW1) * (2.0 * u_3[1]) + mean_HW1  # saturation in [0, 2); none for grey images
  mean = jnp.mean(x_HWC)
  return (x_HWC - mean) * (u_3[2] + 0.5) + mean  # contrast in [0.5, 1.5)


def _translation(x_HWC: jax.Array, key: jax.Array) -> jax.Array:
  H, W, C = x_HWC.shape
  sh, sw = int(H * TRANSLATION_RATIO + 0.5), int(W * TRANSLATION_RATIO + 0.5)
  shift_2 = jax.random.randint(key, (2,), jnp.array([-sh, -sw]), jnp.array([sh + 1, sw + 1]))
  padded = jnp.pad(x_HWC, ((sh, sh), (sw, sw), (0, 0)))
  return lax.dynamic_slice(padded, (sh + shift_2[0], sw + shift_2[1], 0), (H, W, C))


def cutout_size(height: int, width: int) -> tuple[int, int]:
  return int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)


def _cutout(x_HWC: jax.Array, key: jax.Array) -> jax.Array:
  H, W, _ = x_HWC.shape
  ch, cw = cutout_size(H, W)
  centre_2 = jax.random.randint(key, (2,), jnp.array([0, 0]), jnp.array([H + 1 - ch % 2, W + 1 - cw % 2]))
  rows_H = jnp.arange(H) - (centre_2[0] - ch // 2)
  cols_W = jnp.arange(W) - (centre_2[1] - cw // 2)
  inside_HW = ((rows_H >= 0) & (rows_H < ch))[:, None] & ((cols_W >= 0) & (cols_W < cw))[None, :]
  return x_HWC * (~inside_HW)[:, :, None].astype(x_HWC.dtype)


_OPS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
  "color": _color,
  "translation": _translation,
  "cutout": _cutout,
}


def parse_policy(policy: str) -> tuple[str, ...]:
  """'color,translation,cutout' -> its ops in order; '' -> ()."""
  ops = tuple(op.strip() for op in policy.split(",") if op.strip())
  unknown = [op for op in ops if op not in _OPS]
  if unknown:
    raise ValueError(f"augment.policy={policy!r} has unknown ops {unknown}; expected a comma list of {list(_OPS)}")
  return ops


def diff_augment(images_BHWC: jax.Array, key: jax.Array, example_ids_B: jax.Array, policy: Sequence[str]) -> jax.Array:
  """The images under `policy`'s ops, with draws keyed by (key, example id, op); identity for ()."""
  if not policy:
    return images_BHWC
  if images_BHWC.ndim != 4:
    raise ValueError(f"DiffAugment needs images [B, H, W, C]; got shape {images_BHWC.shape}")

  def one(x_HWC: jax.Array, example_id: jax.Array) -> jax.Array:
    example_key = jax.random.fold_in(key, example_id)
    for op in policy:
      x_HWC = _OPS[op](x_HWC, jax.random.fold_in(example_key, list(_OPS).index(op)))
    return x_HWC

  return jax.vmap(one)(images_BHWC, example_ids_B)
