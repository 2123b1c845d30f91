"""A workdir held by one process at a time, and the files written into it whole or not at all.

The lock is an OS lock (`flock`) on DIR/.lock: the kernel drops it when its process dies, kill -9 included,
so it never outlives its holder. The file keeps the holder's PID and host for the message a second process
prints.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
import time

from gan_jax import files

LOCK_NAME = ".lock"
# orbax writes a step into `<step>.orbax-checkpoint-tmp-<n>` and renames it when complete: leftovers are
# saves a killed process never finished.
ORBAX_TMP_MARK = ".orbax-checkpoint-tmp"


class WorkdirBusy(ValueError):
  """Another live process holds the workdir (a ValueError: the CLI reports it in one line, exit status 2)."""


class WorkdirLock:
  """An exclusive lock on a workdir for as long as this object holds it.

  `release(undo=True)` puts the lock file back as it was before `acquire` (removed if this lock created it),
  for a run that is refused after taking the lock and must leave the workdir unchanged.
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_NAME)
    self._fd: int | None = None
    self._before: bytes | None = None  # the lock file's bytes before acquire; None: this lock created it

  def acquire(self) -> WorkdirLock:
    while True:
      existed = os.path.exists(self.path)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        os.close(fd)
        raise WorkdirBusy(
          f"workdir {self.workdir!r} is in use by {read_holder(self.path) or 'another process'}; expected a "
          "workdir no other gan-jax process holds (wait for it to finish, or stop it: it checkpoints on SIGTERM)"
        ) from None
      # A holder that removed the file (release(undo=True)) between our open and flock left us an orphan inode.
      try:
        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    self._before = os.pread(fd, 4096, 0) if existed else None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    self._fd = fd
    return self

  def release(self, undo: bool = False) -> None:
    if self._fd is None:
      return
    if undo and self._before is None:
      os.unlink(self.path)
    elif undo:
      os.ftruncate(self._fd, 0)
      os.pwrite(self._fd, self._before, 0)
    os.close(self._fd)  # closing the last descriptor drops the flock
    self._fd = None

  def __enter__(self) -> WorkdirLock:
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


def read_holder(path: str) -> str:
  """What the lock file at `path` says of its holder ("pid 123 on host"), or ""."""
  try:
    with open(path) as f:
      return f.read().strip()
  except OSError:
    return ""


def holder(workdir: str) -> str | None:
  """The holder of `workdir`'s lock while one holds it, else None. Probes without changing anything."""
  path = os.path.join(workdir, LOCK_NAME)
  try:
    fd = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return read_holder(path) or "another process"
  finally:
    os.close(fd)  # releases the probe's lock, if it got one
  return None


def wait_until_free(workdir: str, timeout_s: float, poll_s: float = 0.5) -> str | None:
  """Waits for `workdir`'s holder to let go; returns the holder still there after `timeout_s`, or None."""
  deadline = time.monotonic() + timeout_s
  while (who := holder(workdir)) is not None and time.monotonic() < deadline:
    time.sleep(poll_s)
  return who


def check_writable(workdir: str) -> None:
  """Raises ValueError in one line when `workdir` cannot become a run's workdir; writes nothing."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"workdir {workdir!r} is a file; expected a directory (or a path that does not exist yet)")
  probe = workdir
  while not os.path.exists(probe):
    probe = os.path.dirname(os.path.abspath(probe))
  if not os.path.isdir(probe):
    raise ValueError(f"workdir {workdir!r}: {probe!r} is a file; expected a directory path")
  if not os.access(probe, os.W_OK | os.X_OK):
    raise ValueError(f"workdir {workdir!r}: {probe!r} is not writable; expected a directory this user can write")


def remove_stale_files(workdir: str, folders: tuple[str, ...] = ("checkpoints", "checkpoints_best")) -> list[str]:
  """Deletes what a killed process left half-written: unfinished orbax saves, the temporary copy of a file being
  replaced (gan_jax.files). Returns their paths. Hold the lock."""
  stale = [os.path.join(workdir, n) for n in sorted(os.listdir(workdir)) if files.TMP_MARK in n]
  for folder in folders:
    path = os.path.join(workdir, folder)
    if os.path.isdir(path):
      stale += [os.path.join(path, n) for n in sorted(os.listdir(path)) if ORBAX_TMP_MARK in n]
  for path in stale:
    if os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      os.remove(path)
  return stale


def is_disk_full(error: BaseException) -> bool:
  """Whether `error`, or an error it was raised from, is a full disk or quota (orbax wraps its writers')."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False
