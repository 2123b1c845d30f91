"""Shared layers: example-keyed randomness (see gan_jax.parallel), normalisation choice, class conditioning.

In train mode, batch norm, ExampleDropout and spectral norm reduce over the global batch with collectives on
parallel.AXIS: a model using them in train mode runs only inside the step's shard_map (train=False elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import parallel
from gan_jax.models import fast_ops as fast_ops_lib

# N(0, 0.02), the DCGAN initialisation (Radford et al. 2016).
dcgan_init = nn.initializers.normal(0.02)


def dense(features: int, *, fast_ops: bool = False, **kwargs) -> nn.Dense:
  """nn.Dense; with `fast_ops` its kernel gradient comes from fast_ops.matmul (same parameters and values)."""
  return (
    nn.Dense(features, dot_general=fast_ops_lib.dense_dot_general, **kwargs)
    if fast_ops
    else nn.Dense(features, **kwargs)
  )


def conv_transpose_4x4_s2(features: int, *, fast_ops: bool = False, name: str | None = None, **kwargs) -> nn.Module:
  """nn.ConvTranspose(features, (4, 4), (2, 2), "SAME"); with `fast_ops`, fast_ops.ConvTranspose4x4S2 (same
  parameters and maps, column-form gradients)."""
  if fast_ops:
    return fast_ops_lib.ConvTranspose4x4S2(features, name=name, **kwargs)
  return nn.ConvTranspose(features, (4, 4), (2, 2), "SAME", name=name, **kwargs)


# model.latent_dist: the prior of G's z. Callers always draw z ~ N(0, I); a generator maps it through `latent`.
LATENT_DISTS = ("normal", "uniform")


def latent(z_BZ: jax.Array, dist: str) -> jax.Array:
  """z ~ N(0, I) as a draw from `dist`: "uniform" is U(-1, 1) by the probability integral transform 2·Phi(z) - 1
  (compare_gan's z), so every sampler, fixed evaluation noise included, keeps drawing normals."""
  if dist not in LATENT_DISTS:
    raise ValueError(f"model.latent_dist={dist!r}: expected one of {LATENT_DISTS}")
  return z_BZ if dist == "normal" else 2.0 * jax.scipy.special.ndtr(z_BZ) - 1.0


class ExampleDropout(nn.Module):
  """Dropout whose mask for example i depends only on (rng, i), not on the device layout."""

  rate: float

  @nn.compact
  def __call__(self, x_BF: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x_BF
    rng = self.make_rng("dropout")
    ids_B = parallel.example_ids(x_BF.shape[0])
    keep = jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(rng, i), 1 - self.rate, x_BF.shape[1:]))
    return jnp.where(keep(ids_B), x_BF / (1 - self.rate), 0.0)


def batch_norm(train: bool, momentum: float = 0.9, affine: bool = True, epsilon: float = 1e-5) -> nn.BatchNorm:
  """Batch norm over the *global* batch: statistics are averaged over the data axis (on one device, no
  collective at all). `affine=False` leaves out the scale and bias, for conditional batch norm's own.

  Statistics and output are float32 for any input (bfloat16 under train.compute_dtype): the next layer casts back.
  """
  axis_name = parallel.AXIS if train and parallel.axis_size() > 1 else None
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=momentum,
    epsilon=epsilon,
    axis_name=axis_name,
    dtype=jnp.float32,
    use_scale=affine,
    use_bias=affine,
  )


# The collection holding spectral normalisation's power-iteration state (u and the sigma it gives).
SPECTRAL = "spectral"
D_NORMS = ("none", "batch", "spectral", "layer")


def check_norm(norm: str) -> None:
  if norm not in D_NORMS:
    raise ValueError(f"model.d_norm={norm!r}: expected one of {D_NORMS}")


