"""`gan-jax` (and `python -m gan_jax`): parse, set up JAX once, run one command (cli.commands), map errors.

Exit status: 0 success; 1 a run or check that failed (a diverged run, a full disk, a curve off its reference);
2 bad input (one line on stderr, nothing on disk changed); 128 + N a run stopped by signal N after saving a
checkpoint (130 SIGINT, 143 SIGTERM, 140 SIGUSR2: see train.guard).
"""

from __future__ import annotations

import os
import sys
import traceback

from gan_jax.cli.parser import build_parser


def entry() -> None:
  """The console script: `main`, then exit. A failed command exits at once after its one line: background
  threads (orbax's saves, TensorBoard's writer) would otherwise print their own tracebacks of the same fault
  at interpreter exit; everything the run owns was flushed and closed before `main` returned.

  The working directory joins the import path first, as under `python -m gan_jax`: a `loss.name` of a module
  beside the user (`mylosses:my_loss`) imports the same from either entry point."""
  if "" not in sys.path and os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
  status = main()
  if status:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
  sys.exit(0)


def main(argv: list[str] | None = None) -> int:
  from gan_jax import config as config_lib

  die_with_parent()
  try:
    overrides, rest = config_lib.parse_override_args(sys.argv[1:] if argv is None else argv)
  except ValueError as e:
    print(f"gan-jax: error: {e}", file=sys.stderr)
    return 2
  parser = build_parser()
  args = parser.parse_args(rest)
  if overrides and args.command != "train":
    parser.error(f"--config.* overrides only apply to `train`; got {sorted(overrides)}")
  say = lambda msg: print(f"gan-jax {args.command}: {msg}", file=sys.stderr)
  argv = sys.argv[1:] if argv is None else argv
  from gan_jax.cli import supervise

  if supervise.wanted(args.command):  # a multi-process train: watched from here, so a lost peer gets its one line
    return supervise.run(argv, args.workdir)
  try:
    configure_jax(distributed=args.command == "train")
  except ValueError as e:  # the multi-host variables
    say(f"error: {e}")
    return 2
  from gan_jax.cli import commands
  from gan_jax.train import guard
  from gan_jax.train.workdir import is_disk_full

  try:
    return getattr(commands, args.handler)(args, overrides)
  except guard.RunStopped as e:
    say(str(e))
    return e.exit_status
  except guard.Diverged as e:
    say(str(e))
    return 1
  except guard.PeerLost as e:  # another process of a multi-process run went away: no bug here to trace
    say(f"error: {e}")
    return 1
  except guard.RunFailed as e:  # a bug or a fault mid-run, not bad input: its traceback, then the line
    traceback.print_exception(e.__cause__, file=sys.stderr)
    say(f"error: {e}")
    return 1
  except KeyboardInterrupt:
    say("interrupted; the same command redoes what was not checkpointed")
    return 130
  except Exception as e:
    if is_disk_full(e):
      say(
        f"error: no space left on device ({_one_line(e)}); the newest complete checkpoint is kept: free space and "
        "rerun the same command to resume"
      )
      return 1
    if isinstance(e, ValueError | KeyError | TypeError | ImportError | OSError):
      say(f"error: {_one_line(e)}")
      return 2
    raise


def _one_line(error: BaseException) -> str:
  msg = error.args[0] if isinstance(error, KeyError) and error.args else error
  if isinstance(error, OSError) and error.filename and error.strerror:
    msg = f"{error.strerror}: {error.filename!r}"
  lines = [line for line in str(msg).splitlines() if line.strip()]
  return lines[0] if len(lines) == 1 else " ".join(line.strip() for line in lines)


def die_with_parent() -> None:
  """A process started by a sweep (GAN_JAX_PARENT_PID set) gets SIGTERM from the kernel when its parent dies,
  kill -9 included: it checkpoints and stops rather than training on as an orphan (Linux; elsewhere a no-op)."""
  parent = os.environ.pop("GAN_JAX_PARENT_PID", "")
  if not parent or not sys.platform.startswith("linux"):
    return
  import ctypes
  import signal

  ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
  if str(os.getppid()) != parent:  # the parent died before the prctl took effect
    os.kill(os.getpid(), signal.SIGTERM)


def _quiet_orbax_teardown(unraisable) -> None:
  """After a failed restore, orbax's pending reads end in an asyncio loop that is closed, and each prints a
  traceback from a background thread; the failure itself was reported in one line."""
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and "Event loop is closed" in str(error):
    return
  if "orbax" in getattr(getattr(unraisable.object, "cr_code", None), "co_filename", ""):
    return
  sys.__unraisablehook__(unraisable)


def configure_jax(distributed: bool = False) -> None:
  """The process-wide JAX settings of every gan-jax command, here and nowhere else. `distributed`: join a
  multi-host job when GAN_JAX_DISTRIBUTED=1 (parallel.maybe_initialize_distributed), before JAX starts."""
  import logging

  import jax

  sys.unraisablehook = _quiet_orbax_teardown
  # orbax logs each failed background write with its traceback through absl; the command reports the fault once.
  logging.getLogger("absl").addFilter(lambda r: not ("orbax" in r.pathname and r.levelno >= logging.ERROR))
  # TFDS warns that an unprepared dataset's folder has no metadata; the one line that refuses it says more.
  logging.getLogger("absl").addFilter(lambda r: "has no dataset_info.json" not in str(r.msg))
  # orbax says, for every read-only tool (sample, eval, curves), that a read-only manager saves nothing.
  read_only = lambda r: "orbax" in r.pathname and r.levelno == logging.WARNING and "read" in str(r.msg).lower()
  logging.getLogger("absl").addFilter(lambda r: not read_only(r))
  from gan_jax.train import xla_cpu

  if not jax.config.jax_compilation_cache_dir:
    # Sweeps and resumes start many processes that compile the same step: compile once, load after.
    from gan_jax import files

    jax.config.update("jax_compilation_cache_dir", os.path.join(files.cache_dir(), "xla"))
    # Cache only programs worth it: loading a tiny one costs about what compiling it does.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  if distributed:
    from gan_jax import parallel

    parallel.maybe_initialize_distributed()  # must precede anything that starts a backend
  # The measured CPU speed settings (a no-op on GPU and TPU): see gan_jax/train/xla_cpu.py.
  xla_cpu.enable()
