"""Where a run's numbers and pictures go: metrics.jsonl, TensorBoard events, sample PNGs."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

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


def summary_writer_class() -> type:
  """tensorboardX's SummaryWriter, imported without torch.

  tensorboardX imports torch whenever it is installed (the `[bench]` extra), only to accept torch tensors.
  That import takes about 4 s on a 2-core CPU, in every `gan-jax train` process of a sweep; scalars need none
  of it, so the import is blocked while tensorboardX loads (it falls back to numpy without torch).
  """
  blocked = "torch" not in sys.modules
  if blocked:
    sys.modules["torch"] = None  # `import torch` now raises ImportError
  try:
    from tensorboardX import SummaryWriter
  finally:
    if blocked:
      del sys.modules["torch"]
  return SummaryWriter


class MetricsWriter:
  """Appends one JSON object per log step; on resume drops lines past the restored step.

  Only the primary process (process 0 of a multi-host run) writes: every process holds the same metrics,
  and N of them appending to (and, on resume, rewriting) one file on a shared filesystem would garble it.
  """

  def __init__(self, workdir: str, resume_step: int, primary: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._file = self._tb = None
    if not primary:
      return
    keep_records_until(self.path, resume_step)
    self._file = open(self.path, "a")  # noqa: SIM115  (lives as long as the run)
    self._tb = summary_writer_class()(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1)

  def write(self, step: int, scalars: dict[str, Any], member: int | None = None) -> None:
    """One record; `member` tags the records of a population's members."""
    if self._file is None:
      return
    tagged = {} if member is None else {"member": member}
    record = {"step": int(step), **tagged, **{k: float(v) for k, v in scalars.items()}}
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    prefix = "" if member is None else f"member_{member}/"
    for k, v in scalars.items():
      self._tb.add_scalar(prefix + k, float(v), int(step))

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._tb.close()


def keep_records_until(path: str, step: int) -> list[dict]:
  """Drops the records past `step` from the JSON-lines file at `path` (if any); returns those kept.

  A run resumed from its checkpoint at `step` logs and evaluates the later steps again.
  """
  if not os.path.exists(path):
    return []
  kept = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
  with open(path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)
  return kept


def read_jsonl(path: str) -> list[dict]:
  """Records of a .jsonl file; a line cut short by a killed run is skipped."""
  if not os.path.exists(path):
    return []
  out = []
  with open(path) as f:
    for line in f:
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return [r for r in out if isinstance(r, dict)]


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
