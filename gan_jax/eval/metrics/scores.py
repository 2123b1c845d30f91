"""Sample-based scores that need more than two moments: KID and the Inception Score."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.special
from numpy.typing import ArrayLike


class Score(NamedTuple):
  """A metric's mean and (ddof=0) standard deviation over subsets or splits, as the papers report."""

  mean: float
  std: float


def _mmd2_unbiased(x_mD: np.ndarray, y_nD: np.ndarray) -> float:
  """Unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3: within-set sums skip the diagonal."""
  dim = x_mD.shape[1]
  m, n = len(x_mD), len(y_nD)
  k_xx_mm = (x_mD @ x_mD.T / dim + 1.0) ** 3
  k_yy_nn = (y_nD @ y_nD.T / dim + 1.0) ** 3
  k_xy_mn = (x_mD @ y_nD.T / dim + 1.0) ** 3
  xx = (k_xx_mm.sum() - np.trace(k_xx_mm)) / (m * (m - 1))
  yy = (k_yy_nn.sum() - np.trace(k_yy_nn)) / (n * (n - 1))
  return float(xx + yy - 2.0 * k_xy_mn.mean())


def kid(
  real_feats_ND: ArrayLike,
  fake_feats_QD: ArrayLike,
  *,
  num_subsets: int = 100,
  subset_size: int = 1000,
  seed: int = 0,
) -> Score:
  """Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs").

  Unbiased, so unlike FID its expectation does not depend on the sample count; averaging over subsets
  bounds the O(m^2) kernel cost. Subset s draws, from one `np.random.default_rng(seed)`, real indices
  then fake indices, each `choice(count, m, replace=False)` with m = min(subset_size, N, M), as in the
  authors' code. Kernels are float64: KID of close distributions is a small difference of large sums.
  """
  real_feats_ND = np.asarray(real_feats_ND, np.float64)
  fake_feats_QD = np.asarray(fake_feats_QD, np.float64)
  if real_feats_ND.ndim != 2 or real_feats_ND.shape[1:] != fake_feats_QD.shape[1:]:
    raise ValueError(f"expected [N, D] and [Q, D] features, got {real_feats_ND.shape}, {fake_feats_QD.shape}")
  m = min(subset_size, len(real_feats_ND), len(fake_feats_QD))
  if m < 2:
    raise ValueError(f"unbiased MMD needs subsets of at least 2, have {m}")
  rng = np.random.default_rng(seed)
  mmd2_per_subset = np.empty(num_subsets)
  for s in range(num_subsets):
    real_mD = real_feats_ND[rng.choice(len(real_feats_ND), m, replace=False)]
    fake_mD = fake_feats_QD[rng.choice(len(fake_feats_QD), m, replace=False)]
    mmd2_per_subset[s] = _mmd2_unbiased(real_mD, fake_mD)
  return Score(float(mmd2_per_subset.mean()), float(mmd2_per_subset.std()))


def inception_score(probs_NC: ArrayLike, *, num_splits: int = 10) -> Score:
  """Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs").

  exp(E_x KL(p(y|x) || p(y))) per contiguous split, p(y) being that split's mean prediction, exactly as
  the original improved-gan code splits; 0 log 0 = 0 so one-hot predictions are valid input.
  """
  probs_NC = np.asarray(probs_NC, np.float64)
  if probs_NC.ndim != 2 or len(probs_NC) < num_splits:
    raise ValueError(f"expected [N, C] probabilities with N >= {num_splits}, got {probs_NC.shape}")
  n = len(probs_NC)
  scores = []
  for i in range(num_splits):
    part_nC = probs_NC[i * n // num_splits : (i + 1) * n // num_splits]
    marginal_C = part_nC.mean(axis=0)
    kl_n = (scipy.special.xlogy(part_nC, part_nC) - scipy.special.xlogy(part_nC, marginal_C)).sum(axis=1)
    scores.append(np.exp(kl_n.mean()))
  return Score(float(np.mean(scores)), float(np.std(scores)))
