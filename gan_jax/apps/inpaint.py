"""Semantic inpainting by latent search (Yeh et al. 2017), its baselines and its metrics.

A mask is 1 on known pixels, 0 on missing ones. The GAN fill searches the code z whose G(z) best matches the
known pixels (contextual loss) while D still calls it real (prior loss), then pastes G(z) into the hole:
x = M ⊙ y + (1 - M) ⊙ G(z). Yeh et al. then blend: "gan_poisson" keeps G(z)'s gradients in the hole and the
known pixels around it (Pérez et al. 2003), which removes a seam where G's brightness is off. Both are
reported, so the table says what the search found and what blending adds.

Baselines: mean fill pastes the training set's per-pixel mean image (not the mean of the known pixels, which
knows nothing about where things usually are); nearest neighbour pastes the training image closest to y in L2
over the known pixels. Metrics (eval/metrics/restoration.py) compare each fill with the ground truth on the
missing pixels only.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from gan_jax import data, models
from gan_jax.apps import latent
from gan_jax.apps.given_images import require_images
from gan_jax.eval.metrics.restoration import psnr, ssim
from gan_jax.train import run as run_lib

RANDOM_MISSING = 0.8  # `random` masks: each pixel missing with this probability (Yeh et al.'s 80%)
MASK_KINDS = ("center", "random", "random:P", "half", "FILE.png")
PRIOR_WEIGHT = 0.003  # λ of the prior loss, Yeh et al.'s
SEARCH_LR = 0.03  # Adam's step on z; 0.01 converges slower within a few hundred steps on Fashion-MNIST DCGANs
IMPORTANCE_WINDOW = 7  # side of the neighbourhood of the importance weights, Yeh et al.'s
WEIGHTINGS = ("importance", "uniform")
COMBINES = ("mean", "median", "midmean")  # how `average` > 1 fills become one, per pixel (combine_fills)


def make_mask(kind: str, shape_HW: tuple[int, int], key: jax.Array | None = None) -> np.ndarray:
  """mask_HW float32, 1 = known pixel.

  center: the central H/2 x W/2 block (25% of the area) is missing. half: the left half is missing.
  random (random:P): each pixel missing independently with probability 0.8 (P), drawn from `key`.
  FILE.png: the file's pixels, nonzero = known, in the images' shape.
  """
  H, W = shape_HW
  mask_HW = np.ones((H, W), np.float32)
  if kind == "center":
    mask_HW[H // 4 : H // 4 + H // 2, W // 4 : W // 4 + W // 2] = 0
  elif kind == "half":
    mask_HW[:, : W // 2] = 0
  elif kind == "random" or kind.startswith("random:"):
    p = RANDOM_MISSING if kind == "random" else _rate(kind)
    if key is None:
      raise ValueError(f"mask {kind!r} is random: expected a PRNG key")
    mask_HW = np.asarray(jax.random.uniform(key, (H, W)) >= p, np.float32)
  elif kind.endswith(".png"):
    pixels = np.asarray(Image.open(kind).convert("L"))
    if pixels.shape != (H, W):
      raise ValueError(f"mask {kind!r} is {pixels.shape[0]}x{pixels.shape[1]}; expected the images' {H}x{W}")
    mask_HW = (pixels != 0).astype(np.float32)
  else:
    raise ValueError(f"mask {kind!r}: expected one of {', '.join(MASK_KINDS)}")
  return mask_HW


def _rate(kind: str) -> float:
  try:
    p = float(kind.split(":", 1)[1])
  except ValueError:
    p = -1.0
  if not 0 < p < 1:
    raise ValueError(f"mask {kind!r}: expected random:P with a missing fraction 0 < P < 1, e.g. random:0.5")
  return p


def save_mask(path: str, mask_HW: np.ndarray) -> None:
  """A mask as the FILE.png that make_mask reads: white = known."""
  Image.fromarray((np.asarray(mask_HW) != 0).astype(np.uint8) * 255).save(path)


def importance_weights(mask_NHW: jax.Array, window: int = IMPORTANCE_WINDOW) -> jax.Array:
  """Yeh et al.'s weights: a known pixel counts by the fraction of its window x window neighbourhood missing.

  Known pixels far from the hole weigh 0, so the match is on the hole's surroundings; missing pixels weigh 0.
  """
  missing_NHW1 = (1.0 - mask_NHW)[..., None]
  box_HWIO = jnp.ones((window, window, 1, 1), jnp.float32) / window**2
  near_NHW1 = jax.lax.conv_general_dilated(
    missing_NHW1, box_HWIO, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  return mask_NHW * near_NHW1[..., 0]


def contextual_loss(x_NHWC: jax.Array, y_NHWC: jax.Array, weights_NHW: jax.Array) -> jax.Array:
  """loss_N = Σ W ⊙ |x - y|: the L1 distance on the known pixels (L1, as Yeh et al.: robust to outliers)."""
  return jnp.sum(weights_NHW[..., None] * jnp.abs(x_NHWC - y_NHWC), axis=(1, 2, 3))


def latent_prior_loss(z_NZ: jax.Array, weight: float) -> jax.Array:
  """β ||z||²: up to a constant, 2β times the negative log-density of z under G's N(0, I) prior.

  With it the search seeks a posterior mode rather than any code that fits, and cannot drift to codes G rarely
  saw in training; it pulls them inwards, as the truncation trick does for sampling (docs/studies.md).
  """
  return weight * jnp.sum(z_NZ * z_NZ, axis=-1)


def prior_loss(logits_N: jax.Array, weight: float = PRIOR_WEIGHT) -> jax.Array:
  """λ log(1 - D(G(z))) with D = sigmoid(logit): log(1 - sigmoid(l)) = log sigmoid(-l) = -softplus(l).

  Yeh et al.'s formula (their code used the non-saturating -log D instead); it falls as D's logit rises.
  """
  return -weight * jax.nn.softplus(logits_N)


def blend(y_NHWC: jax.Array, fill_NHWC: jax.Array, mask_NHW: jax.Array) -> jax.Array:
  """Known pixels from y, missing ones from the fill."""
  m = mask_NHW[..., None]
  return m * y_NHWC + (1.0 - m) * fill_NHWC


def _neighbour_sum(u_HW: jax.Array) -> jax.Array:
  """Σ of each pixel's 4 neighbours, zero beyond the image."""
  p = jnp.pad(u_HW, 1)
  return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]


