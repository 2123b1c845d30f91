"""Train-step benchmarks: `python -m benchmarks.bench --out BENCHMARKS.md` (`make bench`).

`python -m benchmarks.bench --paired dcgan28 --a train.update_order=simultaneous` compares two variants of one
experiment in one process, in alternating windows: the way to rank two close options on a shared machine.

For each benchmark experiment and each config variant: compile time cold and from the persistent
compilation cache, steady-state step time and images/s, FLOPs per step (XLA's cost analysis) against a
matmul ceiling measured in the same run, memory, the input pipeline alone, and 1, 2 and 8 (fake) devices.

Every measurement runs in a fresh subprocess (`--child`): a cold compile then sees an empty cache, the
cached one the cache the cold one filled, and the 8-device runs get XLA_FLAGS before JAX starts. The
step is built exactly as `train.loop` builds it (population vmap, jit(shard_map), donated state).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import inception_speed
from benchmarks.timing import alternate, step_medians

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = {
  "dcgan28": ROOT / "experiments" / "bench_dcgan28.py",
  "mlp_gan": ROOT / "experiments" / "bench_mlp_gan.py",
  "ring8": ROOT / "experiments" / "mlp2d_baseline.py",
}


@dataclasses.dataclass(frozen=True)
class Variant:
  """One row per experiment: config overrides (a row whose keys the config lacks is left out), on `devices`
  (fake CPU) devices."""

  name: str
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  experiments: tuple[str, ...] = tuple(EXPERIMENTS)
  devices: int = 1
  cpu_settings: bool = True  # train.xla_cpu.enable() in the child (a no-op off CPU)


VARIANTS = (
  Variant("f32 alternating", {"train.update_order": "alternating"}),
  Variant("f32 simultaneous", {"train.update_order": "simultaneous"}),
  Variant("bf16 alternating", {"train.update_order": "alternating", "train.compute_dtype": "bfloat16"}),
  Variant("bf16 simultaneous", {"train.update_order": "simultaneous", "train.compute_dtype": "bfloat16"}),
  # JAX's defaults and flax's layers: every other row runs with train.xla_cpu.enable(), as `gan-jax` does.
  Variant(
    "f32 alternating, CPU settings off",
    {"train.update_order": "alternating"},
    ("dcgan28", "mlp_gan"),
    cpu_settings=False,
  ),
  # One device per core (JAX_NUM_CPU_DEVICES=2), against one device whose ops use both cores.
  Variant("f32 alternating, 2 devices", {"train.update_order": "alternating"}, ("dcgan28", "mlp_gan"), devices=2),
  # K members in one vmapped step (config.population); images/s then counts every member's examples.
  *(Variant(f"f32 alternating, population {k}", {"population": k}, experiments=("ring8",)) for k in (4, 8, 16)),
  # The same members split over 2 CPU devices (train.member_devices, auto), one per core: no collectives.
  *(
    Variant(f"f32 alternating, population {k}, members over 2 devices", {"population": k}, ("ring8",), devices=2)
    for k in (4, 8, 16)
  ),
)

# Reference measurements reported when the targets were set, on a 2-core AVX-512 AMD EPYC (REFERENCE_CPU),
# images/s at batch 64: (experiment, variant, implementation, low, high). With torch installed (the [bench]
# extra) the run also times benchmarks.torch_reference's PyTorch eager step itself, paired with ours, and the PyTorch
# targets use that ratio.
REFERENCES = (
  ("dcgan28", "f32 alternating", "PyTorch 2.13 eager", 560, 590),
  ("dcgan28", "f32 simultaneous", "Keras tf.function", 850, 870),
  ("dcgan28", "f32 alternating", "straightforward Flax/XLA", 225, 225),
  ("mlp_gan", "f32 alternating", "PyTorch eager", 1500, 1500),
  ("mlp_gan", "f32 alternating", "straightforward Flax/XLA", 3200, 3200),
)
REFERENCE_CPU = "2-core AMD EPYC with AVX-512"
REFERENCE_MODEL, REFERENCE_ISA = "AMD EPYC", "AVX-512"  # as machine() reports them
COLD_COMPILE_TARGET_S, CACHED_COMPILE_TARGET_S, PIPELINE_TARGET_X = 15.0, 3.0, 10.0
# (experiment, variant, multiple of the reference's midpoint) the step should reach.
THROUGHPUT_TARGETS = (
  ("dcgan28", "f32 alternating", "PyTorch 2.13 eager", 1.0),
  ("dcgan28", "f32 alternating", "PyTorch 2.13 eager", 1.5),
  ("mlp_gan", "f32 alternating", "PyTorch eager", 2.5),
)


# ---------------------------------------------------------------------------------------------- child


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
  """One build + compile (+ timed steps, + pipeline) of one experiment variant, in this fresh process."""
  import jax

  if spec.get("cpu_settings", True):
    from gan_jax.train import xla_cpu

    xla_cpu.enable()
  if spec["cache_dir"]:
    jax.config.update("jax_compilation_cache_dir", spec["cache_dir"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  hits = []
  jax.monitoring.register_event_listener(lambda event, **_: hits.append(event == "/jax/compilation_cache/cache_hits"))

  setup = build(spec["config"], spec["overrides"])
  config, mesh, state, train_step, batches = setup.config, setup.mesh, setup.state, setup.step, setup.batches

  hits.clear()
  t0 = time.perf_counter()
  lowered = train_step.lower(state, batches[0])
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  memory = compiled.memory_analysis()
  out = {
    "devices": mesh.devices.size,
    "lower_s": t1 - t0,
    "compile_s": t2 - t1,
    "cache_hit": any(hits),
    "flops": float(cost.get("flops", 0.0)) * mesh.devices.size,
    "argument_bytes": memory.argument_size_in_bytes,
    "temp_bytes": memory.temp_size_in_bytes,
    "output_bytes": memory.output_size_in_bytes,
    "compute_dtype": config.train.compute_dtype,
    "examples_per_step": config.train.batch_size * config.train.d_steps * config.population.size,
  }
  if spec["repeats"]:
    out["step_s"] = step_medians(_Stepper(compiled, state, batches), spec["warmup"], spec["repeats"], spec["steps"])
  if spec["pipeline_s"]:
    out["pipeline_examples_per_s"] = pipeline_rate(config, spec["pipeline_s"])
  out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return out


@dataclasses.dataclass
class Setup:
  config: Any
  mesh: Any
  state: Any
  step: Any  # jit(shard_map(step)), not yet lowered
  batches: list  # 4 device batches


def build(config_path: str, overrides: dict[str, Any]) -> Setup:
  """An experiment variant's state, step and batches, exactly as `train.loop` builds them (train.setup)."""
  from gan_jax import config as config_lib
  from gan_jax import parallel
  from gan_jax.train import loop, setup

  config = config_lib.load(config_path)
  config_lib.apply_overrides(config, overrides)
  run = setup.build(config)
  host_batches = loop.step_batches(run.members, 0, config.train.d_steps, config.train.batch_size)
  return Setup(
    config,
    run.mesh,
    run.init_state(),
    run.train_step(),
    [parallel.put_batch(next(host_batches), run.mesh) for _ in range(4)],
  )


