"""Step timing shared by the JAX rows and the PyTorch reference: medians of windows, alternated A/B windows."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def window_median(run_step: Callable[[int], Any], steps: int) -> float:
  """Median wall seconds of `steps` calls run_step(0), run_step(1), ...; each call must wait for its result."""
  times = []
  for i in range(steps):
    t = time.perf_counter()
    run_step(i)
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def step_medians(run_step: Callable[[int], Any], warmup: int, repeats: int, steps: int) -> list[float]:
  """`warmup` untimed calls, then the median of each of `repeats` windows: the JAX and PyTorch rows' timing."""
  for i in range(warmup):
    run_step(i)
  return [window_median(run_step, steps) for _ in range(repeats)]


def alternate(run_steps: Sequence[Callable[[int], Any]], warmup: int, windows: int, steps: int) -> list[list[float]]:
  """Each runner warmed up, then `windows` rounds of one window of each, back to back: their window medians.

  On a shared machine back-to-back windows see nearly the same load, so the ratio of two runners'
  medians in one round ranks them where separate runs cannot.
  """
  for run_step in run_steps:
    step_medians(run_step, warmup, 0, 0)
  seconds = [[] for _ in run_steps]
  for _ in range(windows):
    for run_step, times in zip(run_steps, seconds, strict=True):
      times.append(window_median(run_step, steps))
  return seconds
