"""Anomaly detection with a GAN trained on normal data only: AnoGAN scores (Schlegl et al. 2017) and AUROC.

G has only learnt the normal classes, so an image of another class lies off G's range: the latent search for
the code best explaining it ends at a high loss. AnoGAN's loss mixes a residual Σ|x - G(z)| with a
discrimination loss Σ|f(x) - f(G(z))|, f being D's features before its head (layers.HeadFeatures), weighted
(1 - λ) and λ = 0.1; the score is that loss at the code found. The one-class protocol: train without some
classes (data.exclude_classes), score the test split, and the held-out classes' images are the positives.

f-AnoGAN (Schlegl et al. 2019) replaces the per-image search by an encoder E: x -> z, trained after the GAN
with G and D fixed, on the normal training images ("izi_f": x -> E -> G -> x, with D's features); scoring an
image is then one forward pass. Its score is the same loss it trains on, so both methods share the protocol.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, traverse_util

from gan_jax import data, models
from gan_jax.apps import given_images, latent
from gan_jax.models import layers
from gan_jax.progress import progress_bar
from gan_jax.train import run as run_lib

DISCRIMINATION_WEIGHT = 0.1  # λ, Schlegl et al.'s
SEARCH_LR = 0.03  # Adam's step on z, as inpainting's: 0.01 is still converging after a few hundred steps
FEATURE_WEIGHT = 1.0  # κ of f-AnoGAN's izi_f loss, Schlegl et al. 2019's


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
  return latent.map_batches(
    lambda ids_B: search(g_vars, d_vars, x_N[ids_B], ids_B, key), len(x_N), batch_size, desc="AnoGAN latent search"
  )


class Encoder(nn.Module):
  """f-AnoGAN's E: x -> z. DCGAN D's strided convolutions with layer norm (no batch statistics, so a code
  depends on its image alone), then a linear code: this G's prior is N(0, I), not the paper's tanh-bounded
  uniform."""

  latent_dim: int
  width: int = 64

  @nn.compact
  def __call__(self, x_NHWC: jax.Array) -> jax.Array:
    h = x_NHWC
    for i in range(2):
      h = nn.Conv(self.width * 2**i, (4, 4), (2, 2), "SAME")(h)
      h = nn.leaky_relu(nn.LayerNorm(reduction_axes=(1, 2, 3))(h), 0.2)
    return nn.Dense(self.latent_dim)(h.reshape(h.shape[0], -1))


def izif_loss(x_N: jax.Array, generated_N: jax.Array, f_NF: jax.Array, f_generated_NF: jax.Array, kappa: float):
  """loss_N = mean (x - G(E(x)))² + κ mean (f(x) - f(G(E(x))))², means over pixels and features."""
  residual_N = jnp.mean(jnp.square(x_N - generated_N).reshape(len(x_N), -1), axis=1)
  return residual_N + kappa * jnp.mean(jnp.square(f_NF - f_generated_NF), axis=1)


def _izif(generator, discriminator, encoder, g_vars, d_vars, kappa) -> Callable:
  """(e_vars, x_N) -> (loss_N, G(E(x))_N) with G and D fixed."""

  def fn(e_vars, x_N):
    generated_N = generator.apply(g_vars, encoder.apply(e_vars, x_N), None, train=False).astype(jnp.float32)
    features = lambda x: head_features(discriminator, d_vars, x)
    return izif_loss(x_N, generated_N, features(x_N), features(generated_N), kappa), generated_N

  return fn


def train_encoder(
  generator: nn.Module,
  discriminator: nn.Module,
  g_vars: dict,
  d_vars: dict,
  x_train_N: np.ndarray,
  *,
  latent_dim: int,
  steps: int,
  seed: int = 0,
  batch_size: int = 64,
  lr: float = 1e-3,
  kappa: float = FEATURE_WEIGHT,
  log: Callable[[str], None] | None = None,
) -> dict:
  """f-AnoGAN's encoder variables: `steps` Adam steps (cosine-decayed rate) on izi_f over batches of x_train_N.

  Batches are drawn with replacement by `seed`; G and D are fixed (inference mode). `log` gets a line of the
  mean loss every tenth of the steps.
  """
  if steps < 1 or batch_size < 1 or kappa < 0:
    raise ValueError(f"encoder steps={steps}, batch_size={batch_size}, κ={kappa}: expected steps, batch >= 1, κ >= 0")
  x_train_N = np.asarray(x_train_N, np.float32)
  encoder = Encoder(latent_dim)
  e_vars = encoder.init(jax.random.PRNGKey(seed), jnp.zeros((1, *x_train_N.shape[1:])))
  tx = optax.adam(optax.cosine_decay_schedule(lr, steps))
  loss_fn = _izif(generator, discriminator, encoder, g_vars, d_vars, kappa)

  @jax.jit
  def step(e_vars, opt_state, x_B):
    loss, grads = jax.value_and_grad(lambda v: jnp.mean(loss_fn(v, x_B)[0]))(e_vars)
    updates, opt_state = tx.update(grads, opt_state, e_vars)
    return optax.apply_updates(e_vars, updates), opt_state, loss

  opt_state, rng, losses, start = tx.init(e_vars), np.random.default_rng(seed), [], time.time()
  with progress_bar(steps, "f-AnoGAN encoder", "step") as bar:
    for i in range(steps):
      e_vars, opt_state, loss = step(e_vars, opt_state, x_train_N[rng.integers(0, len(x_train_N), batch_size)])
      losses.append(loss)
      bar.update(1)
      if log is not None and (i + 1) % max(1, steps // 10) == 0:
        log(
          f"encoder step {i + 1}/{steps}: izi_f loss {float(np.mean(jax.device_get(losses))):.4f} "
          f"({time.time() - start:.0f} s)"
        )
        losses = []
  return e_vars


def fanogan_scores(
  generator: nn.Module,
  discriminator: nn.Module,
  g_vars: dict,
  d_vars: dict,
  e_vars: dict,
  x_N: np.ndarray,
  *,
  latent_dim: int,
  kappa: float = FEATURE_WEIGHT,
  batch_size: int = 500,
) -> tuple[np.ndarray, np.ndarray]:
  """(score_N, generated_N): the izi_f loss of each image and its reconstruction G(E(x))."""
  fn = jax.jit(_izif(generator, discriminator, Encoder(latent_dim), g_vars, d_vars, kappa))
  x_N = np.asarray(x_N, np.float32)
  return latent.map_batches(lambda ids_B: fn(e_vars, x_N[ids_B]), len(x_N), batch_size)


@dataclasses.dataclass(frozen=True)
class AnoGAN:
  """AnoGAN's per-image latent search: Adam steps, restarts (the best wins), λ and Adam's step size."""

  steps: int = 100
  restarts: int = 1
  seed: int = 0
  weight: float = DISCRIMINATION_WEIGHT
  lr: float = SEARCH_LR


@dataclasses.dataclass(frozen=True)
class FAnoGAN:
  """f-AnoGAN's encoder training: Adam steps on izi_f, their seed, peak step size and κ."""

  steps: int = 2000
  seed: int = 0
  lr: float = 1e-3
  kappa: float = FEATURE_WEIGHT