def paired(
  config_path: str,
  overrides_a: dict[str, Any],
  overrides_b: dict[str, Any],
  windows: int = 10,
  steps: int = 15,
  warmup: int = 5,
) -> dict[str, Any]:
  """A/B of two variants of one experiment in this process: both compiled, then `alternate`d windows.

  Separate processes rank close variants poorly on a shared machine (one step time can move 30% from run
  to run). Returns each window's median step seconds, the paired ratios A/B (> 1: B is faster; their median
  is the comparison to quote) and each variant's metrics after its last step.
  """
  import jax

  steppers = [_Stepper.compiled(build(config_path, overrides)) for overrides in (overrides_a, overrides_b)]
  seconds = alternate(steppers, warmup, windows, steps)
  ratios = [a / b for a, b in zip(*seconds, strict=True)]
  return {
    "a_s": seconds[0],
    "b_s": seconds[1],
    "ratios": ratios,
    "ratio": float(np.median(ratios)),
    "metrics": jax.device_get([s.metrics for s in steppers]),
  }


class _Stepper:
  """A compiled step threading its state through calls, each waiting for the new state (no overlap)."""

  def __init__(self, step, state, batches: Sequence):
    self.step, self.state, self.batches, self.metrics = step, state, batches, None

  @classmethod
  def compiled(cls, setup: Setup) -> _Stepper:
    return cls(setup.step.lower(setup.state, setup.batches[0]).compile(), setup.state, setup.batches)

  def __call__(self, i: int) -> None:
    import jax

    self.state, self.metrics = self.step(self.state, self.batches[i % len(self.batches)])
    jax.block_until_ready(self.state)


