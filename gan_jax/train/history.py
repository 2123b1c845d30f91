"""A workdir's config history, DIR/history.jsonl: one record per start of the run, so that config.json (always
the current config) never hides what the steps before a change were trained with.

Each record: the step the start resumed from (0 for the first), the keys that changed since the previous start
with their old and new values, the command line, the time and provenance. Changes are of two kinds:
- bookkeeping (BOOKKEEPING): when and how the run logs, samples, saves and evaluates, and on how many devices
  it runs. They pass, named in one line.
- everything else redefines steps already trained: the objective, the data, the model, the optimizer and its
  schedule, the seed. A resume with such changes is refused (exit 2) unless it is asked for explicitly
  (`gan-jax train --allow-config-change`, `train_and_evaluate(..., allow_config_change=True)`).

train.steps is bookkeeping while every learning-rate schedule is constant. A decaying schedule's horizon is
train.steps, so extending such a run would restart the decay at a point the trained steps never saw: the
horizon is fixed at the first start, and changing it is a redefinition like any other.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from gan_jax import config as config_lib
from gan_jax import files
from gan_jax.records import read_jsonl

HISTORY_FILE = "history.jsonl"
# Keys (or prefixes, ending in ".") whose change leaves the meaning of every trained step as it was.
BOOKKEEPING = (
  "train.log_every",
  "train.sample_every",
  "train.num_devices",
  "train.member_devices",
  "train.check_finite",
  "checkpoint.",
  "eval.",
  "log.",
  "slurm.",
  "data.data_dir",  # where the data lies, not what it is
  "data.source_dir",
)
SCHEDULE_KEYS = ("optim.g.schedule", "optim.d.schedule")


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
  """{dotted key: (old value, new value)} over two resolved configs (config_lib.to_dict)."""
  a, b = config_lib.flatten(old), config_lib.flatten(new)
  return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def is_bookkeeping(key: str, new: Mapping[str, Any]) -> bool:
  if key == "train.steps":
    flat = config_lib.flatten(new)
    return all(flat.get(k, "constant") == "constant" for k in SCHEDULE_KEYS)
  return any(key == b or (b.endswith(".") and key.startswith(b)) for b in BOOKKEEPING)


def describe(changed: Mapping[str, tuple[Any, Any]]) -> str:
  return ", ".join(f"{k} ({old!r} -> {new!r})" for k, (old, new) in changed.items())


def check(workdir: str, old: Mapping[str, Any], new: Mapping[str, Any], allow: bool) -> dict[str, tuple[Any, Any]]:
  """The changes of a resume; ValueError in one line where some redefine trained steps and `allow` is off."""
  changed = changes(old, new)
  redefining = {k: v for k, v in changed.items() if not is_bookkeeping(k, new)}
  if redefining and not allow:
    horizon = " (a decaying schedule's horizon)" if "train.steps" in redefining else ""
    raise ValueError(
      f"workdir {workdir!r} was trained with other values of keys that change what its steps mean: "
      f"{describe(redefining)}{horizon}; expected the recorded values (DIR/config.json), a new --workdir, or "
      "--allow-config-change to continue under the new values (recorded in DIR/history.jsonl)"
    )
  return changed


def record(workdir: str, start_step: int, changed: Mapping[str, tuple[Any, Any]], provenance: dict) -> None:
  """Appends this start's record, atomically (a kill leaves the old history or the new one)."""
  path = os.path.join(workdir, HISTORY_FILE)
  entry = {
    "start_step": start_step,
    "changed": {k: list(v) for k, v in changed.items()},
    "argv": list(sys.argv),
    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "provenance": provenance,
  }
  lines = [json.dumps(r) + "\n" for r in read_jsonl(path)] + [json.dumps(entry) + "\n"]
  files.write_atomic(path, "".join(lines))


def read(workdir: str) -> list[dict]:
  """The history's records, oldest first; [] for a workdir from before history.jsonl."""
  return read_jsonl(os.path.join(workdir, HISTORY_FILE))


def summary(entries: list[dict]) -> list[str]:
  """One line per start that changed something: 'step 300: loss.name ('non_saturating' -> 'hinge')'."""
  return [f"step {e['start_step']}: {describe(e['changed'])}" for e in entries if e.get("changed")]
