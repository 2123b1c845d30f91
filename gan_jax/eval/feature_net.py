"""A frozen feature network and its weight files: what every network in gan_jax.eval.features is."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

_META_PREFIX = "meta/"


def file_sha256(path: str | os.PathLike) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def save_variables(path: str | os.PathLike, variables: Any, **meta: float | int | str) -> None:
  """Flat "collection/module/param" npz, readable with numpy alone; `meta` goes under meta/.

  np.savez stamps every entry with zipfile's fixed default date, so the bytes are a function of the
  arrays: retraining with the same seed reproduces the recorded sha256.
  """
  flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(jax.device_get(variables)).items()}
  flat.update({_META_PREFIX + k: np.asarray(v) for k, v in meta.items()})
  with open(path, "wb") as f:  # np.savez on a name would append ".npz"
    np.savez(f, **flat)


def load_variables(path: str | os.PathLike) -> tuple[dict, dict[str, Any]]:
  """(float32 variables tree, meta) of a `save_variables` file."""
  with np.load(path) as f:
    meta = {k[len(_META_PREFIX) :]: f[k].item() for k in f.files if k.startswith(_META_PREFIX)}
    flat = {tuple(k.split("/")): np.asarray(f[k], np.float32) for k in f.files if not k.startswith(_META_PREFIX)}
  return traverse_util.unflatten_dict(flat), meta


def check_sha256(path: str | os.PathLike, expected: str, what: str) -> None:
  actual = file_sha256(path)
  if actual != expected:
    raise ValueError(
      f"{what} {os.fspath(path)!r} has sha256 {actual}, expected {expected}: the file is corrupt or not the "
      f"one these metrics were calibrated with; reinstall the package or regenerate it"
    )


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureNet:
  """A frozen network from [-1, 1] NHWC images to (features, class probabilities), and what identifies it.

  Inputs are checked before use: a wrongly scaled or sized generator output gives plausible-looking but
  meaningless features, so it is refused rather than scored.
  """

  name: str
  weights_sha256: str
  feature_dim: int
  num_classes: int  # 0: no class probabilities, so no Inception Score
  input_hw: tuple[int, int] | None  # Required height, width; None = any (the network resizes).
  input_channels: tuple[int, ...]
  variables: Any
  apply_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]  # Jitted; (variables, x) -> (feats, probs).
  batch_size: int
  description: str  # What inputs it takes and how it treats them, for the evaluation protocol.
  protocol: str = ""  # The pixel pipeline's name (gan_jax.eval.fid_protocols) where the network has several.
  quantize: bool = True  # Generated images are rounded to uint8 before scoring, as a file would hold them.

  def check(self, images_NHWC: np.ndarray) -> None:
    """Raises ValueError unless the batch is [n, H, W, C] of the accepted size with values in [-1, 1]."""
    shape = images_NHWC.shape
    if images_NHWC.ndim != 4 or shape[-1] not in self.input_channels:
      raise ValueError(
        f"{self.name} feature net takes [n, H, W, C] images with C in {self.input_channels}, got shape {shape}"
      )
    if self.input_hw is not None and shape[1:3] != self.input_hw:
      h, w = self.input_hw
      raise ValueError(
        f"{self.name} feature net takes {h}x{w}x{'/'.join(map(str, self.input_channels))} images, got "
        f"{shape[1]}x{shape[2]}x{shape[3]}; use the inception feature net for other sizes"
      )
    if not images_NHWC.size:
      return
    if not np.isfinite(images_NHWC).all():
      raise ValueError("images contain NaN or inf; expected finite values in [-1, 1]")
    lo, hi = float(images_NHWC.min()), float(images_NHWC.max())
    if lo < -1.0 or hi > 1.0:
      raise ValueError(f"images must be in [-1, 1], got [{lo:.4g}, {hi:.4g}]; map uint8 pixels with x / 127.5 - 1")

  def __call__(self, images_NHWC: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(feats_ND float32, probs_NC float32) in batches padded to batch_size or a power of two below it."""
    images_NHWC = np.asarray(images_NHWC, np.float32)
    self.check(images_NHWC)
    n = len(images_NHWC)
    feats, probs = [], []
    for start in range(0, n, self.batch_size):
      chunk_bHWC = images_NHWC[start : start + self.batch_size]
      b = len(chunk_bHWC)
      padded = min(self.batch_size, 1 << (b - 1).bit_length())  # Power-of-two buckets bound the compilations.
      if padded > b:
        chunk_bHWC = np.concatenate([chunk_bHWC, np.zeros((padded - b, *chunk_bHWC.shape[1:]), np.float32)])
      feats_BD, probs_BC = jax.device_get(self.apply_fn(self.variables, chunk_bHWC))
      feats.append(feats_BD[:b])
      probs.append(probs_BC[:b])
    if not feats:
      return np.zeros((0, self.feature_dim), np.float32), np.zeros((0, self.num_classes), np.float32)
    return np.concatenate(feats), np.concatenate(probs)


def jit_with_probs(module: nn.Module) -> Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]:
  def apply(variables: Any, images_NHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
    feats_ND, logits_NC = module.apply(variables, images_NHWC)
    return feats_ND, jax.nn.softmax(logits_NC.astype(jnp.float32), axis=-1)

  return jax.jit(apply)