def poisson_blend(
  y_NHWC: jax.Array, fill_NHWC: jax.Array, mask_NHW: jax.Array, *, tol: float = 1e-6, maxiter: int = 1000
) -> jax.Array:
  """x = y on known pixels; in the hole, x solves the discrete Poisson equation Δx = Δfill (Pérez et al. 2003).

  That is, x's differences to its neighbours match the fill's, and the hole's border meets y's pixels. Per
  image and channel, with u the hole's unknowns: n_p u_p - Σ_{q in hole} u_q = (Δfill)_p + Σ_{q known} y_q,
  n_p the number of p's neighbours inside the image. The matrix is a Laplacian with Dirichlet boundary,
  symmetric positive definite when each hole touches a known pixel: conjugate gradients solve it.
  """

  def one(y_HW, fill_HW, known_HW):
    hole_HW = 1.0 - known_HW
    count_HW = _neighbour_sum(jnp.ones_like(known_HW))
    # On known pixels the operator is the identity and the right-hand side 0, so u stays 0 there.
    operator = lambda u_HW: hole_HW * (count_HW * u_HW - _neighbour_sum(hole_HW * u_HW)) + known_HW * u_HW
    laplacian_HW = count_HW * fill_HW - _neighbour_sum(fill_HW)
    rhs_HW = hole_HW * (laplacian_HW + _neighbour_sum(known_HW * y_HW))
    u_HW, _ = jax.scipy.sparse.linalg.cg(operator, rhs_HW, tol=tol, maxiter=maxiter)
    return known_HW * y_HW + hole_HW * u_HW

  per_channel = jax.vmap(one, in_axes=(-1, -1, None), out_axes=-1)
  as_float = lambda a: jnp.asarray(a, jnp.float32)
  return jax.vmap(per_channel)(as_float(y_NHWC), as_float(fill_NHWC), as_float(mask_NHW))


