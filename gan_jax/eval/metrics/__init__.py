"""Sample-quality metrics: FID, KID, Inception Score, k-NN manifold metrics and 2D mode metrics.

All host-side numpy in float64; feature extraction (an Inception network) belongs to the caller.
"""

from gan_jax.eval.metrics.gaussian import FeatureMoments, GaussianStats, fid
from gan_jax.eval.metrics.manifold import density_coverage, knn_sq_radii, precision_recall
from gan_jax.eval.metrics.modes import mode_metrics
from gan_jax.eval.metrics.scores import Score, inception_score, kid

# Metrics where larger is better; every other one (fid, kid, reverse_kl, losses) is minimised.
MAXIMIZE = frozenset(
  {"modes", "high_quality", "precision", "recall", "is", "inception_score", "coverage", "density", "accuracy"}
)


def direction(metric: str) -> str:
  """ "max" or "min": which way is better, for a metric, a `best.fid`-style column or an `is_mean`."""
  base = metric.rsplit(".", 1)[-1].removesuffix("_mean")
  return "max" if base in MAXIMIZE else "min"


__all__ = [
  "MAXIMIZE",
  "direction",
  "FeatureMoments",
  "GaussianStats",
  "Score",
  "density_coverage",
  "fid",
  "inception_score",
  "kid",
  "knn_sq_radii",
  "mode_metrics",
  "precision_recall",
]
