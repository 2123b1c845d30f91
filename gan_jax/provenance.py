"""Where a number came from: the code (version, git commit), the libraries and the machine that computed it.

`provenance()` goes into every evaluation record and a run's config.json, so two results can be told
apart by what produced them, not only by their config.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import subprocess
from typing import Any

PACKAGE = "gan_jax"
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
GIT_TIMEOUT_S = 5
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def provenance() -> dict[str, Any]:
  """{"gan_jax", "git_commit", "git_dirty", "python", "versions", "backend", "device_kind", "device_count",
  "process_count"}; the git keys only when the package runs from a git checkout.

  Initialises JAX's backend (after `jax.distributed.initialize`, in a multi-host run).
  """
  import jax  # here, not at import: the command line imports this module and must answer --help without JAX

  record: dict[str, Any] = {"gan_jax": package_version(), **git_state()}
  record["python"] = platform.python_version()
  record["versions"] = {name: _version(name) for name in LIBRARIES}
  record["backend"] = jax.default_backend()
  record["device_kind"] = jax.devices()[0].device_kind
  record["device_count"] = jax.device_count()
  record["process_count"] = jax.process_count()
  return record


def _version(distribution: str) -> str | None:
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def package_version() -> str:
  """gan_jax's installed version, else the one in the checkout's pyproject.toml, else "unknown"."""
  installed = _version(PACKAGE)
  if installed:
    return installed
  try:
    with open(os.path.join(os.path.dirname(_PACKAGE_DIR), "pyproject.toml")) as f:
      found = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.MULTILINE)
  except OSError:
    return "unknown"
  return found.group(1) if found else "unknown"


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[tuple[str, Any], ...]:
  # Once per process: the code that runs is the code imported at the start, whatever is edited later.
  def git(*args: str) -> str:
    done = subprocess.run(
      ["git", *args], cwd=_PACKAGE_DIR, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
    )
    return done.stdout.strip()

  try:
    # The package must be tracked there: an install inside some other repository (a venv in a project) is not it.
    git("ls-files", "--error-unmatch", "__init__.py")
    commit = git("rev-parse", "HEAD")
    # Untracked files (runs, caches) do not change the code; edits to tracked ones do.
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
  except (OSError, subprocess.SubprocessError):
    return ()
  return (("git_commit", commit), ("git_dirty", dirty))


def git_state() -> dict[str, Any]:
  """{"git_commit", "git_dirty"} of the checkout the package runs from; {} outside one or without git."""
  return dict(_git_state())
