"""Sweeps: expansion, names, manifest, the launchers on real runs, --vectorize populations, the report."""

import argparse
import csv
import json
import os
import pathlib
import re
import signal
import sys
import textwrap
import threading

import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.cli import commands
from gan_jax.cli import parser as cli_parser
from gan_jax.records import read_jsonl
from gan_jax.sweep import choice, launch, log_uniform, product, random_search, seeds, sweep, uniform, zip_
from gan_jax.sweep.launch import load_sweep, resources, sync_manifest
from gan_jax.sweep.manifest import Manifest, PointRecord
from gan_jax.sweep.space import name_points, point_name
from gan_jax.sweep.vectorize import group_points, regroup
from gan_jax.train import guard
from gan_jax.train.population import member_configs

EXPERIMENT = """
from gan_jax.config import base_config
from gan_jax.sweep import seeds

def get_config(arg=None):
  c = base_config()
  c.data.name = "ring8"
  c.model.name = "mlp2d"
  c.model.latent_dim = 2
  c.model.g_width = c.model.d_width = 16
  c.train.steps = 4
  c.train.batch_size = 16
  c.train.log_every = 2
  c.train.sample_every = 4
  c.checkpoint.every = 2
  c.train.ema_decay = 0.0
  return c

def get_sweep(arg=None):
  {body}
"""


def write_experiment(tmp_path, body, name="exp.py"):
  path = tmp_path / name
  path.write_text(textwrap.dedent(EXPERIMENT).replace("{body}", body))
  return str(path)


@pytest.fixture
def train_env(monkeypatch, tmp_path_factory):
  """Train children on one CPU device (8 fake ones double their compile time), sharing a compile cache."""
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path_factory.getbasetemp() / "gan_jax_cache"))


def sweep_main(argv):
  """`gan-jax sweep ARGV` with its errors raised, not mapped to exit status 2."""
  parser = argparse.ArgumentParser(prog="gan-jax")
  cli_parser.add_sweep_parser(parser.add_subparsers(dest="command", required=True))
  return commands.sweep(parser.parse_args(["sweep", *argv]), {})


def rows_of(path):
  with open(path) as f:
    return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------- expansion


def test_product_zip_and_seeds_compose():
  points = product(sweep("loss.name", ["hinge", "non_saturating"]), seeds(5))
  assert len(points) == 10
  assert points[0] == {"loss.name": "hinge", "seed": 0}
  assert points[-1] == {"loss.name": "non_saturating", "seed": 4}
  tied = zip_(sweep("optim.g.lr", [1e-4, 2e-4]), sweep("optim.d.lr", [4e-4, 8e-4]))
  assert tied == [{"optim.g.lr": 1e-4, "optim.d.lr": 4e-4}, {"optim.g.lr": 2e-4, "optim.d.lr": 8e-4}]
  assert len(product(tied, seeds(3)) + seeds(2)) == 8
  assert product() == [{}]
  values = sweep("optim.g.lr", np.array([1e-4, 1e-3]))[0]["optim.g.lr"]
  assert type(values) is float
  with pytest.raises(ValueError, match="equal length"):
    zip_(seeds(2), sweep("loss.name", ["hinge"]))
  with pytest.raises(ValueError, match="same keys"):
    product(seeds(2), seeds(3))
  with pytest.raises(TypeError, match="JSON"):
    sweep("seed", [object()])


def test_random_search_is_deterministic_in_its_seed():
  dists = {"optim.g.lr": log_uniform(1e-5, 1e-2), "loss.name": choice(["hinge", "wgan"]), "x": uniform(-1, 1)}
  a, b, c = random_search(16, 0, **dists), random_search(16, 0, **dists), random_search(16, 1, **dists)
  assert a == b and a != c and len(a) == 16
  assert all(1e-5 <= p["optim.g.lr"] <= 1e-2 and -1 <= p["x"] <= 1 for p in a)
  assert {p["loss.name"] for p in a} == {"hinge", "wgan"}
  assert json.loads(json.dumps(a)) == a
  # A key's draws do not depend on the other keys of the search.
  alone = random_search(16, 0, **{"optim.g.lr": log_uniform(1e-5, 1e-2)})
  assert [p["optim.g.lr"] for p in alone] == [p["optim.g.lr"] for p in a]
  with pytest.raises(TypeError, match="expected choice"):
    random_search(2, 0, seed=3)


