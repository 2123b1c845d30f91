"""Populations: `population.size` independent runs trained by one compiled program (jax.vmap over stacked states).

  --config.population.size=4 --config.population.seed='(0, 1, 2, 3)' --config.population.d_lr='(1e-3, 1e-3, 2e-4, 2e-4)'

Only what the state carries per member may vary (config.MEMBER_KEYS): the seed and the float hyperparameters
of `state.HPARAMS`. An empty tuple keeps the config's own value for every member; seeds then count up from
`seed`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import config as config_lib
from gan_jax.train.state import HPARAMS, hparams_of


def member_configs(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
  """One config per member, each what a separate run of that member would use (its population.size is 1)."""
  size = config.population.size
  if not isinstance(size, int) or size < 1:
    raise ValueError(f"population.size={size!r}: expected a positive number of members")
  values = {}
  for key, target in config_lib.MEMBER_KEYS.items():
    given = tuple(config.population[key])
    if given and len(given) != size:
      raise ValueError(f"population.{key}={given!r}: expected {size} values (population.size) or ()")
    values[target] = given or ([config.seed + i for i in range(size)] if key == "seed" else None)
  members = []
  for i in range(size):
    member = ml_collections.ConfigDict(config.to_dict())
    config_lib.apply_overrides(member, {target: vals[i] for target, vals in values.items() if vals is not None})
    member.population = ml_collections.ConfigDict(config_lib.base_config().population.to_dict())
    members.append(member)
  return members


def stacked_seeds_and_hparams(members: list[ml_collections.ConfigDict]) -> tuple:
  """(seeds_M, {name: values_M}) to vmap `init_state` over."""
  hparams = [hparams_of(m) for m in members]
  seeds_M = jnp.asarray([m.seed for m in members], jnp.uint32)
  return seeds_M, {name: jnp.asarray([h[name] for h in hparams], jnp.float32) for name in HPARAMS}


@jax.jit
def take_member(tree, member: jax.Array | int):
  """Member `member` of a stacked pytree, as one compiled program: indexing leaf by leaf on the host compiles
  a slice for every leaf shape."""
  return jax.tree.map(lambda a: a[member], tree)