def pipeline_rate(config, seconds: float) -> float:
  """Examples/s of `data.make_batches` alone, after its first batches (and prefetch threads) are up."""
  from gan_jax import data

  batch = config.train.batch_size
  it = data.make_batches(config, start_step=0, examples_per_step=batch)
  for _ in range(20):
    next(it)
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds:
    next(it)
    n += batch
  return n / (time.perf_counter() - t0)


def matmul_ceiling(dtype: str = "float32", size: int = 2048, repeats: int = 20) -> float:
  """GFLOP/s of a jitted [size, size] @ [size, size] in `dtype`: what this machine's XLA reaches on a large dot."""
  import jax

  a = jax.random.normal(jax.random.PRNGKey(0), (size, size)).astype(dtype)
  f = jax.jit(lambda a: a @ a).lower(a).compile()
  jax.block_until_ready(f(a))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(f(a))
    times.append(time.perf_counter() - t)
  return 2 * size**3 / float(np.median(times)) / 1e9


# ---------------------------------------------------------------------------------------------- parent


def run_json(argv: list[str], what: str, env: dict[str, str] | None = None) -> dict[str, Any]:
  """`python argv...` in a fresh process; its last stdout line, parsed as JSON."""
  proc = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, cwd=ROOT)
  if proc.returncode:
    raise RuntimeError(f"{what} failed:\n{proc.stderr[-4000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def child(spec: dict[str, Any], devices: int) -> dict[str, Any]:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  flags = env.get("XLA_FLAGS", "")
  env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
  return run_json(["-m", "benchmarks.bench", "--child", json.dumps(spec)], f"bench child {spec['name']}", env)


def variants_of(name: str, variants: Sequence[Variant]) -> Iterator[Variant]:
  """The variants for `name` whose override keys all exist in its config."""
  from gan_jax import config as config_lib

  keys = set(config_lib.flatten(config_lib.to_dict(config_lib.load(str(EXPERIMENTS[name])))))
  for v in variants:
    if name in v.experiments and all(k in keys for k in v.overrides):
      yield v


def torch_paired(name: str, warmup: int, repeats: int, steps: int) -> dict[str, Any]:
  """PyTorch's step and ours in this process, in alternating windows of `steps` steps, `repeats` each.

  Two processes one after the other see different load on a shared machine (PyTorch's rate moved from
  649 to 766 images/s between two `make bench` runs); a window of each, back to back, sees the same.
  """
  from benchmarks import torch_reference

  setup = build(str(EXPERIMENTS[name]), {})
  batch = setup.config.train.batch_size
  jax_s, torch_s = alternate([_Stepper.compiled(setup), torch_reference.stepper(name, batch)], warmup, repeats, steps)
  return {"step_s": torch_s, "jax_step_s": jax_s, "batch": batch, **torch_reference.about()}


def torch_child(name: str, timing: dict[str, int]) -> dict[str, Any]:
  """torch_paired for `name`, in a fresh process like every JAX row."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")  # the PyTorch reference is the CPU one, on any machine
  return run_json(
    ["-m", "benchmarks.bench", "--torch-child", json.dumps({"name": name, **timing})], f"PyTorch reference {name}", env
  )


def measure_torch(names: Sequence[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
  """The PyTorch eager reference of each experiment torch_reference has, when torch is installed."""
  if importlib.util.find_spec("torch") is None:
    print("  torch not installed (pip install -e '.[bench]'): PyTorch rates are the stored ones", file=sys.stderr)
    return {}
  from benchmarks.torch_reference import MODELS

  timing = dict(warmup=args.warmup, repeats=args.repeats, steps=args.steps)
  out = {}
  for name in names:
    if name in MODELS:
      out[name] = torch_child(name, timing)
      print(
        f"  {name} / PyTorch eager: {1e3 * float(np.median(out[name]['step_s'])):.1f} ms/step against "
        f"{1e3 * float(np.median(out[name]['jax_step_s'])):.1f} in the paired windows: gan_jax "
        f"{paired_ratio(out[name]):.2f}x",
        file=sys.stderr,
      )
  return out


def measure_inception() -> dict[str, Any] | None:
  """The FID Inception's features, Flax port against PyTorch (benchmarks.inception_speed), where both are here."""
  from gan_jax.eval import inception

  try:
    inception.weights_path()
  except FileNotFoundError:
    print("  no FID Inception weights (make inception): its row is left out", file=sys.stderr)
    return None
  if importlib.util.find_spec("torch") is None:
    return None
  run = run_json(["-m", "benchmarks.inception_speed"], "Inception features")
  print(f"  Inception features: gan_jax {run['ratio']:.2f}x PyTorch", file=sys.stderr)
  return run


def measure(names: Sequence[str], args: argparse.Namespace) -> list[dict[str, Any]]:
  """All rows: per experiment and variant a cold and a cached compile; 8 devices for the first variant."""
  timing = dict(warmup=args.warmup, repeats=args.repeats, steps=args.steps)
  rows = []
  for name in names:
    for i, variant in enumerate(variants_of(name, VARIANTS)):
      cache_dir = tempfile.mkdtemp(prefix="gan_jax_bench_cache_")
      try:
        spec = dict(
          name=f"{name} / {variant.name}",
          config=str(EXPERIMENTS[name]),
          overrides=variant.overrides,
          cache_dir=cache_dir,
          cpu_settings=variant.cpu_settings,
        )
        cold = child({**spec, "repeats": 0, "pipeline_s": 0.0}, devices=variant.devices)
        warm = child({**spec, **timing, "pipeline_s": args.pipeline_s if i == 0 else 0.0}, devices=variant.devices)
        rows.append(dict(experiment=name, variant=variant.name, cold=cold, **warm))
        if i == 0 and 8 not in args.skip_devices:
          eight = child({**spec, **timing, "cache_dir": "", "pipeline_s": 0.0}, devices=8)
          rows.append(dict(experiment=name, variant=variant.name, **eight))
      finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
      print(f"  {name} / {variant.name}: {summary(rows[-1])}", file=sys.stderr)
  return rows


def summary(row: dict[str, Any]) -> str:
  step = float(np.median(row["step_s"]))
  return f"{row['devices']} device(s), {step * 1e3:.1f} ms/step, {row['examples_per_step'] / step:.0f} examples/s"


# ---------------------------------------------------------------------------------------------- report


def vector_isa(cpu_flags: str | None = None) -> str:
  """The widest x86 vector extension the CPU reports ("AVX-512", "AVX2", ...), and its bfloat16 matrix unit
  ("AVX-512, AMX-BF16"): XLA:CPU and oneDNN pick their kernels by them, so step times, and these benchmarks'
  ratios, move with them (oneDNN's bfloat16 matmuls run on AMX; XLA:CPU's do not)."""
  if cpu_flags is None:
    try:
      lines = Path("/proc/cpuinfo").read_text().splitlines()
      cpu_flags = next((line for line in lines if line.startswith("flags")), "")
    except OSError:
      return platform.machine() or "unknown"
  flags = set(cpu_flags.split(":", 1)[-1].split())
  matrix = ", AMX-BF16" if "amx_bf16" in flags else ""
  for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2")):
    if flag in flags:
      return name + matrix
  return platform.machine() or "unknown"


def machine() -> dict[str, str]:
  import flax
  import jax
  import jaxlib

  model = platform.processor() or "unknown"
  try:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
  except (OSError, subprocess.CalledProcessError, StopIteration):
    pass
  return {
    "cpu": f"{model}, {os.cpu_count()} cores",
    "isa": vector_isa(),
    "versions": f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, flax {flax.__version__}, "
    f"numpy {np.__version__}, Python {platform.python_version()}",
    "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    "xla_flags": os.environ.get("XLA_FLAGS", "") or "(none)",
  }


def load_average() -> str:
  return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def report(
  rows: list[dict[str, Any]],
  info: dict[str, str],
  ceilings: dict[str, tuple[float, float]],
  loads: tuple[str, str],
  command: str,
  torch_runs: dict[str, dict[str, Any]] | None = None,
) -> str:
  """`ceilings`: compute dtype -> the matmul ceiling's GFLOP/s before and after the rows; each row is held
  against the mean of its own dtype's. `torch_runs`: experiment -> torch_reference's result, measured in this run."""
  torch_runs = torch_runs or {}
  lines = [
    "# Benchmarks",
    "",
    f"`{command}` ({'; '.join(f'{k}: {v}' for k, v in info.items())}).",
    f"Load average (1, 5, 15 min) before: {loads[0]}; after: {loads[1]}. The machine is shared: step times are",
    "medians of per-step times (each step waits for its result) over several repeats; the range is that of the",
    "repeats' medians. Images/s counts real examples consumed: batch size x D steps (x population) per step.",
    "Matmul ceilings (jitted 2048x2048 matmul, GFLOP/s before and after the rows): "
    + "; ".join(f"{d} {c[0]:.0f} and {c[1]:.0f}" for d, c in ceilings.items())
    + ".",
    "",
    "| experiment | variant | devices | compile cold s | compile cached s | step ms | images/s | GFLOP/step "
    "| GFLOP/s (% ceiling) | XLA args+temp MB | peak RSS MB |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    step = float(np.median(r["step_s"]))
    compile_cold = f"{r['cold']['lower_s'] + r['cold']['compile_s']:.1f}" if "cold" in r else "-"
    cached = f"{r['lower_s'] + r['compile_s']:.1f}" + ("" if r["cache_hit"] else " (miss)") if "cold" in r else "-"
    gflops, ceiling = r["flops"] / step / 1e9, float(np.mean(ceilings[r["compute_dtype"]]))
    lines.append(
      f"| {r['experiment']} | {r['variant']} | {r['devices']} | {compile_cold} | {cached} "
      f"| {step * 1e3:.1f} [{min(r['step_s']) * 1e3:.1f}-{max(r['step_s']) * 1e3:.1f}] "
      f"| {r['examples_per_step'] / step:.0f} | {r['flops'] / 1e9:.2f} "
      f"| {gflops:.0f} ({100 * gflops / ceiling:.0f}%) "
      f"| {(r['argument_bytes'] + r['temp_bytes']) / 2**20:.1f} | {r['peak_rss_bytes'] / 2**20:.0f} |"
    )
  lines += [
    "",
    "Input pipeline alone (`gan_jax.data.make_batches`), against what the 1-device step consumes:",
    "",
    "| experiment | pipeline images/s | step images/s | headroom |",
    "|---|---:|---:|---:|",
  ]
  for r in rows:
    if "pipeline_examples_per_s" in r:
      consumed = r["examples_per_step"] / float(np.median(r["step_s"]))
      rate = r["pipeline_examples_per_s"]
      lines.append(f"| {r['experiment']} | {rate:.0f} | {consumed:.0f} | {rate / consumed:.1f}x |")
  lines += [
    "",
    'Against references (images/s at batch 64; 1 device). "Paired" rows ran `benchmarks.torch_reference` (same',
    "networks, same alternating step) and the gan_jax step in one process after the rows above, in",
    "alternating windows; their gan_jax rate is that of its own windows, and the ratio the median of the",
    "windows' ratios. The other rows are the rates reported when the targets were set, on a",
    f"{REFERENCE_CPU}{other_machine(info)}:",
    "",
    "| experiment | variant | reference | reference images/s | gan_jax images/s | ratio |",
    "|---|---|---|---:|---:|---:|",
  ]
  for experiment, run in torch_runs.items():
    ours, theirs = torch_rates(run)
    lines.append(
      f"| {experiment} | f32 alternating | {torch_label(run)} | {theirs:.0f} | {ours:.0f} | {paired_ratio(run):.2f}x |"
    )
  for experiment, variant, impl, ref_rate, ref_text in references(rows):
    rate = rate_of(one_device_row(rows, experiment, variant))
    lines.append(f"| {experiment} | {variant} | {impl} | {ref_text} | {rate:.0f} | {rate / ref_rate:.2f}x |")
  lines += ["", "Targets:", ""] + [f"- {t}" for t in targets(rows, torch_runs, info)]
  return "\n".join(lines) + "\n"


def one_device_row(rows: list[dict[str, Any]], experiment: str, variant: str) -> dict[str, Any] | None:
  matches = (r for r in rows if (r["experiment"], r["variant"], r["devices"]) == (experiment, variant, 1))
  return next(matches, None)


def rate_of(row: dict[str, Any]) -> float:
  return row["examples_per_step"] / float(np.median(row["step_s"]))


def torch_rates(run: dict[str, Any]) -> tuple[float, float]:
  """(gan_jax, PyTorch) images/s in a torch_paired run's windows."""
  return tuple(run["batch"] / float(np.median(run[k])) for k in ("jax_step_s", "step_s"))


def paired_ratio(run: dict[str, Any]) -> float:
  """Median over the paired windows of PyTorch's step time over ours: > 1 when gan_jax is faster."""
  return float(np.median(np.asarray(run["step_s"]) / np.asarray(run["jax_step_s"])))


def torch_label(run: dict[str, Any]) -> str:
  return f"PyTorch {run['torch']} eager, paired in this run ({run['threads']} threads)"


def references(rows: list[dict[str, Any]]) -> list[tuple]:
  """(experiment, variant, implementation, images/s, as printed) of every stored reference with a gan_jax row."""
  out = [
    (e, v, impl, (low + high) / 2, f"{low}-{high}" if low != high else f"~{low}")
    for e, v, impl, low, high in REFERENCES
  ]
  return [r for r in out if one_device_row(rows, r[0], r[1]) is not None]


def other_machine(info: dict[str, str]) -> str:
  """A warning when this run's CPU is not the one the stored reference rates were measured on."""
  isa, model = info.get("isa", REFERENCE_ISA), info.get("cpu", REFERENCE_MODEL).split(",")[0]
  if isa == REFERENCE_ISA and REFERENCE_MODEL in model:
    return ""
  return f" (this run's CPU is {model} with {isa}: those ratios compare two machines)"


def targets(
  rows: list[dict[str, Any]], torch_runs: dict[str, dict[str, Any]] | None = None, info: dict[str, str] | None = None
) -> list[str]:
  torch_runs = torch_runs or {}
  out = []
  for experiment, variant, impl, multiple in THROUGHPUT_TARGETS:
    row = one_device_row(rows, experiment, variant)
    if row is None:
      continue
    if impl.startswith("PyTorch") and experiment in torch_runs:
      run = torch_runs[experiment]
      ratio, (ours, theirs) = paired_ratio(run), torch_rates(run)
      met = "met" if ratio >= multiple else "NOT met"
      out.append(
        f"{experiment} {variant} >= {multiple:g}x {torch_label(run)}: {ratio:.2f}x over "
        f"{len(run['step_s'])} paired windows ({ours:.0f} against {theirs:.0f} images/s), {met}"
      )
      continue
    ref = next((low + high) / 2 for e, v, i, low, high in REFERENCES if (e, v, i) == (experiment, variant, impl))
    rate = rate_of(row)
    met = "met" if rate >= multiple * ref else "NOT met"
    out.append(
      f"{experiment} {variant} >= {multiple:g}x {impl} ({multiple * ref:.0f} images/s): {rate:.0f}, "
      f"{met}{other_machine(info or {})}"
    )
  for r in rows:
    if "cold" in r:
      cold, cached = r["cold"]["lower_s"] + r["cold"]["compile_s"], r["lower_s"] + r["compile_s"]
      met = "met" if cold < COLD_COMPILE_TARGET_S and cached < CACHED_COMPILE_TARGET_S and r["cache_hit"] else "NOT met"
      out.append(
        f"{r['experiment']} {r['variant']} compile < {COLD_COMPILE_TARGET_S:g} s cold, "
        f"< {CACHED_COMPILE_TARGET_S:g} s cached: {cold:.1f} s, {cached:.1f} s, {met}"
      )
    if "pipeline_examples_per_s" in r:
      x = r["pipeline_examples_per_s"] / (r["examples_per_step"] / float(np.median(r["step_s"])))
      met = "met" if x >= PIPELINE_TARGET_X else "NOT met"
      out.append(f"{r['experiment']} input pipeline >= {PIPELINE_TARGET_X:g}x step consumption: {x:.1f}x, {met}")
  return out


def paired_summary(name: str, args: argparse.Namespace) -> str:
  def overrides(items: list[str]) -> dict[str, str]:
    bad = [item for item in items if "=" not in item]
    if bad:
      raise SystemExit(f"override {bad[0]!r}: expected KEY=VALUE")
    return dict(item.split("=", 1) for item in items)

  a, b = overrides(args.a), overrides(args.b)
  result = paired(str(EXPERIMENTS[name]), a, b, args.windows, args.steps, args.warmup)
  ratios = result["ratios"]
  return (
    f"{name}: A {a or '(defaults)'} {1e3 * np.median(result['a_s']):.2f} ms/step, "
    f"B {b or '(defaults)'} {1e3 * np.median(result['b_s']):.2f} ms/step; A/B over {len(ratios)} paired "
    f"windows of {args.steps} steps: median {result['ratio']:.3f} "
    f"(range {min(ratios):.3f}-{max(ratios):.3f}; > 1: B faster)"
  )


# ---------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", help="markdown file to write (default: print)")
  parser.add_argument("--experiments", default=",".join(EXPERIMENTS), help=f"comma-separated, of {list(EXPERIMENTS)}")
  parser.add_argument("--repeats", type=int, default=5, help="timed windows per row")
  parser.add_argument("--steps", type=int, default=20, help="steps per timed window")
  parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
  parser.add_argument("--pipeline-s", type=float, default=3.0, help="seconds of input pipeline alone")
  parser.add_argument(
    "--skip-devices",
    type=lambda s: {int(x) for x in s.split(",") if x},
    default=set(),
    help="e.g. 8: leave out the 8-device rows",
  )
  parser.add_argument("--paired", metavar="EXPERIMENT", help="A/B two variants of one experiment in one process")
  parser.add_argument("--a", nargs="*", default=[], metavar="KEY=VALUE", help="--paired: variant A's overrides")
  parser.add_argument("--b", nargs="*", default=[], metavar="KEY=VALUE", help="--paired: variant B's overrides")
  parser.add_argument("--windows", type=int, default=10, help="--paired: windows of --steps steps per variant")
  parser.add_argument("--child", help=argparse.SUPPRESS)
  parser.add_argument("--torch-child", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if not args.child:  # as `gan-jax` runs: the PyTorch reference and --paired alike (a child decides for itself)
    from gan_jax.train import xla_cpu

    xla_cpu.enable()
  if args.child:
    print(json.dumps(run_child(json.loads(args.child))))
    return 0
  if args.torch_child:
    print(json.dumps(torch_paired(**json.loads(args.torch_child))))
    return 0
  names = [n for n in (args.paired or args.experiments).split(",") if n]
  unknown = sorted(set(names) - set(EXPERIMENTS))
  if unknown:
    parser.error(f"unknown experiments {unknown}; expected some of {list(EXPERIMENTS)}")
  if args.paired:
    print(paired_summary(args.paired, args))
    return 0

  command = "python -m benchmarks.bench " + " ".join(sys.argv[1:] if argv is None else argv)
  info, load_before = machine(), load_average()
  dtypes = ("float32", "bfloat16")
  ceiling_before = {d: matmul_ceiling(d) for d in dtypes}
  rows = measure(names, args)
  torch_runs = measure_torch(names, args)
  inception_run = measure_inception()
  ceilings = {d: (ceiling_before[d], matmul_ceiling(d)) for d in dtypes}
  loads = (load_before, load_average())
  text = report(rows, info, ceilings, loads, command.strip(), torch_runs)
  if inception_run:
    text += "\n".join(inception_speed.report_lines(inception_run)) + "\n"
  if args.out:
    Path(args.out).write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
  else:
    print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
