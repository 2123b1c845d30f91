"""Anomaly detection with a GAN trained on normal data only: AnoGAN scores (Schlegl et al. 2017) and AUROC.

G has only learnt the normal classes, so an image of another class lies off G's range: the latent search for
the code best explaining it ends at a high loss. AnoGAN's loss mixes a residual Σ|x - G(z)| with a
discrimination loss Σ|f(x) - f(G(z))|, f being D's features before its head (layers.HeadFeatures), weighted
(1 - λ) and λ = 0.1; the score is that loss at the code found. The one-class protocol: train without some
classes (data.exclude_classes), score the test split, and the held-out classes' images are the positives.

f-AnoGAN (Schlegl et al. 2019) is left out: its encoder is a third network, trained after the GAN.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gan_jax import data, inference, inpaint, latent, models
from gan_jax.models import layers

DISCRIMINATION_WEIGHT = 0.1  # λ, Schlegl et al.'s
SEARCH_LR = 0.03  # Adam's step on z, as inpainting's: 0.01 is still converging after a few hundred steps


def auroc(scores_N: np.ndarray, labels_N: np.ndarray) -> float:
  """The area under the ROC curve of `scores_N` for positives labels_N (bool or 0/1), higher = more positive.

  Exactly P(s+ > s-) + ½ P(s+ = s-) over positive-negative pairs (the Mann-Whitney U over the pair count):
  2U counts, per positive, the negatives below it plus those not above it, in integers; one division.
  """
  scores_N, labels_N = np.asarray(scores_N), np.asarray(labels_N)
  if scores_N.ndim != 1 or scores_N.shape != labels_N.shape:
    raise ValueError(f"scores {scores_N.shape} and labels {labels_N.shape}: expected two vectors of one length")
  if not np.isin(labels_N, (0, 1)).all():
    raise ValueError(f"labels {np.unique(labels_N)[:5]}: expected booleans or 0/1")
  if not np.isfinite(scores_N).all():
    raise ValueError(f"{np.sum(~np.isfinite(scores_N))} scores are not finite; expected finite scores")
  positive_N = labels_N.astype(bool)
  pos, neg = scores_N[positive_N], np.sort(scores_N[~positive_N])
  if not len(pos) or not len(neg):
    raise ValueError(f"{len(pos)} positives and {len(neg)} negatives: expected at least one of each")
  twice_u = int(np.sum(np.searchsorted(neg, pos, "left")) + np.sum(np.searchsorted(neg, pos, "right")))
  return twice_u / (2 * len(pos) * len(neg))


def head_features(discriminator: nn.Module, d_vars: dict, x_N: jax.Array) -> jax.Array:
  """f_NF: D's features before its head, in inference mode (what layers.HeadFeatures sows), float32."""
  _, sown = discriminator.apply(d_vars, x_N, None, train=False, mutable=[layers.HEAD_FEATURES])
  found = list(traverse_util.flatten_dict(sown).values())
  if len(found) != 1:
    raise ValueError(
        f"{type(discriminator).__name__} sowed {len(found)} head features; expected one, from a head built with "
        "gan_jax.models.layers.discriminator_head"
    )
  (f_NF,) = found[0]  # sow keeps a tuple of the values sown
  return f_NF.reshape(f_NF.shape[0], -1).astype(jnp.float32)


def anogan_loss(
    x_N: jax.Array, generated_N: jax.Array, f_NF: jax.Array, f_generated_NF: jax.Array, weight: float
) -> jax.Array:
  """loss_N = (1 - λ) Σ|x - G(z)| + λ Σ|f(x) - f(G(z))|, sums over every non-batch axis."""
  residual_N = jnp.sum(jnp.abs(x_N - generated_N).reshape(len(x_N), -1), axis=1)
  discrimination_N = jnp.sum(jnp.abs(f_NF - f_generated_NF), axis=1)
  return (1 - weight) * residual_N + weight * discrimination_N


