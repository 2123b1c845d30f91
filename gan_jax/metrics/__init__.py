"""Sample-quality metrics: FID, KID, Inception Score, k-NN manifold metrics and 2D mode metrics.

All host-side numpy in float64; feature extraction (an Inception network) belongs to the caller.
"""

from gan_jax.metrics.gaussian import FeatureMoments, GaussianStats, fid
from gan_jax.metrics.manifold import density_coverage, knn_sq_radii, precision_recall
from gan_jax.metrics.modes import mode_metrics
from gan_jax.metrics.scores import Score, inception_score, kid

__all__ = [
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
