"""End-to-end training: device-count invariance, resume, determinism, bad input, CLI."""

import json
import os

import jax
import numpy as np
import pytest
from helpers import assert_runs_close, image_config, losses_of, ring_config

from gan_jax import config as config_lib
from gan_jax import data
from gan_jax.cli import main
from gan_jax.records import read_jsonl
from gan_jax.train import guard, loop
from gan_jax.train.writers import MetricsWriter


# The fast tier's run: the 2D MLP; the image models (slow tier) add convolutions, batch norm over the devices and
# dropout, whose per-example masks test_models.py::test_dropout_masks_do_not_depend_on_the_device_layout checks.
@pytest.mark.parametrize(
  "model", ["mlp2d", pytest.param("dcgan", marks=pytest.mark.slow), pytest.param("mlp_gan", marks=pytest.mark.slow)]
)
def test_eight_devices_match_one(model, tmp_path, fashion_idx_dir, tfds_dir):
  devices = 8
  make = (
    (lambda **o: ring_config(**o))
    if model == "mlp2d"
    else (lambda **o: image_config(fashion_idx_dir, tfds_dir, model, **o))
  )
  states = {}
  for n in (1, devices):
    states[n] = loop.train_and_evaluate(make(**{"train.num_devices": n}), str(tmp_path / f"d{n}"))
  assert_runs_close(losses_of(tmp_path / "d1"), losses_of(tmp_path / f"d{devices}"))
  for a, b in zip(jax.tree.leaves(states[1]), jax.tree.leaves(states[devices]), strict=True):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-5)
  assert np.any(np.asarray(jax.tree.leaves(states[devices].g.params)[0]) != 0)


def test_same_seed_same_metrics_and_seed_matters(tmp_path):
  loop.train_and_evaluate(ring_config(), str(tmp_path / "a"))
  loop.train_and_evaluate(ring_config(), str(tmp_path / "b"))
  loop.train_and_evaluate(ring_config(seed="1"), str(tmp_path / "c"))
  a, b, c = (losses_of(tmp_path / n) for n in "abc")
  assert a == b
  assert a != c


class Interrupted(Exception):
  pass


def test_interrupted_run_resumes_bitwise(tmp_path, monkeypatch, capsys):
  config = lambda: ring_config(**{"eval.every": 2, "eval.num_samples": 256})
  loop.train_and_evaluate(config(), str(tmp_path / "full"))
  full_best = [line for line in capsys.readouterr().err.splitlines() if line.startswith("best modes")]
  real = data.make_batches

  def dies_at_step_five(config, **kw):
    it = real(config, **kw)
    for _ in range(4):
      yield next(it)
    raise Interrupted

  monkeypatch.setattr(data, "make_batches", dies_at_step_five)
  with pytest.raises(guard.RunFailed, match="failed at step 5 with Interrupted: ; its newest checkpoint, step 3"):
    loop.train_and_evaluate(config(), str(tmp_path / "resumed"))
  assert [r["step"] for r in losses_of(tmp_path / "resumed")] == [1, 2, 3, 4]
  assert [r["step"] for r in read_jsonl(tmp_path / "resumed" / "eval.jsonl")] == [2, 4]
  monkeypatch.setattr(data, "make_batches", real)
  capsys.readouterr()
  loop.train_and_evaluate(config(), str(tmp_path / "resumed"))  # resumes from step 3, evaluates 4 again
  assert losses_of(tmp_path / "resumed") == losses_of(tmp_path / "full")
  evals = lambda run: read_jsonl(tmp_path / run / "eval.jsonl")
  assert [r["step"] for r in evals("resumed")] == [2, 4, 6] and evals("resumed") == evals("full")
  # The summary's best counts the evaluation at step 2, made before the interruption.
  assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("best modes")] == full_best
  assert len(full_best) == 1
  best_steps = lambda run: sorted(d for d in os.listdir(tmp_path / run / "checkpoints_best") if d.isdigit())
  assert best_steps("resumed") == best_steps("full") and best_steps("full")


