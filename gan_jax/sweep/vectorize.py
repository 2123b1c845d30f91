"""`gan-jax sweep --vectorize`: points that differ only in per-member keys train as one population.

Points whose resolved configs agree on everything but `PER_MEMBER` (the seed and the float
hyperparameters the train state carries per member) become one run of M members in DIR/GROUP:

  gan-jax train ... --config.population.size=M --config.population.seed='(...)' [--config.population.d_lr=...]

One compiled step then advances all M, instead of M processes each compiling and dispatching its
own. The manifest maps every point to its group and member index, and the report reads that
member's rows, so results look as if each point had trained alone. A lone point trains as usual.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from gan_jax import config as config_lib
from gan_jax.sweep.space import MAX_NAME, SEED_KEY, Point, _short_hash, point_name

# Config keys a population's members may differ in -> their population.* key.
PER_MEMBER = {key: name for name, key in config_lib.MEMBER_KEYS.items()}


@dataclasses.dataclass(frozen=True)
class Group:
  """One `gan-jax train` run: a lone point under its own name, or a population of points."""

  name: str  # Its workdir's name in the sweep directory.
  overrides: Point  # The run's `--config.*` overrides.
  members: tuple[str, ...]  # Point names; a point's position is its member index.

  @property
  def is_population(self) -> bool:
    return len(self.members) > 1


def signature(config: ml_collections.ConfigDict) -> str | None:
  """What points must agree on to share a population; None for a point that is a population already."""
  flat = config_lib.flatten(config_lib.to_dict(config))
  if any(v not in ((), [], 1) for k, v in flat.items() if k.startswith("population.")):
    return None
  return json.dumps({k: v for k, v in flat.items() if k not in PER_MEMBER}, sort_keys=True)


def group_points(
  names: Sequence[str],
  points: Sequence[Point],
  configs: Sequence[ml_collections.ConfigDict],
  max_members: int | None = None,
) -> list[Group]:
  """Groups in order of their first point; `max_members=1` keeps every point alone.

  A bucket larger than `max_members` is split into near-equal populations, which share one
  compiled program whenever their sizes match.
  """
  buckets: dict[Any, list[int]] = {}
  for i, config in enumerate(configs):
    sig = signature(config) if max_members != 1 else None
    buckets.setdefault(i if sig is None else sig, []).append(i)
  groups = []
  for indices in buckets.values():
    n_chunks = math.ceil(len(indices) / max_members) if max_members else 1
    for c in range(n_chunks):
      chunk = indices[c * len(indices) // n_chunks : (c + 1) * len(indices) // n_chunks]
      groups.append(_group([names[i] for i in chunk], [points[i] for i in chunk], [configs[i] for i in chunk]))
  return groups


def regroup(
  todo: Sequence[Any],
  configs: Mapping[str, ml_collections.ConfigDict],
  max_members: int | None = None,
) -> list[Group]:
  """Groups for the manifest records still to run (`todo`, PointRecords in sweep order).

  A population whose members are all still to run keeps them, in member order: it comes back under the
  same name, so `gan-jax train` resumes it from its checkpoint. Grouping the rest afresh could cut a
  larger bucket differently once some of its chunks are done. The other records are grouped by
  `group_points`; points done earlier are never retrained.
  """
  by_group: dict[str, list[Any]] = {}
  for r in todo:
    if r.group is not None:
      by_group.setdefault(r.group, []).append(r)
  kept, taken = [], set()
  for name, records in by_group.items():
    if len(records) < 2 or max_members is not None and len(records) > max_members:
      continue
    records = sorted(records, key=lambda r: r.member)
    group = _group([r.name for r in records], [dict(r.overrides) for r in records], [configs[r.name] for r in records])
    if group.name == name:  # its name hashes its points: every member is still to run, in the same order
      kept.append(group)
      taken.update(r.name for r in records)
  rest = [r for r in todo if r.name not in taken]
  names = [r.name for r in rest]
  fresh = group_points(names, [r.overrides for r in rest], [configs[n] for n in names], max_members)
  return kept + fresh


def _group(names: list[str], points: list[Point], configs: list[ml_collections.ConfigDict]) -> Group:
  if len(names) == 1:
    return Group(names[0], dict(points[0]), (names[0],))
  flats = [config_lib.flatten(config_lib.to_dict(c)) for c in configs]
  # Seeds are always listed: left out, the members would get seed, seed+1, ... instead.
  keys = [SEED_KEY, *(k for k in PER_MEMBER if k != SEED_KEY and len({json.dumps(f[k]) for f in flats}) > 1)]
  members = {f"population.{PER_MEMBER[k]}": [f[k] for f in flats] for k in keys}
  # The other keys agree across the resolved configs, so the first point's overrides stand for all.
  shared = {k: v for k, v in points[0].items() if k not in keys}
  suffix = f"_pop{len(names)}_{_short_hash(points)}"
  name = point_name(shared)[: MAX_NAME - len(suffix)] + suffix
  overrides = {**shared, "population.size": len(names), **members}
  return Group(name, overrides, tuple(names))


def describe(groups: Sequence[Group], points: Mapping[str, Point]) -> str:
  """The `--dry-run` listing: `NAME<tab>overrides` per run, then each member of a population."""
  lines = []
  for g in groups:
    lines.append(f"{g.name}\t{json.dumps(g.overrides)}")
    if g.is_population:
      lines += [f"  member {m}: {n}\t{json.dumps(points[n])}" for m, n in enumerate(g.members)]
  return "".join(line + "\n" for line in lines)
