"""Images as the model sees them ([-1, 1] floats) and as files hold them (uint8): grids, PNGs, GIFs."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats -> uint8 0..255."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images_NHWC: np.ndarray, cols: int | None = None) -> np.ndarray:
  """Tiles N images row by row into a uint8 grid with 1-pixel gaps, `cols` wide (near-square by default)."""
  n, h, w, c = images_NHWC.shape
  cols = cols or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 255, np.uint8)
  for i, img in enumerate(to_uint8(images_NHWC)):
    r, q = divmod(i, cols)
    grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = img
  return grid[..., 0] if c == 1 else grid


def save_samples(
  path: str, samples: np.ndarray, kind: str, reference: np.ndarray | None = None, cols: int | None = None
) -> None:
  """An image grid (`cols` wide, see image_grid), or for 2D data a scatter plot over the real modes."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  if kind == "images":
    Image.fromarray(image_grid(samples, cols)).save(path)
    return
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
  if reference is not None:
    ax.scatter(reference[:, 0], reference[:, 1], s=30, c="tab:orange", marker="x", label="modes")
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, c="tab:blue", label="samples")
  ax.set_aspect("equal")
  ax.set_title(os.path.splitext(os.path.basename(path))[0])
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


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
