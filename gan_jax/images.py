"""Images as the model sees them ([-1, 1] floats) and as files hold them (uint8): grids, PNGs, GIFs."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

# Sample grids are for people: a 28-pixel Fashion-MNIST grid is a thumbnail at its own size.
GRID_MIN_WIDTH = 512
GRID_GAP = 2


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats -> uint8 0..255."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
  """uint8 0..255 -> float32 [-1, 1], the arithmetic of the data pipeline, so a file's pixels feed the model alike."""
  return np.asarray(images).astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def quantize(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats as a uint8 file would hold them, back in [-1, 1]; an identity on images read from uint8.

  Scoring this, not the raw floats, gives a generator the same metrics whether its samples were scored
  in memory or saved as uint8 and scored from the file.
  """
  return from_uint8(to_uint8(images))


def image_grid(
  images_NHWC: np.ndarray, cols: int | None = None, *, gap: int = GRID_GAP, min_width: int = GRID_MIN_WIDTH
) -> np.ndarray:
  """Tiles N images row by row into a uint8 grid, `cols` wide (near-square by default), for a person to look at.

  Tiles sit `gap` white pixels apart and from the edge; the whole grid is then enlarged by the least
  integer factor (nearest neighbour, so pixels stay sharp squares) that makes it `min_width` wide or more.
  Returns [H, W] for one channel, else [H, W, C].
  """
  n, h, w, c = images_NHWC.shape
  cols = cols or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  grid = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, c), 255, np.uint8)
  for i, img in enumerate(to_uint8(images_NHWC)):
    r, q = divmod(i, cols)
    top, left = gap + r * (h + gap), gap + q * (w + gap)
    grid[top : top + h, left : left + w] = img
  scale = max(1, -(-min_width // grid.shape[1]))
  grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
  return grid[..., 0] if c == 1 else grid


def save_pngs(directory: str, images_NHWC_uint8: np.ndarray, labels: np.ndarray | None = None) -> list[str]:
  """One PNG per image at its own size, named by index (and class): `00007.png`, `00007_label3.png`; the paths.

  For tools that read folders of images; the numbers are zero-padded so names sort in sample order.
  """
  images_NHWC_uint8 = np.asarray(images_NHWC_uint8)
  if images_NHWC_uint8.dtype != np.uint8 or images_NHWC_uint8.ndim != 4 or images_NHWC_uint8.shape[-1] not in (1, 3):
    raise ValueError(
      f"expected uint8 [N, H, W, C] images with C 1 or 3, got {images_NHWC_uint8.dtype} {images_NHWC_uint8.shape}"
    )
  n = len(images_NHWC_uint8)
  if labels is not None and len(labels) != n:
    raise ValueError(f"{len(labels)} labels for {n} images: expected one label per image")
  os.makedirs(directory, exist_ok=True)
  digits = max(5, len(str(n - 1)))
  paths = []
  for i, img in enumerate(images_NHWC_uint8):
    suffix = "" if labels is None else f"_label{int(labels[i])}"
    path = os.path.join(directory, f"{i:0{digits}d}{suffix}.png")
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(path)
    paths.append(path)
  return paths


def save_samples(
  path: str, samples: np.ndarray, kind: str, reference: np.ndarray | None = None, cols: int | None = None
) -> np.ndarray:
  """An image grid (`cols` wide, see image_grid), or for 2D data a scatter plot over the real modes.

  Returns the picture written, uint8 [H, W] or [H, W, C], for a TensorBoard image of the same step.
  """
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  if kind == "images":
    grid = image_grid(samples, cols)
    Image.fromarray(grid).save(path)
    return grid
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(4, 4), dpi=144)  # as wide as the image grids
  if reference is not None:
    ax.scatter(reference[:, 0], reference[:, 1], s=30, c="tab:orange", marker="x", label="modes")
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, c="tab:blue", label="samples")
  ax.set_aspect("equal")
  ax.set_title(os.path.splitext(os.path.basename(path))[0])
  fig.tight_layout()
  fig.savefig(path)
  fig.canvas.draw()
  picture_HWC = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return picture_HWC


def progress_gif(workdir: str, out: str, frame_ms: int = 300) -> int:
  """Assembles the sample PNGs saved during training, in step order, into an animated GIF."""
  folder = os.path.join(workdir, "samples")
  names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
  names = [n for n in names if n.startswith("step_") and n.endswith(".png")]
  if not names:
    raise FileNotFoundError(f"{folder!r} holds no step_*.png grids; expected a workdir written by `gan-jax train`")
  frames = [Image.open(os.path.join(folder, n)).convert("RGB") for n in names]
  frames[0].save(out, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
  return len(frames)
