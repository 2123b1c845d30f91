"""Scoring generators under one recorded protocol: `evaluate`, `real_floor` and `gan-jax eval`.

Images: generated batches stream through a frozen feature network (gan_jax.eval.features) into
running moments for FID; their features (10,000 x 128 floats for the Fashion-MNIST network) are kept
for KID and the k-NN metrics. Real features of a split are computed once per (dataset, split, network,
weights hash, count, data fingerprint) and cached in the user cache (gan_jax.files.cache_dir).
Points (ring8, grid25): the PacGAN mode metrics on 2,500 samples.

Generated images are scored as a uint8 file would hold them (gan_jax.images.quantize), so one generator gets
one FID in memory and from a `gan-jax sample` file; the exception is the Inception's `legacy_tf` protocol,
which scores floats as compare_gan does (gan_jax.eval.fid_protocols).

Every result carries a "protocol" dict saying what was measured against what, so numbers from
different runs, networks or sample counts are never silently compared, and where the code, libraries and
machine that computed them came from (gan_jax.provenance).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np

from gan_jax import data, files, images, limits
from gan_jax.data import synthetic
from gan_jax.eval import fid_protocols, inception, metrics
from gan_jax.eval.features import AUTO, FEATURE_NETS, FeatureNet, get_feature_net, resolve_feature_net
from gan_jax.eval.metrics import FeatureMoments, GaussianStats, ImageFeatures, PointSamples
from gan_jax.eval.metrics.modes import HIGH_QUALITY_SIGMAS
from gan_jax.eval.metrics.registry import (
  DENSITY_COVERAGE_K,
  IS_SPLITS,
  KID_SUBSET_SIZE,
  KID_SUBSETS,
  PRECISION_RECALL_K,
)
from gan_jax.progress import progress_bar
from gan_jax.provenance import provenance

DEFAULT_IMAGE_SAMPLES = 10_000
DEFAULT_POINT_SAMPLES = 2_500  # PacGAN's count.
# Bytes an evaluation holds per sample: an image's Inception features (float32, and float64 for the statistics);
# a point's coordinates with its distances to the modes.
BYTES_PER_SAMPLE = {"images": inception.POOL3_DIM * 12, "points": 256}


def check_sample_count(num_samples: int, info: data.DatasetInfo) -> None:
  """Refuses, in one line, a sample count whose evaluation would not fit in this machine's memory."""
  limits.check_fits("num_samples", num_samples, BYTES_PER_SAMPLE[info.kind], f"samples of {info.name}")


