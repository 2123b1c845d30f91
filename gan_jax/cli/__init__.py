"""`gan-jax` (and `python -m gan_jax`): parse, set up JAX once, run one command (cli.commands), map errors.

Exit status: 0 success, 1 a run or check that failed, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import os
import sys

from gan_jax.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
  from gan_jax import config as config_lib

  try:
    overrides, rest = config_lib.parse_override_args(sys.argv[1:] if argv is None else argv)
  except ValueError as e:
    print(f"gan-jax: error: {e}", file=sys.stderr)
    return 2
  parser = build_parser()
  args = parser.parse_args(rest)
  if overrides and args.command != "train":
    parser.error(f"--config.* overrides only apply to `train`; got {sorted(overrides)}")
  configure_jax()
  from gan_jax.cli import commands

  try:
    return getattr(commands, args.handler)(args, overrides)
  except (ValueError, KeyError, FileNotFoundError, ImportError, TypeError) as e:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f"gan-jax {args.command}: error: {msg}", file=sys.stderr)
    return 2


def configure_jax() -> None:
  """The process-wide JAX settings of every gan-jax command, here and nowhere else."""
  import jax

  from gan_jax.train import xla_cpu

  if not jax.config.jax_compilation_cache_dir:
    # Sweeps and resumes start many processes that compile the same step: compile once, load after.
    root = os.environ.get("GAN_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gan_jax")
    jax.config.update("jax_compilation_cache_dir", os.path.join(root, "xla"))
    # Cache only programs worth it: loading a tiny one costs about what compiling it does.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  # The measured CPU speed settings (a no-op on GPU and TPU): see gan_jax/train/xla_cpu.py.
  xla_cpu.enable()