@pytest.mark.parametrize("first, then", [(8, 1), pytest.param(1, 8, marks=pytest.mark.slow)])
def test_checkpoint_moves_between_device_counts(first, then, tmp_path):
  loop.train_and_evaluate(ring_config(**{"train.num_devices": 1}), str(tmp_path / "one"))
  loop.train_and_evaluate(ring_config(**{"train.num_devices": first, "train.steps": 3}), str(tmp_path / "moved"))
  loop.train_and_evaluate(ring_config(**{"train.num_devices": then}), str(tmp_path / "moved"))
  assert_runs_close(losses_of(tmp_path / "one"), losses_of(tmp_path / "moved"))


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"model.name": "nope"}, "unknown model 'nope'"),
    ({"data.name": "nope"}, "nope"),
    ({"loss.name": "nope"}, "nope"),
    ({"train.batch_size": 12, "train.num_devices": 8}, "train.batch_size=12 is not divisible"),
  ],
)
def test_bad_input_is_one_clear_error(overrides, message, tmp_path):
  with pytest.raises((ValueError, KeyError, ImportError)) as e:
    loop.train_and_evaluate(ring_config(**overrides), str(tmp_path))
  assert message in str(e.value) and "\n" not in str(e.value)


def test_workdir_with_other_architecture_is_refused(tmp_path):
  loop.train_and_evaluate(ring_config(**{"train.steps": 1}), str(tmp_path))
  with pytest.raises(ValueError, match=r"another architecture \(model.g_width: 16 -> 32\)"):
    loop.train_and_evaluate(ring_config(**{"model.g_width": 32}), str(tmp_path))


def test_cli_train_resume_and_sample(tmp_path, capsys):
  cfg = tmp_path / "exp.py"
  cfg.write_text(
    "from gan_jax.config import base_config\n"
    "def get_config(arg=None):\n"
    "  c = base_config()\n"
    "  c.data.name, c.model.name, c.model.latent_dim = arg or 'ring8', 'mlp2d', 2\n"
    "  c.model.g_width = c.model.d_width = 8\n"
    "  c.train.steps, c.train.batch_size, c.train.log_every, c.train.sample_every = 2, 8, 1, 2\n"
    "  return c\n"
  )
  wd = str(tmp_path / "run")
  assert main(["train", "--config", f"{cfg}:grid25", "--workdir", wd, "--config.train.steps=2"]) == 0
  with open(os.path.join(wd, "config.json")) as f:
    assert json.load(f)["data"]["name"] == "grid25"
  assert os.path.exists(os.path.join(wd, "samples", "step_0000002.png"))
  assert main(["train", "--config", f"{cfg}:grid25", "--workdir", wd, "--config.train.steps", "3"]) == 0
  assert "Resuming" in capsys.readouterr().err
  assert [r["step"] for r in losses_of(wd)] == [1, 2, 3]
  out = str(tmp_path / "s.npz")
  assert main(["sample", "--workdir", wd, "--num", "10", "--out", out]) == 0
  points = np.load(out)["points"]
  assert points.shape == (10, 2) and points.dtype == np.float32
  assert main(["train", "--config", str(cfg), "--workdir", wd, "--config.train.stepz=3"]) == 2
  assert "unknown config key 'train.stepz'" in capsys.readouterr().err


def test_sample_writes_uint8_images(tmp_path, fashion_idx_dir, tfds_dir):
  wd = str(tmp_path / "run")
  # DiffAugment in the step (its 1-vs-8-device run is in the slow tier).
  augmented = {"train.steps": 1, "augment.policy": "color,translation,cutout"}
  loop.train_and_evaluate(image_config(fashion_idx_dir, tfds_dir, **augmented), wd)
  out = str(tmp_path / "s.npz")
  assert main(["sample", "--workdir", wd, "--num", "5", "--out", out, "--no-ema"]) == 0
  images = np.load(out)["images"]
  assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
  assert os.path.exists(os.path.join(wd, "samples", "step_0000001.png"))


