"""Reference curves and the check of runs against them: does this group of runs reproduce the reference?

A reference (`gan-jax curves --export`) holds every seed's smoothed curves at their logged steps, and the recipe,
seeds and code that produced them. A check compares runs with it curve by curve on two summaries of each
curve per seed, the mean of its early half and of its late half over the steps both cover:
- a group of n >= 2 runs (a population's members, several workdirs) against the reference's m seeds with
  Welch's interval for the difference of the means;
- a single run with the prediction interval of one fresh seed.
The verdict's false-alarm rate is `alpha` (5% by default) for all its comparisons together: each is made at
alpha / (number of comparisons) (Bonferroni), so a group of the reference's recipe fails with probability at
most alpha. Each comparison also reports the smallest shift it would detect with probability 0.8.

Checked: the training losses and D's mean logits (only when the runs' objective is the reference's: another
loss has other scales), and the evaluation metrics; not an estimator's own noise (`kid_std`, `is_std`) unless
asked for by name.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Sequence
from typing import Any

import numpy as np

from gan_jax import config as config_lib
from gan_jax.eval import curves as curves_lib
from gan_jax.eval import stats

FORMAT = 2
MIN_SEEDS = 2  # a reference needs a spread; 10 (5 for the DCGAN) is what the shipped ones hold
DEFAULT_ALPHA = 0.05
# An estimator's standard error, not a result: checked only when named.
ESTIMATOR_NOISE = ("kid_std", "is_std")
# Curves of the training objective itself: comparable only between runs of one objective (OBJECTIVE_KEYS).
LOSS_CURVES = ("d_loss", "g_loss", "d_real", "d_fake", "penalty", "class_real", "class_fake")
OBJECTIVE_KEYS = ("loss.name", "loss.label_smoothing", "loss.acgan_weight")
# Where each metric can be; bands and intervals are clipped to it.
VALID_RANGE = {
  "fid": (0.0, math.inf),
  "is_mean": (1.0, math.inf),
  "precision": (0.0, 1.0),
  "recall": (0.0, 1.0),
  "density": (0.0, math.inf),
  "coverage": (0.0, 1.0),
  "modes": (0.0, math.inf),
  "high_quality": (0.0, 1.0),
  "reverse_kl": (0.0, math.inf),
  "penalty": (0.0, math.inf),
}
# The step a metric moves in: its spread is taken as at least half of it (every seed covering 8 modes
# does not make 7 impossible).
QUANTUM = {"modes": 1.0}
SUMMARIES = ("early", "late")
# A partial check (--partial: runs that stop short of the reference's last step) compares each curve over the
# steps both have, and needs at least this many of them in each half.
MIN_SHARED_PER_HALF = 3


def recipe_of(series: curves_lib.Series) -> dict[str, Any]:
  """The config keys that make runs one experiment (curves.IGNORED_KEYS left out)."""
  return {k: v for k, v in series.config.items() if k not in curves_lib.IGNORED_KEYS}


def export(series: Sequence[curves_lib.Series], path: str, window: int) -> dict[str, Any]:
  """Writes the series, one recipe's seeds, as a reference; returns it. Raises ValueError on other recipes."""
  groups = curves_lib.group_by_seed(series)
  if len(groups) > 1:
    raise ValueError(f"--export takes the seeds of one recipe; these runs are {len(groups)}: {', '.join(groups)}")
  if len(series) < MIN_SEEDS:
    raise ValueError(f"--export needs at least {MIN_SEEDS} seeds for a spread; got {len(series)}")
  names = sorted({n for s in series for n in s.curves})
  curves = {}
  for name in names:
    steps, values_MT = curves_lib.aligned(series, name, window)
    if len(steps):
      curves[name] = {"step": steps.tolist(), "per_seed": values_MT.tolist()}
  reference = {
    "format": FORMAT,
    "recipe": recipe_of(series[0]),
    "seeds": [s.config.get("seed") for s in series],
    "runs": [s.label for s in series],
    "code": code_version(),
    "smoothing": window,
    "curves": curves,
  }
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(reference, f, indent=1)
  return reference