def anogan_scores(
    generator: nn.Module,
    discriminator: nn.Module,
    g_vars: dict,
    d_vars: dict,
    x_N: np.ndarray,
    key: jax.Array,
    *,
    steps: int,
    restarts: int,
    latent_dim: int,
    weight: float = DISCRIMINATION_WEIGHT,
    lr: float = SEARCH_LR,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
  """(score_N, generated_N): the AnoGAN loss at the best code per example, and G of that code.

  Unconditional G and D. Restart r of example i starts from the code keyed by (key, i), so a score does not
  depend on the batching.
  """
  if not 0 <= weight <= 1:
    raise ValueError(f"discrimination weight λ={weight}: expected 0 <= λ <= 1")

  @jax.jit
  def search(g_vars, d_vars, x_B, ids_B, key):
    gen = lambda z_BZ: generator.apply(g_vars, z_BZ, None, train=False).astype(jnp.float32)
    features = lambda x: head_features(discriminator, d_vars, x)
    f_BF = features(x_B)
    loss_fn = lambda generated_B, z_BZ: anogan_loss(x_B, generated_B, f_BF, features(generated_B), weight)
    z0_RBZ = latent.initial_latents(key, restarts, ids_B, latent_dim)
    z_BZ, loss_B = latent.latent_search(gen, loss_fn, z0_RBZ, steps=steps, lr=lr)
    return loss_B, gen(z_BZ)

  x_N = np.asarray(x_N, np.float32)
  return latent.map_batches(lambda ids_B: search(g_vars, d_vars, x_N[ids_B], ids_B, key), len(x_N), batch_size)


def _require_unconditional_images(run: inference.Run) -> None:
  if run.info.kind != "images":
    raise ValueError(f"anomaly scoring reads images; data.name={run.info.name!r} is {run.info.kind}")
  if models.generator_classes(run.gan.generator):
    raise ValueError("this run is conditional; expected an unconditional one (an anomaly's class is unknown)")


def load_images(run: inference.Run, spec: str) -> tuple[np.ndarray, np.ndarray]:
  """(x_NHWC, labels_N) to score: SPLIT:FIRST-LAST of the run's dataset, or a FILE.npz with labels."""
  _require_unconditional_images(run)
  x_NHWC, labels_N = inpaint.load_images(run, spec)
  if labels_N is None:
    raise ValueError(f"--images {spec!r} has no 'labels'; expected them, to know which images are anomalies")
  return x_NHWC, labels_N


def evaluate_anomaly(
    run: inference.Run,
    x_NHWC: np.ndarray,
    labels_N: np.ndarray,
    *,
    steps: int,
    restarts: int,
    seed: int = 0,
    weight: float = DISCRIMINATION_WEIGHT,
    lr: float = SEARCH_LR,
    ema: bool = True,
    member: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, float | int]]:
  """(score_N, anomalous_N, summary): AnoGAN scores, whether each image is of a held-out class, and the AUROC.

  The positives are the images of the run's data.exclude_classes, the classes its G never saw.
  """
  _require_unconditional_images(run)
  held_out = data.excluded_classes(run.config, run.info.kind, run.info.num_classes)
  if not held_out:
    raise ValueError(
        "the run has data.exclude_classes='': no class is anomalous to it; expected a run trained without its "
        "anomalies (e.g. experiments/anomaly_fashion_mnist.py)"
    )
  anomalous_N = np.isin(labels_N, held_out)
  if anomalous_N.all() or not anomalous_N.any():
    raise ValueError(
        f"{anomalous_N.sum()} of the {len(labels_N)} images are of the held-out classes {list(held_out)}; "
        "expected both normal images and anomalies"
    )
  g_vars, d_vars = inference.member_variables(run, member, ema)
  score_N, _ = anogan_scores(
      run.gan.generator,
      run.gan.discriminator,
      g_vars,
      d_vars,
      x_NHWC,
      jax.random.PRNGKey(seed),
      steps=steps,
      restarts=restarts,
      latent_dim=run.gan.latent_dim,
      weight=weight,
      lr=lr,
  )
  summary = {
      "auroc": auroc(score_N, anomalous_N),
      "count": len(score_N),
      "positives": int(anomalous_N.sum()),
      "mean_score_normal": float(score_N[~anomalous_N].mean()),
      "mean_score_anomaly": float(score_N[anomalous_N].mean()),
  }
  return score_N, anomalous_N, summary
