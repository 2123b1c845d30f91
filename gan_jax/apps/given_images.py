"""Images an app works on: a range of a run's dataset (`test:0-63`) or a samples file (`gan-jax sample --out`).

Shared by `gan-jax inpaint` and `gan-jax anomaly`.
"""

from __future__ import annotations

import numpy as np

from gan_jax import data
from gan_jax.train import run as run_lib


def parse_image_spec(spec: str) -> tuple[str, int, int]:
  """'test:0-63' -> ('test', 0, 64): a split and a half-open range of its examples (the spec's end included)."""
  split, _, span = spec.partition(":")
  lo, _, hi = span.partition("-")
  try:
    start, stop = int(lo), int(hi) + 1
  except ValueError:
    start = stop = -1
  if not split or start < 0 or stop <= start:
    raise ValueError(f"--images {spec!r}: expected SPLIT:FIRST-LAST (e.g. test:0-63) or FILE.npz")
  return split, start, stop


def require_images(run: run_lib.Run) -> None:
  if run.info.kind != "images":
    raise ValueError(f"inpainting needs an image run; data.name={run.info.name!r} is {run.info.kind}")


def load_images(run: run_lib.Run, spec: str) -> tuple[np.ndarray, np.ndarray | None]:
  """(y_NHWC in [-1, 1], labels_N or None) from SPLIT:FIRST-LAST of the run's dataset or a FILE.npz.

  A FILE.npz holds uint8 `images` NHWC (as `gan-jax sample` writes them) and optionally int `labels`.
  """
  require_images(run)
  if spec.endswith(".npz"):
    with np.load(spec) as f:
      if "images" not in f:
        raise ValueError(f"--images {spec!r} has arrays {sorted(f.files)}; expected uint8 'images' NHWC")
      images, labels = f["images"], f.get("labels")
    if images.dtype != np.uint8:
      raise ValueError(f"--images {spec!r}: 'images' are {images.dtype}; expected uint8 0..255")
    y_NHWC = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)  # the inverse of to_uint8
  else:
    split, start, stop = parse_image_spec(spec)
    x, labels = data.load_split(run.config, split, stop)
    if len(x) < stop:
      raise ValueError(f"--images {spec!r}: split {split!r} has only {len(x)} examples")
    y_NHWC, labels = x[start:], labels[start:]
  if tuple(y_NHWC.shape[1:]) != tuple(run.info.shape):
    raise ValueError(f"--images {spec!r} are {tuple(y_NHWC.shape[1:])}; expected the run's {tuple(run.info.shape)}")
  return y_NHWC, None if labels is None else np.asarray(labels, np.int32)