def normed(norm: str, layer: nn.Module, train: bool, *, post_norm: bool = True) -> Callable[[jax.Array], jax.Array]:
  """`layer` under normalisation `norm`, as a function of the layer's input.

  spectral divides every weight matrix of the layer by its largest singular value (Miyato et al. 2018),
  estimated by one power-iteration step per train-mode call from the u kept in the SPECTRAL collection;
  parameter paths stay those of the bare layer. batch / layer normalise the layer's output, and only where
  `post_norm` (DCGAN leaves D's input and logit layers unnormalised); layer norm is over every non-batch
  axis, the critic of Gulrajani et al. 2017. Create this inside the caller's compact method: the layer and
  any norm module are named in the caller's scope, so "none" leaves an existing model's names untouched.

  No cross-device synchronisation of u is needed: its update reads only the weights and the previous u,
  both replicated, so every device computes the same new u.
  """
  check_norm(norm)
  if norm == "spectral":
    sn = nn.SpectralNorm(layer, collection_name=SPECTRAL)
    return lambda x: sn(x, update_stats=train)
  if norm == "none" or not post_norm:
    return layer
  if norm == "batch":
    bn = batch_norm(train)
    return lambda x: bn(layer(x))

  def layer_normed(x: jax.Array) -> jax.Array:
    y = layer(x)
    return nn.LayerNorm(reduction_axes=tuple(range(1, y.ndim)))(y)

  return layer_normed


def class_labels(labels_B: jax.Array | None, batch: int, num_classes: int) -> jax.Array:
  """The given labels, or the classes in turn (0, 1, ..., C-1, 0, ...) for calls that give none.

  Initialisation and unlabelled sampling (training grids, evaluation) then see every class equally.
  """
  if labels_B is None:
    return jnp.arange(batch, dtype=jnp.int32) % num_classes
  return labels_B.astype(jnp.int32)


def conditional_batch_norm(x_BF: jax.Array, labels_B: jax.Array | None, *, num_classes: int, train: bool) -> jax.Array:
  """Batch norm whose gain and bias are looked up per class (de Vries et al. 2017; Miyato & Koyama 2018).

  With num_classes = 0 it is `batch_norm`. Call it inside the caller's compact method, like `normed`, so an
  unconditional model keeps the parameter names of plain batch norm.
  """
  if not num_classes:
    return batch_norm(train)(x_BF)
  bn = batch_norm(train, affine=False)
  labels_B = class_labels(labels_B, x_BF.shape[0], num_classes)
  features = x_BF.shape[-1]
  gain_BF = nn.Embed(num_classes, features, embedding_init=nn.initializers.ones)(labels_B)
  bias_BF = nn.Embed(num_classes, features, embedding_init=nn.initializers.zeros)(labels_B)
  expand = (slice(None),) + (None,) * (x_BF.ndim - 2) + (slice(None),)
  return bn(x_BF) * gain_BF[expand] + bias_BF[expand]


# The collection HeadFeatures sows φ(x) into: its own, so capture_intermediates' "intermediates" stay the layers'.
HEAD_FEATURES = "head_features"


class HeadFeatures(nn.Module):
  """The identity on D's features φ(x) before its head, sown for feature matching (AnoGAN, gan_jax.apps.anomaly).

  Parameter-free, and never sown by `init`, so checkpoints and the state are unchanged; read it with
  `apply(..., mutable=[HEAD_FEATURES])`.
  """

  @nn.compact
  def __call__(self, h_BF: jax.Array) -> jax.Array:
    if not self.is_initializing():
      self.sow(HEAD_FEATURES, "features", h_BF)
    return h_BF


