"""Bad input, command by command: one line on stderr naming the bad value, exit status 2, and every file under
the test's directory (a trained run among them) byte for byte as before."""

import json
import os
import shutil

import numpy as np
import pytest
from helpers import ring_config, snapshot

from gan_jax import cli
from gan_jax.train import loop

EXPERIMENT = "from helpers import ring_config\n\ndef get_config(arg=None):\n  return ring_config()\n"
# Experiment files that are wrong in themselves: name -> source.
BAD_FILES = {
  "syntax.py": "def get_config(:\n",
  "returns_none.py": "def get_config(arg=None):\n  return None\n",
  "no_get_config.py": "from helpers import ring_config\n",
  "raises.py": "from helpers import ring_config\n\ndef get_config(arg=None):\n  return ring_confg()\n",
  "nan_lr.py": "from helpers import ring_config\n\ndef get_config(arg=None):\n"
  "  c = ring_config()\n  c.optim.d.lr = float('nan')\n  return c\n",
  "no_sweep.py": EXPERIMENT,
  "grouped_loss.py": "import jax.numpy as jnp\n\ndef loss(r, f):\n"
  "  return jnp.mean(jnp.reshape(f - r, (4, -1)), axis=0).squeeze(), -jnp.mean(f)\n",
  "typo_key.py": "from helpers import ring_config\n\ndef get_config(arg=None):\n"
  "  c = ring_config()\n  c.train.stpes = 5\n  return c\n",
  "exits.py": "import sys\n\ndef get_config(arg=None):\n  sys.exit(3)\n",
  "sweep_raises.py": EXPERIMENT + "\ndef get_sweep(arg=None):\n  return [{'seed': s} for s in rnage(3)]\n",
}


def train(workdir="{new}", *overrides):
  return ["train", "--config", "{exp}", "--workdir", workdir, *overrides]


