"""Do reference checks mean something? Fresh seeds of a reference's recipe, and other recipes, against it.

  python scripts/reference_study.py ring8 --runs runs/reference_study     # about 15 minutes on 2 cores
  python scripts/reference_study.py dcgan --runs runs/reference_study     # about 30 minutes

Trains (or reuses, when a workdir is complete) one population per case with `gan-jax train`, exports the
reference from the first, and checks the others against it with `gan_jax.eval.reference.check`: single fresh
seeds one by one, fresh groups of the reference's size, and groups of other recipes. `--export` also writes
the reference to experiments/references/. Prints a markdown table (docs/studies.md holds the results).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  seeds: tuple[int, ...]
  overrides: dict[str, str] = dataclasses.field(default_factory=dict)
  check: str = "group"  # "group": one verdict per `group` seeds; "single": one per seed
  group: int = 10


DCGAN_STEPS = {"train.steps": "1000"}
STUDIES = {
  "ring8": dict(
    config="experiments/study_2d.py:ring8",
    reference_file="study_2d_ring8_non_saturating.json",
    cases=(
      Case("reference", tuple(range(10))),
      Case("fresh single seeds", tuple(range(100, 120)), check="single"),
      Case("fresh groups of 10", tuple(range(200, 250))),
      Case("minimax", tuple(range(300, 310)), {"loss.name": "minimax"}),
      Case("both learning rates x3", tuple(range(400, 410)), {"optim.g.lr": "3e-3", "optim.d.lr": "3e-3"}),
    ),
  ),
  "grid25": dict(
    config="experiments/study_2d.py:grid25",
    reference_file="study_2d_grid25_non_saturating.json",
    cases=(Case("reference", tuple(range(10))),),
  ),
  # The first 1000 of the study's 2000 steps (its evaluations at 500 and 1000), 5 seeds: what fits 2 cores.
  "dcgan": dict(
    config="experiments/study_dcgan_losses.py",
    reference_file="study_dcgan_non_saturating.json",
    separate=True,
    cases=(
      Case("reference", tuple(range(5)), DCGAN_STEPS, group=5),
      Case("fresh group of 5 (and 5 single seeds)", tuple(range(10, 15)), DCGAN_STEPS, group=5),
      Case("hinge", tuple(range(5)), {**DCGAN_STEPS, "loss.name": "hinge"}, group=5),
    ),
  ),
}


def train(config: str, workdir: str, case: Case, separate: bool) -> list[str]:
  """Trains the case's seeds: one population, or with `separate` one run per seed (for the DCGAN, whose
  convolutions run slower vmapped over members than one member at a time on CPU). Returns the workdirs."""
  runs = (
    [(os.path.join(workdir, f"seed_{s}"), {"seed": str(s)}) for s in case.seeds]
    if separate
    else [
      (
        workdir,
        {"population.size": str(len(case.seeds)), "population.seed": "(" + ",".join(map(str, case.seeds)) + ",)"},
      )
    ]
  )
  for run_dir, seeds in runs:
    argv = [sys.executable, "-m", "gan_jax", "train", "--config", config, "--workdir", run_dir]
    argv += [f"--config.{k}={v}" for k, v in {**seeds, **case.overrides}.items()]
    print("$ " + " ".join(argv[1:]), file=sys.stderr, flush=True)
    subprocess.run(argv, check=True, cwd=ROOT)
  return [run_dir for run_dir, _ in runs]


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("study", choices=sorted(STUDIES))
  parser.add_argument("--runs", default="runs/reference_study")
  parser.add_argument("--export", action="store_true", help="write the reference to experiments/references/")
  parser.add_argument("--alpha", type=float, default=0.05)
  args = parser.parse_args(argv)

  from gan_jax.eval import curves, reference

  study = STUDIES[args.study]
  series = {}
  for case in study["cases"]:
    workdir = os.path.abspath(os.path.join(args.runs, args.study, case.name.split(" (")[0].replace(" ", "_")))
    runs = train(study["config"], workdir, case, study.get("separate", False))
    series[case.name] = [s for run in runs for s in curves.load_series(run)]
  ref_series = series["reference"]
  path = (
    os.path.join(ROOT, "experiments", "references", study["reference_file"])
    if args.export
    else (os.path.join(args.runs, args.study, "reference.json"))
  )
  ref = reference.export(ref_series, path, window=5)
  print(f"reference of {len(ref_series)} seeds: {path}", file=sys.stderr)

  rows = []
  for case in study["cases"][1:]:
    ours = series[case.name]
    groups = (
      [[s] for s in ours]
      if case.check == "single"
      else [ours[i : i + case.group] for i in range(0, len(ours), case.group)]
    )
    if case.name.startswith("fresh group of 5"):
      groups += [[s] for s in ours]  # and each of its seeds alone
    for group in groups:
      verdict = reference.check(group, ref, args.alpha)
      failed = sorted(
        {f"{n} ({s})" for n, r in verdict["curves"].items() for s in reference.SUMMARIES if s in r and not r[s]["ok"]}
      )
      rows.append((case.name, len(group), verdict, failed))
  print(table(rows))
  return 0


def table(rows: list[tuple]) -> str:
  """One line per verdict: case, n, pass/fail, the failing comparisons, and each eval metric's late-half
  difference with its detectable shift."""
  lines = [
    "| case | n | verdict | failing comparisons | late half: difference / detectable shift (power 0.8) |",
    "|---|---:|---|---|---|",
  ]
  for name, n, verdict, failed in rows:
    metrics = [
      f"{m} {r['late']['difference']:+.3g} / {r['late']['detectable']:.3g}"
      for m, r in verdict["curves"].items()
      if m not in ("d_loss", "g_loss", "d_real", "d_fake") and "late" in r
    ]
    word = "passes" if verdict["ok"] else "FAILS"
    lines.append(f"| {name} | {n} | {word} | {', '.join(failed) or '-'} | {'; '.join(metrics)} |")
  fails = {}
  for name, _, verdict, _ in rows:
    fails.setdefault(name, [0, 0])
    fails[name][0] += not verdict["ok"]
    fails[name][1] += 1
  lines += ["", "| case | fails / verdicts |", "|---|---:|"]
  lines += [f"| {name} | {f} / {t} |" for name, (f, t) in fails.items()]
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
