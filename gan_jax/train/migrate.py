"""Converts a workdir written by gan_jax's layout 1 to layout 2, in place: `python -m gan_jax.train.migrate DIR`.

Layout 2 (config.LAYOUT_VERSION) changed, in config.json: `population` + `population_members` (JSON) became the
`population` section, `train.update` became `train.update_order`, `data.exclude_classes` a tuple, and
`train.cpu_convolutions` went (train.xla_cpu); in the checkpoints, each network's params, stats and optimizer
state became one sub-state (`state.g`, `state.d`). Values are carried over bit for bit. The new checkpoints
are written beside the old ones and swapped in only when all are written; config.json is replaced last.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import shutil
import sys
from typing import Any

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import config as config_lib
from gan_jax import data
from gan_jax import records as records_lib
from gan_jax.train import checkpoint
from gan_jax.train.population import member_configs, stacked_seeds_and_hparams
from gan_jax.train.setup import best_metric
from gan_jax.train.state import GANState, NetState, create_gan, init_state


@flax.struct.dataclass
class LayoutOneState:
  """The run state as layout 1 saved it."""

  step: Any
  rng: Any
  g_params: Any
  d_params: Any
  g_stats: Any
  d_stats: Any
  g_opt: Any
  d_opt: Any
  ema_params: Any
  hparams: Any


def to_layout_one(s: GANState) -> LayoutOneState:
  return LayoutOneState(
    s.step, s.rng, s.g.params, s.d.params, s.g.stats, s.d.stats, s.g.opt, s.d.opt, s.ema_params, s.hparams
  )


def from_layout_one(s: LayoutOneState) -> GANState:
  return GANState(
    s.step,
    s.rng,
    NetState(s.g_params, s.g_stats, s.g_opt),
    NetState(s.d_params, s.d_stats, s.d_opt),
    s.ema_params,
    s.hparams,
  )


def convert_config(old: dict[str, Any]) -> dict[str, Any]:
  """A layout-1 config.json's contents in layout 2."""
  new = copy.deepcopy(old)
  size, members = new.pop("population", 1), json.loads(new.pop("population_members", "") or "{}")
  new["population"] = {"size": size, **{name: members.get(key, []) for name, key in config_lib.MEMBER_KEYS.items()}}
  train = new.get("train", {})
  if "update" in train:
    train["update_order"] = train.pop("update")
  train.pop("cpu_convolutions", None)
  excluded = new.get("data", {}).get("exclude_classes", "")
  if isinstance(excluded, str):
    new["data"]["exclude_classes"] = sorted({int(c) for c in excluded.split(",") if c.strip()})
  return {"layout_version": config_lib.LAYOUT_VERSION, **new}


def migrate(workdir: str) -> list[str]:
  """Converts `workdir` in place; returns what it converted. Raises ValueError when it is not layout 1."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path!r} does not exist; expected a workdir written by `gan-jax train`")
  with open(path) as f:
    old = json.load(f)
  if old.get("layout_version", 1) != 1:
    raise ValueError(f"workdir {workdir!r} is of layout {old['layout_version']}; expected layout 1 to convert")
  new = convert_config(old)
  config = config_lib.from_dict({k: v for k, v in new.items() if k != "layout_version"})
  info = data.get_info(config)
  gan = create_gan(config, info)
  fresh = jax.jit(jax.vmap(functools.partial(init_state, gan)))(*stacked_seeds_and_hparams(member_configs(config)))
  like = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_layout_one(fresh))
  done = []
  for folder in ("checkpoints", "checkpoints_best"):
    if os.path.isdir(os.path.join(workdir, folder)):
      _convert_folder(workdir, folder, like, config, info.kind)
      done.append(folder)
  partial = f"{path}.{os.getpid()}.part"
  with open(partial, "w") as f:
    json.dump(new, f, indent=2, sort_keys=True)
  os.replace(partial, path)
  return [*done, "config.json"]


def _convert_folder(workdir: str, folder: str, like: LayoutOneState, config, kind: str) -> None:
  source = os.path.join(os.path.abspath(workdir), folder)
  target = source + ".layout2"
  shutil.rmtree(target, ignore_errors=True)  # from an interrupted conversion
  old = ocp.CheckpointManager(source)
  new = ocp.CheckpointManager(target, options=ocp.CheckpointManagerOptions(create=True), metadata=checkpoint.METADATA)
  scores = _best_scores(workdir, best_metric(config, kind)) if (folder == "checkpoints_best") else {}
  for step in old.all_steps():
    state = from_layout_one(old.restore(step, args=ocp.args.StandardRestore(like)))
    new.save(step, args=checkpoint.save_args(state), metrics=scores.get(step), force=True)
  new.wait_until_finished()
  old.close()
  new.close()
  backup = source + ".layout1"
  os.replace(source, backup)
  os.replace(target, source)
  shutil.rmtree(backup)


def _best_scores(workdir: str, metric: str) -> dict[int, dict[str, float]]:
  """checkpoints_best/'s metric per step, the members' mean as train.loop.Evaluator records it."""
  by_step: dict[int, list[float]] = {}
  for r in records_lib.read_jsonl(os.path.join(workdir, records_lib.EVAL_FILE)):
    if metric in r:
      by_step.setdefault(r["step"], []).append(r[metric])
  return {step: {metric: float(np.mean(values))} for step, values in by_step.items()}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m gan_jax.train.migrate", description=__doc__.split("\n\n")[0])
  parser.add_argument("workdir")
  args = parser.parse_args(argv)
  try:
    converted = migrate(args.workdir)
  except (ValueError, FileNotFoundError) as e:
    print(f"migrate: error: {e}", file=sys.stderr)
    return 2
  print(f"converted {args.workdir} to layout {config_lib.LAYOUT_VERSION}: {', '.join(converted)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
