"""Populations: K independent runs trained by one compiled program (jax.vmap over stacked states).

`config.population = K` and `config.population_members = '{"seed": [...], "optim.d.lr": [...]}'`
(JSON, one list of K values per key). Only keys the state carries per member may vary: the seed
and the float hyperparameters of `state.HPARAMS`. Unlisted seeds default to seed, seed+1, ...
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import config as config_lib
from gan_jax.train.state import HPARAMS, hparams_of

VECTORIZABLE = ("seed", *HPARAMS.values())


def member_configs(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
  """One config per member, each what a separate run of that member would use."""
  k = config.population
  if not isinstance(k, int) or k < 1:
    raise ValueError(f"population={k!r}: expected a positive number of members")
  try:
    values = json.loads(config.population_members) if config.population_members else {}
  except json.JSONDecodeError as e:
    raise ValueError(f"population_members={config.population_members!r} is not JSON: {e}") from None
  for key, vals in values.items():
    if key not in VECTORIZABLE:
      raise ValueError(
          f"population_members key {key!r} cannot vary within a population; expected one of {VECTORIZABLE}"
      )
    if not isinstance(vals, list) or len(vals) != k:
      raise ValueError(f"population_members[{key!r}] = {vals!r}: expected a list of population={k} values")
  values.setdefault("seed", [config.seed + i for i in range(k)] if k > 1 else [config.seed])
  members = []
  for i in range(k):
    member = ml_collections.ConfigDict(config_lib.to_dict(config))
    config_lib.apply_overrides(member, {key: vals[i] for key, vals in values.items()})
    members.append(member)
  return members


def stacked_seeds_and_hparams(members: list[ml_collections.ConfigDict]) -> tuple:
  """(seeds_K, {name: values_K}) to vmap `init_state` over."""
  hparams = [hparams_of(m) for m in members]
  seeds_K = jnp.asarray([m.seed for m in members], jnp.uint32)
  return seeds_K, {name: jnp.asarray([h[name] for h in hparams], jnp.float32) for name in HPARAMS}


@jax.jit
def take_member(tree, member: jax.Array | int):
  """Member `member` of a stacked pytree, as one compiled program: indexing leaf by leaf on the host compiles
  a slice for every leaf shape (40 of them in one small run's samples and evaluation)."""
  return jax.tree.map(lambda a: a[member], tree)
