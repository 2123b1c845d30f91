"""Class-conditional GANs: labels reach both networks, projection and ACGAN runs, `sample --labels`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_runs_close, losses_of, register_model, ring_config

from gan_jax import models
from gan_jax.cli import main
from gan_jax.data import DatasetInfo
from gan_jax.losses import class_cross_entropy
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.train import loop, setup
from gan_jax.train import run as run_lib

RING8 = DatasetInfo("ring8", "points", (2,), 8, None)
FASHION_LIKE = DatasetInfo("fashion_like", "images", (28, 28, 1), 10, None)
CONDITIONAL = {"model.conditional": True}
ACGAN = {**CONDITIONAL, "model.d_conditioning": "acgan", "loss.acgan_weight": 1.0}


@pytest.mark.parametrize("overrides", [CONDITIONAL, {**CONDITIONAL, "model.name": "mlp_gan"}])
def test_labels_change_generator_and_projection_discriminator(overrides):
  gen, disc = models.get(ring_config(**overrides).model, RING8)
  z_BZ, a_B, b_B = jnp.ones((4, 2)), jnp.array([0, 1, 2, 3]), jnp.array([4, 5, 6, 7])
  g_vars = gen.init(jax.random.PRNGKey(0), z_BZ, None, train=False)
  assert not np.allclose(gen.apply(g_vars, z_BZ, a_B, train=False), gen.apply(g_vars, z_BZ, b_B, train=False))
  np.testing.assert_array_equal(gen.apply(g_vars, z_BZ, None, train=False), gen.apply(g_vars, z_BZ, a_B, train=False))
  x_B2 = jnp.ones((4, 2))
  d_vars = disc.init(jax.random.PRNGKey(1), x_B2, None, train=False)
  assert not np.allclose(disc.apply(d_vars, x_B2, a_B, train=False), disc.apply(d_vars, x_B2, b_B, train=False))


def test_acgan_discriminator_has_a_class_head():
  _, disc = models.get(ring_config(**ACGAN).model, RING8)
  x_B2 = jnp.ones((3, 2))
  variables = disc.init(jax.random.PRNGKey(1), x_B2, None, train=False)
  logits_B, class_logits_BC = disc.apply(variables, x_B2, None, train=False)
  assert logits_B.shape == (3,) and class_logits_BC.shape == (3, 8)


def test_class_cross_entropy():
  logits_BC = jnp.log(jnp.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
  np.testing.assert_allclose(class_cross_entropy(logits_BC, jnp.array([0, 2])), -np.log([0.5, 0.8]), rtol=1e-6)


@pytest.mark.parametrize("devices", [8])
@pytest.mark.parametrize(
  "overrides",
  [
    pytest.param(CONDITIONAL, marks=pytest.mark.slow),
    pytest.param({**ACGAN, "train.d_steps": 2}, marks=pytest.mark.slow),
  ],
  ids=["projection", "acgan"],  # the fast tier trains ACGAN with 2 D steps in test_sample_writes_labels
)
def test_conditional_run_matches_on_one_and_more_devices(overrides, devices, tmp_path):
  states = {}
  for n in (1, devices):
    config = ring_config(**overrides, **{"train.steps": 2, "train.num_devices": n})
    states[n] = loop.train_and_evaluate(config, str(tmp_path / f"d{n}"))
  runs = [losses_of(tmp_path / f"d{n}") for n in (1, devices)]
  assert_runs_close(*runs)
  assert ("class_real" in runs[0][-1]) == ("loss.acgan_weight" in overrides)
  for a, b in zip(jax.tree.leaves(states[1]), jax.tree.leaves(states[devices]), strict=True):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-5)
  assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(states[devices]))


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"loss.acgan_weight": 1.0}, "the ACGAN class head needs all of"),
    ({**CONDITIONAL, "model.d_conditioning": "acgan"}, "the ACGAN class head needs all of"),
    ({**CONDITIONAL, "model.d_conditioning": "aux"}, "model.d_conditioning='aux'"),
  ],
)
def test_inconsistent_conditioning_is_one_clear_error(overrides, message, tmp_path):
  with pytest.raises(ValueError, match=message):
    loop.train_and_evaluate(ring_config(**overrides), str(tmp_path))


def test_model_without_conditional_generator_is_refused(monkeypatch):
  register_model(
    monkeypatch, "unconditional", lambda cfg, info: (DCGANGenerator((28, 28, 1), 8), DCGANDiscriminator(8))
  )
  config = ring_config(**CONDITIONAL, **{"model.name": "unconditional"})
  with pytest.raises(ValueError, match="model.name='unconditional' has no conditional generator"):
    setup.build(config)


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_conditional_dcgan(conditioning):
  """Class-conditional batch norm in G; D's projection term or ACGAN class head."""
  config = ring_config(**CONDITIONAL, **{"model.name": "dcgan", "model.d_conditioning": conditioning})
  config.model.g_width = config.model.d_width = 4
  gen, disc = models.get(config.model, FASHION_LIKE)
  z_BZ, a_B, b_B = jnp.ones((4, 2)), jnp.array([0, 1, 2, 3]), jnp.array([4, 5, 6, 7])
  g_vars = gen.init(jax.random.PRNGKey(0), z_BZ, None, train=False)
  g_vars = jax.tree.map(lambda v: v + 0.1 * jax.random.normal(jax.random.PRNGKey(2), v.shape), g_vars)  # off unit gains
  assert not np.allclose(gen.apply(g_vars, z_BZ, a_B, train=False), gen.apply(g_vars, z_BZ, b_B, train=False))
  x_BHWC = jax.random.normal(jax.random.PRNGKey(3), (4, 28, 28, 1))
  d_vars = disc.init(jax.random.PRNGKey(1), x_BHWC, None, train=False)
  logits = lambda labels_B: disc.apply(d_vars, x_BHWC, labels_B, train=False)
  if conditioning == "acgan":
    (logits_B, class_logits_BC), (same_B, _) = logits(a_B), logits(b_B)
    assert class_logits_BC.shape == (4, 10) and np.array_equal(logits_B, same_B)  # labels feed the class loss only
  else:
    assert not np.allclose(logits(a_B), logits(b_B))


