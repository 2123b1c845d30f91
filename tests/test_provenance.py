"""Provenance: the code's version and commit, the libraries and the machine, read independently here."""

import importlib.metadata
import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

import gan_jax
from gan_jax import provenance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gan_jax.__file__)))


@pytest.fixture
def fresh_git_state():
  """git_state is computed once per process; a test that moves the package elsewhere computes it anew."""
  provenance._git_state.cache_clear()
  yield
  provenance._git_state.cache_clear()


def test_keys_and_values_match_the_libraries_and_devices():
  p = provenance.provenance()
  assert {"gan_jax", "python", "versions", "backend", "device_kind", "device_count", "process_count"} <= set(p)
  assert p["gan_jax"] == importlib.metadata.version("gan_jax")
  assert set(p["versions"]) == {"jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"}
  assert p["versions"]["jax"] == jax.__version__ and p["versions"]["numpy"] == np.__version__
  assert p["python"] == ".".join(map(str, sys.version_info[:3]))
  assert (p["backend"], p["device_kind"]) == ("cpu", "cpu")
  assert p["device_count"] == len(jax.devices()) == 8  # conftest's fake CPU devices
  assert p["process_count"] == 1
  assert json.loads(json.dumps(p)) == p


@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, ".git")), reason="not run from a git checkout")
def test_git_commit_and_dirty_flag_of_the_checkout(fresh_git_state):
  p = provenance.provenance()
  head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
  assert p["git_commit"] == head.stdout.strip() and re.fullmatch("[0-9a-f]{40}", p["git_commit"])
  assert isinstance(p["git_dirty"], bool)


def _git(cwd, *args):
  subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=True)


def test_no_git_keys_outside_a_checkout_of_the_package(tmp_path, monkeypatch, fresh_git_state):
  package = tmp_path / "repo" / "gan_jax"
  package.mkdir(parents=True)
  (package / "__init__.py").write_text("")
  monkeypatch.setattr(provenance, "_PACKAGE_DIR", str(package))
  assert provenance.git_state() == {}  # no repository at all
  provenance._git_state.cache_clear()
  _git(tmp_path / "repo", "init", "-q")
  (tmp_path / "repo" / "notes.txt").write_text("x")
  _git(tmp_path / "repo", "add", "notes.txt")
  _git(tmp_path / "repo", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
  assert provenance.git_state() == {}  # a repository that does not track the package (a venv in a project)
  provenance._git_state.cache_clear()
  _git(tmp_path / "repo", "add", "gan_jax/__init__.py")
  _git(tmp_path / "repo", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y")
  state = provenance.git_state()
  assert state["git_dirty"] is False and len(state["git_commit"]) == 40
  provenance._git_state.cache_clear()
  (package / "__init__.py").write_text("edited = True\n")
  assert provenance.git_state()["git_dirty"] is True
  provenance._git_state.cache_clear()
  monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git executable: no keys, no error
  assert provenance.git_state() == {}
  assert "git_commit" not in provenance.provenance()


def test_version_falls_back_to_pyproject(monkeypatch):
  with open(os.path.join(ROOT, "pyproject.toml")) as f:
    declared = re.search(r'^version = "(.*)"$', f.read(), re.MULTILINE).group(1)
  monkeypatch.setattr(provenance, "_version", lambda name: None)  # as when gan_jax is not installed
  assert provenance.package_version() == declared
  monkeypatch.setattr(provenance, "_PACKAGE_DIR", "/nonexistent/gan_jax")
  assert provenance.package_version() == "unknown"
