"""The mode-collapse remedies of the discriminators: PacGAN packing, minibatch std, maxout and pacgan_mlp."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_runs_close, losses_of, ring_config

from gan_jax import models, parallel, penalties
from gan_jax.data import DatasetInfo
from gan_jax.models import layers
from gan_jax.models.mlp import MLPDiscriminator
from gan_jax.records import read_jsonl
from gan_jax.train import loop

RING8 = DatasetInfo("ring8", "points", (2,), 8, None)


def leaky_relu(x):
  return np.where(x > 0, x, 0.2 * x)


def numpy_mlp_d(params, x_BF, pieces=1):
  """The MLP discriminator in float64 numpy: hidden Dense layers (LeakyReLU, or maxout of `pieces`), then Dense 1."""
  h = np.asarray(x_BF, np.float64)
  names = sorted(params, key=lambda name: int(name.split("_")[1]))
  for name in names[:-1]:
    h = h @ np.asarray(params[name]["kernel"], np.float64) + np.asarray(params[name]["bias"], np.float64)
    h = h.reshape(h.shape[0], -1, pieces).max(-1) if pieces > 1 else leaky_relu(h)
  last = params[names[-1]]
  return (h @ np.asarray(last["kernel"], np.float64) + np.asarray(last["bias"], np.float64))[:, 0]


def init(module, x):
  return module.init(jax.random.PRNGKey(0), x, None, train=False)["params"]


def test_unpacked_d_keeps_its_parameters_and_values():
  """pac=1 is today's D: the same parameter names and shapes, logits of the plain MLP computed in numpy."""
  x_BF = jax.random.normal(jax.random.PRNGKey(1), (6, 2))
  module = MLPDiscriminator((16, 16, 16), pac=1)
  params = init(module, x_BF)
  shapes = {"/".join(k): v.shape for k, v in flax.traverse_util.flatten_dict(params).items()}
  assert shapes == {
    **{f"Dense_{i}/kernel": (2 if i == 0 else 16, 16) for i in range(3)},
    **{f"Dense_{i}/bias": (16,) for i in range(3)},
    "Dense_3/kernel": (16, 1),
    "Dense_3/bias": (1,),
  }
  logits_B = module.apply({"params": params}, x_BF, None, train=True)
  assert logits_B.shape == (6,)
  np.testing.assert_allclose(logits_B, numpy_mlp_d(params, x_BF), rtol=1e-5, atol=1e-6)
  # Bit for bit the default module (the fields' defaults are the unpacked D).
  np.testing.assert_array_equal(logits_B, MLPDiscriminator((16, 16, 16)).apply({"params": params}, x_BF, train=True))


def test_packed_d_scores_hand_built_concatenations():
  """pac=2 on [a, b, c, d] is the unpacked D (same parameters) on [a|b], [c|d]."""
  x_BF = jax.random.normal(jax.random.PRNGKey(2), (4, 2))
  packed = MLPDiscriminator((8, 8), pac=2)
  params = init(packed, x_BF)
  assert params["Dense_0"]["kernel"].shape == (4, 8)  # two 2D points per input
  by_hand = jnp.stack([jnp.concatenate([x_BF[0], x_BF[1]]), jnp.concatenate([x_BF[2], x_BF[3]])])
  logits_b = packed.apply({"params": params}, x_BF, train=True)
  assert logits_b.shape == (2,)
  np.testing.assert_array_equal(logits_b, MLPDiscriminator((8, 8)).apply({"params": params}, by_hand, train=True))


def test_packing_initialises_from_any_batch_and_rejects_a_ragged_one():
  """train.state initialises D on two examples; pac=4 must still get its 4-point input layer."""
  module = MLPDiscriminator((8,), pac=4)
  params = init(module, jnp.zeros((2, 2)))
  assert params["Dense_0"]["kernel"].shape == (8, 8)
  assert module.apply({"params": params}, jnp.ones((8, 2)), train=True).shape == (2,)
  with pytest.raises(ValueError, match="divisible by 4"):
    module.apply({"params": params}, jnp.ones((6, 2)), train=True)


def test_image_packing_joins_channels():
  x_BHWC = np.arange(4 * 2 * 3 * 1, dtype=np.float32).reshape(4, 2, 3, 1)
  packed = np.asarray(layers.pack(jnp.asarray(x_BHWC), 2))
  np.testing.assert_array_equal(packed, np.stack([np.concatenate(x_BHWC[i : i + 2], -1) for i in (0, 2)]))


def test_minibatch_std_matches_numpy():
  h_BF = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  expected = np.mean(np.sqrt(np.var(h_BF.astype(np.float64), axis=0) + 1e-8))
  out = np.asarray(layers.minibatch_std(jnp.asarray(h_BF), train=False))
  np.testing.assert_array_equal(out[:, :3], h_BF)
  np.testing.assert_allclose(out[:, 3], np.full(5, expected), rtol=1e-6)


def test_minibatch_std_is_over_the_global_batch():
  """8 examples on one device or 4 on each of two give the same feature (statistics over the data axis)."""
  h_BF = jax.random.normal(jax.random.PRNGKey(4), (8, 3))
  apply = jax.vmap(lambda h: layers.minibatch_std(h, train=True), axis_name=parallel.AXIS)
  one = apply(h_BF[None])[0]
  two = apply(h_BF.reshape(2, 4, 3)).reshape(8, 4)
  np.testing.assert_allclose(one, two, rtol=1e-6)