# ---------------------------------------------------------------------------------------- names


def test_names_are_readable_unique_and_safe():
  assert point_name({"loss.name": "hinge", "seed": 1}) == "loss.name=hinge_seed=1"
  assert point_name({"optim.g.lr": 2e-4}) == "optim.g.lr=0.0002"
  assert point_name({}) == "base"
  # Sanitising "a/b" and "a-b" (and case on macOS) would collide: the hash tells them apart.
  names = name_points([{"data.name": "a/b"}, {"data.name": "a-b"}, {"data.name": "A-B"}, {"seed": 1}])
  assert len({n.lower() for n in names}) == 4 and names[3] == "seed=1"
  assert all(re.fullmatch(r"[A-Za-z0-9._+=-]+", n) for n in names)
  long = {f"section.sub{i}.key": "v" * 40 for i in range(6)}
  long_name = point_name(long)
  assert len(long_name) <= 100 and long_name == point_name(dict(long))
  assert point_name({**long, "seed": 2}) != long_name
  with pytest.raises(ValueError, match="twice"):
    name_points([{"seed": 1}, {"seed": 1}])


def test_manifest_round_trips(tmp_path):
  m = Manifest(
    config="/x/exp.py:arg",
    points=[
      PointRecord("seed=0", {"seed": 0}, "/d/seed=0", "done", 0, "", "t0", "t1"),
      PointRecord("seed=1", {"seed": 1, "lr": 1e-4}, "/d/seed=1", "failed", 2, "Traceback\nKeyError", "t2", "t3"),
      PointRecord("seed=2", {"seed": 2}, "/d/seed=2"),
      PointRecord("seed=3", {"seed": 3}, "/d/g", "done", 0, group="g", member=1),
    ],
  )
  m.save(str(tmp_path))
  assert Manifest.load(str(tmp_path)) == m
  with pytest.raises(ValueError, match="status"):
    PointRecord("x", {}, "/d/x", status="finished")


IMPORTS = "from gan_jax.sweep import product, sweep; "


def test_a_reordered_sweep_keeps_its_points_records(tmp_path):
  losses = 'sweep("loss.name", ["hinge"])'
  first = load_sweep(write_experiment(tmp_path, IMPORTS + f"return product({losses}, seeds(2))", "a.py"))
  _, records = sync_manifest(first, str(tmp_path / "s"))
  records[0].status = "done"
  Manifest(first.config, records).save(str(tmp_path / "s"))
  again = load_sweep(write_experiment(tmp_path, IMPORTS + f"return product(seeds(2), {losses})", "b.py"))
  assert again.names != first.names  # names follow the keys' order
  manifest, kept = sync_manifest(again, str(tmp_path / "s"))
  assert [(r.name, r.workdir, r.status) for r in kept] == [(r.name, r.workdir, r.status) for r in records]
  assert len(manifest.points) == 2  # each point listed once