def discriminator_head(
  h_BF: jax.Array,
  labels_B: jax.Array | None,
  *,
  num_classes: int,
  conditioning: str,
  norm: str,
  train: bool,
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init,
  dtype: jax.typing.DTypeLike | None = None,
  fast_ops: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
  """D's output from its features φ(x): logits_B, or (logits_B, class_logits_BC) for ACGAN.

  Unconditional: ψ(φ). projection: ψ(φ) + <embed(y), φ> (Miyato & Koyama 2018). acgan: ψ(φ) and a class
  head beside it (Odena et al. 2017), so the adversarial logit keeps the loss contract. Call it inside the
  caller's compact method (names stay in its scope); weights take `norm`'s spectral normalisation. The heads
  compute in `dtype`; the logits come out float32, for the loss. φ is sown by HeadFeatures.
  """
  h_BF = HeadFeatures()(h_BF)
  head = lambda features: dense(features, fast_ops=fast_ops, kernel_init=kernel_init, dtype=dtype)
  logits_B = normed(norm, head(1), train, post_norm=False)(h_BF)[:, 0].astype(jnp.float32)
  if not num_classes:
    return logits_B
  if conditioning == "acgan":
    return logits_B, normed(norm, head(num_classes), train, post_norm=False)(h_BF).astype(jnp.float32)
  if conditioning != "projection":
    raise ValueError(f"model.d_conditioning={conditioning!r}: expected 'projection' or 'acgan'")
  embed = nn.Embed(num_classes, h_BF.shape[-1], embedding_init=nn.initializers.xavier_uniform())
  embed_BF = normed(norm, embed, train, post_norm=False)(class_labels(labels_B, h_BF.shape[0], num_classes))
  return logits_B + jnp.sum(embed_BF * h_BF, axis=-1)


def pack(x_B: jax.Array, pac: int) -> jax.Array:
  """PacGAN's packing (Lin et al. 2018): examples [B, ...] -> [B/pac, pac * ...], consecutive examples joined.

  Flat inputs [B, F] become [B/pac, pac*F] ([a, b, c, d] -> [a|b], [c|d] for pac = 2); images [B, H, W, C]
  are joined on channels, [B/pac, H, W, pac*C], as in PacGAN's image experiments.
  """
  if pac == 1:
    return x_B
  B = x_B.shape[0]
  if B % pac:
    raise ValueError(f"model.pac={pac}: D got {B} examples; expected a batch per device divisible by {pac}")
  if x_B.ndim == 4:
    _, H, W, C = x_B.shape
    return x_B.reshape(B // pac, pac, H, W, C).transpose(0, 2, 3, 1, 4).reshape(B // pac, H, W, pac * C)
  return x_B.reshape(B // pac, -1)


def init_batch(x_B: jax.Array, pac: int) -> jax.Array:
  """`x_B` cycled up to a multiple of `pac` examples: parameter shapes do not depend on the batch, and
  initialisation (train.state) calls D on two examples whatever model.pac is."""
  B = x_B.shape[0]
  return x_B if B % pac == 0 else jnp.resize(x_B, (-(-B // pac) * pac, *x_B.shape[1:]))


def minibatch_std(h_BF: jax.Array, train: bool) -> jax.Array:
  """[B, F] -> [B, F + 1]: the batch's standard deviation of each feature, averaged over the features, appended
  to every example (Karras et al. 2018), so D can see a batch with too little variety.

  In train mode the statistics are the global batch's, averaged over the data axis as batch_norm's (on one
  device, no collective), so a step does not depend on the device layout. Like batch norm it makes each logit
  depend on the whole batch.
  """
  # Outside the sharded step (train=False) there is no data axis to average over.
  pmean = parallel.pmean if train else (lambda tree: tree)
  mean_F = pmean(jnp.mean(h_BF, axis=0))
  var_F = pmean(jnp.mean(jnp.square(h_BF - mean_F), axis=0))
  std = jnp.mean(jnp.sqrt(var_F + 1e-8))
  return jnp.concatenate([h_BF, jnp.broadcast_to(std, (h_BF.shape[0], 1)).astype(h_BF.dtype)], axis=-1)


def maxout(h_BF: jax.Array, pieces: int) -> jax.Array:
  """[B, U*pieces] -> [B, U]: each unit the max of its `pieces` consecutive features (Goodfellow et al. 2013;
  TF's tf.contrib.layers.maxout, which PacGAN's D uses)."""
  return jnp.max(h_BF.reshape(*h_BF.shape[:-1], h_BF.shape[-1] // pieces, pieces), axis=-1)
