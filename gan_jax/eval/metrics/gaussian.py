"""Streaming Gaussian feature statistics and the Frechet Inception Distance.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium") fits a Gaussian to each feature set and reports
  ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2}).
Only first and second moments enter, so features are folded into running sums batch by batch and
never held all at once.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianStats:
  """Mean and (unbiased, ddof=1) covariance of `count` feature vectors, as in the TTUR reference code."""

  mu_D: np.ndarray
  sigma_DD: np.ndarray
  count: int

  @classmethod
  def from_features(cls, feats_ND: ArrayLike) -> GaussianStats:
    """One-shot statistics; the same arithmetic as streaming, so cached and live stats agree."""
    return FeatureMoments().update(feats_ND).stats()

  def save(self, path: str | os.PathLike) -> None:
    """Writes an npz with keys mu/sigma (the TTUR/pytorch-fid layout) plus count, at exactly `path`."""
    with open(path, "wb") as f:  # np.savez on a name would append ".npz"
      np.savez(f, mu=self.mu_D, sigma=self.sigma_DD, count=self.count)

  @classmethod
  def load(cls, path: str | os.PathLike) -> GaussianStats:
    """Reads `save` output or a published TTUR/pytorch-fid reference file (no count there: 0 = unknown)."""
    with np.load(path) as f:
      count = int(f["count"]) if "count" in f.files else 0
      return cls(np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64), count)


class FeatureMoments:
  """Running float64 sum and sum of outer products of feature batches.

  Sums are taken about the first batch's mean: from raw sums, E[xx^T] - mu mu^T cancels away the
  covariance's digits once |mu| >> std, which float64 alone does not prevent.
  """

  def __init__(self) -> None:
    self.count = 0
    self._shift_D: np.ndarray | None = None
    self._sum_D: np.ndarray | None = None
    self._outer_DD: np.ndarray | None = None

  def update(self, feats_ND: ArrayLike) -> FeatureMoments:
    """Folds in one [n, D] batch; returns self so one-shot use chains."""
    feats_ND = np.asarray(feats_ND, np.float64)
    if feats_ND.ndim != 2:
      raise ValueError(f"expected [n, D] features, got shape {feats_ND.shape}")
    if not len(feats_ND):
      return self
    if self._shift_D is None:
      dim = feats_ND.shape[1]
      self._shift_D = feats_ND.mean(axis=0)
      self._sum_D = np.zeros(dim)
      self._outer_DD = np.zeros((dim, dim))
    centred_ND = feats_ND - self._shift_D
    self._sum_D += centred_ND.sum(axis=0)
    self._outer_DD += centred_ND.T @ centred_ND
    self.count += len(feats_ND)
    return self

  def stats(self) -> GaussianStats:
    """Mean and ddof=1 covariance of everything folded in so far."""
    if self.count < 2:
      raise ValueError(f"need at least 2 feature vectors for a covariance, have {self.count}")
    mean_D = self._sum_D / self.count
    sigma_DD = (self._outer_DD - self.count * np.outer(mean_D, mean_D)) / (self.count - 1)
    return GaussianStats(self._shift_D + mean_D, sigma_DD, self.count)


def _trace_sqrt_product_eigh(sigma1_DD: np.ndarray, sigma2_DD: np.ndarray) -> float:
  """tr (S1 S2)^{1/2} from the eigenvalues of the symmetric PSD matrix S1^{1/2} S2 S1^{1/2}.

  S1 S2 = S1^{1/2} (S1^{1/2} S2) and (S1^{1/2} S2) S1^{1/2} share their eigenvalues, so the trace needs
  only those of the symmetric form, which eigvalsh finds stably; rounding can push zero eigenvalues of
  rank-deficient covariances slightly negative, hence the clip.
  """
  evals_D, evecs_DD = np.linalg.eigh(sigma1_DD)
  sqrt1_DD = (evecs_DD * np.sqrt(np.clip(evals_D, 0.0, None))) @ evecs_DD.T
  evals_D = np.linalg.eigvalsh(sqrt1_DD @ sigma2_DD @ sqrt1_DD)
  return float(np.sqrt(np.clip(evals_D, 0.0, None)).sum())


def _trace_sqrt_product_sqrtm(sigma1_DD: np.ndarray, sigma2_DD: np.ndarray, eps: float = 1e-6) -> float:
  """The TTUR/pytorch-fid recipe: Schur sqrtm of the non-symmetric product, eps*I retry if not finite."""
  covmean_DD = scipy.linalg.sqrtm(sigma1_DD @ sigma2_DD)
  if not np.isfinite(covmean_DD).all():
    offset_DD = eps * np.eye(len(sigma1_DD))
    covmean_DD = scipy.linalg.sqrtm((sigma1_DD + offset_DD) @ (sigma2_DD + offset_DD))
  if np.iscomplexobj(covmean_DD):
    imag_D = np.diagonal(covmean_DD).imag
    if not np.allclose(imag_D, 0.0, atol=1e-3):
      raise ValueError(f"sqrtm has an imaginary component of size {np.abs(imag_D).max():.3g}")
  return float(np.trace(covmean_DD).real)


def fid(stats1: GaussianStats, stats2: GaussianStats, *, method: Literal["eigh", "sqrtm"] = "eigh") -> float:
  """Frechet distance between two Gaussians (Heusel et al. 2017), in float64.

  "eigh" (default) takes the trace of (S1 S2)^{1/2} through the symmetric PSD form
  S1^{1/2} S2 S1^{1/2}: real eigenvalues by construction, no complex parts to discard, and no eps
  fudge for the singular covariances of fewer samples than feature dimensions. "sqrtm" reproduces the
  reference implementations' numerics for comparison with published numbers.
  """
  mu1_D, mu2_D = np.asarray(stats1.mu_D, np.float64), np.asarray(stats2.mu_D, np.float64)
  sigma1_DD, sigma2_DD = np.asarray(stats1.sigma_DD, np.float64), np.asarray(stats2.sigma_DD, np.float64)
  if mu1_D.shape != mu2_D.shape or sigma1_DD.shape != sigma2_DD.shape:
    raise ValueError(f"dimension mismatch: {mu1_D.shape} vs {mu2_D.shape}")
  if method == "eigh":
    tr_covmean = _trace_sqrt_product_eigh(sigma1_DD, sigma2_DD)
  elif method == "sqrtm":
    tr_covmean = _trace_sqrt_product_sqrtm(sigma1_DD, sigma2_DD)
  else:
    raise ValueError(f"unknown method {method!r}; expected 'eigh' or 'sqrtm'")
  diff_D = mu1_D - mu2_D
  return float(diff_D @ diff_D + np.trace(sigma1_DD) + np.trace(sigma2_DD) - 2.0 * tr_covmean)
