"""Generator/discriminator pairs, picked by `config.model.name`.

A model family is a function `(model_config, info) -> (generator, discriminator)` of Flax Linen
modules, registered with `@register(name)`. Both modules take `train: bool`; the generator maps
`z_BZ` (and `labels_B`) to data in [-1, 1], the discriminator maps data to `logits_B`.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import ml_collections

from gan_jax.data import DatasetInfo

ModelFamily = Callable[[ml_collections.ConfigDict, DatasetInfo], tuple[nn.Module, nn.Module]]
_FAMILIES: dict[str, ModelFamily] = {}


def register(name: str) -> Callable[[ModelFamily], ModelFamily]:
  def add(fn: ModelFamily) -> ModelFamily:
    _FAMILIES[name] = fn
    return fn

  return add


def names() -> list[str]:
  return sorted(_FAMILIES)


def get(model_config: ml_collections.ConfigDict, info: DatasetInfo) -> tuple[nn.Module, nn.Module]:
  if model_config.name not in _FAMILIES:
    raise ValueError(f"unknown model.name {model_config.name!r}; expected one of {names()}")
  return _FAMILIES[model_config.name](model_config, info)


from gan_jax.models import dcgan, mlp  # noqa: E402,F401  (registration)