def test_dry_run_and_validation(tmp_path, capsys):
  exp = write_experiment(tmp_path, 'return [{"loss.name": "hinge", "seed": s} for s in range(3)]')
  assert sweep_main(["--config", exp, "--workdir", str(tmp_path / "s"), "--dry-run"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == 'loss.name=hinge_seed=0\t{"loss.name": "hinge", "seed": 0}' and len(lines) == 3
  assert not (tmp_path / "s").exists()
  with pytest.raises(TypeError, match=r"get_sweep\(\) returned None; .* forget `return`"):
    load_sweep(write_experiment(tmp_path, "seeds(2)", "no_return.py"))
  with pytest.raises(TypeError, match=r"sweep\('loss.name', 'hinge'\): expected a list of values"):
    sweep("loss.name", "hinge")
  bad = write_experiment(tmp_path, 'return [{"model.widht": 3}]', "bad.py")
  with pytest.raises(ValueError, match="model.widht=3: unknown config key"):
    load_sweep(bad)
  typo = write_experiment(tmp_path, 'return [{"loss.name": "hinge"}, {"loss.name": "hinj"}]', "typo.py")
  with pytest.raises(ValueError, match=r"sweep point loss.name=hinj: unknown loss 'hinj'; expected one of"):
    load_sweep(typo)  # before any point trains
  penalty = write_experiment(tmp_path, 'return [{"penalty.name": "r3"}]', "penalty.py")
  with pytest.raises(ValueError, match=r"sweep point penalty.name=r3: unknown penalty 'r3'"):
    load_sweep(penalty)
  # What depends on the data and the model is checked up front too, as the run itself would.
  data_level = write_experiment(tmp_path, 'return [{"data.name": "ring8"}, {"eval.best_metric": "fid"}]', "data.py")
  with pytest.raises(ValueError, match=r"sweep point eval.best_metric=fid: eval.best_metric='fid': expected one of"):
    load_sweep(data_level)
  model = write_experiment(tmp_path, 'return [{"model.name": "nope"}]', "model.py")
  with pytest.raises(ValueError, match=r"sweep point model.name=nope: .*'nope'"):
    load_sweep(model)
  cfg = config_lib.base_config()
  assert resources(cfg)["gpus_per_node"] == 1
  cfg.slurm = {"partition": "gpu", "gpus_per_node": 4, "account": "lab"}
  assert resources(cfg) | {"timeout_min": 0} == {
    "partition": "gpu",
    "timeout_min": 0,
    "gpus_per_node": 4,
    "cpus_per_task": 8,
    "mem_gb": 32,
    "slurm_account": "lab",
  }
  with pytest.raises(ValueError, match="without --config"):
    sweep_main(["--report", str(tmp_path), "--config", exp])


def test_a_sweep_may_import_modules_next_to_its_file(tmp_path):
  (tmp_path / "sweep_values_neighbour.py").write_text("RATES = [1e-3, 2e-4]\n")
  body = 'from sweep_values_neighbour import RATES; return [{"optim.d.lr": r} for r in RATES]'
  exp = write_experiment(tmp_path, body)
  assert [c.optim.d.lr for c in load_sweep(exp).configs] == [1e-3, 2e-4]


# ---------------------------------------------------------------------------------------- launchers


@pytest.mark.slow  # test-all; the fast tier runs the local launcher on stand-in commands (interrupted points)
def test_local_launcher_isolates_failures_and_retries_only_them(tmp_path, capsys, train_env):
  # A point that passes every up-front check but fails in its own process: more devices than its machine has.
  exp = write_experiment(tmp_path, 'return seeds(3) + [{"seed": 0, "train.num_devices": 99}]')
  out = str(tmp_path / "sweep")
  assert sweep_main(["--config", exp, "--workdir", out, "--parallel", "2"]) == 1
  first = {p.name: p for p in Manifest.load(out).points}
  assert [first[f"seed={s}"].status for s in range(3)] == ["done"] * 3
  failed = first["seed=0_train.num_devices=99"]
  assert failed.status == "failed" and failed.returncode != 0 and "train.num_devices=99" in failed.error
  assert len(failed.error.splitlines()) <= 20
  for s in range(3):
    assert read_jsonl(os.path.join(out, f"seed={s}", "metrics.jsonl"))[-1]["step"] == 4
  results = rows_of(os.path.join(out, "results.csv"))
  assert len(results) == 4 and {r["status"] for r in results} == {"done", "failed"}
  assert (tmp_path / "sweep" / "results.md").exists()

  logs = {n: (tmp_path / "sweep" / n / "train.log").read_text() for n in first}
  assert sweep_main(["--config", exp, "--workdir", out, "--parallel", "2"]) == 1
  second = {p.name: p for p in Manifest.load(out).points}
  for name in first:
    log = (tmp_path / "sweep" / name / "train.log").read_text()
    if name == failed.name:
      assert second[name].start_time != failed.start_time and log.startswith(logs[name]) and log != logs[name]
    else:
      assert second[name] == first[name] and log == logs[name]
  assert "4 points, 3 done already, running 1" in capsys.readouterr().err
  assert sweep_main(["--config", exp, "--workdir", out, "--dry-run"]) == 0  # lists what is left to run
  printed = capsys.readouterr()
  assert printed.out.splitlines() == [f'{failed.name}\t{{"seed": 0, "train.num_devices": 99}}']
  assert "4 points, 3 done already, would run 1" in printed.err
  assert {p.name: p for p in Manifest.load(out).points} == second  # and writes nothing


def test_interrupted_points_stay_running_and_rerun(tmp_path, monkeypatch):
  exp = write_experiment(tmp_path, "return seeds(3)")
  out = str(tmp_path / "sweep")
  plan = load_sweep(exp)
  jobs = lambda records: launch.make_jobs(group_points(plan.names, plan.points, plan.configs, 1), records, out)
  manifest, records = sync_manifest(plan, out)
  monkeypatch.setattr(launch, "train_command", lambda *_: [sys.executable, "-c", "import time; time.sleep(60)"])
  handler = signal.getsignal(signal.SIGTERM)
  threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
  with pytest.raises(guard.RunStopped, match="SIGTERM"):
    launch.run_local(manifest, out, jobs(records), parallel=2)
  assert [p.status for p in Manifest.load(out).points] == ["running", "running", "pending"]
  assert signal.getsignal(signal.SIGTERM) == handler

  monkeypatch.setattr(launch, "train_command", lambda *_: [sys.executable, "-c", "print('ok')"])
  manifest, records = sync_manifest(plan, out)
  launch.run_local(manifest, out, jobs(records), parallel=2)
  assert [p.status for p in Manifest.load(out).points] == ["done"] * 3
  assert (tmp_path / "sweep" / "seed=0" / "train.log").read_text().count("$ ") == 2


# ---------------------------------------------------------------------------------------- report


def write_run(directory, name, metrics, evals=None):
  os.makedirs(directory / name)
  with open(directory / name / "metrics.jsonl", "w") as f:
    f.writelines(json.dumps(m) + "\n" for m in metrics)
    f.write('{"step": 9, "d_lo')  # A run killed mid-write leaves half a line.
  if evals is not None:
    with open(directory / name / "eval.jsonl", "w") as f:
      f.writelines(json.dumps(e) + "\n" for e in evals)


def test_report_tables_and_seed_aggregation(tmp_path, capsys):
  rng = np.random.default_rng(0)
  records, expected, best_is = [], {}, {}
  for loss in ("hinge", "wgan"):
    for seed in range(3):
      point = {"loss.name": loss, "seed": seed}
      name = point_name(point)
      d_loss, fids, modes, scores = rng.normal(), rng.uniform(5, 50, 3), rng.integers(0, 9, 3), rng.uniform(1, 9, 3)
      spreads = rng.uniform(0, 1, 3)
      evals = [
        {
          "step": 10 * (i + 1),
          "fid": float(fids[i]),
          "modes": int(modes[i]),
          "is_mean": float(scores[i]),
          "is_std": float(spreads[i]),
        }
        for i in range(3)
      ]
      # The Inception Score's mean: larger is better; its std is the one of that evaluation.
      best_is[name] = scores.max(), spreads[scores.argmax()]
      write_run(tmp_path, name, [{"step": 5, "d_loss": 9.0}, {"step": 10, "d_loss": d_loss, "g_loss": 1.0}], evals)
      expected[name] = (d_loss, fids.min(), modes.max())
      records.append(PointRecord(name, point, str(tmp_path / name), "done", 0))
  write_run(tmp_path, "lost", [{"step": 2, "d_loss": -100.0}])
  records.append(PointRecord("lost", {"loss.name": "hinge", "seed": 9}, str(tmp_path / "lost"), "failed", 1, "boom"))
  Manifest("/x/exp.py", records).save(str(tmp_path))

  assert sweep_main(["--report", str(tmp_path)]) == 0
  assert "| name | status | loss.name | seed |" in capsys.readouterr().out
  rows = rows_of(tmp_path / "results.csv")
  assert list(rows[0])[:4] == ["name", "status", "loss.name", "seed"]
  done = [r for r in rows if r["status"] == "done"]
  assert [float(r["best.fid"]) for r in done] == sorted(e[1] for e in expected.values())
  assert rows[-1]["name"] == "lost" and rows[-1]["best.fid"] == ""
  for r in done:
    d_loss, fid, modes = expected[r["name"]]
    assert float(r["final.d_loss"]) == d_loss and float(r["best.fid"]) == fid and float(r["best.modes"]) == modes
    assert r["final.step"] == "10" and (float(r["best.is_mean"]), float(r["best.is_std"])) == best_is[r["name"]]

  by_seed = {r["loss.name"]: r for r in rows_of(tmp_path / "results_by_seed.csv")}
  assert set(by_seed) == {"hinge", "wgan"} and "seed" not in rows_of(tmp_path / "results_by_seed.csv")[0]
  md = (tmp_path / "results.md").read_text()
  for loss, row in by_seed.items():
    values = np.array([expected[point_name({"loss.name": loss, "seed": s})] for s in range(3)])
    assert row["seeds"] == "3"  # The failed hinge point is left out.
    for i, col in enumerate(("final.d_loss", "best.fid", "best.modes")):
      np.testing.assert_allclose(float(row[f"{col}.mean"]), values[:, i].mean(), rtol=1e-12)
      np.testing.assert_allclose(float(row[f"{col}.std"]), values[:, i].std(ddof=1), rtol=1e-12)
    assert f"{values[:, 1].mean():.4g} ± {values[:, 1].std(ddof=1):.4g}" in md
  assert "Sorted by best.fid (lower is better)" in md and "4 done" not in md and "6 done, 1 failed" in md

  assert sweep_main(["--report", str(tmp_path), "--metric", "modes"]) == 0
  modes_sorted = [float(r["best.modes"]) for r in rows_of(tmp_path / "results.csv") if r["status"] == "done"]
  assert modes_sorted == sorted(modes_sorted, reverse=True)
  assert sweep_main(["--report", str(tmp_path), "--metric", "final.d_loss"]) == 0
  assert rows_of(tmp_path / "results.csv")[0]["name"] == "lost"


# ---------------------------------------------------------------------------------------- --vectorize


def test_vectorize_groups_points_equal_but_for_seed_and_float_hparams(tmp_path, capsys):
  exp = write_experiment(
    tmp_path,
    "from gan_jax.sweep import product, sweep; "
    'return product(sweep("optim.d.lr", [1e-3, 2e-4]), seeds(2)) '
    '+ [{"loss.name": "hinge", "seed": 0}, {"loss.name": "hinge", "seed": 1, "train.ema_decay": 0.0}] '
    '+ [{"seed": 7, "model.g_width": 8}, {"seed": 8, "model.d_width": 8}, {"seed": 9, "population.size": 2}] '
    '+ [{"loss.name": "wasserstein", "seed": 3}]',
  )
  plan = load_sweep(exp)
  groups = group_points(plan.names, plan.points, plan.configs)
  assert [g.members for g in groups] == [tuple(plan.names[:4]), tuple(plan.names[4:6]), *((n,) for n in plan.names[6:])]
  lrs, hinge = groups[0], groups[1]
  assert lrs.name.startswith("base_pop4_") and hinge.name.startswith("loss.name=hinge_pop2_")
  members = {"population.seed": [0, 1, 0, 1], "population.d_lr": [1e-3, 1e-3, 2e-4, 2e-4]}
  assert lrs.overrides == {"population.size": 4, **members}
  # Values are compared resolved: ema_decay 0.0 is the experiment's own, so it does not vary.
  assert hinge.overrides == {"loss.name": "hinge", "population.size": 2, "population.seed": [0, 1]}
  # Widths, losses and points that are populations already train alone, under their own names and overrides.
  assert [(g.name, g.overrides) for g in groups[2:]] == list(zip(plan.names[6:], plan.points[6:], strict=True))
  assert not any(g.is_population for g in groups[2:])

  # Each member is exactly the config its point would have trained alone with.
  base = config_lib.load(exp)
  for group in groups[:2]:
    config_lib.apply_overrides(run := base.copy_and_resolve_references(), group.overrides)
    for member, name in zip(member_configs(run), group.members, strict=True):
      alone = config_lib.to_dict(plan.configs[plan.names.index(name)])
      assert config_lib.to_dict(member) == alone

  assert [len(g.members) for g in group_points(plan.names, plan.points, plan.configs, 3)[:3]] == [2, 2, 2]
  assert all(len(g.members) == 1 for g in group_points(plan.names, plan.points, plan.configs, 1))

  assert sweep_main(["--config", exp, "--workdir", str(tmp_path / "s"), "--dry-run", "--vectorize"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == f"{lrs.name}\t{json.dumps(lrs.overrides)}" and len(lines) == 5 + 3 + 4
  assert lines[1] == '  member 0: optim.d.lr=0.001_seed=0\t{"optim.d.lr": 0.001, "seed": 0}'
  assert not (tmp_path / "s").exists()
  with pytest.raises(SystemExit, match="2"):  # argparse: an integer >= 0 expected
    sweep_main(["--config", exp, "--workdir", str(tmp_path / "s"), "--vectorize", "-2"])
  assert "--vectorize: -2: expected an integer >= 0" in capsys.readouterr().err


def test_an_interrupted_population_comes_back_as_the_same_run(tmp_path):
  """With `--vectorize 3`, 10 seeds train as {0,1} {2,3,4} {5,6} {7,8,9}; cut after the first, the other three
  must keep their members (so their workdirs and checkpoints), where the 8 points left would chunk as 2, 3, 3."""
  plan = load_sweep(write_experiment(tmp_path, "return seeds(10)"))
  configs = dict(zip(plan.names, plan.configs, strict=True))
  _, records = sync_manifest(plan, str(tmp_path / "s"))
  groups = regroup(records, configs, 3)
  assert [len(g.members) for g in groups] == [2, 3, 2, 3]
  launch.make_jobs(groups, records, str(tmp_path / "s"))
  for r in records:
    r.status = "done" if r.member is not None and r.group == groups[0].name else "running"
  todo = [r for r in records if r.status != "done"]
  assert regroup(todo, configs, 3) == groups[1:]
  fresh = group_points([r.name for r in todo], [r.overrides for r in todo], [configs[r.name] for r in todo], 3)
  assert [len(g.members) for g in fresh] == [2, 3, 3]
  # A larger population than a new --vectorize MAX allows, or a population with a member done, is regrouped.
  assert [len(g.members) for g in regroup(todo, configs, 2)] == [2, 2, 2, 2]
  assert regroup(todo[1:], configs, 3)[:2] == groups[2:]
  assert regroup(todo[1:], configs, 3)[2].members == tuple(plan.names[3:5])


def test_report_reads_each_point_from_its_member_rows(tmp_path):
  # A population of two points (rows interleaved by member, as the train loop writes them) and a lone point.
  write_run(
    tmp_path,
    "g",
    [{"step": s, "member": m, "d_loss": 10.0 * s + m, "g_loss": -m} for s in (5, 10) for m in (0, 1)],
    [{"step": 10, "member": m, "fid": fid, "modes": 8 - m} for m, fid in ((0, 3.0), (1, 7.0), (0, 5.0), (1, 2.0))],
  )
  write_run(tmp_path, "seed=2", [{"step": 10, "d_loss": 1.5}], [{"step": 10, "fid": 4.0, "modes": 6}])
  Manifest(
    "/x/exp.py",
    [
      PointRecord("seed=0", {"seed": 0}, str(tmp_path / "g"), "done", 0, group="g", member=0),
      PointRecord("seed=1", {"seed": 1}, str(tmp_path / "g"), "done", 0, group="g", member=1),
      PointRecord("seed=2", {"seed": 2}, str(tmp_path / "seed=2"), "done", 0),
    ],
  ).save(str(tmp_path))
  sweep_main(["--report", str(tmp_path)])
  rows = {r["name"]: r for r in rows_of(tmp_path / "results.csv")}
  assert [r["name"] for r in rows_of(tmp_path / "results.csv")] == ["seed=1", "seed=0", "seed=2"]  # best.fid
  assert not any("member" in col for col in rows["seed=0"])
  assert {k: float(v) for k, v in rows["seed=0"].items() if "." in k} == {
    "final.step": 10,
    "final.d_loss": 100,
    "final.g_loss": 0,
    "final.fid": 5,
    "final.modes": 8,
    "best.fid": 3,
    "best.modes": 8,
  }
  assert {k: float(v) for k, v in rows["seed=1"].items() if "." in k} == {
    "final.step": 10,
    "final.d_loss": 101,
    "final.g_loss": -1,
    "final.fid": 2,
    "final.modes": 7,
    "best.fid": 2,
    "best.modes": 7,
  }
  (seed_row,) = rows_of(tmp_path / "results_by_seed.csv")
  assert seed_row["seeds"] == "3" and float(seed_row["best.fid.mean"]) == 3.0


@pytest.mark.slow  # test-all; the fast tier groups points (test_vectorize_*) and trains populations elsewhere
def test_vectorized_sweep_on_the_submitit_local_executor(tmp_path, capsys, monkeypatch, train_env):
  # The second group passes the up-front checks and fails in its job: more devices than the machine has.
  body = (
    'return [{"seed": s, "optim.d.lr": 2e-3} for s in (0, 1)] + [{"seed": s, "train.num_devices": 99} for s in (0, 1)]'
  )
  exp = write_experiment(tmp_path, body)
  out = tmp_path / "sweep"
  assert sweep_main(["--config", exp, "--workdir", str(out), "--vectorize", "--launcher", "submitit-local"]) == 1
  points = Manifest.load(str(out)).points
  good, bad = points[:2], points[2:]
  assert [(p.status, p.member) for p in points] == [("done", 0), ("done", 1), ("failed", 0), ("failed", 1)]
  assert good[0].group == good[1].group != bad[0].group == bad[1].group
  assert good[0].job_id == good[1].job_id != bad[0].job_id == bad[1].job_id
  assert good[0].workdir == str(out / good[0].group) and "train.num_devices=99" in bad[1].error
  assert {d for d in os.listdir(out) if not d.startswith((".", "results", "manifest"))} == {good[0].group, bad[0].group}
  with open(out / good[0].group / "config.json") as f:
    assert json.load(f)["population"]["size"] == 2

  rows = read_jsonl(str(out / good[0].group / "metrics.jsonl"))
  evals = read_jsonl(str(out / good[0].group / "eval.jsonl"))
  results = {r["name"]: r for r in rows_of(out / "results.csv")}
  for p in good:
    final = [r for r in rows if r["member"] == p.member][-1]
    final_eval = [r for r in evals if r["member"] == p.member][-1]  # the last evaluation, scalars only
    assert final["step"] == final_eval["step"] == 4
    final_eval = {k: v for k, v in final_eval.items() if k not in ("step", "member", "protocol")}
    assert {k: float(v) for k, v in results[p.name].items() if k.startswith("final.")} == {
      f"final.{k}": v for k, v in {**final, **final_eval}.items() if k != "member"
    }
  assert results[good[0].name]["final.d_loss"] != results[good[1].name]["final.d_loss"]

  # A (local) re-run retries the failed group alone, as the same population in the same workdir.
  ran = []
  monkeypatch.setattr(launch, "train_command", lambda _, job: ran.append(job) or [sys.executable, "-c", "exit(3)"])
  log = (out / good[0].group / "train.log").read_text()
  assert sweep_main(["--config", exp, "--workdir", str(out), "--vectorize"]) == 1
  assert [(j.workdir, j.overrides["population.size"]) for j in ran] == [(bad[0].workdir, 2)]
  assert (out / good[0].group / "train.log").read_text() == log
  assert "4 points, 2 done already, running 2 as 1 runs" in capsys.readouterr().err
  assert Manifest.load(str(out)).points[:2] == good


def test_an_edited_sweep_sets_stale_points_aside_and_trains_them_again(tmp_path, monkeypatch, capsys):
  """A done point whose resolved config changed (here the base's train.steps) is stale: the report says so,
  a re-run keeps its old workdir as NAME.stale-HASH and trains it afresh."""
  from gan_jax.sweep import report

  exp = write_experiment(tmp_path, "return seeds(2)")
  out = str(tmp_path / "sweep")
  monkeypatch.setattr(launch, "train_command", lambda *_: [sys.executable, "-c", "print('ok')"])

  def run_all():
    plan = load_sweep(exp)
    manifest, records = sync_manifest(plan, out)
    launch.run_local(
      manifest, out, launch.make_jobs(group_points(plan.names, plan.points, plan.configs, 1), records, out), 1
    )
    return Manifest.load(out).points

  first = run_all()
  assert [p.status for p in first] == ["done", "done"] and all(p.config_hash for p in first)
  assert [r["status"] for r in report.collect(out)[2]] == ["done", "done"]
  with open(exp) as f:
    source = f.read()
  with open(exp, "w") as f:
    f.write(source.replace("c.train.steps = 4", "c.train.steps = 5"))
  assert [r["status"] for r in report.collect(out)[2]] == ["stale", "stale"]
  capsys.readouterr()
  second = run_all()
  assert [p.status for p in second] == ["done", "done"]
  for old, new in zip(first, second, strict=True):
    assert new.config_hash != old.config_hash and new.workdir == old.workdir
    kept = f"{old.workdir}.stale-{old.config_hash}"
    runs = lambda d: (pathlib.Path(d) / "train.log").read_text().count("$ ")
    assert (runs(kept), runs(new.workdir)) == (1, 1)
  assert "seed=0: its config changed since it ran; old workdir kept as" in capsys.readouterr().err
  assert [r["status"] for r in report.collect(out)[2]] == ["done", "done"]