def test_sample_writes_labels(tmp_path):
  wd = str(tmp_path / "run")
  acgan_d_steps = {**ACGAN, "train.steps": 1, "train.d_steps": 2, "model.d_norm": "spectral"}
  loop.train_and_evaluate(ring_config(**acgan_d_steps), wd)
  assert "class_real" in losses_of(wd)[-1]
  out = str(tmp_path / "s.npz")
  assert main(["sample", "--workdir", wd, "--num", "7", "--out", out, "--labels", "0,3"]) == 0
  np.testing.assert_array_equal(np.load(out)["labels"], [0, 3, 0, 3, 0, 3, 0])
  points_by_label = np.load(out)["points"]
  assert main(["sample", "--workdir", wd, "--num", "10", "--out", out, "--labels", "all"]) == 0
  np.testing.assert_array_equal(np.load(out)["labels"], np.arange(10) % 8)
  # Same noise, other classes, other points: the labels reached the generator.
  assert not np.allclose(np.load(out)["points"][:7], points_by_label)
  assert main(["sample", "--workdir", wd, "--num", "3", "--out", out, "--labels", "8"]) == 2


def test_sample_labels():
  np.testing.assert_array_equal(run_lib.sample_labels("all", 5, 3), [0, 1, 2, 0, 1])
  np.testing.assert_array_equal(run_lib.sample_labels("2", 3, 3), [2, 2, 2])
  with pytest.raises(ValueError, match="classes \\[3\\] outside 0..2"):
    run_lib.sample_labels("0,3", 4, 3)
  with pytest.raises(ValueError, match="this run is not conditional"):
    run_lib.sample_labels("all", 4, 0)
