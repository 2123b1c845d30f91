"""The train step: a pure function `(state, batch) -> (state, metrics)` of one device's shard.

`train.d_steps` discriminator updates, each on its own real batch, then one generator update.
The generator update reuses the last D step's generator forward pass (its VJP), as the PyTorch
DCGAN recipe does with one `netG(noise)` per iteration. Wrap with `parallel.data_parallel`.

Conditional runs feed G fake labels drawn per global example and D the labels of what it sees (real
labels for real data); an ACGAN class head adds its cross-entropy to both losses. A DiffAugment policy
augments real and fake before every D call. Non-parameter collections (batch norm statistics, spectral
norm's u) are kept from the D update's passes and the G forward passes only; the penalty's and the
G update's D passes start from the same collections and their updates are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from gan_jax import augment, losses, models, parallel, penalties
from gan_jax.train.state import GAN, GANState, Params

# train.cpu_convolutions -> XLA:CPU options. "library" is XLA's default: YNNPACK runs dots, reductions and
# convolutions. "xla" keeps YNNPACK's dots and reductions (far faster than XLA's own) but leaves convolutions
# to XLA's Eigen kernels, which run the DCGAN-28 step 1.16x faster on this 2-core AVX-512 machine (median of
# paired windows in one process; BENCHMARKS.md has the end-to-end rows).
CPU_CONVOLUTIONS = {
    "xla": {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"},
    "library": {},
}
# Copy insertion with region analysis sees that every donated parameter, moment and statistic can be
# updated in place; the default copies many of them first (the MLP GAN step, 1.10x; the same bits).
CPU_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}

Batch = dict[str, jax.Array]  # "x": [d_steps, B, ...] this device's real data, "label": [d_steps, B]
Metrics = dict[str, jax.Array]


def apply_train(
    module, params: Params, stats: Params, x, key: jax.Array, labels_B: jax.Array | None = None
) -> tuple[jax.Array, Params]:
  """Train-mode forward pass returning the updated non-parameter collections."""
  variables, rngs = {"params": params, **stats}, {"dropout": key}
  if not stats:
    return module.apply(variables, x, labels_B, train=True, rngs=rngs), stats
  out, new_stats = module.apply(variables, x, labels_B, train=True, rngs=rngs, mutable=list(stats))
  return out, dict(new_stats)


def apply_lr(params: Params, direction: Params, lr: jax.Array) -> Params:
  """params - lr * direction: the learning rate lives in the state (see state.HPARAMS)."""
  return optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, direction))


def latent_noise(key: jax.Array, batch: int, latent_dim: int) -> jax.Array:
  """z for this device's examples, drawn per global example index."""
  ids_B = parallel.example_ids(batch)
  return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (latent_dim,)))(ids_B)


def fake_labels(key: jax.Array, batch: int, num_classes: int) -> jax.Array:
  """Uniform class labels for this device's generated examples, drawn per global example index."""
  ids_B = parallel.example_ids(batch)
  return jax.vmap(lambda i: jax.random.randint(jax.random.fold_in(key, i), (), 0, num_classes))(ids_B)


def compiler_options(config: ml_collections.ConfigDict) -> dict[str, str | bool]:
  """The step's XLA options on CPU (CPU_OPTIONS and train.cpu_convolutions'), none on other backends."""
  choice = config.train.cpu_convolutions
  if choice not in CPU_CONVOLUTIONS:
    raise ValueError(f"train.cpu_convolutions={choice!r}: expected one of {sorted(CPU_CONVOLUTIONS)}")
  return {**CPU_OPTIONS, **CPU_CONVOLUTIONS[choice]} if jax.default_backend() == "cpu" else {}


# Draws of at least this many 64-bit blocks unroll (unroll_threefry_on_cpu); smaller ones (key splits and
# fold_ins, tiny models) keep the while loop, where unrolling would cost compile time and save nothing.
THREEFRY_UNROLL_MIN = 1024