def code_version() -> dict[str, Any]:
  """gan_jax's version and, run from a checkout, its git commit and whether the tree had changes."""
  from importlib import metadata

  try:
    version = metadata.version("gan_jax")
  except metadata.PackageNotFoundError:
    version = "unknown"
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  out = {"gan_jax": version, "layout": config_lib.LAYOUT_VERSION}
  try:
    git = lambda *a: subprocess.run(["git", "-C", root, *a], capture_output=True, text=True, timeout=5)
    commit = git("rev-parse", "HEAD")
    if commit.returncode == 0:
      out.update(git=commit.stdout.strip(), dirty=bool(git("status", "--porcelain", "--untracked-files=no").stdout))
  except (OSError, subprocess.TimeoutExpired):
    pass
  return out


def load(path: str) -> dict[str, Any]:
  """A reference file; one of another format is refused with what to do."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"reference {path!r} does not exist; expected a .json from `gan-jax curves --export`")
  try:
    with open(path) as f:
      reference = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"reference {path!r} is not JSON ({e}); expected a file from `gan-jax curves --export`") from None
  if not isinstance(reference, dict) or reference.get("format") != FORMAT:
    got = reference.get("format", 1) if isinstance(reference, dict) else type(reference).__name__
    raise ValueError(
      f"reference {path!r} is of format {got}; expected format {FORMAT} (every seed's curves): export it again "
      "with `gan-jax curves RUN_DIRS --export --out FILE.json`"
    )
  for name, curve in reference["curves"].items():
    if len(curve["per_seed"]) < MIN_SEEDS:
      raise ValueError(f"reference {path!r}: curve {name!r} holds {len(curve['per_seed'])} seeds; expected >= 2")
  return reference


def band(curve: dict[str, Any], name: str, runs: int = 1, alpha: float = DEFAULT_ALPHA) -> tuple[np.ndarray, ...]:
  """(steps, mean, low, high): where the mean of `runs` fresh seeds falls with probability 1 - alpha at each
  step, clipped to the metric's valid range; for plots."""
  from scipy import stats as scipy_stats

  values_MT = np.asarray(curve["per_seed"], np.float64)
  m = len(values_MT)
  mean, std = values_MT.mean(0), np.maximum(values_MT.std(0, ddof=1), QUANTUM.get(name, 0.0) / 2)
  half = float(scipy_stats.t.ppf(1 - alpha / 2, m - 1)) * std * np.sqrt(1.0 / runs + 1.0 / m)
  lo, hi = VALID_RANGE.get(name, (-math.inf, math.inf))
  return np.asarray(curve["step"]), mean, np.clip(mean - half, lo, hi), np.clip(mean + half, lo, hi)


