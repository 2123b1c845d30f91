"""Loss and metric curves of runs: loading, seed groups, smoothing and plots (checks: eval.reference).

  gan-jax curves runs/a runs/b --out curves.png                                     # PNG + SVG
  gan-jax curves runs/sweep/* --reference experiments/references/X.json --out c.png  # exit 1: not reproduced
  gan-jax curves --export runs/ref_seeds --out experiments/references/X.json         # write a reference

Runs (and population members) whose configs differ only in `seed` form one group; the training curves are
smoothed with a centred moving average, the evaluation metrics never are.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gan_jax import config as config_lib
from gan_jax import models
from gan_jax.records import read_jsonl

# Keys that do not make two runs different experiments.
IGNORED_KEYS = (
  "seed",
  *(f"population.{k}" for k in ("size", *config_lib.MEMBER_KEYS)),
  "train.num_devices",
  "train.member_devices",
)


@dataclass
class Series:
  """One run (or population member): curve name -> (steps, values)."""

  label: str
  config: dict
  curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
  # Curves from eval.jsonl: each point already averages thousands of samples, and a few evaluations
  # smoothed together would blur the trend, so they are never smoothed.
  evaluations: frozenset[str] = frozenset()


def run_dirs(paths: Sequence[str]) -> list[str]:
  """The run workdirs among `paths`: `gan-jax curves runs/sweep/*` also matches the sweep's manifest.json and
  results files, and the folders of points that failed before writing config.json. Those are skipped, with
  a note on stderr; it is an error only when no workdir is left."""
  runs = [p for p in paths if os.path.exists(os.path.join(p, "config.json"))]
  skipped = [p for p in paths if p not in runs]
  if not runs:
    shown = ", ".join(repr(p) for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    raise FileNotFoundError(f"no run among {shown}: expected workdirs written by `gan-jax train` (with config.json)")
  for p in skipped:
    print(f"skipping {p!r}: not a run workdir (no config.json)", file=sys.stderr)
  return runs


def load_series(workdir: str) -> list[Series]:
  """metrics.jsonl and eval.jsonl of a workdir; one Series per population member."""
  # Keys added to the base config since the run started take their defaults, so old and new runs group.
  config = config_lib.to_dict(config_lib.read_run_config(workdir))
  evals = read_jsonl(os.path.join(workdir, "eval.jsonl"))
  rows = read_jsonl(os.path.join(workdir, "metrics.jsonl")) + evals
  evaluated = frozenset(k for r in evals for k, v in r.items() if _is_number(v))
  members = sorted({r.get("member", 0) for r in rows}) or [0]
  out = []
  for m in members:
    member_cfg = config_lib.flatten(config)
    # Member m's own values of the per-member keys (train.population.member_configs, without building a run).
    member_cfg.update(
      {key: config["population"][name][m] for name, key in config_lib.MEMBER_KEYS.items() if config["population"][name]}
    )
    if not config["population"]["seed"]:  # member_configs' default: the members' seeds count up from `seed`
      member_cfg["seed"] = config["seed"] + m
    if member_cfg.get("model.name") in models.names():  # "" and the family's default norm: one experiment
      model = {"name": member_cfg["model.name"], "d_norm": member_cfg["model.d_norm"]}
      member_cfg["model.d_norm"] = models.d_norm(model)
    label = os.path.basename(os.path.normpath(workdir)) + (f"[{m}]" if len(members) > 1 else "")
    series = Series(label, member_cfg, evaluations=evaluated)
    mine = [r for r in rows if r.get("member", 0) == m]
    names = sorted({k for r in mine for k, v in r.items() if k not in ("step", "member") and _is_number(v)})
    for name in names:
      points = sorted((r["step"], r[name]) for r in mine if _is_number(r.get(name)))
      series.curves[name] = (np.array([p[0] for p in points]), np.array([p[1] for p in points], np.float64))
    out.append(series)
  return out


def _is_number(v) -> bool:
  return isinstance(v, int | float) and not isinstance(v, bool)


def group_by_seed(series: Sequence[Series]) -> dict[str, list[Series]]:
  """Groups series whose configs agree on everything but seed-like keys; names say how groups differ."""

  def key_of(s: Series) -> tuple:
    return tuple(sorted((k, json.dumps(v)) for k, v in s.config.items() if k not in IGNORED_KEYS))

  groups: dict[tuple, list[Series]] = {}
  for s in series:
    groups.setdefault(key_of(s), []).append(s)
  if len(groups) == 1:
    (members,) = groups.values()
    return {members[0].label if len(members) == 1 else "all": members}
  varying = sorted({k for key in groups for k, _ in key if len({dict(g).get(k) for g in groups}) > 1})
  label = lambda key: ",".join(f"{k}={json.loads(dict(key)[k])}" for k in varying if k in dict(key))
  return {label(key): members for key, members in groups.items()}


def smooth(y: np.ndarray, window: int) -> np.ndarray:
  """Centred moving average, truncated at the ends (no lag, unlike an EMA).

  A non-finite value (a diverged step) makes only the windows that hold it NaN, not the rest of the curve.
  """
  if window <= 1 or len(y) == 0:
    return y.astype(np.float64)
  bad = ~np.isfinite(y)
  c = np.concatenate([[0.0], np.cumsum(np.where(bad, 0.0, y), dtype=np.float64)])
  c_bad = np.concatenate([[0], np.cumsum(bad)])
  i = np.arange(len(y))
  lo, hi = np.maximum(i - window // 2, 0), np.minimum(i + window // 2 + 1, len(y))
  return np.where(c_bad[hi] > c_bad[lo], np.nan, (c[hi] - c[lo]) / (hi - lo))


def band(group: Sequence[Series], name: str, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(steps, mean, std) of a curve over a group's members at the steps they all logged; evaluations unsmoothed.

  std is the sample std (ddof=1, as the sweep's seed tables): with the 3-5 seeds a study affords, the
  population std would set bands ~20% too narrow. One member has std 0.
  """
  steps, values = aligned(group, name, window)
  if not len(values):
    return steps, np.zeros(0), np.zeros(0)
  return steps, values.mean(0), values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(steps))