# (id, argv, a piece of the expected line); {exp}, {run}, {new}, {tmp} are filled in by the test.
CASES = [
  # config values a run cannot use
  ("steps-zero", train("{new}", "--config.train.steps=0"), "train.steps=0: expected an integer in [1, "),
  ("steps-negative", train("{new}", "--config.train.steps=-5"), "train.steps=-5"),
  ("lr-negative", train("{new}", "--config.optim.g.lr=-1e-4"), "optim.g.lr=-0.0001: expected a positive finite"),
  ("lr-infinite", train("{new}", "--config.optim.d.lr=1e400"), "optim.d.lr=inf"),
  ("lr-nan-in-file", ["train", "--config", "{tmp}/nan_lr.py", "--workdir", "{new}"], "optim.d.lr=nan"),
  ("lr-not-a-number", train("{new}", "--config.optim.d.lr=fast"), "--config.optim.d.lr='fast' is not a Python literal"),
  ("ema-one", train("{new}", "--config.train.ema_decay=1.0"), "train.ema_decay=1.0: expected [0, 1)"),
  ("ema-negative", train("{new}", "--config.train.ema_decay=-0.1"), "train.ema_decay=-0.1"),
  (
    "population-ema",
    train("{new}", "--config.population.size=2", "--config.population.ema_decay=(0.9,1.5)"),
    "population.ema_decay value=1.5",
  ),
  ("optim-name-typo", train("{new}", "--config.optim.d.name=adma"), "optim.d.name='adma': expected one of ['adam',"),
  ("keep-zero", train("{new}", "--config.checkpoint.keep=0"), "checkpoint.keep=0: expected an integer in [1, "),
  ("keep-best-negative", train("{new}", "--config.checkpoint.keep_best=-1"), "checkpoint.keep_best=-1"),
  ("best-metric-typo", train("{new}", "--config.eval.best_metric=mdoes"), "eval.best_metric='mdoes': expected one of"),
  ("best-metric-of-images", train("{new}", "--config.eval.best_metric=fid"), "eval.best_metric='fid'"),
  ("log-every-zero", train("{new}", "--config.train.log_every=0"), "train.log_every=0"),
  ("checkpoint-every-zero", train("{new}", "--config.checkpoint.every=0"), "checkpoint.every=0"),
  ("sample-every-zero", train("{new}", "--config.train.sample_every=0"), "train.sample_every=0"),
  ("eval-every-negative", train("{new}", "--config.eval.every=-1"), "eval.every=-1"),
  ("eval-samples-negative", train("{new}", "--config.eval.num_samples=-1"), "eval.num_samples=-1"),
  ("d-steps-zero", train("{new}", "--config.train.d_steps=0"), "train.d_steps=0"),
  ("latent-zero", train("{new}", "--config.model.latent_dim=0"), "model.latent_dim=0"),
  ("batch-zero", train("{new}", "--config.train.batch_size=0"), "train.batch_size=0"),
  (
    "batch-not-divisible",
    train("{new}", "--config.train.num_devices=2", "--config.train.batch_size=15"),
    "train.batch_size=15 is not divisible",
  ),
  ("too-many-devices", train("{new}", "--config.train.num_devices=99"), "train.num_devices=99"),
  ("b1-one", train("{new}", "--config.optim.g.b1=1.0"), "optim.g.b1=1.0"),
  ("smoothing-one", train("{new}", "--config.loss.label_smoothing=1.0"), "loss.label_smoothing=1.0"),
  ("penalty-weight-negative", train("{new}", "--config.penalty.weight=-1.0"), "penalty.weight=-1.0"),
  ("population-zero", train("{new}", "--config.population.size=0"), "population.size=0"),
  ("population-seeds", train("{new}", "--config.population.seed=(1,2)"), "population.seed=(1, 2)"),
  ("update-order", train("{new}", "--config.train.update_order=sideways"), "train.update_order='sideways'"),
  ("schedule", train("{new}", "--config.optim.g.schedule=zigzag"), "'zigzag'"),
  ("augment-points", train("{new}", "--config.augment.policy=color"), "augment.policy='color'"),
  # names that are not registered or importable
  ("loss-unknown", train("{new}", "--config.loss.name=nope"), "unknown loss 'nope'"),
  ("loss-module-missing", train("{new}", "--config.loss.name=no_such_module:fn"), "no_such_module"),
  ("penalty-unknown", train("{new}", "--config.penalty.name=nope"), "'nope'"),
  ("model-unknown", train("{new}", "--config.model.name=nope"), "'nope'"),
  ("data-unknown", train("{new}", "--config.data.name=nope"), "'nope'"),
  ("data-folder-missing", train("{new}", "--config.data.name=folder:{tmp}/no_images"), "no_images"),
  ("data-npz-not-npz", train("{new}", "--config.data.name=npz:{tmp}/notes.txt"), "notes.txt"),
  (
    "feature-net-cannot-score",
    train(
      "{new}",
      "--config.data.name=npz:{tmp}/rgb.npz",
      "--config.model.name=dcgan",
      "--config.eval.feature_net=fashion_mnist",
    ),
    "use the inception feature net",
  ),
  (
    "eval-num-samples-few",
    train(
      "{new}", "--config.data.name=npz:{tmp}/gray60.npz", "--config.model.name=dcgan", "--config.eval.num_samples=5"
    ),
    "eval.num_samples=5: expected 0",
  ),
  (
    "eval-real-split-small",
    train("{new}", "--config.data.name=npz:{tmp}/gray20.npz", "--config.model.name=dcgan"),
    "holds 2 test images",
  ),
  ("seed-negative", train("{new}", "--config.seed=-1"), "seed=-1: expected an integer in [0, 4294967295]"),
  ("seed-huge", train("{new}", f"--config.seed={10**30}"), "seed=1000000000000000000000000000000: expected"),
  ("steps-huge", train("{new}", f"--config.train.steps={2**40}"), "train.steps=1099511627776: expected an integer in"),
  ("loss-not-scalar-at-run-batch", train("{new}", "--config.loss.name=grouped_loss:loss"), "returned shapes (4,)"),
  ("data-split-unknown", train("{new}", "--config.data.split=nope"), "data.split='nope': expected one of"),
  ("eval-protocol-unknown", train("{new}", "--config.eval.protocol=tf2"), "eval.protocol='tf2': expected one of"),
  (
    "inception-weights-missing",
    train(
      "{new}",
      "--config.eval.feature_net=inception",
      "--config.eval.inception_weights={tmp}/none.npz",
      "--config.data.name=npz:{tmp}/rgb.npz",
      "--config.model.name=dcgan",
    ),
    "none.npz",
  ),
  # overrides that are not overrides
  ("unknown-key", train("{new}", "--config.train.stepz=5"), "unknown config key 'train.stepz'"),
  ("unknown-section", train("{new}", "--config.foo.bar=1"), "'foo' is not a section"),
  ("wrong-type", train("{new}", "--config.train.steps=abc"), "--config.train.steps='abc'"),
  ("float-for-int", train("{new}", "--config.train.steps=1.5"), "expected a int"),
  (
    "override-no-value",
    ["train", "--config", "{exp}", "--config.train.steps", "--workdir", "{new}"],
    "override '--config.train.steps' has no value",
  ),
  ("override-at-end", ["train", "--config", "{exp}", "--workdir", "{new}", "--config.train.steps"], "has no value"),
  ("noconfig-not-boolean", train("{new}", "--noconfig.train.steps"), "'--noconfig.train.steps' has no value"),
  ("noconfig-with-value", train("{new}", "--noconfig.log.wandb=1"), "--noconfig.KEY takes no value"),
  (
    "override-on-sample",
    ["sample", "--workdir", "{run}", "--out", "{tmp}/s.npz", "--config.seed=1"],
    "--config.* overrides only apply to `train`",
  ),
  # experiment files
  ("config-missing", ["train", "--config", "{tmp}/missing.py", "--workdir", "{new}"], "missing.py' does not exist"),
  ("config-typo-key", ["train", "--config", "{tmp}/typo_key.py", "--workdir", "{new}"], "typo_key.py:5: get_config()"),
  ("config-not-python", ["train", "--config", "{tmp}/notes.txt", "--workdir", "{new}"], "notes.txt': expected an"),
  ("config-json-broken", ["train", "--config", "{tmp}/broken/config.json", "--workdir", "{new}"], "is not valid JSON"),
  ("config-syntax", ["train", "--config", "{tmp}/syntax.py", "--workdir", "{new}"], "syntax.py:1: importing it raised"),
  ("config-returns-none", ["train", "--config", "{tmp}/returns_none.py", "--workdir", "{new}"], "returned NoneType"),
  ("config-no-get-config", ["train", "--config", "{tmp}/no_get_config.py", "--workdir", "{new}"], "no get_config()"),
  (
    "config-raises",
    ["train", "--config", "{tmp}/raises.py", "--workdir", "{new}"],
    "raises.py:4: get_config() raised NameError",
  ),
  # workdirs
  ("workdir-is-file", train("{tmp}/nan_lr.py"), "is a file; expected a directory"),
  ("workdir-under-file", train("{tmp}/nan_lr.py/run"), "is a file; expected a directory path"),
  ("resume-fewer-steps", train("{run}", "--config.train.steps=3"), "train.steps=3 is below the step of"),
  ("resume-other-architecture", train("{run}", "--config.model.g_width=32"), "holds a run with another architecture"),
  ("resume-other-data", train("{run}", "--config.data.name=grid25"), "another architecture"),
  (
    "resume-other-loss",
    train("{run}", "--config.loss.name=hinge"),
    "change what its steps mean: loss.name ('non_saturating' -> 'hinge')",
  ),
  ("resume-new-rate", train("{run}", "--config.optim.d.lr=0.001"), "optim.d.lr (0.0002 -> 0.001)"),
  (
    "resume-new-schedule",
    train("{run}", "--config.optim.g.schedule=linear"),
    "optim.g.schedule ('constant' -> 'linear')",
  ),
  ("resume-new-seed", train("{run}", "--config.seed=3"), "seed (0 -> 3)"),
  (
    "get-config-exits",
    ["train", "--config", "{tmp}/exits.py", "--workdir", "{new}"],
    "exits.py:4: get_config() raised SystemExit: 3",
  ),
  ("wandb-without-login", train("{new}", "--config.log.wandb=true"), "log.wandb=True: no W&B credentials"),
  (
    "tfds-unprepared",
    train("{new}", "--config.data.name=tfds:mnist", "--config.model.name=dcgan", "--config.data.data_dir={tmp}/tfds"),
    "tfds:mnist is not prepared in",
  ),
  ("train-no-workdir", ["train", "--config", "{exp}"], "the following arguments are required: --workdir"),
  # sample
  (
    "sample-num-negative",
    ["sample", "--workdir", "{run}", "--num", "-3", "--out", "{tmp}/s.npz"],
    "--num: -3: expected an integer >= 1",
  ),
  ("sample-out-directory", ["sample", "--workdir", "{run}", "--out", "{tmp}/no_checkpoint"], "is a directory"),
  ("sample-out-not-npz", ["sample", "--workdir", "{run}", "--out", "{tmp}/samples"], "does not end in .npz"),
  ("sample-num-zero", ["sample", "--workdir", "{run}", "--num", "0", "--out", "{tmp}/s.npz"], "--num: 0"),
  ("sample-num-text", ["sample", "--workdir", "{run}", "--num", "many", "--out", "{tmp}/s.npz"], "'many'"),
  ("sample-no-run", ["sample", "--workdir", "{tmp}/nothing", "--out", "{tmp}/s.npz"], "config.json' does not exist"),
  ("sample-member", ["sample", "--workdir", "{run}", "--member", "5", "--out", "{tmp}/s.npz"], "member=5"),
  (
    "sample-member-negative",
    ["sample", "--workdir", "{run}", "--member", "-1", "--out", "{tmp}/s.npz"],
    "--member: -1",
  ),
  ("sample-nothing-to-write", ["sample", "--workdir", "{run}"], "expected --out FILE.npz, --png DIR or both"),
  ("sample-png-of-points", ["sample", "--workdir", "{run}", "--png", "{tmp}/pngs"], "is points"),
  ("sample-out-dir-missing", ["sample", "--workdir", "{run}", "--out", "{tmp}/no/dir/s.npz"], "No such file"),
  ("sample-no-checkpoint", ["sample", "--workdir", "{tmp}/no_checkpoint", "--out", "{tmp}/s.npz"], "has no checkpoint"),
  (
    "sample-png-is-file",
    ["sample", "--workdir", "{run}", "--out", "{tmp}/s.npz", "--png", "{tmp}/notes.txt"],
    "notes.txt' is a file; expected a directory",
  ),
  (
    "sample-labels-unconditional",
    ["sample", "--workdir", "{run}", "--labels", "1", "--out", "{tmp}/s.npz"],
    "not conditional",
  ),
  # eval
  ("eval-samples-text", ["eval", "--samples", "{tmp}/notes.txt"], "notes.txt"),
  ("eval-samples-empty", ["eval", "--samples", "{tmp}/empty.npz"], "empty.npz"),
  ("eval-samples-missing", ["eval", "--samples", "{tmp}/missing.npz"], "missing.npz"),
  ("eval-samples-wrong-key", ["eval", "--samples", "{tmp}/wrong_key.npz"], "wrong_key.npz"),
  ("eval-samples-bare-array", ["eval", "--samples", "{tmp}/bare.npy"], "holds one bare array"),
  ("eval-samples-no-images", ["eval", "--samples", "{tmp}/no_images.npz"], "`images` is uint8 (0, 28, 28, 1)"),
  ("eval-num-zero", ["eval", "--workdir", "{run}", "--num", "0"], "--num: 0"),
  # sizes past this machine's memory: one line before anything is allocated, not the OOM killer or a jaxlib dump
  ("eval-num-huge", ["eval", "--workdir", "{run}", "--num", "999999999"], "num_samples=999999999: 999,999,999 samples"),
  ("eval-floor-num-huge", ["eval", "--floor", "--workdir", "{run}", "--num", "999999999"], "num_samples=999999999"),
  (
    "sample-num-huge",
    ["sample", "--workdir", "{run}", "--num", "999999999999", "--out", "{tmp}/s.npz"],
    "num=999999999999",
  ),
  (
    "int-past-int64",
    train("{new}", "--config.train.d_steps=18446744073709551616"),
    "train.d_steps=18446744073709551616",
  ),
  (
    "population-size-huge",
    train("{new}", "--config.population.size=18446744073709551616"),
    "population.size=18446744073709551616: expected an integer in [1, ",
  ),
  # curves, sweep, tools
  ("curves-missing-dir", ["curves", "{tmp}/nothing", "--out", "{tmp}/c.png"], "nothing"),
  ("curves-alpha", ["curves", "{run}", "--out", "{tmp}/c.png", "--alpha", "2"], "--alpha 2.0"),
  (
    "curves-reference-missing",
    ["curves", "{run}", "--out", "{tmp}/c.png", "--reference", "{tmp}/ref.json"],
    "ref.json",
  ),
  (
    "curves-short-of-reference",
    ["curves", "{run}", "--out", "{tmp}/c.png", "--reference", "{tmp}/ref_long.json"],
    "nothing to check against the reference: d_loss (steps 1-6 of the reference's 1-1000)",
  ),
  ("sweep-parallel-zero", ["sweep", "--config", "{exp}", "--workdir", "{new}", "--parallel", "0"], "--parallel: 0"),
  (
    "sweep-get-sweep-raises",
    ["sweep", "--config", "{tmp}/sweep_raises.py", "--workdir", "{new}"],
    "sweep_raises.py:7: get_sweep() raised NameError",
  ),
  ("sweep-no-get-sweep", ["sweep", "--config", "{tmp}/no_sweep.py", "--workdir", "{new}"], "defines no get_sweep()"),
  (
    "interpolate-one-step",
    ["interpolate", "--workdir", "{run}", "--out", "{tmp}/i.png", "--steps", "1"],
    "--steps: 1: expected an integer >= 2",
  ),
  ("gif-frame-ms", ["gif", "{run}", "--out", "{tmp}/g.gif", "--frame-ms", "0"], "--frame-ms: 0"),
  ("unknown-command", ["trian"], "invalid choice: 'trian'"),
]


