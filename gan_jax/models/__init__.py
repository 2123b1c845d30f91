"""Generator/discriminator pairs, picked by `config.model.name`.

A model family is a function `(model_config, info) -> (generator, discriminator)` of Flax Linen
modules, registered with `@register(name, default_d_norm=...)`. Both modules take `train: bool`; the generator maps
`z_BZ` (and `labels_B`) to data in [-1, 1], the discriminator maps data (and `labels_B`) to `logits_B`.

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

ModelFamily = Callable[[ml_collections.ConfigDict, DatasetInfo], tuple[nn.Module, nn.Module]]
_FAMILIES: dict[str, ModelFamily] = {}
# model.d_norm "" means the family's own choice (DCGAN's batch norm, SNGAN's spectral norm, ...).
_DEFAULT_D_NORMS: dict[str, str] = {}


def register(name: str, *, default_d_norm: str) -> Callable[[ModelFamily], ModelFamily]:
  def add(fn: ModelFamily) -> ModelFamily:
    _FAMILIES[name] = fn
    _DEFAULT_D_NORMS[name] = default_d_norm
    return fn

  return add


def d_norm(model_config: ml_collections.ConfigDict | dict) -> str:
  """model.d_norm with "" resolved to the family's default, so a run that names the default equals one that does not."""
  norm = model_config["d_norm"] or _DEFAULT_D_NORMS[model_config["name"]]
  check_norm(norm)
  return norm


def names() -> list[str]:
  return sorted(_FAMILIES)


# train.compute_dtype -> the modules' `dtype`; float32 is None, flax's default, so that path is the plain one.
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def dtype_of(compute_dtype: str) -> jax.typing.DTypeLike | None:
  if compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"train.compute_dtype={compute_dtype!r}: expected one of {tuple(COMPUTE_DTYPES)}")
  return COMPUTE_DTYPES[compute_dtype]


def get(
    model_config: ml_collections.ConfigDict, info: DatasetInfo, compute_dtype: str = "float32"
) -> tuple[nn.Module, nn.Module]:
  """The family's (generator, discriminator), computing in `compute_dtype` (train.compute_dtype)."""
  dtype = dtype_of(compute_dtype)
  if model_config.name not in _FAMILIES:
    raise ValueError(f"unknown model.name {model_config.name!r}; expected one of {names()}")
  generator, discriminator = _FAMILIES[model_config.name](model_config, info)
  if dtype is None:
    return generator, discriminator
  for module in (generator, discriminator):
    if "dtype" not in {f.name for f in dataclasses.fields(module)}:
      raise ValueError(
          f"train.compute_dtype={compute_dtype!r}: model.name={model_config.name!r} has a "
          f"{type(module).__name__} without a `dtype` field; expected train.compute_dtype='float32'"
      )
  return generator.clone(dtype=dtype), discriminator.clone(dtype=dtype)


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
