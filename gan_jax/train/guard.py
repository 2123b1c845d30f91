"""What ends a run early and how: a stop signal (checkpoint, then exit) or a non-finite value (stop, keep the
last finite checkpoint).

Exit statuses (cli): a run stopped by a signal exits 128 + the signal's number, as a shell reports a process
killed by it (SIGINT 130, SIGTERM 143, SIGUSR2 140): schedulers and shells read it as "interrupted" while the
checkpoint makes a rerun resume. A diverged or failed run exits 1.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# SIGTERM: what clusters send before killing a job; SIGINT: Ctrl-C; SIGUSR2: SLURM's (and submitit's) warning
# before a time limit or preemption, which reaches every process of the job step.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class RunStopped(Exception):
  """A stop signal arrived, and what was running saved its work and stopped (`message` says what)."""

  def __init__(self, signum: int, message: str):
    self.signum = signum
    super().__init__(f"stopped by {signal.Signals(signum).name}: {message}")

  @property
  def exit_status(self) -> int:
    return 128 + self.signum


class Diverged(RuntimeError):
  """A loss or the state became NaN or infinite; nothing non-finite was saved."""


class RunFailed(RuntimeError):
  """Training (or its evaluation) raised after the run started: not bad input, and nothing past the newest
  checkpoint is kept. The cause, a bug or a fault, comes with its traceback."""

  def __init__(self, step: int, last_saved: int | None, cause: BaseException):
    first = next((line for line in str(cause).splitlines() if line.strip()), "")
    kept = f"its newest checkpoint, step {last_saved}, is kept" if last_saved else "no checkpoint was saved"
    super().__init__(f"failed at step {step} with {type(cause).__name__}: {first}; {kept}")


class PeerLost(RunFailed):
  """A collective failed in a multi-process run: another process died or became unreachable. Not a bug here,
  so it is one line (which process this is, which are its peers, what to rerun), without a traceback."""

  # What the gloo / coordination-service errors of a departed peer say (jaxlib's JaxRuntimeError text).
  SIGNS = ("gloo", "allgather", "allreduce", "connection", "peer", "coordination", "heartbeat", "unavailable")

  def __init__(self, step: int, last_saved: int | None, cause: BaseException, process: int, count: int):
    first = next((line for line in str(cause).splitlines() if line.strip()), "")
    peers = f"process {1 - process}" if count == 2 else f"one of the other {count - 1} processes"
    kept = f"its newest checkpoint, step {last_saved}, is kept" if last_saved else "no checkpoint was saved"
    RuntimeError.__init__(
      self,
      f"lost a peer at step {step}: this is process {process} of {count}, and a collective with {peers} failed "
      f"({type(cause).__name__}: {first[:200]}); {kept}: restart all {count} processes with the same command to resume",
    )

  @classmethod
  def matches(cls, cause: BaseException) -> bool:
    text = f"{type(cause).__name__} {cause}".lower()
    return jax.process_count() > 1 and "runtimeerror" in text and any(sign in text for sign in cls.SIGNS)


def failed(step: int, last_saved: int | None, cause: BaseException) -> RunFailed:
  """What a run that raised after it started failed of: a lost peer (multi-process), else RunFailed."""
  if PeerLost.matches(cause):
    return PeerLost(step, last_saved, cause, jax.process_index(), jax.process_count())
  return RunFailed(step, last_saved, cause)


class StopSignals:
  """Turns the stop signals into a flag the loop reads after each step, for the duration of a `with` block.

  A second Ctrl-C stops at once (KeyboardInterrupt) for someone who does not want to wait for the save.
  Outside the main thread Python cannot install handlers, and the signals keep their default behaviour.
  """

  def __init__(self) -> None:
    self.signum: int | None = None
    self._previous: dict[int, Any] = {}

  def _handle(self, signum: int, _frame) -> None:
    if signum == signal.SIGINT and self.signum == signal.SIGINT:
      raise KeyboardInterrupt
    if self.signum is None:
      self.signum = signum
      hint = "; Ctrl-C again stops without it" if signum == signal.SIGINT else ""
      print(f"\n{signal.Signals(signum).name}: stopping at the next checkpoint{hint}", file=sys.stderr)

  def __enter__(self) -> StopSignals:
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
    return self

  def __exit__(self, *exc) -> None:
    for s, previous in self._previous.items():
      signal.signal(s, previous)


def first_non_finite(scalars_M: dict[str, np.ndarray]) -> tuple[str, int, float] | None:
  """(name, member, value) of the first NaN or infinite metric among the members' scalars, or None."""
  for name, values_M in scalars_M.items():
    for m, v in enumerate(np.asarray(values_M).reshape(-1)):
      if not math.isfinite(float(v)):
        return name, m, float(v)
  return None


@jax.jit
def finite_members(state: Any) -> jax.Array:
  """bool_M: whether every floating leaf of each member's state is finite; reduced on device."""

  def member_all(leaf: jax.Array) -> jax.Array:
    if not jnp.issubdtype(leaf.dtype, jnp.floating):
      return jnp.ones(leaf.shape[:1], bool)
    return jnp.isfinite(leaf).reshape(leaf.shape[0], -1).all(axis=1)

  leaves = [member_all(leaf) for leaf in jax.tree.leaves(state) if leaf.ndim >= 1]
  return jnp.stack(leaves).all(axis=0)
