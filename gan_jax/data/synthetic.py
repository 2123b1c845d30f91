"""The 2D mixture-of-Gaussians benchmarks of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

Evaluation counts covered modes and high-quality samples against the same `MODES`, so they live here.
"""

from __future__ import annotations

import numpy as np


def _ring(num_modes: int, radius: float) -> np.ndarray:
  # arange, not linspace(0, 2π, K): linspace includes 2π and so repeats the first centre.
  angles_K = 2 * np.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles_K), np.sin(angles_K)], axis=1)


def _grid(coords: np.ndarray) -> np.ndarray:
  xs, ys = np.meshgrid(coords, coords, indexing="ij")
  return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _read_only(a: np.ndarray) -> np.ndarray:
  a.flags.writeable = False
  return a


# name -> (means_K2, sigma): an equal-weight mixture of isotropic Gaussians. Read-only: shared by evaluation.
MODES: dict[str, tuple[np.ndarray, float]] = {
  "ring8": (_read_only(_ring(8, 1.0)), 0.01),
  "grid25": (_read_only(_grid(np.arange(-4.0, 5.0, 2.0))), 0.05),
}

# First words of the seed of the training stream and of the fixed evaluation splits, kept apart.
_TRAIN_STREAM = 0
_SPLIT_STREAM = 1


def mode_geometry(name: str) -> tuple[np.ndarray, float]:
  """(means_K2, sigma) of a synthetic dataset."""
  if name not in MODES:
    raise ValueError(f"unknown synthetic dataset {name!r}; known: {sorted(MODES)}")
  return MODES[name]


def sample(name: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
  """(points_N2 float32, labels_N int32 = mode index), modes drawn uniformly."""
  means_K2, sigma = mode_geometry(name)
  labels_N = rng.integers(len(means_K2), size=n)
  points_N2 = means_K2[labels_N] + sigma * rng.standard_normal((n, 2))
  return points_N2.astype(np.float32), labels_N.astype(np.int32)


def step_batch(name: str, seed: int, step: int, n: int) -> tuple[np.ndarray, np.ndarray]:
  """The global training batch of `step`: a pure function of (seed, step), so resuming needs no state."""
  return sample(name, np.random.default_rng([seed, _TRAIN_STREAM, step]), n)


def split_sample(name: str, seed: int, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
  """A fixed evaluation set per (seed, split), drawn from a stream the training batches never use."""
  split_id = int.from_bytes(split.encode(), "little")
  return sample(name, np.random.default_rng([seed, _SPLIT_STREAM, split_id]), n)
