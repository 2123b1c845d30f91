"""How much faster one population run of K members trains than K separate runs of the same members.

  .venv/bin/python scripts/population_speedup.py [--ks 1 4 8 16] [--steps 1000] [--repeats 3] [--cpu-devices 2]

On experiments/mlp2d_baseline.py (mlp2d): for each K, members with seeds 0..K-1 and discriminator rates spread
over [2e-4, 2e-3] train `--steps` steps either as one run with `population=K`, or as K calls of
`train_and_evaluate`, one member each. With `--cpu-devices N` the population also trains with its
members split over N CPU devices (JAX_NUM_CPU_DEVICES=N, train.member_devices auto; K = 1 keeps one
device), one per core; the separate runs keep JAX's one CPU device, on which data parallelism would only
add collectives. Every measurement is its own process, with a fresh compilation cache and the
allocator set up as `gan-jax train` sets them up, so the separate runs reuse the first one's compiled
step only through that on-disk cache, as the K `gan-jax train` processes of a sweep would. Compile time (tracing,
lowering, XLA compilation and cache reads, from jax.monitoring) is measured on its own; the time without
it still holds each run's fixed costs (config, checkpoint, sample plot), which K separate runs pay K times.
A throwaway run on other shapes first loads the libraries and starts the backend, outside the timings.

Rounds (`--repeats`) go over every K in turn, so a change of load hits all K alike; the medians over the
rounds replace the section between the markers in docs/populations.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(ROOT, "experiments", "mlp2d_baseline.py")
DOC = os.path.join(ROOT, "docs", "populations.md")
BEGIN, END = "<!-- population_speedup: begin -->", "<!-- population_speedup: end -->"
COMPILE_EVENTS = (
  "/jax/core/compile/jaxpr_trace_duration",
  "/jax/core/compile/jaxpr_to_mlir_module_duration",
  "/jax/core/compile/backend_compile_duration",
)
MODES = ("population", "separate", "split")  # split: the population with its members over --cpu-devices


def members(k: int) -> dict[str, list]:
  lrs = [2e-4 * 10 ** (i / max(k - 1, 1)) for i in range(k)]
  return {"seed": list(range(k)), "optim.d.lr": [float(f"{lr:.3g}") for lr in lrs]}


def measure(mode: str, k: int, steps: int, workdir: str) -> dict[str, float]:
  """Runs in the child process: wall and compile seconds of one mode, fixed costs included."""
  import jax
  from jax import monitoring

  from gan_jax import config as config_lib
  from gan_jax.cli import configure_jax
  from gan_jax.train.loop import train_and_evaluate

  compile_s = collections.Counter()
  monitoring.register_event_duration_secs_listener(
    lambda event, secs, **_: compile_s.update({"s": secs}) if event in COMPILE_EVENTS else None
  )
  configure_jax()  # as `gan-jax` runs: the compilation cache and the CPU settings

  def config(**overrides):
    c = config_lib.load(EXPERIMENT)
    config_lib.apply_overrides(c, {"train.steps": steps, **overrides})
    return c

  warmup = config(**{"train.steps": 2, "train.batch_size": 8, "model.g_width": 8, "model.d_width": 8})
  train_and_evaluate(warmup, os.path.join(workdir, "warmup"))
  values = members(k)
  if mode in ("population", "split"):
    # split: members over as many devices as divide K (K = 1 would otherwise split its batch instead).
    layout = {"train.num_devices": math.gcd(k, jax.local_device_count())} if mode == "split" else {}
    population = {
      "population.size": k,
      "population.seed": tuple(values["seed"]),
      "population.d_lr": tuple(values["optim.d.lr"]),
    }
    runs = [config(**population, **layout)] if k > 1 else [config(**layout)]
  else:
    runs = [config(**{key: v[i] for key, v in values.items()}) for i in range(k)]
  compile_s.clear()
  load = os.getloadavg()[0]
  start = time.perf_counter()
  for i, run in enumerate(runs):
    jax.block_until_ready(train_and_evaluate(run, os.path.join(workdir, f"run{i}")))
  wall = time.perf_counter() - start
  return {"wall_s": wall, "compile_s": compile_s["s"], "load": load, "device": str(jax.devices()[0].device_kind)}


def child(mode: str, k: int, steps: int, cpu_devices: int) -> dict[str, float]:
  """One measurement in a fresh process, with its own empty compilation cache and workdirs."""
  with tempfile.TemporaryDirectory(prefix="population_speedup_") as tmp:
    env = {**os.environ, "GAN_JAX_CACHE": tmp, "PYTHONUNBUFFERED": "1"}
    if mode == "split":
      env["JAX_NUM_CPU_DEVICES"] = str(cpu_devices)
    cmd = [sys.executable, __file__, "--child", mode, "--ks", str(k), "--steps", str(steps), "--workdir", tmp]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def machine() -> str:
  cpu = platform.processor() or platform.machine()
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else cpu
  from benchmarks.bench import vector_isa

  return f"{cpu} ({vector_isa()}), {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def table(results: dict[int, dict[str, list[dict]]], steps: int, cpu_devices: int) -> list[str]:
  """Per K, the median over rounds of each column.

  Rates and speed-ups are taken within a round (population and separate runs measured one after
  the other), then their medians, so a load change between rounds does not skew a ratio.
  """
  split = cpu_devices > 1
  lines = [
    "| K | population: compile s | population: total s | separate: compile s | separate: total s "
    "| steps/s, population (every member) | steps/s, separate (each run) | speed-up excl. compile "
    "| speed-up incl. compile |"
    + (f" members over {cpu_devices} devices: total s | speed-up incl. compile |" if split else ""),
    "|" + "---:|" * (11 if split else 9),
  ]
  for k, by_mode in results.items():
    rounds = []
    splits = by_mode["split"] if split else [None] * len(by_mode["population"])
    for pop, sep, spl in zip(by_mode["population"], by_mode["separate"], splits, strict=True):
      train_pop, train_sep = pop["wall_s"] - pop["compile_s"], sep["wall_s"] - sep["compile_s"]
      rounds.append(
        (
          pop["compile_s"],
          pop["wall_s"],
          sep["compile_s"],
          sep["wall_s"],
          steps / train_pop,
          k * steps / train_sep,
          train_sep / train_pop,
          sep["wall_s"] / pop["wall_s"],
          *((spl["wall_s"], sep["wall_s"] / spl["wall_s"]) if split else ()),
        )
      )
    med = [statistics.median(column) for column in zip(*rounds, strict=True)]
    cells = [f"{k}", *(f"{v:.1f}" for v in med[:4]), *(f"{v:.0f}" for v in med[4:6]), *(f"{v:.2f}x" for v in med[6:8])]
    if split:
      cells += [f"{med[8]:.1f}", f"{med[9]:.2f}x"]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def write_doc(section: str) -> None:
  with open(DOC) as f:
    text = f.read()
  head, begin, rest = text.partition(BEGIN)
  _, end, tail = rest.partition(END)
  if not (begin and end):
    raise ValueError(f"{DOC} lacks the markers {BEGIN} ... {END} around the generated section")
  with open(DOC, "w") as f:
    f.write(f"{head}{BEGIN}\n{section}{END}{tail}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8, 16], help="population sizes")
  parser.add_argument("--steps", type=int, default=1000, help="train steps of every member")
  parser.add_argument("--repeats", type=int, default=3, help="rounds over all K; the table quotes medians")
  parser.add_argument(
    "--cpu-devices",
    type=int,
    default=1,
    help="> 1: also train each population with its members split over this many CPU devices",
  )
  parser.add_argument("--no-doc", action="store_true", help=f"print the table without updating {DOC}")
  parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
  parser.add_argument("--workdir", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(measure(args.child, args.ks[0], args.steps, args.workdir)))
    return

  command = shlex.join(["python", os.path.relpath(__file__, ROOT), *sys.argv[1:]])
  before = os.getloadavg()
  modes = MODES if args.cpu_devices > 1 else MODES[:2]
  results: dict[int, dict[str, list[dict]]] = {k: {mode: [] for mode in modes} for k in args.ks}
  for r in range(args.repeats):
    for k in args.ks:
      for mode in modes:
        res = child(mode, k, args.steps, args.cpu_devices)
        results[k][mode].append(res)
        print(
          f"round {r + 1}/{args.repeats} K={k:<2} {mode:<10} wall {res['wall_s']:7.1f} s, "
          f"compile {res['compile_s']:5.1f} s, load {res['load']:.2f}",
          file=sys.stderr,
          flush=True,
        )
  after = os.getloadavg()
  loads = [res["load"] for by_mode in results.values() for rows in by_mode.values() for res in rows]
  device = next(iter(results.values()))["population"][0]["device"]
  section = "\n".join(
    [
      f"Command: `{command}` ({args.steps} steps per member; medians of {args.repeats} rounds).",
      "",
      f"Machine: {machine()}; JAX device: {device}; 1-minute load average {before[0]:.2f} before, "
      f"{after[0]:.2f} after, {min(loads):.2f} to {max(loads):.2f} at the start of the measurements.",
      "",
      *table(results, args.steps, args.cpu_devices),
      "",
    ]
  )
  print(section)
  if not args.no_doc:
    write_doc(section)


if __name__ == "__main__":
  main()
