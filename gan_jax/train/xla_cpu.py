"""The CPU speed settings, behind one door: `enable()`, called by the CLI and the benchmarks, nowhere else.

Each setting was measured on XLA:CPU and only there (docs/speed.md has the numbers and what was left out). On
any other backend `enable()` does nothing, and the step compiles with JAX's defaults and flax's own layers.
What it turns on, for the rest of the process:
- XLA:CPU compiler options for the train step (COMPILER_OPTIONS);
- the custom gradients of models.fast_ops in the models train.setup and train.run.load_run build;
- straight-line lowering of jax.random's large threefry draws (a private JAX rule; see `unroll_threefry`);
- glibc malloc keeping freed memory, so XLA's per-call temporary buffer is not page-faulted in at every step.
None of them changes a random bit; the options and custom gradients change float rounding only.
"""

from __future__ import annotations

import ctypes
import math
import warnings

import jax

COMPILER_OPTIONS = {
  # YNNPACK keeps dots and reductions; convolutions go to XLA's own kernels, faster here for the DCGAN.
  "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
  # Region analysis sees that donated parameters and moments can be updated in place instead of copied.
  "xla_cpu_copy_insertion_use_region_analysis": True,
}
# The JAX minor versions whose private threefry lowering rules `unroll_threefry` was written against.
THREEFRY_TESTED_VERSIONS = ("0.10",)
# Draws of at least this many 64-bit blocks unroll; key splits and fold_ins keep the loop (compile time).
THREEFRY_UNROLL_MIN = 1024

_enabled = False


def enable() -> bool:
  """Turns the CPU settings on when JAX's backend is the CPU; returns whether they are on."""
  global _enabled
  if jax.default_backend() != "cpu":
    return False
  keep_freed_memory()
  unroll_threefry()
  _enabled = True
  return True


def enabled() -> bool:
  return _enabled


def compiler_options() -> dict[str, str | bool]:
  """The train step's XLA options: COMPILER_OPTIONS once `enable()` is on, else none (JAX's defaults)."""
  return dict(COMPILER_OPTIONS) if _enabled else {}


def unroll_threefry() -> bool:
  """Lowers large threefry draws on CPU as straight-line code, as JAX itself does on GPU and TPU; same bits.

  JAX's CPU rule rolls threefry's 20 rounds into a while loop (to save compile time), and every iteration is
  a pass over memory of its own; unrolled, a draw fuses into one loop. Uses private JAX names: on a JAX
  minor version outside THREEFRY_TESTED_VERSIONS, or where the names are missing, JAX's rule stays and False
  says so. Idempotent.
  """
  if ".".join(jax.__version__.split(".")[:2]) not in THREEFRY_TESTED_VERSIONS:
    warnings.warn(
      f"jax {jax.__version__}: threefry draws keep JAX's CPU lowering (tested on {THREEFRY_TESTED_VERSIONS})",
      stacklevel=2,
    )
    return False
  try:
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32

    primitive = threefry2x32.threefry2x32_p
    rolled, unrolled = threefry2x32._threefry2x32_cpu_lowering_rule, threefry2x32._threefry2x32_lowering_rule
  except (ImportError, AttributeError):
    return False

  def rule(ctx, *keys_and_counts):
    blocks = math.prod(ctx.avals_out[0].shape)
    return (unrolled if blocks >= THREEFRY_UNROLL_MIN else rolled)(ctx, *keys_and_counts)

  mlir.register_lowering(primitive, rule, platform="cpu")
  return True


def keep_freed_memory() -> None:
  """glibc malloc serves large blocks from its heap and keeps freed memory (Linux; elsewhere a no-op).

  XLA:CPU allocates a program's temporary buffer at every call; past glibc's mmap threshold each one is a
  fresh mapping, unmapped when freed, so every step page-faults it in again.
  """
  try:
    libc = ctypes.CDLL("libc.so.6")
  except OSError:
    return
  m_trim_threshold, m_mmap_max = -1, -4  # malloc.h
  libc.mallopt(m_mmap_max, 0)
  libc.mallopt(m_trim_threshold, 1 << 30)
