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


D_CONDITIONINGS = ("projection", "acgan")


def conditioning_classes(model_config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
  """How many classes the models condition on: 0 for an unconditional pair."""
  if model_config.d_conditioning not in D_CONDITIONINGS:
    raise ValueError(f"model.d_conditioning={model_config.d_conditioning!r}: expected one of {D_CONDITIONINGS}")
  if not model_config.conditional:
    return 0
  if not info.num_classes:
    raise ValueError(f"model.conditional=True needs class labels; data.name={info.name!r} has none")
  return info.num_classes


def generator_classes(generator: nn.Module) -> int:
  """The classes a generator is conditioned on; 0 for unconditional ones (and models without the field)."""
  return getattr(generator, "num_classes", 0)


from gan_jax.models import dcgan, mlp, resnet  # noqa: E402,F401  (registration)
