"""Generator/discriminator pairs, picked by `config.model.name`.

A model family is a function `(model_config, info) -> (generator, discriminator)` of Flax Linen modules,
registered with `@register(name, default_d_norm=...)` in MODELS. Both modules take `train: bool`; the generator
maps `z_BZ` (and `labels_B`) to data in [-1, 1], the discriminator maps data (and `labels_B`) to `logits_B`.

Conditional models (`model.conditional`) take int32 `labels_B`; a conditional generator has a
`num_classes` field, which the train step reads to draw fake labels. A discriminator with an ACGAN
class head (`model.d_conditioning = "acgan"`) returns `(logits_B, class_logits_BC)`.

Mixed precision (`train.compute_dtype`): a family's modules take a `dtype` field (None: flax's default, float32
from the float32 parameters), which `get` sets; their Dense / Conv layers compute in it, while batch norm,
spectral norm and the returned samples and logits stay float32, so the loss and the metrics see float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import penalties
from gan_jax.data import DatasetInfo
from gan_jax.models.layers import check_norm
from gan_jax.registry import Registry

ModelFamily = Callable[[ml_collections.ConfigDict, DatasetInfo], tuple[nn.Module, nn.Module]]
MODELS: Registry[ModelFamily] = Registry("model")
names = MODELS.names


def register(name: str, *, default_d_norm: str) -> Callable[[ModelFamily], ModelFamily]:
  """`default_d_norm` is what model.d_norm "" means for this family (DCGAN's batch norm, SNGAN's spectral norm)."""
  return MODELS.register(name, default_d_norm=default_d_norm)


def d_norm(model_config: ml_collections.ConfigDict | dict) -> str:
  """model.d_norm with "" resolved to the family's default, so a run that names the default equals one that does not."""
  norm = model_config["d_norm"] or MODELS.meta(model_config["name"])["default_d_norm"]
  check_norm(norm)
  return norm


# train.compute_dtype -> the modules' `dtype`; float32 is None, flax's default, so that path is the plain one.
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def dtype_of(compute_dtype: str) -> jax.typing.DTypeLike | None:
  if compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"train.compute_dtype={compute_dtype!r}: expected one of {tuple(COMPUTE_DTYPES)}")
  return COMPUTE_DTYPES[compute_dtype]


def get(
  model_config: ml_collections.ConfigDict, info: DatasetInfo, compute_dtype: str = "float32", fast_ops: bool = False
) -> tuple[nn.Module, nn.Module]:
  """The family's (generator, discriminator), computing in `compute_dtype` (train.compute_dtype).

  `fast_ops`: layers take the custom gradients of models.fast_ops (CPU only; see train.xla_cpu), where a
  module has a `fast_ops` field; the parameters are the same either way.
  """
  dtype = dtype_of(compute_dtype)
  generator, discriminator = MODELS.get(model_config.name)(model_config, info)
  check_g_options(model_config, generator)
  check_d_options(model_config, discriminator)
  pair = []
  for module in (generator, discriminator):
    fields = {f.name for f in dataclasses.fields(module)}
    if dtype is not None and "dtype" not in fields:
      raise ValueError(
        f"train.compute_dtype={compute_dtype!r}: model.name={model_config.name!r} has a "
        f"{type(module).__name__} without a `dtype` field; expected train.compute_dtype='float32'"
      )
    changes = {"dtype": dtype} if dtype is not None else {}
    if fast_ops and "fast_ops" in fields:
      changes["fast_ops"] = True
    pair.append(module.clone(**changes) if changes else module)
  return pair[0], pair[1]


# The mode-collapse remedies a discriminator takes as fields of the same names (mlp.MLPDiscriminator's).
D_OPTIONS = {"pac": 1, "minibatch_std": False}
# The generator options of the same kind (infogan.InfoGANGenerator's), with the families that take them.
G_OPTIONS = {"latent_dist": ("normal", "infogan")}


def check_g_options(model_config: ml_collections.ConfigDict, generator: nn.Module) -> None:
  """model.latent_dist set only for a family whose G takes it."""
  fields = {f.name for f in dataclasses.fields(generator)}
  for key, (default, families) in G_OPTIONS.items():
    value = model_config.get(key, default)
    if value != default and key not in fields:
      raise ValueError(
        f"model.{key}={value!r}: model.name={model_config.name!r} has no G with this option; expected "
        f"model.{key}={default!r} or model.name among {families}"
      )


def check_d_options(model_config: ml_collections.ConfigDict, discriminator: nn.Module) -> None:
  """model.pac and model.minibatch_std in range, and set only for a family whose D takes them."""
  pac = model_config.get("pac", 1)
  if not isinstance(pac, int) or isinstance(pac, bool) or pac < 1:
    raise ValueError(f"model.pac={pac!r}: expected an integer >= 1 (1: no packing)")
  if pac > 1 and model_config.get("conditional", False):
    raise ValueError(f"model.pac={pac} packs unlabelled examples; expected model.conditional=False")
  fields = {f.name for f in dataclasses.fields(discriminator)}
  for key, default in D_OPTIONS.items():
    value = model_config.get(key, default)
    if value != default and key not in fields:
      raise ValueError(
        f"model.{key}={value!r}: model.name={model_config.name!r} has no D with this option; expected "
        f"model.{key}={default!r} or a model among mlp_gan, mlp2d, pacgan_mlp"
      )


def check_pac(model_config: ml_collections.ConfigDict, batch_per_device: int) -> None:
  """Packing joins examples within one device's share of the batch, so that share must divide evenly."""
  pac = model_config.get("pac", 1)
  if batch_per_device % pac:
    raise ValueError(
      f"model.pac={pac}: the batch per device, {batch_per_device}, is not divisible by it; expected "
      f"train.batch_size / devices a multiple of {pac}"
    )


def packed_penalty(penalty_fn: penalties.PenaltyFn, pac: int) -> penalties.PenaltyFn:
  """`penalty_fn` on a packed D's own inputs: examples grouped [B/pac, pac, ...], so that gradient norms,
  interpolation weights and the mean are per packed input, as for an unpacked D on the joined examples."""
  if pac == 1:
    return penalty_fn

  def packed(d_fn: penalties.DiscriminatorFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    group = lambda x: x.reshape(x.shape[0] // pac, pac, *x.shape[1:])
    ungrouped_d_fn = lambda x_bm: d_fn(x_bm.reshape(-1, *x_bm.shape[2:]))
    return penalty_fn(ungrouped_d_fn, group(real), group(fake), rng)

  return packed


D_CONDITIONINGS = ("projection", "acgan")


def check_d_conditioning(model_config: ml_collections.ConfigDict) -> None:
  if model_config.d_conditioning not in D_CONDITIONINGS:
    raise ValueError(f"model.d_conditioning={model_config.d_conditioning!r}: expected one of {D_CONDITIONINGS}")


def conditioning_classes(model_config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
  """How many classes the models condition on: 0 for an unconditional pair."""
  check_d_conditioning(model_config)
  if not model_config.conditional:
    return 0
  if not info.num_classes:
    raise ValueError(f"model.conditional=True needs class labels; data.name={info.name!r} has none")
  return info.num_classes


def generator_classes(generator: nn.Module) -> int:
  """The classes a generator is conditioned on; 0 for unconditional ones (and models without the field)."""
  return getattr(generator, "num_classes", 0)


from gan_jax.models import dcgan, infogan, mlp, resnet  # noqa: E402,F401  (registration)