def trained_encoder(
  run: run_lib.Run,
  workdir: str,
  method: FAnoGAN,
  g_vars: dict,
  d_vars: dict,
  *,
  ema: bool,
  member: int,
  log: Callable[[str], None] | None = None,
) -> tuple[dict, bool]:
  """(encoder variables, whether they were trained now) for `method` on one member's G and D (g_vars, d_vars:
  that member's, with or without G's EMA as `ema` says).

  Kept in WORKDIR/fanogan/ with the settings and the run's step they were trained for, so scoring other
  images (or again) reuses them; other settings or a later checkpoint train a new one.
  """
  meta = {**dataclasses.asdict(method), "ema": ema, "member": member, "run_step": int(run.state.step[member])}
  stem = os.path.join(workdir, "fanogan", "encoder_" + "_".join(f"{k}={meta[k]}" for k in sorted(meta)))
  if os.path.exists(stem + ".msgpack"):
    like = Encoder(run.gan.latent_dim).init(jax.random.PRNGKey(0), jnp.zeros((1, *run.info.shape)))
    with open(stem + ".msgpack", "rb") as f:
      return serialization.from_bytes(like, f.read()), False
  held_out = data.excluded_classes(run.config, run.info.kind, run.info.num_classes)
  x_train_N, labels_N = data.load_split(run.config, run.config.data.split)
  e_vars = train_encoder(
    run.gan.generator,
    run.gan.discriminator,
    g_vars,
    d_vars,
    x_train_N[~np.isin(labels_N, held_out)],  # what G was trained on: the normal classes only
    latent_dim=run.gan.latent_dim,
    steps=method.steps,
    seed=method.seed,
    lr=method.lr,
    kappa=method.kappa,
    log=log,
  )
  os.makedirs(os.path.dirname(stem), exist_ok=True)
  with open(stem + ".json", "w") as f:
    json.dump(meta, f)
  with open(stem + ".msgpack.tmp", "wb") as f:
    f.write(serialization.to_bytes(e_vars))
  os.replace(stem + ".msgpack.tmp", stem + ".msgpack")  # a killed run leaves no half-written encoder
  return e_vars, True


