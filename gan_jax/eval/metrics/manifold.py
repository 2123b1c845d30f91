"""k-NN manifold metrics: precision/recall and density/coverage.

Each sample's manifold is approximated by the union of balls reaching to its k-th nearest neighbour
within its own set. Distances come in row chunks of [chunk_size, N], so 10k x 10k sets need tens of
MB rather than the full pairwise matrix. Balls are closed (<=), following the improved
precision/recall reference code.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike


def _as_feats(feats: ArrayLike, k: int, name: str) -> np.ndarray:
  feats_ND = np.asarray(feats, np.float64)
  if feats_ND.ndim != 2:
    raise ValueError(f"{name}: expected [N, D] features, got shape {feats_ND.shape}")
  if len(feats_ND) <= k:
    raise ValueError(f"{name}: a k={k} neighbourhood needs more than {k} samples, have {len(feats_ND)}")
  return feats_ND


def _sq_dist_chunks(a_ND: np.ndarray, b_QD: np.ndarray, chunk_size: int) -> Iterator[tuple[slice, np.ndarray]]:
  """Yields (rows, d2_bM): squared distances from a chunk of rows of `a` to all of `b`."""
  b_sq_Q = np.einsum("md,md->m", b_QD, b_QD)
  for start in range(0, len(a_ND), chunk_size):
    rows = slice(start, min(start + chunk_size, len(a_ND)))
    a_bD = a_ND[rows]
    a_sq_b = np.einsum("bd,bd->b", a_bD, a_bD)
    yield rows, np.maximum(a_sq_b[:, None] + b_sq_Q[None, :] - 2.0 * (a_bD @ b_QD.T), 0.0)


def knn_sq_radii(feats_ND: ArrayLike, k: int, *, chunk_size: int = 1024) -> np.ndarray:
  """Squared distance from each sample to its k-th nearest other sample of the same set, [N]."""
  feats_ND = _as_feats(feats_ND, k, "feats")
  radii_N = np.empty(len(feats_ND))
  for rows, d2_bN in _sq_dist_chunks(feats_ND, feats_ND, chunk_size):
    local_b = np.arange(rows.stop - rows.start)
    d2_bN[local_b, rows.start + local_b] = np.inf  # a sample is not its own neighbour
    radii_N[rows] = np.partition(d2_bN, k - 1, axis=1)[:, k - 1]
  return radii_N


def precision_recall(
  real_feats_ND: ArrayLike, fake_feats_QD: ArrayLike, *, k: int = 3, chunk_size: int = 1024
) -> dict[str, float]:
  """Improved precision and recall (Kynkaanniemi et al. 2019), k = 3 as in the paper.

  Precision: share of fakes inside the real manifold (fidelity). Recall: share of reals inside the
  fake manifold (diversity), so mode dropping shows up separately from sample quality.
  """
  real_ND = _as_feats(real_feats_ND, k, "real")
  fake_QD = _as_feats(fake_feats_QD, k, "fake")
  real_r2_N = knn_sq_radii(real_ND, k, chunk_size=chunk_size)
  fake_r2_Q = knn_sq_radii(fake_QD, k, chunk_size=chunk_size)
  precise_Q = np.zeros(len(fake_QD), bool)
  recalled_N = np.zeros(len(real_ND), bool)
  for rows, d2_bN in _sq_dist_chunks(fake_QD, real_ND, chunk_size):
    precise_Q[rows] = (d2_bN <= real_r2_N[None, :]).any(axis=1)
    recalled_N |= (d2_bN <= fake_r2_Q[rows, None]).any(axis=0)
  return {"precision": float(precise_Q.mean()), "recall": float(recalled_N.mean())}


def density_coverage(
  real_feats_ND: ArrayLike, fake_feats_QD: ArrayLike, *, k: int = 5, chunk_size: int = 1024
) -> dict[str, float]:
  """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics"), k = 5.

  Both use real-sample balls only, so a few fake outliers cannot inflate the estimated manifold the
  way they inflate improved recall. Density counts how many real balls hold each fake (it exceeds 1
  when fakes crowd dense real regions); coverage is the share of real balls holding any fake.
  """
  real_ND = _as_feats(real_feats_ND, k, "real")
  fake_QD = _as_feats(fake_feats_QD, 0, "fake")
  real_r2_N = knn_sq_radii(real_ND, k, chunk_size=chunk_size)
  inside = 0
  covered_N = np.zeros(len(real_ND), bool)
  for _, d2_bN in _sq_dist_chunks(fake_QD, real_ND, chunk_size):
    inside_bN = d2_bN <= real_r2_N[None, :]
    inside += int(inside_bN.sum())
    covered_N |= inside_bN.any(axis=0)
  return {"density": inside / (k * len(fake_QD)), "coverage": float(covered_N.mean())}