def aligned(group: Sequence[Series], name: str, window: int) -> tuple[np.ndarray, np.ndarray]:
  """(steps_T, values_NT): each member's curve, smoothed by `window` (evaluations never are), at the steps every
  member that has the curve logged."""
  present = [s.curves[name] for s in group if name in s.curves]
  if any(name in s.evaluations for s in group):
    window = 1
  if not present:
    return np.zeros(0, int), np.zeros((0, 0))
  steps = present[0][0]
  for st, _ in present[1:]:
    steps = np.intersect1d(steps, st)
  return steps, np.stack([smooth(v, window)[np.searchsorted(st, steps)] for st, v in present])


def plot(
  groups: dict[str, list[Series]], out: str, window: int, bands: dict[str, tuple[np.ndarray, ...]] | None = None
) -> list[str]:
  """Writes `out` (PNG) and the same figure as SVG; returns the paths. `bands`: curve -> (steps, mean, low, high)
  of a reference, drawn behind the runs."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = sorted({n for g in groups.values() for s in g for n in s.curves})
  names = [n for n in ("d_loss", "g_loss") if n in names] + [n for n in names if n not in ("d_loss", "g_loss")]
  cols = min(3, max(len(names), 1))
  rows = -(-len(names) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
  for ax, name in zip(axes.flat, names, strict=False):
    for i, (label, group) in enumerate(groups.items()):
      color = f"C{i % 10}"
      for s in group:
        if name in s.curves:
          ax.plot(*s.curves[name], color=color, alpha=0.15, lw=0.7)
      steps, mean, std = band(group, name, window)
      ax.plot(steps, mean, color=color, lw=1.5, label=f"{label} (n={len(group)})")
      if len(group) > 1:
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.25)
    if bands and name in bands:
      ref_steps, ref_mean, lo, hi = bands[name]
      ax.plot(ref_steps, ref_mean, "k--", lw=1, label="reference")
      ax.fill_between(ref_steps, lo, hi, color="k", alpha=0.1)
    ax.set_title(name)
    ax.set_xlabel("step")
  for ax in list(axes.flat)[len(names) :]:
    ax.axis("off")
  if names:
    axes.flat[0].legend(fontsize=7)
  fig.tight_layout()
  base, _ = os.path.splitext(out)
  paths = [base + ".png", base + ".svg"]
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  for p in paths:
    fig.savefig(p, dpi=110)
  plt.close(fig)
  return paths
