"""A sweep's results table: DIR/results.csv, DIR/results.md and DIR/results_by_seed.csv.

Per point: its overrides, status, `final.*` (the last line of metrics.jsonl and the last evaluation)
and `best.*` (the best value of each metric over eval.jsonl, each on its own, and a `*_std` from the
evaluation where its `*_mean` is best); a point trained as
member m of a population (`sweep --vectorize`) reads the rows tagged `"member": m` in its group's
files. Seed aggregation groups
points whose overrides differ only in `seed` and gives mean ± sample std (ddof=1) over the done ones.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gan_jax.eval.metrics import direction
from gan_jax.records import read_jsonl
from gan_jax.sweep.manifest import STATUSES, Manifest, canonical, config_hash
from gan_jax.sweep.space import SEED_KEY

DEFAULT_METRICS = ("fid", "modes")


def _number(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def point_row(directory: str, name: str, member: int | None = None) -> dict[str, float]:
  """`final.*` and `best.*` metrics of the run in DIR/NAME, or of its population's `member`."""

  def rows(filename: str) -> list[dict]:
    found = read_jsonl(os.path.join(directory, name, filename))
    # Untagged rows of a population are member 0's, as `gan-jax curves` reads them.
    return found if member is None else [r for r in found if r.get("member", 0) == member]

  row = {}
  metrics = rows("metrics.jsonl")
  if metrics:
    row.update({f"final.{k}": v for k, v in metrics[-1].items() if k != "member" and _number(v)})
  evals = rows("eval.jsonl")
  if evals:
    row.update({f"final.{k}": v for k, v in evals[-1].items() if k not in ("step", "member") and _number(v)})
  for key in dict.fromkeys(k for e in evals for k in e if k not in ("step", "member")):
    if key.endswith("_std"):
      continue  # a spread, not a score: its best is the one beside its mean's best
    scored = [e for e in evals if _number(e.get(key))]
    if scored:
      best = (max if direction(key) == "max" else min)(scored, key=lambda e: e[key])
      row[f"best.{key}"] = best[key]
      spread = key.removesuffix("_mean") + "_std"
      if key.endswith("_mean") and _number(best.get(spread)):
        row[f"best.{spread}"] = best[spread]
  return row


def sort_column(columns: Sequence[str], metric: str | None) -> str | None:
  """The column to sort by: `best.M`, else `final.M`, else M itself as a column name."""
  for m in [metric] if metric else DEFAULT_METRICS:
    for col in (f"best.{m}", f"final.{m}", m):
      if col in columns:
        return col
  return None


def _sorted(rows: list[dict], col: str, best: str) -> list[dict]:
  """Best first; rows without a value go last, in their original order."""
  sign = -1.0 if best == "max" else 1.0
  return sorted(rows, key=lambda r: (0, sign * r[col]) if _number(r.get(col)) else (1, 0.0))


def current_hashes(manifest: Manifest) -> dict[str, str]:
  """{canonical overrides: config_hash} of the sweep's experiment file as it is now (keyed as sync_manifest
  matches points, so a reordered sweep's renamed points still match); {} where it no longer loads."""
  from gan_jax.sweep import launch

  try:
    sweep = launch.load_sweep(manifest.config)
  except (OSError, ValueError, KeyError, TypeError, ImportError):
    return {}
  return {canonical(point): config_hash(cfg) for point, cfg in zip(sweep.points, sweep.configs, strict=True)}


def collect(directory: str) -> tuple[list[str], list[str], list[dict]]:
  """(override keys, metric columns, one row per manifest point in manifest order). A done point whose
  experiment file now gives it another config is "stale": its numbers are not the sweep's any more."""
  manifest = Manifest.load(directory)
  now = current_hashes(manifest)
  stale = lambda r: (
    r.status == "done" and r.config_hash and now.get(canonical(r.overrides), r.config_hash) != r.config_hash
  )
  rows = [
    {
      "name": r.name,
      "status": "stale" if stale(r) else r.status,
      **r.overrides,
      **point_row(directory, r.group or r.name, r.member),
    }
    for r in manifest.points
  ]
  keys = list(dict.fromkeys(k for r in manifest.points for k in r.overrides))
  metric_cols = list(dict.fromkeys(k for r in rows for k in r if k.startswith("final.")))
  metric_cols += list(dict.fromkeys(k for r in rows for k in r if k.startswith("best.")))
  return keys, metric_cols, rows


