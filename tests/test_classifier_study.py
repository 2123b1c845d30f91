"""The classifier library (training, accuracy, stratified subsets) and `gan-jax augment` end to end."""

import json
import os

import jax
import numpy as np
import pytest
from helpers import image_config

from gan_jax.apps import classifier_study
from gan_jax.cli import main
from gan_jax.data import fashion_mnist
from gan_jax.train import loop


def _blobs(idx_dir, prefix):
  images_NHW = fashion_mnist.read_idx(os.path.join(idx_dir, f"{prefix}-images-idx3-ubyte.gz"))
  labels_N = fashion_mnist.read_idx(os.path.join(idx_dir, f"{prefix}-labels-idx1-ubyte.gz"))
  return images_NHW[..., None].astype(np.float32) / 127.5 - 1.0, labels_N.astype(np.int32)


def test_classifier_learns_the_blobs_and_is_deterministic(fashion_idx_dir):
  train_x, train_y = _blobs(fashion_idx_dir, "train")
  test_x, test_y = _blobs(fashion_idx_dir, "t10k")
  fit = dict(epochs=1, batch_size=32, lr=3e-3, min_steps=24)  # 8 steps an epoch: 3 epochs
  logged = []
  variables = classifier_study.train_classifier(train_x, train_y, seed=0, log=logged.append, **fit)
  assert len(logged) == 3 and logged[-1].startswith("epoch 3/3: loss ")
  assert classifier_study.accuracy(variables, test_x, test_y) > 0.8  # chance: 0.1
  again = classifier_study.train_classifier(train_x, train_y, seed=0, **fit)
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(again), strict=True):
    np.testing.assert_array_equal(a, b)
  other = classifier_study.train_classifier(train_x, train_y, seed=1, **fit)
  assert not np.array_equal(jax.tree.leaves(variables)[0], jax.tree.leaves(other)[0])
  with pytest.raises(ValueError, match="expected one label per image"):
    classifier_study.train_classifier(train_x, train_y[:-1], seed=0, **fit)


def test_training_schedule():
  assert classifier_study.training_schedule(60000, epochs=5, batch_size=128) == (128, 5, 468)  # the shipped recipe
  assert classifier_study.training_schedule(600, epochs=2, batch_size=128, min_steps=100) == (128, 25, 4)
  assert classifier_study.training_schedule(50, epochs=2, batch_size=128) == (50, 2, 1)  # one batch of the whole set
  with pytest.raises(ValueError, match="0 training examples"):
    classifier_study.training_schedule(0, epochs=1, batch_size=128)


def test_stratified_subset_size_and_balance():
  rng = np.random.default_rng(0)
  counts_C = np.array([300, 200, 150, 100, 97, 53, 50, 30, 12, 8])
  labels_N = rng.permutation(np.repeat(np.arange(10), counts_C)).astype(np.int32)
  for fraction in (0.01 * 13, 0.1, 0.25, 1.0):
    index = classifier_study.stratified_subset(labels_N, fraction, seed=3)
    assert len(index) == round(fraction * len(labels_N)) and len(np.unique(index)) == len(index)
    got_C = np.bincount(labels_N[index], minlength=10)
    assert (np.abs(got_C - fraction * counts_C) < 1).all(), got_C  # each class its share, rounded
  a, b = (classifier_study.stratified_subset(labels_N, 0.1, seed=s) for s in (3, 4))
  np.testing.assert_array_equal(a, classifier_study.stratified_subset(labels_N, 0.1, seed=3))
  assert not np.array_equal(a, b)
  with pytest.raises(ValueError, match=r"leaves classes \[8, 9\] empty"):
    classifier_study.stratified_subset(labels_N, 0.02, seed=0)
  for bad in (0.0, 1.5):
    with pytest.raises(ValueError, match=f"fraction {bad}: expected 0 < fraction <= 1"):
      classifier_study.stratified_subset(labels_N, bad, seed=0)
  assert classifier_study.parse_fractions("0.01,0.1") == (0.01, 0.1)
  for bad in ("0.1,x", "0,0.5", "0.1,0.1"):
    with pytest.raises(ValueError, match="--fractions"):
      classifier_study.parse_fractions(bad)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, fashion_idx_dir):
  """3-step MLP-GAN runs on the small IDX fixture: class-conditional and not."""
  root = tmp_path_factory.mktemp("runs")
  runs = {}
  for name, extra in (("conditional", {"model.conditional": True}), ("unconditional", {})):
    overrides = {"train.steps": 3, "train.log_every": 3, **extra}
    loop.train_and_evaluate(image_config(fashion_idx_dir, root / "tfds", "mlp_gan", **overrides), str(root / name))
    runs[name] = str(root / name)
  return runs


@pytest.mark.slow  # test-all; the fast tier trains the classifier (above) and runs the CLI to its refusal (below)
def test_augment_cli_end_to_end(tiny_runs, capsys):
  argv = ["augment", "--workdir", tiny_runs["conditional"], "--fractions", "0.25,0.5", "--seeds", "2"]
  argv += ["--epochs", "1", "--min-steps", "3", "--generated", "40"]
  assert main(argv) == 0
  captured = capsys.readouterr()
  report = json.loads(captured.out)
  assert captured.err.count("seed ") == 2  # a progress line per seed
  table = report["accuracy"]
  assert list(table) == ["0.25", "0.5"]
  for fraction, n in (("0.25", 64), ("0.5", 128)):
    assert list(table[fraction]) == ["real", "real+generated", "generated"]
    sizes = {"real": n, "real+generated": n + 40, "generated": 40}
    for setting, row in table[fraction].items():
      assert len(row["per_seed"]) == 2 and all(0 <= a <= 1 for a in row["per_seed"])
      assert np.isfinite(row["mean"]) and np.isfinite(row["std"]) and row["std"] >= 0
      assert row["train_images"] == sizes[setting] and row["steps"] >= 3
  assert table["0.25"]["generated"] == table["0.5"]["generated"]  # generated images depend on the seed only
  protocol = report["protocol"]
  assert protocol["step"] == 3 and protocol["seeds"] == [0, 1] and protocol["fractions"] == [0.25, 0.5]
  assert protocol["epochs"] == 1 and protocol["generated"] == 40 and report["seconds"] > 0
  assert protocol["train_split_images"] == 256 and protocol["test_images"] == 64

  assert main([*argv[:3], "--fractions", "0,0.5"]) == 2  # before the run is loaded
  assert "--fractions '0,0.5': [0.0] outside (0, 1]" in capsys.readouterr().err


def test_augment_refuses_an_unconditional_run(tiny_runs, capsys):
  assert main(["augment", "--workdir", tiny_runs["unconditional"], "--seeds", "1"]) == 2
  err = capsys.readouterr().err
  assert "gan-jax augment: error: augment needs a class-conditional run, got model.conditional=False" in err
