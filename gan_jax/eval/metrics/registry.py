"""Metrics by name: what an evaluation computes, which way each output is better, and what can rank checkpoints.

A metric is one function and one registration. An image metric takes the evaluation's ImageFeatures, a point
metric its PointSamples; each returns {output: value}. `outputs` says each output's direction ("min", "max", or
"" for a spread such as kid_std), and every output with a direction can be `eval.best_metric`:

  @gan_jax.eval.metrics.register("mean_distance", outputs={"mean_distance": "min"})
  def mean_distance(f):
    return {"mean_distance": float(np.linalg.norm(f.real_ND.mean(0) - f.fake_ND.mean(0)))}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from gan_jax.eval.metrics.gaussian import GaussianStats, fid
from gan_jax.eval.metrics.manifold import density_coverage, precision_recall
from gan_jax.eval.metrics.modes import mode_metrics
from gan_jax.eval.metrics.scores import inception_score, kid
from gan_jax.registry import Registry

KINDS = ("images", "points")
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
PRECISION_RECALL_K, DENSITY_COVERAGE_K = 3, 5
IS_SPLITS = 10


@dataclasses.dataclass(frozen=True)
class ImageFeatures:
  """What an image metric sees: real and generated features (N x D, Q x D) with their Gaussian statistics, the
  feature net's class probabilities of the generated images (Q x C; None for a net without logits), the seed."""

  real_ND: np.ndarray
  fake_QD: np.ndarray
  real_stats: GaussianStats
  fake_stats: GaussianStats
  fake_probs_QC: np.ndarray | None
  seed: int


@dataclasses.dataclass(frozen=True)
class PointSamples:
  """What a 2D metric sees: the generated points and the mixture's mode centres and standard deviation."""

  points_N2: np.ndarray
  means_K2: np.ndarray
  sigma: float


MetricFn = Callable[[Any], dict[str, float]]
METRICS: Registry[MetricFn] = Registry("metric")


def register(name: str, *, outputs: dict[str, str], kind: str = "images") -> Callable[[MetricFn], MetricFn]:
  """Decorator adding a metric of `kind` whose result has the keys of `outputs`, each "min", "max" or ""."""
  if kind not in KINDS or any(d not in ("min", "max", "") for d in outputs.values()):
    raise ValueError(f"metric {name!r}: kind={kind!r}, outputs={outputs}; expected a kind in {KINDS} and "
                     "directions 'min', 'max' or ''")  # fmt: skip
  return METRICS.register(name, outputs=dict(outputs), kind=kind)


def of_kind(kind: str) -> list[str]:
  """The registered metrics of `kind`, in the order they were registered (the record's column order)."""
  return [n for n in METRICS.names(ordered=True) if METRICS.meta(n)["kind"] == kind]


def best_metrics(kind: str) -> tuple[str, ...]:
  """The outputs that can rank checkpoints (eval.best_metric) for `kind` data: those with a direction."""
  return tuple(o for n in of_kind(kind) for o, d in METRICS.meta(n)["outputs"].items() if d)


# Outputs of no registered metric that still have a better side: the classifier study's accuracy, the Inception
# Score of older records. Every other unregistered name (losses) is minimised.
OTHER_MAXIMIZED = frozenset({"accuracy", "inception_score", "is"})


def direction(metric: str) -> str:
  """ "max" or "min": which way is better, for an output (`fid`, `is_mean`), a seed mean (`modes_mean`), a report
  column (`best.fid`) or the Inception's copy in a final record (`inception_fid`)."""
  leaf = metric.rsplit(".", 1)[-1]
  unprefixed = leaf.removeprefix("inception_")
  for name in (leaf, leaf.removesuffix("_mean"), unprefixed, unprefixed.removesuffix("_mean")):
    if name in OTHER_MAXIMIZED:
      return "max"
    for entry in METRICS.names():
      if METRICS.meta(entry)["outputs"].get(name):
        return METRICS.meta(entry)["outputs"][name]
  return "min"


def compute(kind: str, inputs: ImageFeatures | PointSamples) -> dict[str, float]:
  """Every registered metric of `kind` on `inputs`, merged in registration order."""
  out: dict[str, float] = {}
  for name in of_kind(kind):
    out |= METRICS.get(name)(inputs)
  return out


@register("fid", outputs={"fid": "min"})
def _fid(f: ImageFeatures) -> dict[str, float]:
  return {"fid": fid(f.real_stats, f.fake_stats)}


@register("kid", outputs={"kid_mean": "min", "kid_std": ""})
def _kid(f: ImageFeatures) -> dict[str, float]:
  score = kid(f.real_ND, f.fake_QD, num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=f.seed)
  return {"kid_mean": score.mean, "kid_std": score.std}


@register("precision_recall", outputs={"precision": "max", "recall": "max"})
def _precision_recall(f: ImageFeatures) -> dict[str, float]:
  return precision_recall(f.real_ND, f.fake_QD, k=PRECISION_RECALL_K)


@register("density_coverage", outputs={"density": "max", "coverage": "max"})
def _density_coverage(f: ImageFeatures) -> dict[str, float]:
  return density_coverage(f.real_ND, f.fake_QD, k=DENSITY_COVERAGE_K)


@register("inception_score", outputs={"is_mean": "max", "is_std": ""})
def _inception_score(f: ImageFeatures) -> dict[str, float]:
  if f.fake_probs_QC is None:  # the TF 2015 Inception of `make inception` has no logits layer
    return {}
  score = inception_score(f.fake_probs_QC, num_splits=IS_SPLITS)
  return {"is_mean": score.mean, "is_std": score.std}


@register("modes", outputs={"modes": "max", "high_quality": "max", "reverse_kl": "min"}, kind="points")
def _modes(s: PointSamples) -> dict[str, float]:
  return mode_metrics(s.points_N2, s.means_K2, s.sigma)