GenerateFn = Callable[[int], np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class RealFeatures:
  """Real-data features of one split and their Gaussian statistics."""

  stats: GaussianStats
  feats_ND: np.ndarray
  path: str
  from_cache: bool


def real_features(
  config: ml_collections.ConfigDict, net: FeatureNet, split: str = "test", count: int | None = None
) -> RealFeatures:
  """Features of the first `count` images of a split (all when None), from the cache when there.

  The key includes a hash of the pixels: the same dataset name prepared from other files (a test
  fixture, another source_dir) must not reuse these features.
  """
  images_NHWC, _ = data.load_split(config, split, count)
  if count is not None and len(images_NHWC) < count:
    raise ValueError(f"split {split!r} of {config.data.name!r} has {len(images_NHWC)} examples, asked for {count}")
  pixels_sha = hashlib.sha256(np.ascontiguousarray(images_NHWC).tobytes()).hexdigest()
  dataset = config.data.name.replace(":", "-").replace("/", "-")
  net_id = f"{net.name}{'-' + net.protocol if net.protocol else ''}-{net.weights_sha256[:16]}"
  name = f"{dataset}_{split}_{net_id}_n{len(images_NHWC)}_data-{pixels_sha[:16]}.npz"
  path = os.path.join(files.cache_dir(), "reference", name)
  if os.path.isfile(path):
    with np.load(path) as f:
      stats = GaussianStats(f["mu"], f["sigma"], int(f["count"]))
      return RealFeatures(stats, f["feats"], path, from_cache=True)
  with progress_bar(len(images_NHWC), f"features of real {split}", "img") as bar:
    # Pieces of whole net batches: the net sees the same batches as in one call, and the bar moves.
    piece = 4 * net.batch_size
    feats_ND = np.concatenate(
      [_features(net, images_NHWC[i : i + piece], bar)[0] for i in range(0, max(1, len(images_NHWC)), piece)]
    )
  stats = GaussianStats.from_features(feats_ND)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  partial = f"{path}.{os.getpid()}.part"
  with open(partial, "wb") as f:  # mu/sigma/count as GaussianStats.save, so GaussianStats.load reads it too
    np.savez(f, mu=stats.mu_D, sigma=stats.sigma_DD, count=stats.count, feats=feats_ND)
  os.replace(partial, path)  # atomic: a concurrent evaluation sees the whole file or none
  return RealFeatures(stats, feats_ND, path, from_cache=False)


def array_sampler(samples: np.ndarray) -> GenerateFn:
  """Serves consecutive slices of a fixed array, so stored samples are scored exactly like a generator."""
  position = 0

  def generate(n: int) -> np.ndarray:
    nonlocal position
    if position + n > len(samples):
      raise ValueError(f"asked for samples {position}..{position + n} of only {len(samples)}")
    position += n
    return samples[position - n : position]

  return generate


def noise_sampler(generate_z: Callable[[jax.Array], jax.Array], latent_dim: int, seed: int = 0) -> GenerateFn:
  """generate_fn from a latent -> sample map: call i feeds N(0, I) noise keyed by (seed, i).

  For the train loop: `noise_sampler(lambda z_NZ: gan.generate(params, stats, z_NZ), gan.latent_dim)`.
  """
  key = jax.random.PRNGKey(seed)
  calls = itertools.count()

  def generate(n: int) -> np.ndarray:
    z_NZ = jax.random.normal(jax.random.fold_in(key, next(calls)), (n, latent_dim))
    return np.asarray(generate_z(z_NZ))

  return generate


def _draw(generate_fn: GenerateFn, num_samples: int, batch_size: int, shape: tuple[int, ...]):
  """Yields generated batches, each checked to be [n, *shape]: a wrong shape names the generator, not a metric."""
  for start in range(0, num_samples, batch_size):
    n = min(batch_size, num_samples - start)
    x = np.asarray(generate_fn(n))
    if x.shape != (n, *shape):
      raise ValueError(f"generate_fn({n}) returned shape {x.shape}; expected {(n, *shape)} for this dataset")
    yield x


def _features(net: FeatureNet, images_NHWC: np.ndarray, bar: Any = None) -> tuple[np.ndarray, np.ndarray]:
  """The one way images reach a feature net here: checked, quantized to uint8 and back where the net's protocol
  says so (all but legacy_tf), then scored.

  Checked first, so an out-of-range or NaN generator is refused rather than rounded into range.
  """
  images_NHWC = np.asarray(images_NHWC, np.float32)
  net.check(images_NHWC)
  out = net(images.quantize(images_NHWC) if net.quantize else images_NHWC)
  if bar is not None:
    bar.update(len(images_NHWC))
  return out


def check_evaluable(config: ml_collections.ConfigDict, info: data.DatasetInfo) -> str | None:
  """Raises ValueError (FileNotFoundError for absent weights) in one line when the config's evaluation protocol
  cannot score this data; the train loop asks before training, so no run fails at its final evaluation.

  Returns a one-line note instead where eval.feature_net=auto picks the Inception and its weights are absent:
  such a run trains without evaluations rather than refusing to start.
  """
  if config.eval.num_samples:
    check_sample_count(config.eval.num_samples, info)
  fid_protocol = config.eval.get("protocol", fid_protocols.DEFAULT)
  if fid_protocol not in fid_protocols.PROTOCOLS:
    raise ValueError(f"eval.protocol={fid_protocol!r}: expected one of {fid_protocols.names()}")
  if config.eval.feature_net != AUTO and config.eval.feature_net not in FEATURE_NETS:
    expected = f"expected {AUTO!r} or one of {FEATURE_NETS.names()}"
    raise ValueError(f"eval.feature_net={config.eval.feature_net!r}: {expected}")
  if info.kind == "points":
    if info.name not in synthetic.MODES:
      raise ValueError(
        f"data.name={info.name!r}: 2D points have evaluation metrics only for {sorted(synthetic.MODES)}; expected "
        "eval.every=0 and eval.final=False"
      )
    return None
  note = None
  try:
    net = _feature_net_for(config, info, config.eval.feature_net, config.eval.inception_weights, fid_protocol)
  except FileNotFoundError as e:
    if config.eval.feature_net != AUTO:
      raise
    note = f"evaluation skipped: {info.name!r} images are scored with the FID Inception, and {e}"
  else:
    if config.eval.best_metric.startswith("is_") and not net.num_classes:
      raise ValueError(
        f"eval.best_metric={config.eval.best_metric!r}: the FID Inception of `make inception` ends at pool3, so it "
        f"gives no Inception Score; expected another metric, or pytorch-fid's weights (with logits): "
        f"`{inception.CONVERT_COMMAND}`, then eval.inception_weights=OUT.npz"
      )
  need = max(IS_SPLITS, PRECISION_RECALL_K + 1, DENSITY_COVERAGE_K + 1)
  if 0 < config.eval.num_samples < need:
    raise ValueError(
      f"eval.num_samples={config.eval.num_samples}: expected 0 (the protocol's {DEFAULT_IMAGE_SAMPLES}) or at least "
      f"{need} (the Inception Score's splits, the nearest-neighbour metrics' k + 1)"
    )
  real, real_need = data.split_size(config, "test"), max(PRECISION_RECALL_K, DENSITY_COVERAGE_K) + 1
  if real < real_need:
    raise ValueError(
      f"data.name={info.name!r} holds {real} test images; the nearest-neighbour metrics need at least {real_need}: "
      "expected more images (a tenth of a folder or npz is held out), or eval.every=0 and eval.final=False"
    )
  return note


def _feature_net_for(
  config: ml_collections.ConfigDict, info: data.DatasetInfo, feature_net: str, inception_weights: str, fid_protocol: str
) -> FeatureNet:
  name = resolve_feature_net(feature_net, info.name, tuple(info.shape))
  net = get_feature_net(name, _inception_weights(config, inception_weights), fid_protocol)
  if net.input_hw is not None and tuple(info.shape) != (*net.input_hw, *net.input_channels):
    raise ValueError(
      f"the {net.name} feature net scores {net.input_hw} images with {net.input_channels} channels; dataset "
      f"{info.name!r} has shape {info.shape}: use the inception feature net (eval.feature_net, --feature-net)"
    )
  return net


def _inception_weights(config: ml_collections.ConfigDict, explicit: str) -> str:
  return explicit or config.get("eval", {}).get("inception_weights", "")


def _score_images(
  generate_fn: GenerateFn,
  config: ml_collections.ConfigDict,
  info: data.DatasetInfo,
  *,
  num_samples: int,
  feature_net: str,
  real_split: str,
  num_real: int | None,
  seed: int,
  batch_size: int,
  inception_weights: str,
  fid_protocol: str,
) -> tuple[dict[str, float], dict[str, Any]]:
  net = _feature_net_for(config, info, feature_net, inception_weights, fid_protocol)
  if num_samples < IS_SPLITS:
    raise ValueError(f"num_samples={num_samples}: need at least {IS_SPLITS} for the Inception Score splits")
  real = real_features(config, net, real_split, num_real)
  moments, feats, probs = FeatureMoments(), [], []
  with progress_bar(num_samples, "features of generated", "img") as bar:
    for images_NHWC in _draw(generate_fn, num_samples, batch_size, info.shape):
      feats_ND, probs_NC = _features(net, images_NHWC, bar)
      moments.update(feats_ND)
      feats.append(feats_ND)
      probs.append(probs_NC)
  features = ImageFeatures(
    real_ND=real.feats_ND,
    fake_QD=np.concatenate(feats),
    real_stats=real.stats,
    fake_stats=moments.stats(),
    fake_probs_QC=np.concatenate(probs) if net.num_classes else None,
    seed=seed,
  )
  scores = metrics.compute("images", features)
  protocol = {
    "feature_net": net.name,
    "feature_weights_sha256": net.weights_sha256,
    "feature_dim": net.feature_dim,
    "feature_input": net.description,
    **({"fid_protocol": net.protocol} if net.protocol else {}),
    "image_shape": list(info.shape),
    "image_check": f"[n, {', '.join(map(str, info.shape))}] finite, in [-1, 1]",
    "quantized": "uint8" if net.quantize else "no (generated floats scored as they are)",
    "real_split": real_split,
    "real_count": real.stats.count,
    "fid_method": "eigh",
    "kid": {"num_subsets": KID_SUBSETS, "subset_size": min(KID_SUBSET_SIZE, real.stats.count, num_samples)},
    "is_splits": IS_SPLITS if net.num_classes else None,
    "precision_recall_k": PRECISION_RECALL_K,
    "density_coverage_k": DENSITY_COVERAGE_K,
  }
  return scores, protocol


def _score_points(
  generate_fn: GenerateFn, info: data.DatasetInfo, *, num_samples: int, batch_size: int
) -> tuple[dict[str, float], dict[str, Any]]:
  means_K2, sigma = synthetic.mode_geometry(info.name)
  points_N2 = np.concatenate(list(_draw(generate_fn, num_samples, batch_size, info.shape)))
  if not np.isfinite(points_N2).all():
    raise ValueError("generated points contain NaN or inf")
  protocol = {"num_modes": len(means_K2), "sigma": sigma, "high_quality_sigmas": HIGH_QUALITY_SIGMAS}
  return metrics.compute("points", PointSamples(points_N2, np.asarray(means_K2), sigma)), protocol


def _evaluate(
  generate_fn: GenerateFn,
  config: ml_collections.ConfigDict,
  *,
  source: str,
  num_samples: int | None,
  feature_net: str,
  real_split: str,
  num_real: int | None,
  seed: int,
  ema: bool | None,
  step: int | None,
  batch_size: int,
  inception_weights: str,
  fid_protocol: str,
) -> dict[str, Any]:
  info = data.get_info(config)
  if num_samples is not None:
    check_sample_count(num_samples, info)
  if info.kind == "points":
    num_samples = DEFAULT_POINT_SAMPLES if num_samples is None else num_samples
    scores, details = _score_points(generate_fn, info, num_samples=num_samples, batch_size=batch_size)
  else:
    num_samples = DEFAULT_IMAGE_SAMPLES if num_samples is None else num_samples
    scores, details = _score_images(
      generate_fn,
      config,
      info,
      num_samples=num_samples,
      feature_net=feature_net,
      real_split=real_split,
      num_real=num_real,
      seed=seed,
      batch_size=batch_size,
      inception_weights=inception_weights,
      fid_protocol=fid_protocol,
    )
  protocol = {
    "dataset": info.name,
    "kind": info.kind,
    "source": source,
    "generated_count": num_samples,
    "ema": ema,
    "seed": seed,
    "step": None if step is None else int(step),
    **details,
    "provenance": provenance(),
  }
  return {**scores, "protocol": protocol}


def without_provenance(protocol: dict[str, Any]) -> dict[str, Any]:
  """A protocol less its provenance: for a second score nested in a record that already states where it ran."""
  return {k: v for k, v in protocol.items() if k != "provenance"}


def evaluate(
  generate_fn: GenerateFn,
  config: ml_collections.ConfigDict,
  *,
  num_samples: int | None = None,
  feature_net: str = "auto",
  real_split: str = "test",
  seed: int = 0,
  ema: bool = True,
  step: int | None = None,
  num_real: int | None = None,
  batch_size: int = 500,
  inception_weights: str = "",
  fid_protocol: str = fid_protocols.DEFAULT,
) -> dict[str, Any]:
  """Metrics of `generate_fn(n) -> [n, *shape]` samples in [-1, 1] against the real `real_split`.

  Images: fid, kid_mean/std, is_mean/std, precision, recall, density, coverage of `num_samples`
  (default 10,000) samples against all of `real_split` (or its first `num_real`). Points: modes,
  high_quality, reverse_kl of `num_samples` (default 2,500). `seed`, `ema` and `step` describe how
  the caller drew the samples and go into the protocol; `seed` also draws the KID subsets.
  """
  return _evaluate(
    generate_fn,
    config,
    source="generator",
    num_samples=num_samples,
    feature_net=feature_net,
    real_split=real_split,
    num_real=num_real,
    seed=seed,
    ema=ema,
    step=step,
    batch_size=batch_size,
    inception_weights=inception_weights,
    fid_protocol=fid_protocol,
  )


def real_floor(
  config: ml_collections.ConfigDict,
  *,
  num_samples: int | None = None,
  feature_net: str = "auto",
  real_split: str = "test",
  train_split: str = "train",
  seed: int = 0,
  num_real: int | None = None,
  batch_size: int = 500,
  inception_weights: str = "",
  fid_protocol: str = fid_protocols.DEFAULT,
) -> dict[str, Any]:
  """The same metrics with real training data as the "generator": the best score this protocol allows.

  Uses the first `num_samples` examples of `train_split` (a fixed sample per seed for 2D data), so a
  generator that memorised its training set would score exactly this, not zero.
  """
  info = data.get_info(config)
  if num_samples is None:
    num_samples = DEFAULT_POINT_SAMPLES if info.kind == "points" else DEFAULT_IMAGE_SAMPLES
  check_sample_count(num_samples, info)
  samples, _ = data.load_split(config, train_split, num_samples)
  if len(samples) < num_samples:
    raise ValueError(f"split {train_split!r} has {len(samples)} examples; the floor needs num_samples={num_samples}")
  return _evaluate(
    array_sampler(samples),
    config,
    source=f"real {train_split} split",
    num_samples=num_samples,
    feature_net=feature_net,
    real_split=real_split,
    num_real=num_real,
    seed=seed,
    ema=None,
    step=None,
    batch_size=batch_size,
    inception_weights=inception_weights,
    fid_protocol=fid_protocol,
  )


def evaluate_samples(
  generate_fn: GenerateFn,
  config: ml_collections.ConfigDict,
  *,
  source: str,
  num_samples: int,
  feature_net: str = "auto",
  real_split: str = "test",
  seed: int = 0,
  inception_weights: str = "",
  fid_protocol: str = fid_protocols.DEFAULT,
) -> dict[str, Any]:
  """Scores stored samples (e.g. `array_sampler` of a samples file) of config's dataset; `source` names them."""
  return _evaluate(
    generate_fn,
    config,
    source=source,
    num_samples=num_samples,
    feature_net=feature_net,
    real_split=real_split,
    num_real=None,
    seed=seed,
    ema=None,
    step=None,
    batch_size=500,
    inception_weights=inception_weights,
    fid_protocol=fid_protocol,
  )
