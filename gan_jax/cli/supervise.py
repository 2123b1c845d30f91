"""One process of a multi-process `gan-jax train`, watched from a parent that never starts JAX.

When a peer dies, the survivor often cannot say so itself: gloo aborts it in C++ (a partial message) or JAX's
coordination service terminates it (missed heartbeats), each with a native stack dump and no Python frame left
to report. So `gan-jax train` with GAN_JAX_DISTRIBUTED=1 runs the real command as a child, passes its output
through, forwards the stop signals, and where the child dies by any other signal, prints one line naming this
process, its peers and the checkpoint to resume from. The native dump is kept in DIR/crash.process<i>.log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

SUPERVISED_ENV = "GAN_JAX_SUPERVISED"
# The first line of a native abort: a fatal glog/absl record (F1207 12:00:00.0 ...), the coordination service's
# error poll, gloo's uncaught enforce, a check failure. From there on, a dying process writes only its dump.
FATAL = re.compile(rb"^(F\d{4} \d\d:\d\d:\d\d|E\d{4} .*coordination_service|terminate called|\*\*\* Check fail)")
# What the dump of a process ended because a peer went away says.
PEER_GONE = re.compile(rb"gloo|coordination|heartbeat|Terminating process|unhealthy", re.IGNORECASE)
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
MAX_HELD = 2000  # lines of a dump kept


def wanted(command: str) -> bool:
  """Whether this `gan-jax` invocation should supervise itself: a train command of a multi-process job."""
  return (
    command == "train"
    and os.environ.get("GAN_JAX_DISTRIBUTED", "0") not in ("", "0")
    and not os.environ.get(SUPERVISED_ENV)
    and os.environ.get("JAX_NUM_PROCESSES", "") != "1"
  )


def run(argv: list[str], workdir: str) -> int:
  """Runs `gan-jax ARGV` as a child and returns the exit status this process should have."""
  env = {**os.environ, SUPERVISED_ENV: "1", "GAN_JAX_PARENT_PID": str(os.getpid())}
  child = None
  # Installed first, and the child in a session of its own: a Ctrl-C at the terminal reaches it once, from here
  # (twice would mean "stop without a checkpoint" to its handler).
  received = []
  forward = lambda signum, _: child.send_signal(signum) if child else received.append(signum)
  previous = {s: signal.signal(s, forward) for s in FORWARDED}
  native = []
  try:
    child = subprocess.Popen(
      [sys.executable, "-m", "gan_jax", *argv], env=env, stderr=subprocess.PIPE, start_new_session=True
    )
    for signum in received:
      child.send_signal(signum)
    pending = b""
    while chunk := os.read(child.stderr.fileno(), 65536):
      pending += chunk
      *whole, pending = re.split(rb"(?<=[\n\r])", pending)
      for line in whole:  # from a fatal line on, the rest is the dump: held, not shown
        if native or FATAL.match(line):
          native = (native + [line])[-MAX_HELD:]
        else:
          _write(line)
    _write(pending)
    status = child.wait()
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  if status >= 0 or -status in FORWARDED:
    for line in native:  # a clean exit keeps every line it wrote
      _write(line)
    return status if status >= 0 else 128 - status
  print(f"gan-jax train: error: {ended_line(workdir, -status, native)}", file=sys.stderr)
  return 1


def ended_line(workdir: str, signum: int, native: list[bytes]) -> str:
  """What a signal the run did not handle means: SIGKILL came from outside (kill -9, the out-of-memory
  killer); any other (SIGABRT, SIGSEGV) is a lost peer where the dump says so, else a native fault here."""
  # Set and validated (parallel.maybe_initialize_distributed) for a job on 127.0.0.1 or a plain cluster;
  # absent where jax.distributed detects the cluster itself.
  process, count = os.environ.get("JAX_PROCESS_ID", "?"), os.environ.get("JAX_NUM_PROCESSES", "N")
  peers = f"process {1 - int(process)}" if count == "2" and process.isdigit() else "another process of the job"
  from gan_jax.train import checkpoint  # imports orbax and JAX, but starts no backend: fine once the child is gone

  saved = checkpoint.saved_steps(workdir)
  kept = f"its newest checkpoint, step {saved[-1]}, is kept" if saved else "no checkpoint was saved"
  dump = ""
  if native and os.path.isdir(workdir):
    path = os.path.join(workdir, f"crash.process{process}.log")
    with open(path, "ab") as f:
      f.writelines(native)
    dump = f"; the native report is in {path}"
  name = signal.Signals(signum).name
  if signum == signal.SIGKILL:
    what = f"process {process} of {count} was killed by SIGKILL (kill -9 or the out-of-memory killer){dump}"
  elif any(PEER_GONE.search(line) for line in native):
    what = (
      f"lost a peer: this is process {process} of {count}, and {peers} went away, so the collective layer "
      f"ended this one ({name}){dump}"
    )
  else:
    what = f"process {process} of {count} died of {name}, a fault of its own native code{dump}"
  return f"{what}; {kept}: restart all {count} processes with the same command to resume"


def _write(data: bytes) -> None:
  sys.stderr.buffer.write(data)
  sys.stderr.buffer.flush()
