"""Anomaly detection: exact AUROC against scikit-learn, D's head features, AnoGAN scores, the CLI end to end."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from helpers import image_config
from sklearn.metrics import roc_auc_score

from gan_jax import config as config_lib
from gan_jax import data, models
from gan_jax.apps import anomaly
from gan_jax.cli import main
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from gan_jax.train import loop


@pytest.mark.parametrize("seed", [0, 1])
def test_auroc_matches_sklearn_on_fixed_and_tied_scores(seed):
  rng = np.random.default_rng(seed)
  labels_N = rng.random(200) < 0.3
  continuous_N = rng.normal(size=200) + labels_N
  tied_N = rng.integers(0, 4, size=200).astype(np.float32) + labels_N  # many ties, within and across classes
  for scores_N in (continuous_N, tied_N, np.round(continuous_N, 1)):
    assert anomaly.auroc(scores_N, labels_N) == pytest.approx(roc_auc_score(labels_N, scores_N), abs=1e-12)
  assert anomaly.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75  # sklearn's documented example


def test_auroc_edge_cases_and_bad_input():
  labels_N = np.array([0, 1, 0, 1, 1])
  assert anomaly.auroc(np.full(5, 2.5), labels_N) == 0.5  # all tied
  assert anomaly.auroc(labels_N * 3.0, labels_N) == 1.0  # perfect separation
  assert anomaly.auroc(-labels_N * 3.0, labels_N) == 0.0
  assert anomaly.auroc([1.0, 2.0, 2.0, 2.0], [True, True, False, False]) == 0.25  # a tie counts a half
  with pytest.raises(ValueError, match="5 positives and 0 negatives"):
    anomaly.auroc(np.arange(5.0), np.ones(5))
  with pytest.raises(ValueError, match="not finite"):
    anomaly.auroc([0.0, np.nan], [0, 1])
  with pytest.raises(ValueError, match=r"scores \(3,\) and labels \(2,\)"):
    anomaly.auroc(np.zeros(3), [0, 1])
  with pytest.raises(ValueError, match="expected booleans or 0/1"):
    anomaly.auroc(np.zeros(2), [0, 2])


@pytest.mark.parametrize("name", ["dcgan", "mlp_gan", "mlp2d"])
def test_head_features_are_the_input_of_ds_head(name):
  c = config_lib.base_config()
  c.model.name, c.model.d_width = name, 8
  shape = (2,) if name == "mlp2d" else (28, 28, 1)
  info = data.DatasetInfo("x", "points" if name == "mlp2d" else "images", shape, 10, None)
  _, discriminator = models.get(c.model, info)
  x_N = jax.random.uniform(jax.random.PRNGKey(0), (3, *shape), minval=-1, maxval=1)
  d_vars = jax.jit(lambda x: discriminator.init(jax.random.PRNGKey(1), x, None, train=False))(x_N)
  assert set(d_vars) <= {"params", "batch_stats"}  # the sown features stay out of the state and its checkpoints
  f_NF = jax.jit(lambda v, x: anomaly.head_features(discriminator, v, x))(d_vars, x_N)
  logits_N = jax.jit(lambda v, x: discriminator.apply(v, x, None, train=False))(d_vars, x_N)
  params = traverse_util.flatten_dict(d_vars["params"])
  (head,) = [path[:-1] for path, v in params.items() if path[-1] == "kernel" and v.shape == (f_NF.shape[1], 1)]
  expected_N = f_NF @ params[(*head, "kernel")][:, 0] + params[(*head, "bias")][0]
  np.testing.assert_allclose(logits_N, expected_N, rtol=1e-5, atol=1e-5)


def test_anogan_ranks_images_off_the_generators_range_above_its_own():
  """A fixed tiny G: its own images (z ~ N(0, I)) are normal, uniform noise images are the anomalies."""
  latent_dim, shape = 2, (6, 6, 1)
  generator, discriminator = MLPGenerator((16,), shape), MLPDiscriminator((16, 8))
  g_vars = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, latent_dim)), train=False)
  d_vars = discriminator.init(jax.random.PRNGKey(1), jnp.zeros((1, *shape)), train=False)
  normal_N = generator.apply(g_vars, jax.random.normal(jax.random.PRNGKey(2), (12, latent_dim)), train=False)
  anomalies_N = jax.random.uniform(jax.random.PRNGKey(3), (12, *shape), minval=-1, maxval=1)
  x_N = np.concatenate([normal_N, anomalies_N])
  anomalous_N = np.arange(24) >= 12
  search = dict(steps=60, restarts=3, latent_dim=latent_dim, lr=0.1)
  score_N, generated_N = anomaly.anogan_scores(
    generator, discriminator, g_vars, d_vars, x_N, jax.random.PRNGKey(4), **search
  )
  assert generated_N.shape == x_N.shape and np.isfinite(score_N).all()
  assert anomaly.auroc(score_N, anomalous_N) == 1.0
  assert score_N[:12].max() < 0.5 * score_N[12:].min()  # G re-finds its own images; noise stays far
  again, _ = anomaly.anogan_scores(
    generator, discriminator, g_vars, d_vars, x_N, jax.random.PRNGKey(4), batch_size=5, **search
  )
  np.testing.assert_allclose(again, score_N, rtol=1e-3, atol=1e-4)  # batching changes only float32 rounding
  with pytest.raises(ValueError, match="λ=1.5"):
    anomaly.anogan_scores(generator, discriminator, g_vars, d_vars, x_N, jax.random.PRNGKey(4), weight=1.5, **search)


@pytest.mark.slow  # test-all; the fast tier trains and uses the encoder through the CLI (test_fanogan_cli_*)
def test_fanogan_encoder_learns_to_invert_the_generator():
  """E trained on a fixed tiny G's images reconstructs new ones far better than at init; noise stays far."""
  latent_dim, shape = 2, (8, 8, 1)
  generator, discriminator = MLPGenerator((16,), shape), MLPDiscriminator((16, 8))
  g_vars = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, latent_dim)), train=False)
  d_vars = discriminator.init(jax.random.PRNGKey(1), jnp.zeros((1, *shape)), train=False)
  sample = lambda seed, n: np.asarray(
    generator.apply(g_vars, jax.random.normal(jax.random.PRNGKey(seed), (n, latent_dim)), train=False)
  )
  nets, settings = (generator, discriminator, g_vars, d_vars), dict(latent_dim=latent_dim)
  normal_N = sample(3, 24)
  anomalies_N = np.asarray(jax.random.uniform(jax.random.PRNGKey(4), (24, *shape), minval=-1, maxval=1))
  x_N = np.concatenate([normal_N, anomalies_N])
  untrained = anomaly.Encoder(latent_dim).init(jax.random.PRNGKey(0), jnp.zeros((1, *shape)))
  before_N, _ = anomaly.fanogan_scores(*nets, untrained, x_N, **settings)
  lines = []
  e_vars = anomaly.train_encoder(*nets, sample(2, 512), steps=300, lr=3e-3, log=lines.append, **settings)
  score_N, generated_N = anomaly.fanogan_scores(*nets, e_vars, x_N, **settings)
  assert generated_N.shape == x_N.shape and np.isfinite(score_N).all() and len(lines) == 10
  assert score_N[:24].mean() < 0.2 * before_N[:24].mean()  # E(x) is near x's code: G(E(x)) ≈ x
  assert anomaly.auroc(score_N, np.arange(48) >= 24) == 1.0
  # The score is izi_f's loss itself: checked here from its definition, on the reconstructions returned.
  f = lambda x: anomaly.head_features(discriminator, d_vars, jnp.asarray(x))
  expected_N = np.mean((x_N - generated_N) ** 2, axis=(1, 2, 3)) + np.mean((f(x_N) - f(generated_N)) ** 2, axis=1)
  np.testing.assert_allclose(score_N, expected_N, rtol=1e-4, atol=1e-6)
  again, _ = anomaly.fanogan_scores(*nets, e_vars, x_N, batch_size=5, **settings)
  np.testing.assert_allclose(again, score_N, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="κ=-1"):
    anomaly.train_encoder(*nets, normal_N, steps=1, kappa=-1.0, **settings)