def ranked_fills(
  generator: nn.Module,
  discriminator: nn.Module,
  g_vars: dict,
  d_vars: dict,
  y_NHWC: np.ndarray,
  mask_NHW: np.ndarray,
  key: jax.Array,
  *,
  steps: int,
  restarts: int,
  keep: int = 1,
  pool: int = 0,
  pool_temperature: float = 1.0,
  latent_weight: float = 0.0,
  labels_N: np.ndarray | None = None,
  prior_weight: float = PRIOR_WEIGHT,
  lr: float = SEARCH_LR,
  weighting: str = "importance",
  latent_dim: int,
  batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
  """(generated_NKHWC, loss_NK): per image, G(z) of the `keep` restarts of least loss, best first, and their
  losses; searched in batches of `batch_size`.

  Restart r of image i starts from the code keyed by (key, i), so results do not depend on the batching; with
  `pool` > 0, from the `restarts` codes of a shared pool of that many, drawn from N(0, pool_temperature² I), that
  G maps closest to the known pixels (pooled_latents). The loss is the contextual loss, λ = prior_weight times
  D's prior loss and latent_weight times ||z||² (latent_prior_loss). A conditional generator draws image i of
  class labels_N[i].
  """
  if pool and labels_N is not None:
    raise ValueError(f"pool={pool}: a pool of initial codes is for unconditional runs; expected pool=0 here")
  if pool and pool < restarts:
    raise ValueError(f"pool={pool}: expected at least restarts={restarts} candidate codes (or 0 for none)")
  if weighting not in WEIGHTINGS:
    raise ValueError(f"weighting={weighting!r}: expected one of {WEIGHTINGS}")
  if not 1 <= keep <= restarts:
    raise ValueError(f"keep={keep}: expected 1 to restarts={restarts} codes")
  if not pool_temperature > 0:
    raise ValueError(f"pool_temperature={pool_temperature}: expected a positive standard deviation of the pool")
  if latent_weight < 0:
    raise ValueError(f"latent_weight={latent_weight}: expected a non-negative weight of ||z||²")

  @jax.jit
  def search(g_vars, d_vars, y_NHWC, mask_NHW, labels_N, ids_N):
    gen = lambda z_NZ: generator.apply(g_vars, z_NZ, labels_N, train=False).astype(jnp.float32)
    weights_NHW = importance_weights(mask_NHW) if weighting == "importance" else mask_NHW

    def loss_fn(x_NHWC, z_NZ):
      out = discriminator.apply(d_vars, x_NHWC, labels_N, train=False)
      logits_N = out[0] if isinstance(out, tuple) else out  # an ACGAN head also returns class logits
      fit_N = contextual_loss(x_NHWC, y_NHWC, weights_NHW) + prior_loss(logits_N, prior_weight)
      return fit_N + latent_prior_loss(z_NZ, latent_weight)

    if pool:
      pool_key = jax.random.fold_in(key, POOL_SALT)
      z0_RNZ = pooled_latents(gen, y_NHWC, mask_NHW, pool_key, pool, restarts, latent_dim, pool_temperature)
    else:
      z0_RNZ = latent.initial_latents(key, restarts, ids_N, latent_dim)
    z_RNZ, loss_RN = latent.latent_search_restarts(gen, loss_fn, z0_RNZ, steps=steps, lr=lr)
    best_KN = jnp.argsort(loss_RN, axis=0)[:keep]
    n_N = jnp.arange(z_RNZ.shape[1])
    images_KNHWC = jax.vmap(gen)(z_RNZ[best_KN, n_N])
    return jnp.swapaxes(images_KNHWC, 0, 1), loss_RN[best_KN, n_N].T

  def batch(ids_B: np.ndarray) -> tuple[jax.Array, jax.Array]:
    labels_B = None if labels_N is None else jnp.asarray(labels_N[ids_B], jnp.int32)
    return search(g_vars, d_vars, y_NHWC[ids_B], mask_NHW[ids_B], labels_B, ids_B)

  return latent.map_batches(batch, len(y_NHWC), batch_size, desc="inpainting latent search")


POOL_SALT = 0x9001  # the pool's codes come from fold_in(key, POOL_SALT), apart from the per-image codes


def pooled_latents(
  gen: latent.GenerateFn,
  y_NHWC: jax.Array,
  mask_NHW: jax.Array,
  key: jax.Array,
  pool: int,
  restarts: int,
  latent_dim: int,
  temperature: float = 1.0,
) -> jax.Array:
  """z0_RNZ: per image, the `restarts` codes of a pool of `pool` N(0, temperature² I) codes (drawn from `key`,
  shared by all images) whose images are nearest to y in L2 over the known pixels, nearest first.

  A nearest-neighbour search among G's samples, which the latent search then refines: it starts from images
  that already fit the known pixels, so it needs fewer steps (docs/studies.md). The pool is drawn and generated
  once per batch of images.
  """
  z_PZ = temperature * jax.random.normal(key, (pool, latent_dim), jnp.float32)
  x_PD = gen(z_PZ).reshape(pool, -1)
  C = y_NHWC.shape[-1]
  m_ND = jnp.repeat(mask_NHW[..., None], C, axis=-1).reshape(len(y_NHWC), -1)
  y_ND = y_NHWC.reshape(len(y_NHWC), -1)
  d_NP = _masked_sq_distances(y_ND, m_ND, x_PD)
  _, nearest_NR = jax.lax.top_k(-d_NP, restarts)
  return jnp.swapaxes(z_PZ[nearest_NR], 0, 1)


def mean_fill(y_NHWC: np.ndarray, mask_NHW: np.ndarray, train_mean_HWC: np.ndarray) -> np.ndarray:
  """The training set's mean image pasted into the hole."""
  return np.asarray(blend(y_NHWC, jnp.broadcast_to(train_mean_HWC, y_NHWC.shape), mask_NHW))


@jax.jit
def _masked_sq_distances(y_NP: jax.Array, m_NP: jax.Array, t_TP: jax.Array) -> jax.Array:
  """d_NT = Σ_p m (y - t)² = Σ m y² - 2 (m y)·t + m·t², as two matmuls."""
  hi = jax.lax.Precision.HIGHEST
  return (
    jnp.sum(m_NP * y_NP**2, axis=1)[:, None]
    - 2 * jnp.matmul(m_NP * y_NP, t_TP.T, precision=hi)
    + jnp.matmul(m_NP, (t_TP**2).T, precision=hi)
  )


def nearest_neighbour_fill(
  y_NHWC: np.ndarray, mask_NHW: np.ndarray, train_THWC: np.ndarray, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
  """(filled_NHWC, index_N): the training image nearest to y in L2 over the known pixels, pasted into the hole."""
  N = len(y_NHWC)
  C = y_NHWC.shape[-1]
  y_NP = jnp.asarray(y_NHWC.reshape(N, -1))
  m_NP = jnp.asarray(np.repeat(mask_NHW[..., None], C, axis=-1).reshape(N, -1))
  best_N, index_N = np.full(N, np.inf, np.float32), np.zeros(N, np.int64)
  for start in range(0, len(train_THWC), chunk):
    t_TP = jnp.asarray(train_THWC[start : start + chunk].reshape(-1, y_NP.shape[1]))
    d_NT = np.asarray(_masked_sq_distances(y_NP, m_NP, t_TP))
    i_N = np.argmin(d_NT, axis=1)
    d_N = d_NT[np.arange(N), i_N]
    better = d_N < best_N
    best_N[better], index_N[better] = d_N[better], start + i_N[better]
  return np.asarray(blend(y_NHWC, train_THWC[index_N], mask_NHW)), index_N


def masks_for(kind: str, num: int, shape_HW: tuple[int, int], key: jax.Array) -> np.ndarray:
  """mask_NHW: one mask per image; a random kind draws image i's from fold_in(key, i)."""
  if kind == "random" or kind.startswith("random:"):
    return np.stack([make_mask(kind, shape_HW, jax.random.fold_in(key, i)) for i in range(num)])
  return np.broadcast_to(make_mask(kind, shape_HW), (num, *shape_HW)).copy()


def _require_combine(combine: str) -> None:
  if combine not in COMBINES:
    raise ValueError(f"combine={combine!r}: expected one of {COMBINES}")


def combine_fills(fills_NKHWC: np.ndarray, combine: str) -> np.ndarray:
  """One image per example from its K fills, per pixel: their mean, median, or midmean (the mean of the values
  between the lower and upper quartiles, floor(K/4) dropped at each end: the interquartile mean)."""
  _require_combine(combine)
  if combine == "mean":
    return fills_NKHWC.mean(axis=1)
  if combine == "median":
    return np.median(fills_NKHWC, axis=1)
  cut = fills_NKHWC.shape[1] // 4
  return np.sort(fills_NKHWC, axis=1)[:, cut : fills_NKHWC.shape[1] - cut].mean(axis=1)


def evaluate_inpainting(
  run: run_lib.Run,
  y_NHWC: np.ndarray,
  mask_NHW: np.ndarray,
  labels_N: np.ndarray | None = None,
  *,
  steps: int,
  restarts: int,
  seed: int = 0,
  lr: float = SEARCH_LR,
  prior_weight: float = PRIOR_WEIGHT,
  weighting: str = "importance",
  average: int = 1,
  combine: str = "mean",
  pool: int = 0,
  pool_temperature: float = 1.0,
  latent_weight: float = 0.0,
  ema: bool = True,
  member: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
  """({fill name: filled_NHWC}, {"psnr"|"ssim": {fill name: mean over images}}) on the missing pixels."""
  require_images(run)
  if not (1 - mask_NHW).sum(axis=(1, 2)).all():
    raise ValueError("a mask leaves no pixel missing; expected every image to have a hole to fill")
  num_classes = models.generator_classes(run.gan.generator)
  if num_classes and labels_N is None:
    raise ValueError("this run is conditional: the images need labels (the split's, or 'labels' in the .npz)")
  if not 1 <= average <= restarts:
    raise ValueError(f"average={average}: expected 1 to restarts={restarts} codes to average")
  _require_combine(combine)  # now, not after a search of minutes
  g_vars, d_vars = run_lib.member_variables(run, member, ema)
  # The mean of the best codes' images estimates the hole's expected content given what is known: a lower
  # expected squared error (higher PSNR) than one sample, which commits to one guess; average=1 is Yeh et al.'s.
  # The per-pixel median or midmean keeps edges that most fills share where the mean blurs them (higher SSIM).
  ranked_NKHWC, _ = ranked_fills(
    run.gan.generator,
    run.gan.discriminator,
    g_vars,
    d_vars,
    y_NHWC,
    mask_NHW,
    jax.random.PRNGKey(seed),
    steps=steps,
    restarts=restarts,
    labels_N=labels_N if num_classes else None,
    prior_weight=prior_weight,
    lr=lr,
    weighting=weighting,
    latent_dim=run.gan.latent_dim,
    keep=average,
    pool=pool,
    pool_temperature=pool_temperature,
    latent_weight=latent_weight,
  )
  generated = combine_fills(ranked_NKHWC, combine)
  train_THWC, _ = data.load_split(run.config, run.config.data.split)
  fills = {
    "gan": np.asarray(blend(y_NHWC, generated, mask_NHW)),
    "gan_poisson": np.asarray(jax.jit(poisson_blend)(y_NHWC, generated, mask_NHW)),
    "mean_fill": mean_fill(y_NHWC, mask_NHW, train_THWC.mean(axis=0)),
    "nearest_neighbour": nearest_neighbour_fill(y_NHWC, mask_NHW, train_THWC)[0],
  }
  missing_NHW = 1.0 - mask_NHW
  scores = {
    "psnr": {k: float(np.mean(psnr(x, y_NHWC, missing_NHW))) for k, x in fills.items()},
    "ssim": {k: float(np.mean(ssim(x, y_NHWC, missing_NHW))) for k, x in fills.items()},
  }
  return fills, scores
