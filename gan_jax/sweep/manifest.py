"""`DIR/manifest.json`: every point of a sweep and how its run went, so re-runs skip what is done."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from typing import Any

import ml_collections

from gan_jax import config as config_lib
from gan_jax import files
from gan_jax.train import history

MANIFEST = "manifest.json"
# "stale": done under a config that is no longer the point's (shown by reports; a re-run trains it afresh).
STATUSES = ("pending", "running", "done", "failed", "stale")


def canonical(overrides: dict[str, Any]) -> str:
  """A point's overrides whatever their order: the same point of a reordered sweep matches its record."""
  return json.dumps(overrides, sort_keys=True)


# Keys added since points were first hashed, with the value every earlier run had: at that value a key is left
# out, so upgrading gan_jax does not make a finished sweep stale.
ADDED_KEYS = {"optim.g.name": "adam", "optim.d.name": "adam"}


def config_hash(config: ml_collections.ConfigDict) -> str:
  """A point's resolved config, hashed: a done point whose hash no longer matches is stale. Bookkeeping keys
  (train.history.BOOKKEEPING: logging, checkpoint and evaluation periods, devices, slurm, ...) are left out,
  as a resume lets them change."""
  flat = config_lib.flatten(config_lib.to_dict(config))
  kept = {k: v for k, v in flat.items() if k == "train.steps" or not history.is_bookkeeping(k, {})}
  kept = {k: v for k, v in kept.items() if ADDED_KEYS.get(k, ...) != v}
  return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


@dataclasses.dataclass
class PointRecord:
  name: str
  overrides: dict[str, Any]
  workdir: str
  status: str = "pending"
  returncode: int | None = None
  error: str = ""  # Last lines of the run's log when it failed.
  start_time: str | None = None
  end_time: str | None = None
  job_id: str | None = None  # SLURM / submitit job, for finding its logs.
  group: str | None = None  # With `--vectorize`: the population run (DIR/GROUP) that trains this point...
  member: int | None = None  # ...as this member; both None for a point trained alone in DIR/NAME.
  config_hash: str | None = None  # config_hash of the config it was (or is to be) trained with

  def __post_init__(self):
    if self.status not in STATUSES:
      raise ValueError(f"point {self.name!r} has status {self.status!r}; expected one of {STATUSES}")

  def start(self, start_time: str, job_id: str | None = None) -> None:
    self.status, self.start_time, self.job_id = "running", start_time, job_id
    self.returncode, self.error, self.end_time = None, "", None

  def finish(self, outcome: dict[str, Any]) -> None:
    """Records a `run_point` outcome: returncode 0 is done, anything else failed."""
    self.returncode = outcome["returncode"]
    self.status = "done" if self.returncode == 0 else "failed"
    self.error = "" if self.returncode == 0 else outcome["error"]
    self.start_time = outcome.get("start_time", self.start_time)
    self.end_time = outcome.get("end_time", now())


@dataclasses.dataclass
class Manifest:
  config: str
  points: list[PointRecord]

  def save(self, directory: str) -> None:
    """Written whole to a temporary file then renamed, so a crash never leaves half a manifest."""
    os.makedirs(directory, exist_ok=True)
    files.write_atomic(os.path.join(directory, MANIFEST), json.dumps(dataclasses.asdict(self), indent=2) + "\n")

  @classmethod
  def load(cls, directory: str) -> Manifest:
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path!r} does not exist; expected a directory written by `gan-jax sweep`")
    with open(path) as f:
      raw = json.load(f)
    return cls(config=raw["config"], points=[PointRecord(**p) for p in raw["points"]])