@pytest.fixture(scope="module")
def place(tmp_path_factory):
  """A directory holding a trained ring8 run and the files the cases name."""
  tmp = tmp_path_factory.mktemp("bad_input")
  loop.train_and_evaluate(ring_config(**{"eval.num_samples": 256}), str(tmp / "run"))
  (tmp / "exp.py").write_text(EXPERIMENT)
  for name, source in BAD_FILES.items():
    (tmp / name).write_text(source)
  (tmp / "notes.txt").write_text("not an npz\n")
  steps = list(range(1, 1001))
  long_curve = {"step": steps, "per_seed": [[1.0] * 1000, [1.1] * 1000]}
  objective = {"loss.name": "non_saturating", "loss.label_smoothing": 0.0, "loss.acgan_weight": 0.0}
  long_ref = {"format": 2, "recipe": objective, "seeds": [0, 1], "runs": [], "code": {}, "smoothing": 1}
  (tmp / "ref_long.json").write_text(json.dumps({**long_ref, "curves": {"d_loss": long_curve}}))
  np.savez(tmp / "empty.npz")
  np.savez(tmp / "wrong_key.npz", pictures=np.zeros((4, 28, 28, 1), np.uint8))
  np.savez(tmp / "no_images.npz", images=np.zeros((0, 28, 28, 1), np.uint8))
  np.save(tmp / "bare.npy", np.zeros((4, 2), np.float32))
  rng = np.random.default_rng(0)
  np.savez(tmp / "rgb.npz", images=rng.integers(0, 256, (40, 32, 32, 3), np.uint8))
  for n in (20, 60):
    np.savez(tmp / f"gray{n}.npz", images=rng.integers(0, 256, (n, 28, 28, 1), np.uint8))
  os.makedirs(tmp / "broken")
  (tmp / "broken" / "config.json").write_text("{not json")
  os.makedirs(tmp / "no_checkpoint")
  shutil.copy(tmp / "run" / "config.json", tmp / "no_checkpoint" / "config.json")
  return tmp


