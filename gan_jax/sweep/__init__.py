"""Sweeps as code: an experiment's `get_sweep()` lists override dicts; `gan-jax sweep` runs them.

  # experiments/ring8.py, next to get_config()
  from gan_jax.sweep import product, seeds, sweep

  def get_sweep(arg=None):
    return product(sweep("loss.name", ["hinge", "non_saturating"]), seeds(5))

  gan-jax sweep --config experiments/ring8.py --workdir runs/ring8_losses --parallel 2
  gan-jax sweep --report runs/ring8_losses --metric modes

Each point trains in DIR/NAME (e.g. runs/ring8_losses/loss.name=hinge_seed=1); DIR/manifest.json
tracks them, so running the same command again retries only the points that are not done.

With --vectorize, points that differ only in the seed and the float hyperparameters (optim.g.lr,
optim.d.lr, penalty.weight, train.ema_decay) train together as one population run in DIR/GROUP
(gan_jax.sweep.vectorize); the manifest and the report still list every point.
"""

from __future__ import annotations

import argparse
import sys

from gan_jax.sweep import launch, report, vectorize
from gan_jax.sweep.space import (
    choice,
    log_uniform,
    name_points,
    point_name,
    product,
    random_search,
    seeds,
    sweep,
    uniform,
    zip_,
)

__all__ = [
    "add_parser",
    "choice",
    "log_uniform",
    "name_points",
    "point_name",
    "product",
    "random_search",
    "run",
    "seeds",
    "sweep",
    "uniform",
    "zip_",
]

def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
  """Adds the `sweep` subcommand to `gan-jax`'s subparsers."""
  p = subparsers.add_parser(
      "sweep",
      help="run every point of an experiment's get_sweep(), or --report the results of a sweep",
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument("--config", help="experiments/FILE.py[:ARG] defining get_config() and get_sweep()")
  p.add_argument("--workdir", help="the sweep directory; each point trains in WORKDIR/NAME")
  p.add_argument(
      "--parallel",
      type=int,
      help="points at once (local default: half the CPU cores; slurm default: no limit)",
  )
  p.add_argument(
      "--launcher",
      choices=("local", *launch.CLUSTERS),
      default="local",
      help="local processes, a SLURM array job, or submitit's local executor",
  )
  p.add_argument(
      "--vectorize",
      nargs="?",
      type=int,
      const=0,
      default=1,
      metavar="MAX",
      help="train points that differ only in seed and float hyperparameters as one population run per group "
      "(of at most MAX members; no MAX or 0: no limit)",
  )
  p.add_argument(
      "--dry-run", action="store_true", help="print each run still to do (name, overrides, points), write nothing"
  )
  p.add_argument("--report", metavar="DIR", help="only (re)write DIR/results.{csv,md} of an existing sweep")
  p.add_argument("--metric", help="sort the results by this metric (default: fid, else modes)")
  return p


def run(args: argparse.Namespace) -> int:
  """The `sweep` subcommand: 0 when every point is done, 1 when any failed."""
  if args.report:
    if args.config or args.workdir or args.dry_run:
      raise ValueError("--report DIR reads an existing sweep; expected it without --config/--workdir/--dry-run")
    print(report.write_report(args.report, args.metric), end="")
    return 0
  if not (args.config and args.workdir):
    raise ValueError("expected --config FILE.py and --workdir DIR (or --report DIR)")
  if args.parallel is not None and args.parallel < 1:
    raise ValueError(f"--parallel {args.parallel}: expected at least 1")
  if args.vectorize < 0:
    raise ValueError(f"--vectorize {args.vectorize}: expected at most MAX >= 1 members per population, or no MAX")
  max_members = args.vectorize or None  # 1 without --vectorize: every point alone.

  plan = launch.load_sweep(args.config)
  manifest, records = launch.sync_manifest(plan, args.workdir, save=not args.dry_run)
  configs = {r.name: c for r, c in zip(records, plan.configs, strict=True)}  # an earlier record keeps its name
  todo = [r for r in records if r.status != "done"]
  groups = vectorize.regroup(todo, configs, max_members)
  runs = f" as {len(groups)} runs" if len(groups) != len(todo) else ""
  verb = "would run" if args.dry_run else "running"
  done = len(records) - len(todo)
  print(f"sweep: {len(records)} points, {done} done already, {verb} {len(todo)}{runs}", file=sys.stderr)
  if args.dry_run:
    print(vectorize.describe(groups, {r.name: r.overrides for r in todo}), end="")
    return 0
  jobs = launch.make_jobs(groups, todo, args.workdir)
  manifest.save(args.workdir)
  if args.launcher == "local":
    launch.run_local(manifest, args.workdir, jobs, args.parallel or launch.default_parallel())
  else:
    launch.run_submitit(manifest, args.workdir, jobs, configs, launch.CLUSTERS[args.launcher], args.parallel)
  print(report.write_report(args.workdir, args.metric), end="")
  failed = [r.name for r in records if r.status == "failed"]
  if failed:
    print(f"sweep: {len(failed)} of {len(records)} points failed: {', '.join(failed)}", file=sys.stderr)
  return 1 if failed else 0
