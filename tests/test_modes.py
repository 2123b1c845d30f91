"""2D mode metrics on hand-made point sets with answers worked out in the comments."""

import numpy as np
import pytest

from gan_jax.eval.metrics.modes import mode_metrics

RING_SIGMA, GRID_SIGMA = 0.01, 0.05


def _ring_means():
  angles = 2 * np.pi * np.arange(8) / 8
  return np.stack([np.cos(angles), np.sin(angles)], 1)


def _grid_means():
  axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
  return np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)


def _around(means, per_mode, sigma, seed=0):
  """per_mode points near each mean with 0.3 sigma noise: beyond 3 sigma has probability e^-50."""
  rng = np.random.default_rng(seed)
  centres = np.repeat(means, per_mode, axis=0)
  return centres + 0.3 * sigma * rng.normal(size=centres.shape)


def test_all_ring_modes_equally():
  got = mode_metrics(_around(_ring_means(), 50, RING_SIGMA), _ring_means(), RING_SIGMA)
  assert got == {"modes": 8, "high_quality": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12)}


def test_all_points_on_one_mode():
  points = _around(_ring_means()[[2]], 400, RING_SIGMA)
  got = mode_metrics(points, _ring_means(), RING_SIGMA)
  assert got == {"modes": 1, "high_quality": 1.0, "reverse_kl": pytest.approx(np.log(8))}


def test_points_at_ring_centre_are_not_high_quality():
  # The origin is 1 = 100 sigma from every mean: nothing is captured.
  got = mode_metrics(np.zeros((30, 2)), _ring_means(), RING_SIGMA)
  assert got["modes"] == 0
  assert got["high_quality"] == 0.0


def test_half_on_a_mode_half_between_mode_and_centre():
  # 100 points on mode 0 (high quality); 100 at half radius towards mode 3, nearest to mode 3 at
  # 50 sigma (low quality). Shares p = (1/2, 0, 0, 1/2, 0, ...): reverse KL = 2 * 1/2 log(8/2) = log 4.
  means = _ring_means()
  points = np.concatenate([_around(means[[0]], 100, RING_SIGMA), np.repeat(0.5 * means[[3]], 100, 0)])
  got = mode_metrics(points, means, RING_SIGMA)
  assert got == {"modes": 1, "high_quality": 0.5, "reverse_kl": pytest.approx(np.log(4))}


def test_unequal_shares_reverse_kl():
  # Shares (3/4, 1/4) over two of eight modes: 3/4 log(6) + 1/4 log(2).
  means = _ring_means()
  points = np.concatenate([_around(means[[1]], 300, RING_SIGMA), _around(means[[5]], 100, RING_SIGMA)])
  got = mode_metrics(points, means, RING_SIGMA)
  assert got["modes"] == 2
  assert got["reverse_kl"] == pytest.approx(0.75 * np.log(6) + 0.25 * np.log(2))


def test_high_quality_threshold_is_three_sigma():
  # Offsets of 2.5 sigma are high quality, 3.5 sigma are not; the mode is captured either way.
  mean = _ring_means()[[4]]
  points = np.concatenate([mean + [[2.5 * RING_SIGMA, 0.0]], mean + [[0.0, 3.5 * RING_SIGMA]]])
  got = mode_metrics(points, _ring_means(), RING_SIGMA)
  assert got["modes"] == 1
  assert got["high_quality"] == 0.5


def test_grid_missing_one_mode():
  # 24 of 25 modes evenly: reverse KL = sum over 24 modes of 1/24 log(25/24) = log(25/24).
  means = _grid_means()
  got = mode_metrics(_around(means[1:], 20, GRID_SIGMA), means, GRID_SIGMA)
  assert got == {"modes": 24, "high_quality": 1.0, "reverse_kl": pytest.approx(np.log(25 / 24))}


def test_sigma_sets_the_scale():
  # Against a 100x tighter mixture the 0.3 sigma noise becomes ~30 sigma: P(high quality) = 1 - e^-0.005.
  points = _around(_grid_means(), 20, GRID_SIGMA)
  loose = mode_metrics(points, _grid_means(), GRID_SIGMA)
  tight = mode_metrics(points, _grid_means(), GRID_SIGMA / 100)
  assert loose["high_quality"] == 1.0
  assert tight["high_quality"] < 0.05
