"""What folder: and npz: data share: their size and colour options, fitting an image to them, the held-out split.

Both are a user's own images of any size and colour, so they are brought to one square shape here, the same
way for either source: the shorter side scaled to `data.resolution`, the centre cropped, the colour converted
to `data.channels`.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Iterator

import ml_collections
import numpy as np
from PIL import Image, ImageOps

# data.resolution 0 on folder: / npz: data: CIFAR's size, which both model families take (DCGAN, SNGAN ResNet).
DEFAULT_RESOLUTION = 32
CHANNELS = (0, 1, 3)  # data.channels: 0 = decide from the inputs (gray only if every input is gray)
# Every 10th example (at least one) is held out as the "test" split the evaluation statistics come from.
HELD_OUT_DIVISOR = 10
# PIL modes without colour: 1-bit, 8-bit, 16/32-bit integer and float gray, with or without alpha.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})  # 16-bit PNGs open as these


def options(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(data.resolution, data.channels), checked; a config without the keys gets 0 (the source's own / auto)."""
  resolution, channels = config.data.get("resolution", 0), config.data.get("channels", 0)
  if not isinstance(resolution, int) or isinstance(resolution, bool) or not (resolution == 0 or resolution >= 4):
    raise ValueError(f"data.resolution={resolution!r}: expected 0 (the default) or an image side of at least 4")
  if channels not in CHANNELS or isinstance(channels, bool):
    raise ValueError(f"data.channels={channels!r}: expected 0 (gray if every input is gray, else RGB), 1 or 3")
  return resolution, channels


def num_held_out(n: int) -> int:
  """How many of n examples form the test split: a tenth, at least one."""
  return max(1, n // HELD_OUT_DIVISOR)


def fit(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
  """uint8 [resolution, resolution, channels]: the centred square of the shorter side, resampled, in 1 or 3 channels.

  EXIF orientation is applied (phone photos); alpha is dropped, as torchvision's ImageFolder loader does; 16-bit
  gray is scaled to 8 bits.
  """
  mode = "L" if channels == 1 else "RGB"
  width, height = image.size
  side = min(width, height)
  # JPEG decodes at a reduced scale when that still covers the target, so large photos load faster.
  image.draft(mode, (math.ceil(resolution * width / side), math.ceil(resolution * height / side)))
  image = _converted(ImageOps.exif_transpose(image), mode)
  width, height = image.size
  side = min(width, height)
  box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
  square = image.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box)
  pixels = np.asarray(square, np.uint8)
  return pixels[..., None] if channels == 1 else pixels


def _converted(image: Image.Image, mode: str) -> Image.Image:
  if image.mode in _WIDE_GRAY_MODES:  # PIL's own conversion clips 16-bit values at 255 instead of scaling them
    wide = np.asarray(image, np.float64)
    image = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
  return image if image.mode == mode else image.convert(mode)


def source_path(spec: str, prefix: str, folder: bool, expected: str) -> str:
  """The path of `data.name = PREFIX + PATH`: a one-line ValueError when it is empty, missing or of the other
  kind (a file for a folder, or the reverse); `expected` says what it should hold."""
  path = os.path.expanduser(spec[len(prefix) :])
  kind = "folder" if folder else "file"
  if not path:
    raise ValueError(f"data.name={spec!r} names no {kind}; expected {prefix}PATH")
  if not (os.path.isdir(path) if folder else os.path.isfile(path)):
    what = f"is not a {kind}" if os.path.exists(path) else "does not exist"
    raise ValueError(f"data.name={spec!r}: {path!r} {what}; expected {expected}")
  return path


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
  """Holds an OS lock on the file `path`: the runs of a sweep that start together prepare a new dataset once, the
  others waiting and then reading it, instead of racing TFDS's final rename. The file goes when the holder is
  done; whoever waited on it, or comes later, finds the dataset prepared (callers check again under the lock)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      if os.path.exists(path):
        os.remove(path)
      fcntl.flock(f, fcntl.LOCK_UN)
