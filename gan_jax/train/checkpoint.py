"""orbax checkpoints of the run state: async saves, the last N kept, restore onto any mesh.

The data position is not saved: batches are a pure function of (seed, step), so restoring the
step restores the input stream.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def manager(
  workdir: str,
  keep: int,
  folder: str = "checkpoints",
  best_metric: str | None = None,
  best_mode: str = "min",
) -> ocp.CheckpointManager:
  """The latest `keep` checkpoints, or with `best_metric` the best `keep` by that metric."""
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep,
    enable_async_checkpointing=True,
    create=True,
    best_fn=(lambda metrics: metrics[best_metric]) if best_metric else None,
    best_mode=best_mode,
    keep_checkpoints_without_metrics=not best_metric,
  )
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), folder), options=options)


def save_args(state: Any) -> ocp.args.CheckpointArgs:
  return ocp.args.StandardSave(state)


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
  mngr.save(step, args=save_args(state), force=True)


def restore(mngr: ocp.CheckpointManager, like: Any, step: int | None = None) -> Any:
  """Restores the latest (or given) step with the shapes, dtypes and shardings of `like`.

  Shardings come from `like`, not from the checkpoint, so a state saved on 8 devices restores
  on 1 and vice versa.
  """
  step = mngr.latest_step() if step is None else step
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