def test_bad_exclude_classes_stops_training_at_start_up(tmp_path, fashion_idx_dir):
  for value, match in (((3, "shoes"), "expected a tuple of class indices"), ((3, 10), r"classes \[10\] outside 0..9")):
    config = image_config(fashion_idx_dir, tmp_path / "tfds", **{"data.exclude_classes": value})
    with pytest.raises(ValueError, match=match) as e:
      loop.train_and_evaluate(config, str(tmp_path / "run"))
    assert f"data.exclude_classes={value!r}" in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "run")


@pytest.fixture(scope="module")
def held_out_run(tmp_path_factory, fashion_idx_dir):
  """A 3-step MLP GAN trained without class 3 on the small IDX fixture."""
  root = tmp_path_factory.mktemp("runs")
  overrides = {"train.steps": 3, "train.log_every": 3, "train.num_devices": 1, "data.exclude_classes": "3"}
  loop.train_and_evaluate(image_config(fashion_idx_dir, root / "tfds", "mlp_gan", **overrides), str(root / "run"))
  return str(root / "run")


def test_anomaly_cli_end_to_end(held_out_run, tmp_path, capsys):
  argv = ["anomaly", "--workdir", held_out_run, "--images", "test:0-63", "--steps", "3", "--restarts", "2"]
  assert main([*argv, "--out", str(tmp_path / "scores.npz")]) == 0
  report = json.loads(capsys.readouterr().out)
  assert {"auroc", "count", "positives", "mean_score_normal", "mean_score_anomaly", "protocol"} <= set(report)
  assert 0 <= report["auroc"] <= 1 and np.isfinite([report["mean_score_normal"], report["mean_score_anomaly"]]).all()
  _, test_labels = data.load_split(config_lib.read_run_config(held_out_run), "test")
  assert report["count"] == 64 and report["positives"] == int(np.sum(test_labels == 3))
  protocol = report["protocol"]
  assert protocol["held_out_classes"] == [3] and protocol["step"] == 3 and protocol["weight"] == 0.1
  assert (protocol["steps"], protocol["restarts"], protocol["method"]) == (3, 2, "anogan") and protocol["seconds"] > 0
  with np.load(tmp_path / "scores.npz") as f:
    np.testing.assert_array_equal(f["anomalous"], test_labels == 3)
    assert anomaly.auroc(f["scores"], f["anomalous"]) == report["auroc"]


