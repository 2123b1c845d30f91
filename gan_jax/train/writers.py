"""Where a run's numbers and pictures go: metrics.jsonl, TensorBoard events, sample PNGs."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from gan_jax.records import keep_records_until


def summary_writer_class() -> type:
  """tensorboardX's SummaryWriter, imported without torch.

  tensorboardX imports torch whenever it is installed (the `[bench]` extra), only to accept torch tensors.
  That import takes seconds, in every `gan-jax train` process of a sweep; scalars need none of it, so the
  import is blocked while tensorboardX loads (it falls back to numpy without torch).
  """
  blocked = "torch" not in sys.modules
  if blocked:
    sys.modules["torch"] = None  # `import torch` now raises ImportError
  try:
    from tensorboardX import SummaryWriter
  finally:
    if blocked:
      del sys.modules["torch"]
  return SummaryWriter


class MetricsWriter:
  """Appends one JSON object per log step; on resume drops lines past the restored step.

  Only the primary process (process 0 of a multi-host run) writes: every process holds the same metrics,
  and N of them appending to (and, on resume, rewriting) one file on a shared filesystem would garble it.
  """

  def __init__(self, workdir: str, resume_step: int, primary: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._file = self._tb = None
    if not primary:
      return
    keep_records_until(self.path, resume_step)
    self._file = open(self.path, "a")  # noqa: SIM115  (lives as long as the run)
    self._tb = summary_writer_class()(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1)

  def write(self, step: int, scalars: dict[str, Any], member: int | None = None) -> None:
    """One record; `member` tags the records of a population's members."""
    if self._file is None:
      return
    tagged = {} if member is None else {"member": member}
    record = {"step": int(step), **tagged, **{k: float(v) for k, v in scalars.items()}}
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    prefix = "" if member is None else f"member_{member}/"
    for k, v in scalars.items():
      self._tb.add_scalar(prefix + k, float(v), int(step))

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._tb.close()