def comparable_curves(
  group: Sequence[curves_lib.Series], reference: dict[str, Any], asked: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
  """(curves to check, notes): the reference's curves the runs have, less estimator noise (unless `asked`) and
  less the loss curves when the runs' objective is not the reference's."""
  notes = []
  names = [n for n in reference["curves"] if n not in ESTIMATOR_NOISE or n in asked]
  if asked:
    unknown = sorted(set(asked) - set(reference["curves"]))
    if unknown:
      raise ValueError(
        f"--curves {','.join(asked)}: {unknown} not in the reference; it has {sorted(reference['curves'])}"
      )
    names = [n for n in names if n in asked]
  ours = {k: group[0].config.get(k) for k in OBJECTIVE_KEYS}
  theirs = {k: reference["recipe"].get(k) for k in OBJECTIVE_KEYS}
  if ours != theirs:
    changed = ", ".join(f"{k}={ours[k]!r} (reference {theirs[k]!r})" for k in OBJECTIVE_KEYS if ours[k] != theirs[k])
    notes.append(
      f"the runs' objective differs ({changed}): their loss curves are not comparable; checking the "
      "evaluation metrics only"
    )
    names = [n for n in names if n not in LOSS_CURVES]
  missing = [n for n in names if not any(n in s.curves for s in group)]
  if missing:
    notes.append(f"the runs have no {', '.join(missing)}: not checked")
  return [n for n in names if n not in missing], notes


def recipe_notes(group: Sequence[curves_lib.Series], reference: dict[str, Any]) -> list[str]:
  """One note naming every recipe key where the runs differ from the reference (train.steps included)."""
  ours, theirs = recipe_of(group[0]), reference["recipe"]
  keys = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
  if not keys:
    return []
  return ["the runs' recipe differs: " + ", ".join(f"{k}={ours.get(k)!r} (reference {theirs.get(k)!r})" for k in keys)]


def check(
  group: Sequence[curves_lib.Series],
  reference: dict[str, Any],
  alpha: float = DEFAULT_ALPHA,
  asked: Sequence[str] = (),
  partial: bool = False,
) -> dict[str, Any]:
  """The verdict of one group of runs against a reference: {"ok", "alpha", "level", "curves": {name: {summary:
  Comparison as a dict, "steps": [first, last]}}, "notes": [...]}.

  A curve is checked where the runs cover the reference's steps, from its first to its last; with `partial`,
  over the steps both have when each half holds MIN_SHARED_PER_HALF of them. Raises ValueError in one line,
  saying what is missing, when no curve can be checked."""
  names, notes = comparable_curves(group, reference, asked)
  notes = recipe_notes(group, reference) + notes
  prepared, short = {}, []
  for name in names:
    curve = reference["curves"][name]
    ref_steps, ref_MT = np.asarray(curve["step"]), np.asarray(curve["per_seed"], np.float64)
    steps, runs_NT = curves_lib.aligned(group, name, reference["smoothing"])
    shared = np.intersect1d(steps, ref_steps)
    covered = len(shared) and shared[0] == ref_steps[0] and shared[-1] == ref_steps[-1]
    enough = len(shared) >= 2 * MIN_SHARED_PER_HALF if partial else covered
    if not enough:
      reach = f"steps {int(shared[0])}-{int(shared[-1])}" if len(shared) else "no step"
      short.append(f"{name} ({reach} of the reference's {int(ref_steps[0])}-{int(ref_steps[-1])})")
      continue
    if not covered:
      notes.append(f"{name}: partial, steps {int(shared[0])}-{int(shared[-1])} of {int(ref_steps[-1])}")
    runs_NT = runs_NT[:, np.searchsorted(steps, shared)]
    ref_MT = ref_MT[:, np.searchsorted(ref_steps, shared)]
    prepared[name] = (shared, _summaries(runs_NT), _summaries(ref_MT))
  if short and prepared:
    notes.append("not checked, too few shared steps: " + "; ".join(short))
  comparisons = sum(len(p[1]) for p in prepared.values())
  if not comparisons:
    need = f"at least {2 * MIN_SHARED_PER_HALF} shared steps per curve" if partial else "runs that reach its last step"
    missing = "; ".join(short) or "no shared curve"
    raise ValueError(f"nothing to check against the reference: {missing}; expected {need} (--partial checks fewer)")
  level = 1.0 - alpha / comparisons
  results = {}
  for name, (shared, ours, theirs) in prepared.items():
    floor = QUANTUM.get(name, 0.0) / 2
    results[name] = {"steps": [int(shared[0]), int(shared[-1])], "points": len(shared)}
    for summary in ours:
      results[name][summary] = stats.compare(ours[summary], theirs[summary], level, floor).as_dict()
  ok = all(r[s]["ok"] for r in results.values() for s in SUMMARIES if s in r)
  return {"ok": ok, "alpha": alpha, "level": level, "comparisons": comparisons, "curves": results, "notes": notes}


def _summaries(values_NT: np.ndarray) -> dict[str, np.ndarray]:
  """Each seed's mean over the early and the late half of the steps (one summary when there is one step)."""
  if values_NT.shape[1] == 1:
    return {"late": values_NT[:, 0]}
  half = values_NT.shape[1] // 2
  return {"early": values_NT[:, :half].mean(1), "late": values_NT[:, half:].mean(1)}


def report_lines(label: str, verdict: dict[str, Any]) -> list[str]:
  """What `gan-jax curves --reference` prints for one group."""
  lines = [f"{label}: note: {note}" for note in verdict["notes"]]
  for name, r in verdict["curves"].items():
    for summary in SUMMARIES:
      if summary not in r:
        continue
      c = r[summary]
      lines.append(
        f"{label}: {name} ({summary} half of steps {r['steps'][0]}-{r['steps'][1]}): n={c['n']} m={c['m']}, "
        f"difference {c['difference']:+.4g} in [{c['low']:+.4g}, {c['high']:+.4g}], "
        f"{'passes' if c['ok'] else 'FAILS'}; detectable shift (power 0.8) {c['detectable']:.3g}"
      )
  verdict_word = "reproduces" if verdict["ok"] else "does NOT reproduce"
  lines.append(
    f"{label}: {verdict_word} the reference ({verdict['comparisons']} comparisons at {verdict['level']:.4f} each: "
    f"false-alarm rate {verdict['alpha']:g} in all)"
  )
  return lines
