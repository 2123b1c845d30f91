"""Sweep points as plain lists of override dicts, composed with a few helpers, and their names.

A point is `{"loss.name": "hinge", "seed": 1}`: dotted config keys to JSON values. Axes are
lists of points, so `+` concatenates them and the helpers below combine them:

  product(sweep("loss.name", ["hinge", "non_saturating"]), seeds(5))   # 10 points
  zip_(sweep("optim.g.lr", [1e-4, 2e-4]), sweep("optim.d.lr", [4e-4, 8e-4]))
  random_search(20, seed=0, **{"optim.g.lr": log_uniform(1e-5, 1e-2), "loss.name": choice(["hinge", "wgan"])})
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Point = dict[str, Any]

MAX_NAME = 100  # Keeps names well under the usual 255-byte filename limit, with room for suffixes.
MAX_VALUE = 24
SEED_KEY = "seed"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def plain(value: Any, key: str = "value") -> Any:
  """The value as a JSON type, so points round-trip through the manifest unchanged."""
  if isinstance(value, np.generic):
    value = value.item()
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, (list, tuple)):
    return [plain(v, key) for v in value]
  raise TypeError(f"sweep value for {key!r} is a {type(value).__name__}; expected a JSON scalar or list")


def check_points(points: Iterable[Mapping[str, Any]]) -> list[Point]:
  """Normalises points to plain dicts, refusing non-string keys and non-JSON values."""
  if isinstance(points, str | bytes | Mapping) or not isinstance(points, Iterable):
    raise TypeError(f"get_sweep() returned {points!r:.80}; expected a list of override dicts (did it forget `return`?)")
  out = []
  for point in points:
    if not isinstance(point, Mapping):
      raise TypeError(f"sweep point {point!r} is a {type(point).__name__}; expected a dict of overrides")
    for key in point:
      if not isinstance(key, str) or not key:
        raise TypeError(f"sweep point {dict(point)!r} has key {key!r}; expected a dotted config key")
    out.append({k: plain(v, k) for k, v in point.items()})
  return out


def sweep(key: str, values: Iterable[Any]) -> list[Point]:
  """One axis: `key` takes each of `values` in turn."""
  if isinstance(values, str | bytes) or not isinstance(values, Iterable):
    raise TypeError(f"sweep({key!r}, {values!r}): expected a list of values, e.g. sweep({key!r}, [{values!r}])")
  return [{key: plain(v, key)} for v in values]


def seeds(n: int, start: int = 0) -> list[Point]:
  return sweep(SEED_KEY, range(start, start + n))


def product(*axes: Sequence[Mapping[str, Any]]) -> list[Point]:
  """Every combination of one point per axis; the last axis varies fastest."""
  return [_merge(combo) for combo in itertools.product(*axes)]


def zip_(*axes: Sequence[Mapping[str, Any]]) -> list[Point]:
  """The i-th points of all axes merged, for keys that move together (e.g. matched G / D rates)."""
  lengths = {len(a) for a in axes}
  if len(lengths) > 1:
    raise ValueError(f"zip_ needs axes of equal length; got lengths {[len(a) for a in axes]}")
  return [_merge(combo) for combo in zip(*axes, strict=True)]


def _merge(points: Iterable[Mapping[str, Any]]) -> Point:
  out: Point = {}
  for p in points:
    clash = sorted(set(out) & set(p))
    if clash:
      raise ValueError(f"axes set the same keys {clash}; each key belongs to one axis")
    out.update(p)
  return out


@dataclasses.dataclass(frozen=True)
class Distribution:
  """What `random_search` draws a key's values from."""

  kind: str
  args: tuple

  def sample(self, rng: np.random.Generator, n: int) -> list[Any]:
    if self.kind == "choice":
      (values,) = self.args
      return [values[i] for i in rng.integers(len(values), size=n)]
    low, high = self.args
    if self.kind == "log_uniform":
      return [float(v) for v in np.exp(rng.uniform(math.log(low), math.log(high), size=n))]
    return [float(v) for v in rng.uniform(low, high, size=n)]


