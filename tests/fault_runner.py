"""`gan-jax ARGS` that kills itself (SIGKILL, as kill -9) at one chosen point, for tests/test_fault_injection.py.

GAN_JAX_TEST_KILL="STEP:EVENT:DELAY_MS" picks the point: right after EVENT at step STEP, DELAY_MS later.
  log          a metrics.jsonl row was written
  eval_record  the evaluation record was appended, before its best checkpoint
  best_save    the best checkpoint's (async) save was issued
  eval         the evaluation and its best checkpoint are complete
  save         the step's (async) checkpoint save was issued: with a delay, mid-write
  resume       a resumed run has cut its logs back to its checkpoint (STEP: any)
"""

import os
import signal
import sys
import time

import orbax.checkpoint as ocp

from gan_jax import cli, records
from gan_jax.train import evaluator, writers

step_at, event, delay_ms = os.environ.get("GAN_JAX_TEST_KILL", "-1:none:0").split(":")
step_at, delay_s = int(step_at), int(delay_ms) / 1000


def die(step: int, name: str) -> None:
  if name == event and (step == step_at or (event == "resume" and step > 0)):
    time.sleep(delay_s)
    os.kill(os.getpid(), signal.SIGKILL)


def after(fn, hook):
  def wrapped(*args, **kwargs):
    out = fn(*args, **kwargs)
    hook(*args, **kwargs)
    return out

  return wrapped


writers.MetricsWriter.write = after(writers.MetricsWriter.write, lambda self, step, *a, **k: die(step, "log"))
records.append_record = after(records.append_record, lambda workdir, record: die(record["step"], "eval_record"))
evaluator.Evaluator.run = after(evaluator.Evaluator.run, lambda self, state, step, **k: die(step, "eval"))
evaluator.Evaluator.__init__ = after(
  evaluator.Evaluator.__init__, lambda self, setup, workdir, resume_step=0: die(resume_step, "resume")
)
folder_event = {"checkpoints": "save", "checkpoints_best": "best_save"}
ocp.CheckpointManager.save = after(
  ocp.CheckpointManager.save, lambda self, step, *a, **k: die(step, folder_event[os.path.basename(self.directory)])
)

sys.exit(cli.main(sys.argv[1:]))
