"""kill -9 at seeded points of tiny runs, some inside a checkpoint save: each run is resumed until it finishes,
and its metrics.jsonl, eval.jsonl, checkpoints/ and checkpoints_best/ equal an uninterrupted run's."""

import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax.train import run as run_lib

pytestmark = pytest.mark.slow  # fast twins: tests/test_faults.py (each fault in-process)

STEPS = 12
OVERRIDES = {
  "train.steps": STEPS,
  "checkpoint.every": 2,
  "checkpoint.keep": 2,
  "checkpoint.keep_best": 2,
  "eval.every": 3,
  "eval.num_samples": 256,
}
# Events of tests/fault_runner.py and the steps where each happens.
EVENTS = {
  "log": lambda s: True,
  "save": lambda s: s % 2 == 0,
  "eval_record": lambda s: s % 3 == 0,
  "best_save": lambda s: s % 3 == 0,
  "eval": lambda s: s % 3 == 0,
}
CHAINS, POINTS_PER_CHAIN = 3, 7


def kill_points(seed: int = 0) -> list[list[tuple[int, str, int]]]:
  """CHAINS lists of (step, event, delay ms), steps increasing within a chain so each point lies past the
  checkpoint the previous kill left; save events get a delay that lands inside the asynchronous write."""
  rng = np.random.default_rng(seed)
  chains = []
  for _ in range(CHAINS):
    steps = sorted(rng.choice(np.arange(1, STEPS + 1), POINTS_PER_CHAIN, replace=False).tolist())
    chain = []
    for step in steps:
      event = str(rng.choice([e for e, at in EVENTS.items() if at(step)]))
      chain.append((step, event, int(rng.integers(0, 40)) if "save" in event else 0))
    chains.append(chain)
  chains[0].insert(1, (0, "resume", 0))  # also: die right after a resumed run cut its logs back
  return chains


def run(exp, workdir, kill: str | None, cache: str) -> subprocess.CompletedProcess:
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.getcwd()]),
    "GAN_JAX_CACHE": cache,
  }
  if kill:
    env["GAN_JAX_TEST_KILL"] = kill
  runner = os.path.join(os.path.dirname(__file__), "fault_runner.py")
  argv = [
    "train",
    "--config",
    str(exp),
    "--workdir",
    str(workdir),
    *[f"--config.{k}={v}" for k, v in OVERRIDES.items()],
  ]
  return subprocess.run([sys.executable, runner, *argv], capture_output=True, text=True, env=env, timeout=300)


def read(path) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def final_state(workdir):
  return jax.device_get(run_lib.load_run(str(workdir)).state)


def outcome(workdir) -> dict:
  folders = {f: sorted(os.listdir(os.path.join(workdir, f))) for f in ("checkpoints", "checkpoints_best")}
  logs = {name: read(os.path.join(workdir, f"{name}.jsonl")) for name in ("metrics", "eval")}
  return {**logs, **folders}


def test_kill_9_anywhere_loses_nothing(tmp_path):
  exp = tmp_path / "exp.py"
  exp.write_text("from helpers import ring_config\n\ndef get_config(arg=None):\n  return ring_config()\n")
  cache = str(tmp_path / "cache")
  assert run(exp, tmp_path / "full", None, cache).returncode == 0
  expected, expected_state = outcome(tmp_path / "full"), final_state(tmp_path / "full")
  assert expected["checkpoints"] == ["10", "12", "metadata"] and len(expected["checkpoints_best"]) == 3
  chains = kill_points()
  assert sum(map(len, chains)) >= 20 and sum(e == "save" and d > 0 for c in chains for _, e, d in c) >= 3
  for i, chain in enumerate(chains):
    workdir = tmp_path / f"chain{i}"
    for step, event, delay in chain:
      killed = run(exp, workdir, f"{step}:{event}:{delay}", cache)
      assert killed.returncode == -signal.SIGKILL, (step, event, killed.stderr[-2000:])
    finished = run(exp, workdir, None, cache)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert outcome(workdir) == expected, chain
    # The newest checkpoint holds the same state, bit for bit.
    for a, b in zip(jax.tree.leaves(final_state(workdir)), jax.tree.leaves(expected_state), strict=True):
      np.testing.assert_array_equal(a, b)