def test_progress_gif_has_one_frame_per_grid(tmp_path):
  c = ring_config(**{"train.sample_every": 2})
  loop.train_and_evaluate(c, str(tmp_path / "run"))
  out = str(tmp_path / "p.gif")
  assert main(["gif", str(tmp_path / "run"), "--out", out]) == 0
  from PIL import Image

  assert Image.open(out).n_frames == 3  # steps 2, 4, 6


def test_only_the_primary_process_writes_metrics(tmp_path):
  """On a multi-host run every process holds the metrics; one writing them keeps metrics.jsonl whole."""
  (tmp_path / "metrics.jsonl").write_text('{"step": 2, "d_loss": 1.0}\n{"step": 4, "d_loss": 0.5}\n')
  other = MetricsWriter(str(tmp_path), resume_step=2, primary=False)
  other.write(4, {"d_loss": 9.0})
  other.close()
  assert [r["step"] for r in read_jsonl(str(tmp_path / "metrics.jsonl"))] == [2, 4]  # untouched
  primary = MetricsWriter(str(tmp_path), resume_step=2)
  primary.write(4, {"d_loss": 0.25})
  primary.close()
  assert read_jsonl(str(tmp_path / "metrics.jsonl"))[1] == {"step": 4, "d_loss": 0.25}


def test_tensorboard_writer_loads_without_torch():
  """tensorboardX would import torch (the [bench] extra) in every run: ~4 s per sweep point on 2 cores."""
  import subprocess
  import sys

  code = (
    "import sys; from gan_jax.train.writers import summary_writer_class; "
    "w = summary_writer_class(); print(w.__name__, 'torch' in sys.modules)"
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
  assert out.split() == ["SummaryWriter", "False"]


def test_custom_loss_by_dotted_path_trains(tmp_path):
  """The shipped example (the experiment file is also the loss's module) vs the same function as a callable."""
  exp = os.path.join(os.path.dirname(__file__), "..", "experiments", "custom_loss_example.py")
  small = {"train.steps": 3, "train.batch_size": 16, "model.g_width": 8, "model.d_width": 8, "train.log_every": 1}
  args = [f"--config.{k}={v}" for k, v in small.items()]
  assert main(["train", "--config", exp, "--workdir", str(tmp_path / "path"), *args]) == 0
  import custom_loss_example  # importable now: the experiment's folder joined sys.path

  as_callable = config_lib.load(exp)
  config_lib.apply_overrides(as_callable, {**small, "loss.name": "hinge"})
  loop.train_and_evaluate(as_callable, str(tmp_path / "callable"), loss_fn=custom_loss_example.softplus_margin)
  as_hinge = config_lib.load(exp)
  config_lib.apply_overrides(as_hinge, {**small, "loss.name": "hinge"})
  loop.train_and_evaluate(as_hinge, str(tmp_path / "hinge"))
  path_rows = losses_of(tmp_path / "path")
  assert len(path_rows) == 3 and path_rows == losses_of(tmp_path / "callable")
  assert path_rows != losses_of(tmp_path / "hinge")


def test_rejected_config_leaves_the_workdir_untouched(tmp_path):
  with pytest.raises(ValueError, match="data.name"):
    loop.train_and_evaluate(ring_config(**{"data.name": "ring9"}), str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "config.json")
  loop.train_and_evaluate(ring_config(**{"train.steps": 1}), str(tmp_path / "run"))  # the fixed config runs


def test_evaluation_during_training_and_best_checkpoints(tmp_path):
  wd = str(tmp_path / "run")
  loop.train_and_evaluate(ring_config(**{"eval.every": 2, "checkpoint.keep_best": 1}), wd)
  rows = read_jsonl(os.path.join(wd, "eval.jsonl"))
  assert [r["step"] for r in rows] == [2, 4, 6]
  assert all({"modes", "high_quality", "reverse_kl"} <= r.keys() for r in rows)
  assert rows[-1]["protocol"]["generated_count"] == 2500 and rows[-1]["protocol"]["step"] == 6
  (kept,) = [n for n in os.listdir(os.path.join(wd, "checkpoints_best")) if n.isdigit()]  # and orbax's metadata
  assert {r["step"]: r["modes"] for r in rows}[int(kept)] == max(r["modes"] for r in rows)