def _require_unconditional_images(run: run_lib.Run) -> None:
  if run.info.kind != "images":
    raise ValueError(f"anomaly scoring reads images; data.name={run.info.name!r} is {run.info.kind}")
  if models.generator_classes(run.gan.generator):
    raise ValueError("this run is conditional; expected an unconditional one (an anomaly's class is unknown)")


def load_images(run: run_lib.Run, spec: str) -> tuple[np.ndarray, np.ndarray]:
  """(x_NHWC, labels_N) to score: SPLIT:FIRST-LAST of the run's dataset, or a FILE.npz with labels."""
  _require_unconditional_images(run)
  x_NHWC, labels_N = given_images.load_images(run, spec)
  if labels_N is None:
    raise ValueError(f"--images {spec!r} has no 'labels'; expected them, to know which images are anomalies")
  return x_NHWC, labels_N


def evaluate_anomaly(
  run: run_lib.Run,
  x_NHWC: np.ndarray,
  labels_N: np.ndarray,
  method: AnoGAN | FAnoGAN,
  *,
  workdir: str | None = None,
  ema: bool = True,
  member: int = 0,
  log: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float | int]]:
  """(score_N, anomalous_N, summary): scores, whether each image is of a held-out class, and the AUROC.

  The positives are the images of the run's data.exclude_classes, the classes its G never saw. FAnoGAN
  trains its encoder first (or reuses the one `workdir` holds: see trained_encoder).
  """
  _require_unconditional_images(run)
  held_out = data.excluded_classes(run.config, run.info.kind, run.info.num_classes)
  if not held_out:
    raise ValueError(
      "the run has data.exclude_classes=(): no class is anomalous to it; expected a run trained without its "
      "anomalies (e.g. experiments/anomaly_fashion_mnist.py)"
    )
  anomalous_N = np.isin(labels_N, held_out)
  if anomalous_N.all() or not anomalous_N.any():
    raise ValueError(
      f"{anomalous_N.sum()} of the {len(labels_N)} images are of the held-out classes {list(held_out)}; "
      "expected both normal images and anomalies"
    )
  g_vars, d_vars = run_lib.member_variables(run, member, ema)
  nets = (run.gan.generator, run.gan.discriminator, g_vars, d_vars)
  encoder_summary: dict[str, float | int] = {}
  if isinstance(method, FAnoGAN):
    if workdir is None:
      raise ValueError("f-AnoGAN keeps its encoder in the run's workdir; expected workdir=")
    start = time.time()
    e_vars, trained = trained_encoder(run, workdir, method, g_vars, d_vars, ema=ema, member=member, log=log)
    encoder_summary = {"encoder_trained": int(trained), "encoder_s": round(time.time() - start, 1)}
    score_N, _ = fanogan_scores(*nets, e_vars, x_NHWC, latent_dim=run.gan.latent_dim, kappa=method.kappa)
  else:
    search = dict(steps=method.steps, restarts=method.restarts, weight=method.weight, lr=method.lr)
    key = jax.random.PRNGKey(method.seed)
    score_N, _ = anogan_scores(*nets, x_NHWC, key, latent_dim=run.gan.latent_dim, **search)
  summary = {
    "auroc": auroc(score_N, anomalous_N),
    "count": len(score_N),
    "positives": int(anomalous_N.sum()),
    "mean_score_normal": float(score_N[~anomalous_N].mean()),
    "mean_score_anomaly": float(score_N[anomalous_N].mean()),
    **encoder_summary,
  }
  return score_N, anomalous_N, summary
