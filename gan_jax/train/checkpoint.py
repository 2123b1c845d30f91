"""orbax checkpoints of the run state: async saves, the last N kept, restore onto any mesh.

The data position is not saved: batches are a pure function of (seed, step), so restoring the
step restores the input stream.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from gan_jax import config as config_lib

# Each checkpoint folder's root metadata: the state's layout, written by the folder's first manager.
LAYOUT_KEY = "gan_jax_layout"
METADATA = {LAYOUT_KEY: config_lib.LAYOUT_VERSION}


def manager(
  workdir: str,
  keep: int,
  folder: str = "checkpoints",
  best_metric: str | None = None,
  best_mode: str = "min",
) -> ocp.CheckpointManager:
  """The latest `keep` checkpoints, or with `best_metric` the best `keep` by that metric. A folder that holds
  checkpoints of another layout is refused (before anything is written to it)."""
  path = os.path.join(os.path.abspath(workdir), folder)
  check_layout(path)
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep,
    enable_async_checkpointing=True,
    create=True,
    best_fn=(lambda metrics: metrics[best_metric]) if best_metric else None,
    best_mode=best_mode,
    keep_checkpoints_without_metrics=not best_metric,
  )
  return ocp.CheckpointManager(path, options=options, metadata=METADATA)


def check_layout(path: str) -> None:
  """Raises ValueError, in one line, when the checkpoint folder `path` holds a state of another layout."""
  if not os.path.isdir(path) or not os.listdir(path):
    return
  with ocp.CheckpointManager(path) as existing:
    layout = (existing.metadata().custom_metadata or {}).get(LAYOUT_KEY, 1)
  if layout != config_lib.LAYOUT_VERSION:
    workdir = os.path.dirname(path)
    raise ValueError(
      f"{path!r} holds checkpoints of gan_jax layout {layout}; expected layout {config_lib.LAYOUT_VERSION}: convert "
      f"the workdir with `python -m gan_jax.train.migrate {workdir}`"
    )


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
