"""JSON-lines logs (metrics.jsonl, eval.jsonl): append, read back, and cut at a resumed step."""

from __future__ import annotations

import json
import os
from typing import Any

from gan_jax import files

EVAL_FILE = "eval.jsonl"


def keep_records_until(path: str, step: int) -> list[dict]:
  """Drops the records past `step` from the JSON-lines file at `path` (if any); returns those kept.

  A run resumed from its checkpoint at `step` logs and evaluates the later steps again.
  """
  if not os.path.exists(path):
    return []
  kept = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
  files.write_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))  # a kill here leaves old or new, not half
  return kept


def read_jsonl(path: str) -> list[dict]:
  """Records of a .jsonl file; a line cut short by a killed run is skipped."""
  if not os.path.exists(path):
    return []
  out = []
  with open(path) as f:
    for line in f:
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return [r for r in out if isinstance(r, dict)]


def append_record(workdir: str, record: dict[str, Any]) -> str:
  """Appends one JSON line to workdir/eval.jsonl (the train loop's and `gan-jax eval`'s shared log)."""
  path = os.path.join(workdir, EVAL_FILE)
  with open(path, "a") as f:
    f.write(json.dumps(record) + "\n")
  return path