def choice(values: Sequence[Any]) -> Distribution:
  values = [plain(v) for v in values]
  if not values:
    raise ValueError("choice needs at least one value")
  return Distribution("choice", (values,))


def uniform(low: float, high: float) -> Distribution:
  if not low < high:
    raise ValueError(f"uniform({low}, {high}) needs low < high")
  return Distribution("uniform", (float(low), float(high)))


def log_uniform(low: float, high: float) -> Distribution:
  if not 0 < low < high:
    raise ValueError(f"log_uniform({low}, {high}) needs 0 < low < high")
  return Distribution("log_uniform", (float(low), float(high)))


def random_search(n: int, seed: int, /, **distributions: Distribution) -> list[Point]:
  """`n` points drawn independently per key.

  Each key has its own stream derived from (seed, key), so adding a key to the search leaves
  the values drawn for the others unchanged. Dotted keys go in as `**{"optim.g.lr": ...}`.
  """
  columns = {}
  for key, dist in distributions.items():
    if not isinstance(dist, Distribution):
      raise TypeError(f"random_search: {key!r} is {dist!r}; expected choice(), uniform() or log_uniform()")
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    columns[key] = dist.sample(rng, n)
  return [{key: values[i] for key, values in columns.items()} for i in range(n)]


# ---------------------------------------------------------------------------------------- names


def _short_hash(obj: Any, n: int = 8) -> str:
  return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:n]


def _value_text(value: Any) -> str:
  if isinstance(value, float):
    text = f"{value:.4g}"
  elif isinstance(value, list):
    text = json.dumps(value, separators=(",", ":"))
  else:
    text = str(value)
  safe = _UNSAFE.sub("-", text)
  if len(safe) > MAX_VALUE:
    safe = f"{safe[: MAX_VALUE - 9]}-{_short_hash(value, 8)}"
  return safe


def _short_keys(keys: Iterable[str]) -> dict[str, str]:
  """Each key's shortest dotted suffix that no other key of the sweep ends with."""
  keys = list(dict.fromkeys(keys))
  out = {}
  for key in keys:
    parts = key.split(".")
    for i in range(len(parts) - 1, -1, -1):
      suffix = ".".join(parts[i:])
      if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
        out[key] = suffix
        break
    else:
      out[key] = key
  return out


def point_name(point: Mapping[str, Any], short_keys: Mapping[str, str] | None = None) -> str:
  """`loss.name=hinge_seed=1`; over MAX_NAME chars, shorter keys, then a cut plus a hash."""
  if not point:
    return "base"

  def join(keys: Mapping[str, str]) -> str:
    return "_".join(f"{_UNSAFE.sub('-', keys.get(k, k))}={_value_text(v)}" for k, v in point.items())

  name = join({})
  if len(name) > MAX_NAME:
    name = join(short_keys or _short_keys(point))
  if len(name) > MAX_NAME:
    name = f"{name[: MAX_NAME - 9]}_{_short_hash(point)}"
  return name


def name_points(points: Sequence[Mapping[str, Any]]) -> list[str]:
  """Names for a whole sweep: readable, and unique even on case-insensitive file systems."""
  seen = set()
  for p in points:
    canonical = json.dumps(p, sort_keys=True)
    if canonical in seen:
      raise ValueError(f"the sweep has the point {dict(p)} twice; expected distinct points")
    seen.add(canonical)
  short = _short_keys(k for p in points for k in p)
  names = [point_name(p, short) for p in points]
  counts: dict[str, int] = {}
  for n in names:
    counts[n.lower()] = counts.get(n.lower(), 0) + 1
  return [
    f"{n[: MAX_NAME - 9]}_{_short_hash(p)}" if counts[n.lower()] > 1 else n for n, p in zip(names, points, strict=True)
  ]
