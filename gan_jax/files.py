"""Files written whole or not at all: a temporary file beside the target, fsynced, then renamed over it.

A process killed mid-write leaves the old file or the new one, never half of either; what it leaves is a
`TMP_MARK` file, which a run removes when it starts (train.workdir.remove_stale_files).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

TMP_MARK = ".tmp-"
CACHE_ENV = "GAN_JAX_CACHE"


def cache_dir() -> str:
  """gan_jax's user cache: $GAN_JAX_CACHE, else $XDG_CACHE_HOME/gan_jax, else ~/.cache/gan_jax.

  It holds what can be recomputed: compiled XLA programs, real-data features, the converted Inception.
  """
  if os.environ.get(CACHE_ENV):
    return os.environ[CACHE_ENV]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "gan_jax")


def write_atomic(path: str, content: str | bytes) -> None:
  """Replaces `path` with `content` in one step (see the module docstring)."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + TMP_MARK, dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(content.encode() if isinstance(content, str) else content)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_json_atomic(path: str, obj: Any) -> None:
  write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
