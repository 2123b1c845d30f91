"""Sizes a command would hold in memory, checked before it starts: one line, not the OOM killer or a jaxlib dump."""

from __future__ import annotations

import os

# A command may use at most this share of the machine's memory for what it is asked to hold.
MEMORY_SHARE = 0.5


def machine_memory() -> int:
  """This machine's physical memory in bytes."""
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(flag: str, count: int, bytes_each: int, what: str) -> None:
  """Raises ValueError naming `flag` when `count` items of `bytes_each` bytes exceed MEMORY_SHARE of memory."""
  budget = int(machine_memory() * MEMORY_SHARE)
  if count * bytes_each > budget:
    raise ValueError(
      f"{flag}={count}: {count:,} {what} would hold about {_gib(count * bytes_each)} in memory, and this machine "
      f"has {_gib(machine_memory())}; expected at most {budget // bytes_each:,}"
    )


def _gib(n: int) -> str:
  return f"{n / 2**30:,.1f} GiB"
