"""The terms of the GAN objective for one member's step: generator and D passes, losses, ACGAN, the penalty.

Each D call sees its inputs through the DiffAugment policy. Randomness is drawn per global example index
(gan_jax.parallel.example_ids), so a step's math does not depend on the device layout. Non-parameter
collections (batch norm statistics, spectral norm's u) come back from the passes that update them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gan_jax import diffaugment, losses, models, parallel, penalties
from gan_jax.train.options import Options
from gan_jax.train.state import GAN, NetState, Params

Labels = tuple[jax.Array | None, jax.Array | None]  # (real_labels_B, fake_labels_B); (None, None) unconditional
Metrics = dict[str, jax.Array]
# Salts of fold_in(key, ·) in one D objective: the real and fake passes' dropout, the penalty's D pass,
# the penalty's own draw, and the augmentation of the real and fake sides.
REAL_PASS, FAKE_PASS, PENALTY_PASS, PENALTY_DRAW, AUGMENT_REAL, AUGMENT_FAKE = range(6)


@dataclasses.dataclass(frozen=True)
class Terms:
  """One member's objective, closed over its networks and options; train.step composes these."""

  gan: GAN
  opts: Options

  @property
  def num_classes(self) -> int:
    return models.generator_classes(self.gan.generator)

  def labels(self, batch: dict[str, jax.Array], u: int, fake_key: jax.Array) -> Labels:
    """D update u's real labels, and G's uniform class labels drawn per global example from `fake_key`."""
    if not self.num_classes:
      return None, None
    draw = lambda i: jax.random.randint(jax.random.fold_in(fake_key, i), (), 0, self.num_classes)
    return batch["label"][u], jax.vmap(draw)(parallel.example_ids(batch["x"].shape[1]))

  def generate(
    self,
    g_params: Params,
    g_stats: Params,
    z_key: jax.Array,
    drop_key: jax.Array,
    labels_B: jax.Array | None,
    batch: int,
  ) -> tuple[jax.Array, Params]:
    """(fake_B..., G's updated collections) of a train-mode generator pass on z drawn per global example."""
    draw = lambda i: jax.random.normal(jax.random.fold_in(z_key, i), (self.gan.latent_dim,))
    z_BZ = jax.vmap(draw)(parallel.example_ids(batch))
    return apply_train(self.gan.generator, g_params, g_stats, z_BZ, drop_key, labels_B)

  def discriminate(
    self,
    d_params: Params,
    d_stats: Params,
    x: jax.Array,
    labels_B: jax.Array | None,
    key: jax.Array,
    augment_salt: int,
    pass_salt: int,
  ) -> tuple[tuple[jax.Array, jax.Array | None], Params]:
    """((logits_B, class_logits_BK or None), D's updated collections) of a train-mode pass over augmented x."""
    ids_B = parallel.example_ids(x.shape[0])
    x = diffaugment.diff_augment(x, jax.random.fold_in(key, augment_salt), ids_B, self.opts.augment_policy)
    out, stats = apply_train(self.gan.discriminator, d_params, d_stats, x, jax.random.fold_in(key, pass_salt), labels_B)
    return (out if self.opts.acgan else (out, None)), stats

  def losses(
    self, d: NetState, real: jax.Array, fake: jax.Array, labels: Labels, key: jax.Array
  ) -> tuple[tuple[jax.Array, jax.Array], tuple[Params, Metrics]]:
    """((d_loss, g_loss), (D's collections, metrics)) of one D pass over the reals and one over the fakes."""
    (real_logits_B, real_class_BK), stats = self.discriminate(
      d.params, d.stats, real, labels[0], key, AUGMENT_REAL, REAL_PASS
    )
    (fake_logits_B, fake_class_BK), stats = self.discriminate(
      d.params, stats, fake, labels[1], key, AUGMENT_FAKE, FAKE_PASS
    )
    # The loss sees the global batch's logits, exactly as on one device (e.g. RaGAN's batch means).
    real_all, fake_all = parallel.gather_batch(real_logits_B), parallel.gather_batch(fake_logits_B)
    d_loss, g_loss = self.opts.loss_fn(real_all, fake_all)
    metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_all.mean(), "d_fake": fake_all.mean()}
    if self.opts.acgan:
      # Odena et al. 2017: D classifies reals and fakes; G wants its fakes classified as their labels.
      class_loss = lambda c_BK, y_B: jnp.mean(parallel.gather_batch(losses.class_cross_entropy(c_BK, y_B)))
      real_ce, fake_ce = class_loss(real_class_BK, labels[0]), class_loss(fake_class_BK, labels[1])
      d_loss, g_loss = d_loss + self.opts.acgan_weight * (real_ce + fake_ce), g_loss + self.opts.acgan_weight * fake_ce
      metrics.update(d_loss=d_loss, g_loss=g_loss, class_real=real_ce, class_fake=fake_ce)
    return (d_loss, g_loss), (stats, metrics)

  def penalty(
    self, d: NetState, real: jax.Array, fake: jax.Array, labels: Labels, key: jax.Array, d_count: jax.Array
  ) -> jax.Array:
    """The unweighted penalty of D update `d_count`, its D seeing the labels and augmentation of its side."""
    fake_side = self.opts.penalty_at == "fake"
    labels_B, augment_salt = (labels[1], AUGMENT_FAKE) if fake_side else (labels[0], AUGMENT_REAL)
    d_fn = lambda x: self.discriminate(d.params, d.stats, x, labels_B, key, augment_salt, PENALTY_PASS)[0][0]
    draw = jax.random.fold_in(jax.random.fold_in(key, PENALTY_DRAW), lax.axis_index(parallel.AXIS))
    compute = lambda: self.opts.penalty_fn(d_fn, real, fake, draw)
    k = self.opts.penalty_every
    # Lazy regularisation (Karras et al. 2020): on D updates k, 2k, ... (counting from 1), weighted by k.
    return compute() if k == 1 else lax.cond((d_count + 1) % k == 0, compute, lambda: 0.0)

  def d_and_g_loss(
    self,
    d: NetState,
    real: jax.Array,
    fake: jax.Array,
    labels: Labels,
    key: jax.Array,
    d_count: jax.Array,
    hparams: dict[str, jax.Array],
  ) -> tuple[tuple[jax.Array, jax.Array], tuple[Params, Metrics]]:
    """((d_loss + weighted penalty, g_loss), (D's collections, metrics)): what a D update minimises."""
    (d_loss, g_loss), (stats, metrics) = self.losses(d, real, fake, labels, key)
    if self.opts.penalty_fn is None:
      return (d_loss, g_loss), (stats, metrics)
    pen = self.penalty(d, real, fake, labels, key, d_count)
    metrics["penalty"] = parallel.pmean(pen)
    return (d_loss + hparams["penalty_weight"] * self.opts.penalty_every * pen, g_loss), (stats, metrics)

  def d_loss(
    self,
    d: NetState,
    real: jax.Array,
    fake: jax.Array,
    labels: Labels,
    key: jax.Array,
    d_count: jax.Array,
    hparams: dict[str, jax.Array],
  ) -> tuple[jax.Array, tuple[Params, Metrics]]:
    """(d_loss + weighted penalty, (D's collections, metrics)), for jax.grad(..., has_aux=True)."""
    (d_loss, _), aux = self.d_and_g_loss(d, real, fake, labels, key, d_count, hparams)
    return d_loss, aux


def apply_train(
  module, params: Params, stats: Params, x: jax.Array, key: jax.Array, labels_B: jax.Array | None = None
) -> tuple[jax.Array, Params]:
  """Train-mode forward pass returning the updated non-parameter collections."""
  variables, rngs = {"params": params, **stats}, {"dropout": key}
  if not stats:
    return module.apply(variables, x, labels_B, train=True, rngs=rngs), stats
  out, new_stats = module.apply(variables, x, labels_B, train=True, rngs=rngs, mutable=list(stats))
  return out, dict(new_stats)


def apply_update(
  net: NetState, grads: Params, tx: optax.GradientTransformation, lr: jax.Array, weight_clip: float = 0.0
) -> NetState:
  """One optimizer step on the devices' mean gradient: params - lr * direction (lr from the state)."""
  direction, opt = tx.update(parallel.pmean(grads), net.opt, net.params)
  params = optax.apply_updates(net.params, jax.tree.map(lambda u: -lr * u, direction))
  return net.replace(params=penalties.weight_clip(params, weight_clip) if weight_clip else params, opt=opt)
