"""Arrays of one's own (`data.name = "npz:PATH"`): `images` (uint8 NHWC, or floats) or 2D `points`.

Float images are read in the range the file declares in a `range` array ([-1, 1], [0, 1] or [0, 255]), else as
[-1, 1]; floats that all fit [0, 1] with no range declared are refused rather than guessed.

An optional int `labels` gives the classes (K = max label + 1). Images are fitted to `data.resolution` and
`data.channels` as folder images are (data.prepare.fit) when those ask for another size or colour; NHW images
are gray. A fixed permutation holds out every 10th example (at least one) as the "test" split. The file is
read and checked whole on first use and kept in memory: one line names the first thing wrong with it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile

import numpy as np
from PIL import Image

from gan_jax.data import prepare

PREFIX = "npz:"
_HELD_OUT_SEED = 0x6E707A  # the permutation that picks the held-out examples, the same for every file


@dataclasses.dataclass(frozen=True)
class Arrays:
  """One split of an npz file: uint8 NHWC images or float32 N2 points, int32 labels (0 when unlabelled)."""

  kind: str  # "images" or "points"
  x: np.ndarray
  labels_N: np.ndarray
  num_classes: int


def load(spec: str, split: str, resolution: int, channels: int) -> Arrays:
  """`split` ("train" or "test") of `npz:PATH`; the file is read once per content and options."""
  path = prepare.source_path(spec, PREFIX, folder=False, expected="an .npz with `images` or `points`")
  stat = os.stat(path)
  splits = _splits(spec, path, stat.st_size, stat.st_mtime_ns, resolution, channels)
  if split not in splits:
    raise ValueError(f"data.split={split!r}: {spec} has the splits {sorted(splits)}")
  return splits[split]


@functools.lru_cache(maxsize=2)
def _splits(spec: str, path: str, size: int, mtime_ns: int, resolution: int, channels: int) -> dict[str, Arrays]:
  """Keyed by size and mtime too, so a rewritten file is read again."""
  kind, x, labels_N = _read(spec, path)
  if kind == "images":
    x = _fit_images(x, resolution, channels)
  num_classes = int(labels_N.max()) + 1 if labels_N is not None else 0
  labels_N = np.zeros(len(x), np.int32) if labels_N is None else labels_N.astype(np.int32)
  held_out = np.zeros(len(x), bool)
  held_out[np.random.RandomState(_HELD_OUT_SEED).permutation(len(x))[: prepare.num_held_out(len(x))]] = True
  split = lambda mask: Arrays(kind, x[mask], labels_N[mask], num_classes)
  return {"train": split(~held_out), "test": split(held_out)}


def _read(spec: str, path: str) -> tuple[str, np.ndarray, np.ndarray | None]:
  """(kind, images or points as stored, labels or None), each checked."""
  bad = lambda what: ValueError(f"data.name={spec!r}: {what}")
  try:
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
      raise bad("is a .npy array; expected an .npz archive (np.savez) with `images` or `points`")
    with archive:
      arrays = {k: archive[k] for k in archive.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    if str(e).startswith(f"data.name={spec!r}"):
      raise
    raise bad(f"cannot be read as an .npz archive ({type(e).__name__}: {e})") from None
  kinds = [k for k in ("images", "points") if k in arrays]
  if len(kinds) != 1:
    raise bad(f"holds {sorted(arrays)}; expected exactly one of `images` (NHWC) or `points` (N x 2)")
  kind, x = kinds[0], arrays[kinds[0]]
  x = _checked_images(bad, x, arrays.get("range")) if kind == "images" else _checked_points(bad, x)
  if len(x) < 2:
    raise bad(f"`{kind}` holds {len(x)} examples; expected at least 2, one of them held out for evaluation")
  labels_N = arrays.get("labels")
  if labels_N is not None:
    if labels_N.shape != (len(x),) or not np.issubdtype(labels_N.dtype, np.integer):
      raise bad(f"`labels` are {labels_N.dtype} {labels_N.shape}; expected {len(x)} integers, one per example")
    if labels_N.min() < 0:
      raise bad(f"`labels` go down to {labels_N.min()}; expected class indices 0..K-1")
  return kind, x, labels_N


# Float image ranges a file may declare with a `range` array, e.g. np.savez(f, images=x, range=[0, 1]).
FLOAT_RANGES = ((-1.0, 1.0), (0.0, 1.0), (0.0, 255.0))


def _checked_images(bad, images: np.ndarray, declared: np.ndarray | None = None) -> np.ndarray:
  """uint8 NHWC of stored uint8 or float images, NHW taken as gray.

  Floats are never guessed: they are read in the range the file declares (`range`), else as [-1, 1], and floats
  that all fit [0, 1] without a declared range (PyTorch's ToTensor output, say) are refused.
  """
  x = images[..., None] if images.ndim == 3 else images
  if x.ndim != 4 or x.shape[-1] not in (1, 3) or 0 in x.shape[1:3]:
    raise bad(f"`images` has shape {images.shape}; expected N x H x W x C with C 1 or 3 (or N x H x W)")
  if x.dtype == np.uint8:
    return x
  if not np.issubdtype(x.dtype, np.floating):
    raise bad(f"`images` are {x.dtype}; expected uint8 (0..255) or floats in [-1, 1]")
  if not np.isfinite(x).all():
    raise bad("`images` hold NaN or inf; expected floats in [-1, 1] (or uint8)")
  low, high = _float_range(bad, declared)
  lo, hi = (float(x.min()), float(x.max())) if x.size else (low, high)
  if lo < low or hi > high:
    raise bad(f"`images` span [{lo:g}, {hi:g}]; expected floats in [{low:g}, {high:g}] (or uint8)")
  if declared is None and lo >= 0:
    raise bad(
      f"`images` are floats in [{lo:g}, {hi:g}], which fits both [0, 1] and [-1, 1]; expected the file to declare "
      "its range, e.g. np.savez(PATH, images=x, range=[0, 1]) (or uint8 images)"
    )
  return np.rint((x.astype(np.float64) - low) * (255.0 / (high - low))).astype(np.uint8)  # stored as uint8


def _float_range(bad, declared: np.ndarray | None) -> tuple[float, float]:
  if declared is None:
    return FLOAT_RANGES[0]
  values = tuple(float(v) for v in np.ravel(declared)) if np.issubdtype(np.asarray(declared).dtype, np.number) else ()
  if values not in FLOAT_RANGES:
    raise bad(f"`range` is {np.asarray(declared).tolist()}; expected one of {[list(r) for r in FLOAT_RANGES]}")
  return values


def _checked_points(bad, points: np.ndarray) -> np.ndarray:
  if points.ndim != 2 or points.shape[1] != 2:
    raise bad(f"`points` has shape {points.shape}; expected N x 2")
  if points.dtype == bool or not (np.issubdtype(points.dtype, np.floating) or np.issubdtype(points.dtype, np.integer)):
    raise bad(f"`points` are {points.dtype}; expected floats")
  if not np.isfinite(points).all():
    raise bad("`points` hold NaN or inf")
  return points.astype(np.float32)


def _fit_images(images_NHWC: np.ndarray, resolution: int, channels: int) -> np.ndarray:
  """The images at `resolution` x `resolution` x `channels`; untouched when they are that already."""
  _, height, width, stored_channels = images_NHWC.shape
  resolution = resolution or (height if height == width else prepare.DEFAULT_RESOLUTION)
  channels = channels or stored_channels
  if (height, width, stored_channels) == (resolution, resolution, channels):
    return images_NHWC
  mode = "L" if stored_channels == 1 else "RGB"
  fitted = [
    prepare.fit(Image.fromarray(image.squeeze(-1) if mode == "L" else image, mode), resolution, channels)
    for image in images_NHWC
  ]
  return np.stack(fitted)
