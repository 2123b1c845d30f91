"""Progress bars with an ETA for long work (feature extraction, latent searches, training a helper network).

On a terminal a bar redraws in place. Elsewhere (a log file, a sweep's job output, a test's capture) each
redraw is a new line, so a bar prints a line only every `LOG_STEP` of its total and `LOG_INTERVAL_S`
seconds, and none at all for work done within `LOG_DELAY_S`. Bars go to stderr, where
stdout stays for results (`gan-jax eval` prints its JSON there); only process 0 of a multi-host run shows
them. tqdm's TQDM_DISABLE=1 turns them all off.
"""

from __future__ import annotations

import sys

import tqdm

# Not on a terminal: the share of the total and the seconds between two lines, and how long a bar stays silent.
LOG_STEP, LOG_INTERVAL_S, LOG_DELAY_S = 0.05, 10.0, 5.0


def progress_bar(total: int, desc: str, unit: str = "it") -> tqdm.tqdm:
  """A tqdm bar on stderr, counted in `unit`; use as a context manager and `update(n)` as work is done."""
  import jax

  tty = sys.stderr.isatty()
  # Passed only when true: a `disable` argument would override tqdm's TQDM_DISABLE, which only sets defaults.
  off = {"disable": True} if jax.process_index() != 0 else {}
  return tqdm.tqdm(
    total=total,
    desc=desc,
    unit=unit,
    file=sys.stderr,
    **off,
    leave=not tty,  # a finished bar leaves the terminal; in a log its last line says how long it took
    dynamic_ncols=tty,
    mininterval=0.5 if tty else LOG_INTERVAL_S,
    miniters=None if tty else max(1, int(total * LOG_STEP)),
    delay=0.0 if tty else LOG_DELAY_S,
  )
