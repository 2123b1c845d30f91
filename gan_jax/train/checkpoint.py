"""orbax checkpoints of the run state: async saves, the last N kept, restore onto any mesh.

The data position is not saved: batches are a pure function of (seed, step), so restoring the
step restores the input stream.
"""

from __future__ import annotations

import os
import shutil
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
  read_only: bool = False,
) -> ocp.CheckpointManager:
  """The latest `keep` checkpoints, or with `best_metric` the best `keep` by that metric. A folder that holds
  checkpoints of another layout is refused (before anything is written to it)."""
  path = os.path.join(os.path.abspath(workdir), folder)
  check_layout(path)
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep,
    enable_async_checkpointing=True,
    create=not read_only,
    read_only=read_only,  # loading a run (sample, eval) writes nothing into its workdir
    best_fn=(lambda metrics: metrics[best_metric]) if best_metric else None,
    best_mode=best_mode,
    keep_checkpoints_without_metrics=not best_metric,
  )
  # The handler named up front lets item_metadata() read a checkpoint's shapes before any restore.
  metadata = None if read_only else METADATA
  return ocp.CheckpointManager(path, options=options, metadata=metadata, item_handlers=ocp.StandardCheckpointHandler())


def saved_steps(workdir: str, folder: str = "checkpoints") -> list[int]:
  """The steps of the checkpoints in DIR/folder, read from the folder names (writes nothing). An empty folder
  is no checkpoint (resume sets it aside with the unreadable ones)."""
  path = os.path.join(workdir, folder)
  if not os.path.isdir(path):
    return []
  return sorted(int(n) for n in os.listdir(path) if n.isdigit() and os.listdir(os.path.join(path, n)))


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


def restore_newest(mngr: ocp.CheckpointManager, like: Any) -> tuple[Any, int, list[tuple[int, str]]]:
  """The newest checkpoint that restores into `like`: (state, step, [(skipped step, why)]), newest first.

  A checkpoint that fails to restore (cut short, a file lost) is skipped for the next older one. One saved
  with other shapes stops the search with a one-line ValueError: the config, not the checkpoint, is wrong.
  """
  skipped = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      saved = {
        _dotted(path): tuple(m.shape) for path, m in jax.tree_util.tree_leaves_with_path(mngr.item_metadata(step))
      }
    except Exception as e:  # orbax and tensorstore raise many types for a damaged checkpoint
      skipped.append((step, _first_line(e)))
      continue
    wanted = {_dotted(path): tuple(x.shape) for path, x in jax.tree_util.tree_leaves_with_path(like)}
    diff = [f"{k}: saved {saved.get(k)}, this config {shape}" for k, shape in wanted.items() if saved.get(k) != shape]
    if diff:
      more = f"; {len(diff) - 1} more" if len(diff) > 1 else ""
      raise ValueError(
        f"checkpoint {step} in {os.fspath(mngr.directory)!r} holds a state of other shapes ({diff[0]}{more}); "
        "expected the config the run was trained with (model.*, data.name, population.size)"
      )
    try:
      return restore(mngr, like, step), step, skipped
    except Exception as e:
      skipped.append((step, _first_line(e)))
  tried = "; ".join(f"step {s}: {why}" for s, why in skipped)
  raise ValueError(f"no checkpoint in {os.fspath(mngr.directory)!r} restores ({tried}); expected one intact checkpoint")


def _dotted(path: tuple) -> str:
  """A pytree path as orbax names its arrays ("g.params.Dense_0.kernel"), whatever the node types."""
  parts = []
  for key in path:
    parts.append(str(getattr(key, "key", getattr(key, "name", getattr(key, "idx", key)))))
  return ".".join(parts)


def set_aside(workdir: str, steps: list[int], folder: str = "checkpoints") -> list[str]:
  """Moves the checkpoints of `steps` out of the way (to DIR/checkpoints_unreadable/) rather than deleting
  them: the run resumes from an older one and saves those steps anew. Hold the workdir lock."""
  moved = []
  for step in steps:
    source = os.path.join(workdir, folder, str(step))
    target = os.path.join(workdir, "checkpoints_unreadable", f"{folder}_{step}")
    if os.path.exists(target):
      shutil.rmtree(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(source, target)
    moved.append(target)
  return moved


def keep_newest(mngr: ocp.CheckpointManager, keep: int) -> list[int]:
  """Deletes all but the newest `keep` checkpoints (a process killed between a save and its clean-up leaves
  one more); returns the deleted steps."""
  extra = sorted(mngr.all_steps())[:-keep] if keep else []
  for step in extra:
    mngr.delete(step)
  return extra


def _first_line(error: BaseException) -> str:
  lines = [line for line in str(error).splitlines() if line.strip()]
  return f"{type(error).__name__}: {lines[0] if lines else ''}"[:200]


def restore(mngr: ocp.CheckpointManager, like: Any, step: int | None = None) -> Any:
  """Restores the latest (or given) step with the shapes, dtypes and shardings of `like`.

  Shardings come from `like`, not from the checkpoint, so a state saved on 8 devices restores
  on 1 and vice versa.
  """
  step = mngr.latest_step() if step is None else step
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
