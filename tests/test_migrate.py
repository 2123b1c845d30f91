"""A workdir of layout 1 is refused in one line, and `python -m gan_jax.train.migrate` converts it bit for bit."""

import copy
import json
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import ring_config

from gan_jax import config as config_lib
from gan_jax.cli import main
from gan_jax.train import checkpoint, loop, migrate
from gan_jax.train import run as run_lib


def to_layout_one_config(new: dict) -> dict:
  """config.json as layout 1 wrote it: the inverse of migrate.convert_config."""
  old = copy.deepcopy({k: v for k, v in new.items() if k != "layout_version"})
  population = old.pop("population")
  members = {key: population[name] for name, key in config_lib.MEMBER_KEYS.items() if population[name]}
  old["population"], old["population_members"] = population["size"], json.dumps(members) if members else ""
  old["train"]["update"] = old["train"].pop("update_order")
  old["train"]["cpu_convolutions"] = "xla"
  old["data"]["exclude_classes"] = ",".join(map(str, old["data"]["exclude_classes"]))
  return old


def downgrade(workdir: str) -> None:
  """Rewrites a layout-2 workdir as layout 1 saved it: old field names in the checkpoints, old config keys."""
  like = run_lib.load_run(workdir).state
  for folder in ("checkpoints", "checkpoints_best"):
    source = os.path.join(workdir, folder)
    old = ocp.CheckpointManager(source + ".old", options=ocp.CheckpointManagerOptions(create=True))
    new = ocp.CheckpointManager(source)
    for step in new.all_steps():
      state = checkpoint.restore(new, like, step)
      old.save(step, args=ocp.args.StandardSave(migrate.to_layout_one(state)), metrics={"modes": 1.0}, force=True)
    old.wait_until_finished()
    old.close()
    new.close()
    shutil.rmtree(source)
    os.replace(source + ".old", source)
  path = os.path.join(workdir, "config.json")
  with open(path) as f:
    new_json = json.load(f)
  with open(path, "w") as f:
    json.dump(to_layout_one_config(new_json), f)


def test_layout_one_workdir_is_refused_then_converted_bit_for_bit(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  config = ring_config(
    **{
      "population.size": 2,
      "population.d_lr": "(1e-3, 2e-3)",
      "train.num_devices": 1,
      "data.exclude_classes": "()",
      "eval.final": True,
      "eval.num_samples": 200,
    }
  )
  loop.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    written = json.load(f)
  state = jax.device_get(run_lib.load_run(workdir).state)
  downgrade(workdir)
  capsys.readouterr()

  assert main(["sample", "--workdir", workdir, "--num", "4", "--out", str(tmp_path / "s.npz")]) == 2
  err = capsys.readouterr().err.strip()
  assert "\n" not in err and "layout 1" in err and f"python -m gan_jax.train.migrate {workdir}" in err

  # config.json of layout 2 beside layout-1 checkpoints: refused before anything is written.
  with open(os.path.join(workdir, "config.json")) as f:
    old_json = f.read()
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(written, f)
  with pytest.raises(ValueError, match="holds checkpoints of gan_jax layout 1; expected layout 2: convert"):
    loop.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(old_json)

  assert migrate.main([workdir]) == 0
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f) == written
  converted = jax.device_get(run_lib.load_run(workdir).state)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(converted), strict=True):
    np.testing.assert_array_equal(a, b)
  assert sorted(os.listdir(workdir)) == sorted(
    [
      ".lock",
      "checkpoints",
      "checkpoints_best",
      "config.json",
      "eval.jsonl",
      "history.jsonl",
      "metrics.jsonl",
      "samples",
      "tensorboard",
    ]
  )
  # A converted run resumes, and a second conversion is refused in one line.
  config.train.steps = 9
  assert int(loop.train_and_evaluate(config, workdir).step[0]) == 9
  assert migrate.main([workdir]) == 2
  assert "is of layout 2; expected layout 1" in capsys.readouterr().err


def test_convert_config_maps_every_changed_key():
  new = config_lib.run_config_json(
    ring_config(**{"population.size": 3, "population.seed": "(4, 5, 6)", "train.update_order": "simultaneous"})
  )
  old = to_layout_one_config(new)
  assert old["population"] == 3 and json.loads(old["population_members"]) == {"seed": [4, 5, 6]}
  assert old["train"]["update"] == "simultaneous"
  assert migrate.convert_config(old) == json.loads(json.dumps(new))
  with pytest.raises(FileNotFoundError, match="expected a workdir written by `gan-jax train`"):
    migrate.migrate("/nonexistent")