def by_seed(
  keys: Sequence[str], metric_cols: Sequence[str], rows: Sequence[dict]
) -> tuple[list[str], list[str], list[dict]]:
  """(group keys, metrics, one row per group of points equal but for `seed`).

  A row holds the group's overrides, `seeds` (its done points) and `M.mean`, `M.std` per metric.
  """
  group_keys = [k for k in keys if k != SEED_KEY]
  groups: dict[str, list[dict]] = {}
  for row in rows:
    groups.setdefault(json.dumps([row.get(k) for k in group_keys]), []).append(row)
  cols = [c for c in metric_cols if c != "final.step"]
  out = []
  for members in groups.values():
    done = [m for m in members if m["status"] == "done"]
    agg = {k: members[0].get(k) for k in group_keys}
    agg["seeds"] = len(done)
    for col in cols:
      values = [m[col] for m in done if _number(m.get(col))]
      if values:
        agg[f"{col}.mean"] = float(np.mean(values))
        agg[f"{col}.std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    out.append(agg)
  return group_keys, cols, out


def _csv_value(v: Any) -> Any:
  if v is None:
    return ""
  return json.dumps(v) if isinstance(v, list) else v


def _write_csv(path: str, columns: Sequence[str], rows: Sequence[dict]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), restval="", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _cell(v: Any) -> str:
  if v is None:
    return ""
  if isinstance(v, float):
    return f"{v:.4g}"
  text = json.dumps(v) if isinstance(v, list) else str(v)
  return text.replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(r) + " |" for r in rows]


def write_report(directory: str, metric: str | None = None) -> str:
  """Writes the three result files of DIR and returns the markdown."""
  keys, metric_cols, rows = collect(directory)
  columns = ["name", "status", *keys, *metric_cols]
  col = sort_column(metric_cols, metric)
  group_keys, seed_metrics, seed_rows = by_seed(keys, metric_cols, rows)
  if col:
    rows = _sorted(rows, col, direction(col))
    seed_rows = _sorted(seed_rows, f"{col}.mean", direction(col))
  _write_csv(os.path.join(directory, "results.csv"), columns, rows)
  seed_cols = [*group_keys, "seeds", *(f"{c}.{s}" for c in seed_metrics for s in ("mean", "std"))]
  _write_csv(os.path.join(directory, "results_by_seed.csv"), seed_cols, seed_rows)

  counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
  summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
  lines = [f"# Sweep {os.path.abspath(directory)}", "", f"{len(rows)} points: {summary}."]
  if col:
    lines[-1] += f" Sorted by {col} ({'higher' if direction(col) == 'max' else 'lower'} is better)."
  elif metric:
    lines[-1] += f" No point has metric {metric!r} (columns: {', '.join(metric_cols) or 'none'}); unsorted."
  lines += ["", *_md_table(columns, [[_cell(r.get(c)) for c in columns] for r in rows])]

  lines += ["", f"## Mean ± std over {SEED_KEY} (done points only)", ""]
  lines += _md_table(
    [*group_keys, "seeds", *seed_metrics],
    [[_cell(r.get(c)) for c in [*group_keys, "seeds"]] + [_mean_std(r, m) for m in seed_metrics] for r in seed_rows],
  )
  text = "\n".join(lines) + "\n"
  with open(os.path.join(directory, "results.md"), "w") as f:
    f.write(text)
  return text


def _mean_std(row: dict, col: str) -> str:
  mean, std = row.get(f"{col}.mean"), row.get(f"{col}.std")
  if mean is None:
    return ""
  return _cell(mean) if std is None else f"{_cell(mean)} ± {_cell(std)}"
