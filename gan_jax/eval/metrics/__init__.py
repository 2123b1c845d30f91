"""Sample-quality metrics: FID, KID, Inception Score, k-NN manifold metrics and 2D mode metrics, each registered by
name with its outputs' directions (registry.py: the door for a new metric).

All host-side numpy in float64; feature extraction (an Inception network) belongs to the caller.
"""

from gan_jax.eval.metrics.gaussian import FeatureMoments, GaussianStats, fid
from gan_jax.eval.metrics.manifold import density_coverage, knn_sq_radii, precision_recall
from gan_jax.eval.metrics.modes import mode_metrics
from gan_jax.eval.metrics.registry import (
  METRICS,
  ImageFeatures,
  PointSamples,
  best_metrics,
  compute,
  direction,
  register,
)
from gan_jax.eval.metrics.scores import Score, inception_score, kid

__all__ = [
  "METRICS",
  "FeatureMoments",
  "GaussianStats",
  "ImageFeatures",
  "PointSamples",
  "Score",
  "best_metrics",
  "compute",
  "density_coverage",
  "direction",
  "fid",
  "inception_score",
  "kid",
  "knn_sq_radii",
  "mode_metrics",
  "precision_recall",
  "register",
]