def test_minibatch_std_d_feeds_the_last_hidden_layer():
  """The std feature joins the last hidden layer's input: its kernel has one more row, and the logits move
  when the batch's spread does though each example's own features stay."""
  x_BF = jax.random.normal(jax.random.PRNGKey(5), (4, 2))
  module = MLPDiscriminator((8, 8), minibatch_std=True)
  params = init(module, x_BF)
  assert params["Dense_0"]["kernel"].shape == (2, 8) and params["Dense_1"]["kernel"].shape == (9, 8)
  first = lambda x: module.apply({"params": params}, x, train=False)[0]
  assert float(first(x_BF)) != float(first(x_BF.at[1:].multiply(3.0)))


def test_maxout_matches_numpy():
  h = np.random.default_rng(1).normal(size=(3, 10)).astype(np.float32)
  np.testing.assert_array_equal(np.asarray(layers.maxout(jnp.asarray(h), 5)), h.reshape(3, 2, 5).max(-1))


def test_pacgan_mlp_networks_match_the_paper_and_numpy():
  cfg = ring_config(**{"model.name": "pacgan_mlp", "model.g_width": 40, "model.d_width": 20})
  generator, discriminator = models.get(cfg.model, RING8)
  g_vars = generator.init(jax.random.PRNGKey(0), jnp.zeros((2, 2)), None, train=False)
  assert sorted(g_vars["params"]) == [f"BatchNorm_{i}" for i in range(4)] + [f"Dense_{i}" for i in range(5)]
  assert g_vars["params"]["Dense_4"]["kernel"].shape == (40, 2)
  x_BF = jax.random.normal(jax.random.PRNGKey(6), (6, 2))
  params = init(discriminator, x_BF)
  assert [params[f"Dense_{i}"]["kernel"].shape for i in range(4)] == [(2, 100), (20, 100), (20, 100), (20, 1)]
  logits_B = discriminator.apply({"params": params}, x_BF, train=True)
  np.testing.assert_allclose(logits_B, numpy_mlp_d(params, x_BF, pieces=5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["wgan_gp", "r1", "dragan"])
def test_packed_penalty_is_the_penalty_of_the_packed_inputs(name):
  """A packed D's penalty equals the same penalty of an unpacked D on the joined examples, same draws."""
  real_BF = jax.random.normal(jax.random.PRNGKey(7), (8, 2))
  fake_BF = jax.random.normal(jax.random.PRNGKey(8), (8, 2))
  packed = MLPDiscriminator((8, 8), pac=2)
  params = init(packed, real_BF)
  packed_d = lambda x: packed.apply({"params": params}, x, train=True)
  joined_d = lambda x: MLPDiscriminator((8, 8)).apply({"params": params}, x, train=True)
  rng = jax.random.PRNGKey(9)
  penalty_fn = penalties.get(name)
  got = models.packed_penalty(penalty_fn, 2)(packed_d, real_BF, fake_BF, rng)
  want = penalty_fn(joined_d, real_BF.reshape(4, 4), fake_BF.reshape(4, 4), rng)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert models.packed_penalty(penalty_fn, 1) is penalty_fn


def test_bad_pac_values_are_one_line_errors():
  with pytest.raises(ValueError, match="model.pac=0"):
    models.get(ring_config(**{"model.pac": 0}).model, RING8)
  with pytest.raises(ValueError, match="model.name='dcgan' has no D"):
    cfg = ring_config(**{"model.name": "dcgan", "model.pac": 2})
    models.get(cfg.model, DatasetInfo("f", "images", (28, 28, 1), 10, None))
  with pytest.raises(ValueError, match="model.minibatch_std=True"):
    cfg = ring_config(**{"model.name": "resnet", "model.minibatch_std": True})
    models.get(cfg.model, DatasetInfo("f", "images", (32, 32, 3), 10, None))
  with pytest.raises(ValueError, match="model.conditional=False"):
    models.get(ring_config(**{"model.pac": 2, "model.conditional": True}).model, RING8)
  models.check_pac(ring_config(**{"model.pac": 4}).model, 8)
  with pytest.raises(ValueError, match="batch per device, 6, is not divisible"):
    models.check_pac(ring_config(**{"model.pac": 4}).model, 6)


PACKED_POPULATION = {
  "model.name": "pacgan_mlp",
  "model.pac": 2,
  "model.minibatch_std": True,
  "penalty.name": "r1",
  "population.size": 2,
  "train.member_devices": 1,
  "train.steps": 3,
}


@pytest.mark.slow  # test-all; the packed D is checked against hand-built concatenations in the fast tier
def test_packed_population_trains_on_two_devices(tmp_path):
  """The fast twin of the next test: a packed population with the batch split over two devices runs and
  evaluates every member."""
  state = loop.train_and_evaluate(ring_config(**PACKED_POPULATION, **{"train.num_devices": 2}), str(tmp_path))
  assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(state.d.params))
  assert {r["member"] for r in read_jsonl(str(tmp_path / "eval.jsonl"))} == {0, 1}


@pytest.mark.slow
def test_packed_population_trains_on_two_devices_as_on_one(tmp_path):
  """pac=2 with minibatch std and R1, two members: one device or the batch split over two give the same run
  (packs are consecutive global examples, the std is the global batch's)."""
  runs = {}
  for n in (1, 2):
    workdir = str(tmp_path / f"d{n}")
    loop.train_and_evaluate(ring_config(**PACKED_POPULATION, **{"train.num_devices": n}), workdir)
    runs[n] = losses_of(workdir)
  assert_runs_close(runs[1], runs[2], tol=1e-4)
