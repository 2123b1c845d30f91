"""Comparing a group of runs with a reference's seeds: intervals for the difference of means, and power.

Two cases, both Student-t:
- n >= 2 runs against m >= 2 reference seeds: Welch's interval for mean(runs) - mean(reference).
- one run: a prediction interval for a fresh seed, run - mean(reference) ~ t(m - 1) * s_ref * sqrt(1 + 1/m).
`level` is the two-sided confidence of one comparison; callers split their false-alarm rate over comparisons.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

POWER = 0.8


@dataclasses.dataclass(frozen=True)
class Comparison:
  n: int  # runs
  m: int  # reference seeds
  difference: float  # mean(runs) - mean(reference)
  low: float  # the interval for the difference at `level`
  high: float
  detectable: float  # the smallest |shift| found with probability POWER at this level, n and m
  ok: bool  # the interval holds 0

  def as_dict(self) -> dict[str, float | int | bool]:
    return dataclasses.asdict(self)


def compare(runs_N: np.ndarray, reference_M: np.ndarray, level: float, floor: float = 0.0) -> Comparison:
  """The runs' values (one per run) against the reference seeds' values, each one summary of a curve.

  `floor` bounds each side's standard deviation from below: a metric that moves in steps (modes: 1) has
  spread even where every reference seed agreed.
  """
  x, y = np.asarray(runs_N, np.float64), np.asarray(reference_M, np.float64)
  n, m = len(x), len(y)
  if m < 2 or n < 1:
    raise ValueError(f"a comparison needs at least 1 run and 2 reference seeds; got {n} and {m}")
  s_y = max(float(np.std(y, ddof=1)), floor)
  if n == 1:
    se, df = s_y * math.sqrt(1.0 + 1.0 / m), m - 1.0
  else:
    s_x = max(float(np.std(x, ddof=1)), floor)
    vx, vy = s_x**2 / n, s_y**2 / m
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (n - 1) + vy**2 / (m - 1)) if se > 0 else n + m - 2.0
  difference = float(np.mean(x) - np.mean(y))
  t = float(stats.t.ppf(0.5 + level / 2.0, df))
  half = t * se
  detectable = (t + float(stats.t.ppf(POWER, df))) * se
  return Comparison(n, m, difference, difference - half, difference + half, detectable, abs(difference) <= half)