def test_fanogan_cli_trains_its_encoder_once(held_out_run, tmp_path, capsys):
  run = str(tmp_path / "run")
  shutil.copytree(held_out_run, run)
  argv = ["anomaly", "--workdir", run, "--images", "test:0-63", "--method", "fanogan", "--steps", "4"]
  assert main(argv) == 0
  first = json.loads(capsys.readouterr().out)
  assert first["encoder_trained"] == 1 and first["count"] == 64 and 0 <= first["auroc"] <= 1
  assert (first["protocol"]["method"], first["protocol"]["steps"], first["protocol"]["kappa"]) == ("fanogan", 4, 1.0)
  (saved,) = [n for n in os.listdir(os.path.join(run, "fanogan")) if n.endswith(".msgpack")]
  assert main(argv) == 0  # the same settings reuse the encoder, and give the same scores
  second = json.loads(capsys.readouterr().out)
  assert second["encoder_trained"] == 0 and second["auroc"] == first["auroc"]
  assert second["mean_score_normal"] == first["mean_score_normal"]
  assert main([*argv[:-1], "5"]) == 0  # other settings train another
  assert json.loads(capsys.readouterr().out)["encoder_trained"] == 1
  assert len([n for n in os.listdir(os.path.join(run, "fanogan")) if n.endswith(".msgpack")]) == 2 and saved


def test_anomaly_cli_errors(held_out_run, tmp_path, capsys):
  argv = ["anomaly", "--workdir", held_out_run, "--steps", "1"]
  np.savez(tmp_path / "unlabelled.npz", images=np.zeros((2, 28, 28, 1), np.uint8))
  assert main([*argv, "--images", str(tmp_path / "unlabelled.npz")]) == 2
  assert "has no 'labels'" in capsys.readouterr().err
  assert main([*argv, "--images", "test:0-1"]) == 2  # the fixture's first two test images are not of class 3
  assert "expected both normal images and anomalies" in capsys.readouterr().err
  plain = str(tmp_path / "plain")
  shutil.copytree(held_out_run, plain)
  with open(os.path.join(plain, "config.json")) as f:
    resolved = json.load(f)
  del resolved["data"]["exclude_classes"]  # a run from before the key: it loads at its default, ()
  with open(os.path.join(plain, "config.json"), "w") as f:
    json.dump(resolved, f)
  assert main(["anomaly", "--workdir", plain, "--images", "test:0-63", "--steps", "1"]) == 2
  assert "no class is anomalous" in capsys.readouterr().err