def test_the_table_is_large_enough():
  assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(argv, expected, place, capsys, monkeypatch):
  fill = {"exp": str(place / "exp.py"), "run": str(place / "run"), "new": str(place / "new_run"), "tmp": str(place)}
  argv = [a.format(**fill) for a in argv]
  for name in ("WANDB_API_KEY", "WANDB_MODE"):  # no W&B login here, as on a fresh machine
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv("WANDB_CONFIG_DIR", str(place / "no_wandb_config"))
  before = snapshot(place)
  capsys.readouterr()
  try:
    status = cli.main(argv)
  except SystemExit as e:  # argparse
    status = e.code
  err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
  assert status == 2, err
  assert len(err) == 1 and expected in err[0], err
  assert snapshot(place) == before


@pytest.mark.parametrize(
  "variables, expected",
  [
    ({"JAX_NUM_PROCESSES": "2"}, "JAX_COORDINATOR_ADDRESS, JAX_PROCESS_ID unset"),
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "'two'"),
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "JAX_PROCESS_ID=2"),
  ],
)
def test_bad_multi_host_variables_are_one_line_exit_2(variables, expected, place, monkeypatch, capsys):
  monkeypatch.setenv("GAN_JAX_DISTRIBUTED", "1")
  for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    monkeypatch.delenv(name, raising=False)
  for name, value in variables.items():
    monkeypatch.setenv(name, value)
  before = snapshot(place)
  capsys.readouterr()
  status = cli.main(["train", "--config", str(place / "exp.py"), "--workdir", str(place / "new_run")])
  err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
  assert status == 2 and len(err) == 1 and expected in err[0], err
  assert snapshot(place) == before