def unroll_threefry_on_cpu() -> bool:
  """Lowers jax.random's large threefry draws on CPU as straight-line code, as JAX does on GPU and TPU.

  The bits are JAX's own. JAX's CPU rule rolls threefry's 20 rounds into a while loop to save compile time,
  and every iteration is then a pass over memory of its own; unrolled, a draw fuses into one loop. The MLP
  GAN's dropout masks for one D pass take 0.22 ms against 0.96 ms, and its step runs 1.05x faster (paired
  windows, Intel Xeon; DCGAN-28 1.00x). The rules are private JAX names: where they are missing, JAX's own
  rule stays and False says so. Process-wide, and idempotent.
  """
  try:
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32

    primitive = threefry2x32.threefry2x32_p
    rolled, unrolled = threefry2x32._threefry2x32_cpu_lowering_rule, threefry2x32._threefry2x32_lowering_rule
  except (ImportError, AttributeError):
    return False

  def rule(ctx, *keys_and_counts):
    blocks = math.prod(ctx.avals_out[0].shape)
    return (unrolled if blocks >= THREEFRY_UNROLL_MIN else rolled)(ctx, *keys_and_counts)

  mlir.register_lowering(primitive, rule, platform="cpu")
  return True


def sharded_train_step(gan: GAN, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> Callable:
  """The step train.loop runs: vmapped over the population's members, jit(shard_map) over `mesh`, the state
  donated, compiled with `compiler_options`; random draws traced from here on take `unroll_threefry_on_cpu`.

  Members always step together, so the step count enters the vmap unbatched: under vmap a `lax.cond` on a
  batched predicate becomes a select that runs both branches, and lazy regularisation would save nothing.
  """
  unroll_threefry_on_cpu()
  member_step = make_train_step(gan, config)

  def population_step(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
    return jax.vmap(member_step, in_axes=(0, 0, None))(state, batch, state.step[0])

  return parallel.data_parallel(population_step, mesh, compiler_options(config))


def make_train_step(gan: GAN, config: ml_collections.ConfigDict) -> Callable[..., tuple[GANState, Metrics]]:
  """One member's step, `(state, batch[, step]) -> (state, metrics)`; `step`, when given, is state.step held
  outside the member vmap (see sharded_train_step)."""
  d_steps, update = config.train.d_steps, config.train["update"]  # .update is ConfigDict.update
  pen_every, ema_start, clip = config.penalty.every, config.train.ema_start, config.train.weight_clip
  if not isinstance(pen_every, int) or pen_every < 1:
    raise ValueError(f"penalty.every={pen_every!r}: expected an integer >= 1 (1: every D update; k: lazy, every k-th)")
  if update not in ("alternating", "simultaneous"):
    raise ValueError(f"train.update={update!r}: expected 'alternating' or 'simultaneous'")
  if update == "simultaneous" and d_steps != 1:
    raise ValueError(f"train.update='simultaneous' shares one generator pass with one D update; got d_steps={d_steps}")
  num_classes, acgan_weight = models.generator_classes(gan.generator), config.loss.acgan_weight
  acgan = config.model.conditional and config.model.d_conditioning == "acgan"
  if config.model.conditional and not num_classes:
    raise ValueError(f"model.name={config.model.name!r} has no conditional generator; expected model.conditional=False")
  if acgan_weight < 0 or (acgan_weight > 0) != acgan:
    raise ValueError(
        f"loss.acgan_weight={acgan_weight} with model.conditional={config.model.conditional}, "
        f"model.d_conditioning={config.model.d_conditioning!r}: the ACGAN class head needs all of "
        "model.conditional=True, model.d_conditioning='acgan' and loss.acgan_weight > 0 (1.0 in Odena et al. 2017)"
    )
  policy = augment.parse_policy(config.augment.policy)
  if policy and len(gan.data_shape) != 3:
    raise ValueError(f"augment.policy={config.augment.policy!r} augments images; data has shape {gan.data_shape}")
  # R2 differentiates D at the fakes, so it sees their labels; the other penalties sit at or near the reals.
  penalty_on_fakes = config.penalty.name == "r2"

  def augmented(x, key, salt):
    """x under the DiffAugment policy (itself when there is none), drawn per global example."""
    return augment.diff_augment(x, jax.random.fold_in(key, salt), parallel.example_ids(x.shape[0]), policy)

  def discriminate(d_params, d_stats, x, labels_B, key):
    """((logits_B, class_logits_BC or None), collections) of one train-mode D pass."""
    out, stats = apply_train(gan.discriminator, d_params, d_stats, x, key, labels_B)
    return (out if acgan else (out, None)), stats

  def class_loss(class_logits_BC, labels_B):
    return jnp.mean(parallel.gather_batch(losses.class_cross_entropy(class_logits_BC, labels_B)))

  def objectives(d_params, d_stats, real, fake, labels, key, d_count, hp, with_penalty=True):
    """(d_loss [+ penalty], g_loss) from one discriminator pass over real and fake."""
    real_labels_B, fake_labels_B = labels
    # The penalty's D sees its inputs through the matching pass's augmentation: R1 is then the authors' own.
    augment_real = lambda x: augmented(x, key, 4)
    (real_logits_B, real_class_BC), stats = discriminate(
        d_params, d_stats, augment_real(real), real_labels_B, jax.random.fold_in(key, 0)
    )
    (fake_logits_B, fake_class_BC), stats = discriminate(
        d_params, stats, augmented(fake, key, 5), fake_labels_B, jax.random.fold_in(key, 1)
    )
    # The loss sees the global batch's logits, exactly as on one device (e.g. RaGAN's batch means).
    real_all, fake_all = parallel.gather_batch(real_logits_B), parallel.gather_batch(fake_logits_B)
    d_loss, g_loss = gan.loss_fn(real_all, fake_all)
    metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_all.mean(), "d_fake": fake_all.mean()}
    if acgan:
      # Odena et al. 2017: D classifies reals and fakes; G wants its fakes classified as their labels.
      real_ce, fake_ce = class_loss(real_class_BC, real_labels_B), class_loss(fake_class_BC, fake_labels_B)
      d_loss, g_loss = d_loss + acgan_weight * (real_ce + fake_ce), g_loss + acgan_weight * fake_ce
      metrics.update(d_loss=d_loss, g_loss=g_loss, class_real=real_ce, class_fake=fake_ce)
    if gan.penalty_fn is None or not with_penalty:
      return (d_loss, g_loss), (stats, metrics)
    pen_labels_B = fake_labels_B if penalty_on_fakes else real_labels_B
    # R2 sits at the fakes, so its D sees them through the fake pass's augmentation.
    augment_pen = (lambda x: augmented(x, key, 5)) if penalty_on_fakes else augment_real
    d_fn = lambda x: discriminate(d_params, d_stats, augment_pen(x), pen_labels_B, jax.random.fold_in(key, 2))[0][0]
    pen_key = jax.random.fold_in(jax.random.fold_in(key, 3), lax.axis_index(parallel.AXIS))
    compute = lambda: gan.penalty_fn(d_fn, real, fake, pen_key)
    # Lazy regularisation (Karras et al. 2020): on D updates k, 2k, ... (counting from 1), with weight * k. The
    # step logs its last D update's penalty, so a log_every * d_steps that k divides logs it where it applies.
    pen = compute() if pen_every == 1 else lax.cond((d_count + 1) % pen_every == 0, compute, lambda: 0.0)
    metrics["penalty"] = parallel.pmean(pen)
    return (d_loss + hp["penalty_weight"] * pen_every * pen, g_loss), (stats, metrics)

  def apply_d(d_params, d_opt, grads, hp):
    updates, d_opt = gan.d_tx.update(parallel.pmean(grads), d_opt, d_params)
    d_params = apply_lr(d_params, updates, hp["d_lr"])
    return (penalties.weight_clip(d_params, clip) if clip else d_params), d_opt

  def d_update(d_params, d_stats, d_opt, real, fake, labels, key, d_count, hp):
    def d_total(p):
      (d_loss, _), aux = objectives(p, d_stats, real, fake, labels, key, d_count, hp)
      return d_loss, aux

    grads, (d_stats, metrics) = jax.grad(d_total, has_aux=True)(d_params)
    return (*apply_d(d_params, d_opt, grads, hp), d_stats, metrics)

  def step_fn(state: GANState, batch: Batch, step: jax.Array | None = None) -> tuple[GANState, Metrics]:
    x_KB = batch["x"]
    B = x_KB.shape[1]
    hp, d_base = state.hparams, (state.step if step is None else step) * d_steps
    # key's children: k < d_steps for D update k, d_steps for the G update, d_steps + 1 + k for fake labels.
    key = jax.random.fold_in(state.rng, state.step)
    keys = [jax.random.split(jax.random.fold_in(key, k), 3) for k in range(d_steps)]
    g_stats, d_params, d_stats, d_opt = state.g_stats, state.d_params, state.d_stats, state.d_opt

    def labels_of(k):
      """(real_labels_B, fake_labels_B) of D update k; (None, None) when unconditional."""
      if not num_classes:
        return None, None
      return batch["label"][k], fake_labels(jax.random.fold_in(key, d_steps + 1 + k), B, num_classes)

    def generate(g_params, g_stats, z_key, dropout_key, labels_B):
      z_BZ = latent_noise(z_key, B, gan.latent_dim)
      return apply_train(gan.generator, g_params, g_stats, z_BZ, dropout_key, labels_B)

    # ------------------------------------------------------------------ D updates but the last
    for k in range(d_steps - 1):
      z_key, drop_key, d_key = keys[k]
      labels = labels_of(k)
      fake, g_stats = generate(state.g_params, g_stats, z_key, drop_key, labels[1])
      d_params, d_opt, d_stats, _ = d_update(d_params, d_stats, d_opt, x_KB[k], fake, labels, d_key, d_base + k, hp)

    # ------------------------------------------------------------------ last D update and the G update
    # One generator forward serves both; G's gradient is pulled back through its VJP.
    z_key, drop_key, d_key = keys[-1]
    labels = labels_of(d_steps - 1)
    fake, g_vjp, g_stats = jax.vjp(
        lambda p: generate(p, g_stats, z_key, drop_key, labels[1]), state.g_params, has_aux=True
    )
    real, d_count = x_KB[-1], d_base + d_steps - 1
    if update == "simultaneous":
      # Both losses from the same D pass, before either network moves (the TF DCGAN tutorial).
      _, both_vjp, (new_d_stats, metrics) = jax.vjp(
          lambda p, f: objectives(p, d_stats, real, f, labels, d_key, d_count, hp), d_params, fake, has_aux=True
      )
      d_grads, _ = both_vjp((jnp.ones(()), jnp.zeros(())))
      _, dg_dfake = both_vjp((jnp.zeros(()), jnp.ones(())))
      d_params, d_opt = apply_d(d_params, d_opt, d_grads, hp)
      d_stats = new_d_stats
    else:
      d_params, d_opt, d_stats, metrics = d_update(
          d_params, d_stats, d_opt, real, lax.stop_gradient(fake), labels, d_key, d_count, hp
      )
      # G's loss against the updated D; D's statistics from this pass are not kept.
      g_key = jax.random.fold_in(key, d_steps)
      g_loss_of = lambda f: objectives(d_params, d_stats, real, f, labels, g_key, d_count, hp, with_penalty=False)[0][1]
      metrics["g_loss"], dg_dfake = jax.value_and_grad(g_loss_of)(fake)

    (g_grads,) = g_vjp(dg_dfake)
    updates, g_opt = gan.g_tx.update(parallel.pmean(g_grads), state.g_opt, state.g_params)
    g_params = apply_lr(state.g_params, updates, hp["g_lr"])

    decay = jnp.where(state.step >= ema_start, hp["ema_decay"], 0.0)
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, g_params)
    new_state = state.replace(
        step=state.step + 1,
        g_params=g_params,
        d_params=d_params,
        g_stats=g_stats,
        d_stats=d_stats,
        g_opt=g_opt,
        d_opt=d_opt,
        ema_params=ema,
    )
    return new_state, metrics

  return step_fn
