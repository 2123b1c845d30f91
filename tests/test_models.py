"""Spectral normalisation, the D normalisation choice and the SNGAN ResNet."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ring_config

from gan_jax import config as config_lib
from gan_jax import data, models, parallel
from gan_jax.data import DatasetInfo
from gan_jax.models import layers, resnet
from gan_jax.models.mlp import MLPDiscriminator
from gan_jax.train import loop
from gan_jax.train.options import Options
from gan_jax.train.population import member_configs, stacked_seeds_and_hparams
from gan_jax.train.state import create_gan, init_state
from gan_jax.train.step import sharded_train_step

CIFAR_LIKE = DatasetInfo("cifar_like", "images", (32, 32, 3), 10, None)
FASHION_LIKE = DatasetInfo("fashion_like", "images", (28, 28, 1), 10, None)
RING8 = DatasetInfo("ring8", "points", (2,), 8, None)


def tiny_resnet_config(**overrides):
  c = config_lib.base_config()
  c.model.name = "resnet"
  c.model.latent_dim = 8
  c.model.g_width = c.model.d_width = 4
  c.train.batch_size = 2
  config_lib.apply_overrides(c, overrides)
  return c


def power_iterate(module, x, steps):
  """The module's variables after `steps` train-mode calls on fixed parameters."""
  variables = module.init(jax.random.PRNGKey(0), x, None, train=False)

  def body(_, stats):
    _, new = module.apply({**variables, **stats}, x, None, train=True, mutable=[layers.SPECTRAL])
    return dict(new)

  stats = jax.jit(lambda s: jax.lax.fori_loop(0, steps, body, s))({layers.SPECTRAL: variables[layers.SPECTRAL]})
  return variables["params"], stats[layers.SPECTRAL]


@pytest.mark.parametrize(
  "module, shape",
  [
    (MLPDiscriminator((24, 12), norm="spectral", num_classes=3), (2, 10)),
    (resnet.ResNetDiscriminator(4), (2, 8, 8, 3)),
  ],
)
def test_spectral_norm_gives_unit_largest_singular_value(module, shape):
  params, spectral = power_iterate(module, jnp.ones(shape), steps=200)
  flat_params = flax.traverse_util.flatten_dict(params)
  checked = 0
  for path, sigma in flax.traverse_util.flatten_dict(spectral).items():
    *scope, name = path
    if not name.endswith("/sigma"):
      continue
    # ('DBlock_0', 'SpectralNorm_1', 'Conv_1/kernel/sigma') -> params ('DBlock_0', 'Conv_1', 'kernel')
    kernel = np.asarray(flat_params[(*scope[:-1], *name.split("/")[:-1])], np.float64)
    top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    np.testing.assert_allclose(top / float(sigma), 1.0, rtol=2e-3, err_msg=str(path))
    checked += 1
  assert checked == len(flat_params) - sum(name == "bias" for *_, name in flat_params)  # every weight matrix


@pytest.mark.slow  # test-all; the fast tier's spectral-norm runs: test_dcgan_generator_spectral_norm
def test_spectral_norm_state_matches_on_one_and_eight_devices(tmp_path):
  """Also: the eight-device run adds a zero-weight R1, whose extra D pass must leave u alone."""
  overrides = {"model.d_norm": "spectral", "model.g_spectral_norm": True, "train.steps": 2}
  r1_zero = {"penalty.name": "r1", "penalty.weight": 0.0}
  states = {
    1: loop.train_and_evaluate(ring_config(**overrides, **{"train.num_devices": 1}), str(tmp_path / "d1")),
    8: loop.train_and_evaluate(ring_config(**overrides, **r1_zero, **{"train.num_devices": 8}), str(tmp_path / "d8")),
  }
  leaves = {n: jax.tree.leaves(state.replace(hparams={})) for n, state in states.items()}  # all but penalty.weight
  for a, b in zip(leaves[1], leaves[8], strict=True):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-5)
  assert set(states[8].d.stats) == set(states[8].g.stats) == {layers.SPECTRAL}
  for leaf in jax.tree.leaves((states[8].d.stats, states[8].g.stats)):  # every device holds the same u
    shards = [np.asarray(s.data) for s in leaf.addressable_shards]
    assert len(shards) == 8 and all(np.array_equal(shards[0], s) for s in shards)
  # Train passes moved u away from its initial draw.
  fresh = init_state(create_gan(ring_config(**overrides), data.get_info(ring_config())), 0, {})
  u_init, u_now = fresh.d.stats[layers.SPECTRAL], jax.tree.map(lambda a: a[0], states[8].d.stats[layers.SPECTRAL])
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(u_init), jax.tree.leaves(u_now), strict=True))


@pytest.mark.parametrize("model", ["mlp2d", "dcgan"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer", "spectral"])
def test_discriminator_norms_build(model, norm):
  cfg = ring_config(**{"model.name": model, "model.d_norm": norm, "model.d_width": 4})
  info, x = (FASHION_LIKE, jnp.ones((4, 28, 28, 1))) if model == "dcgan" else (RING8, jnp.ones((4, 2)))
  _, disc = models.get(cfg.model, info)
  variables = disc.init(jax.random.PRNGKey(0), x, None, train=False)
  assert disc.apply(variables, x, None, train=False).shape == (4,)
  assert ("batch_stats" in variables) == (norm == "batch") and (layers.SPECTRAL in variables) == (norm == "spectral")


def test_dcgan_default_keeps_its_parameter_names():
  """model.d_norm "" is batch norm under the names of the original layers, so older checkpoints restore."""
  cfg = ring_config(**{"model.name": "dcgan", "model.d_width": 4})
  _, disc = models.get(cfg.model, FASHION_LIKE)
  variables = disc.init(jax.random.PRNGKey(0), jnp.ones((2, 28, 28, 1)), None, train=False)
  paths = {"/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(variables)}
  assert paths == {
    "params/Conv_0/kernel",
    "params/Conv_0/bias",
    "params/Conv_1/kernel",
    "params/BatchNorm_0/scale",
    "params/BatchNorm_0/bias",
    "params/Dense_0/kernel",
    "params/Dense_0/bias",
    "batch_stats/BatchNorm_0/mean",
    "batch_stats/BatchNorm_0/var",
  }


def test_dcgan_generator_spectral_norm():
  """Every G weight divided by its spectral norm: the samples ignore a rescaling of the weights."""
  cfg = ring_config(**{"model.name": "dcgan", "model.g_width": 4, "model.g_spectral_norm": True})
  gen, _ = models.get(cfg.model, FASHION_LIKE)
  plain = models.get(ring_config(**{"model.name": "dcgan", "model.g_width": 4}).model, FASHION_LIKE)[0]
  variables = gen.init(jax.random.PRNGKey(0), jnp.ones((2, 2)), None, train=False)
  assert len(jax.tree.leaves(variables[layers.SPECTRAL])) == 6  # u and sigma of each of the 3 layers
  scaled = {
    **variables,
    "params": flax.traverse_util.path_aware_map(
      lambda path, p: 5.0 * p if path[-1] == "kernel" else p, variables["params"]
    ),
  }
  z_B2 = jax.random.normal(jax.random.PRNGKey(5), (4, 2))

  def train_mode(module, v):  # batch norm over a one-device "data" axis; sigma estimated from the weights
    apply = lambda z: module.apply(v, z, None, train=True, mutable=["batch_stats", layers.SPECTRAL])[0]
    return jax.vmap(apply, axis_name=parallel.AXIS)(z_B2[None])[0]

  np.testing.assert_allclose(train_mode(gen, scaled), train_mode(gen, variables), atol=1e-5)
  assert not np.allclose(train_mode(plain, scaled), train_mode(plain, variables), atol=1e-3)


def test_unknown_d_norm_is_one_clear_error():
  with pytest.raises(ValueError, match="model.d_norm='group'"):
    models.get(ring_config(**{"model.d_norm": "group"}).model, DatasetInfo("ring8", "points", (2,), 8, None))


@pytest.mark.parametrize("info", [CIFAR_LIKE, FASHION_LIKE], ids=["32x32x3", "28x28x1"])
def test_resnet_shapes(info):
  gen, disc = models.get(tiny_resnet_config(**{"model.conditional": True}).model, info)
  z_BZ, labels_B = jnp.ones((3, 8)), jnp.array([0, 5, 9])
  g_vars = gen.init(jax.random.PRNGKey(0), z_BZ, None, train=False)
  images_BHWC = gen.apply(g_vars, z_BZ, labels_B, train=False)
  assert images_BHWC.shape == (3, *info.shape) and float(jnp.max(jnp.abs(images_BHWC))) <= 1.0
  d_vars = disc.init(jax.random.PRNGKey(1), images_BHWC, None, train=False)
  assert disc.apply(d_vars, images_BHWC, labels_B, train=False).shape == (3,)
  assert resnet.start_size(info.shape[0]) == ((4, 3) if info.shape[0] == 32 else (7, 2))


def test_resnet_rejects_other_sizes():
  with pytest.raises(ValueError, match="resnet needs square images of side 4 \\* 2\\^n or 7 \\* 2\\^n"):
    models.get(tiny_resnet_config().model, DatasetInfo("odd", "images", (30, 30, 3), 0, None))


@pytest.mark.slow  # test-all; the fast tier builds and applies the ResNets (test_resnet_*), and trains the DCGAN
def test_resnet_trains_two_steps_at_32x32():
  config = tiny_resnet_config(**{"loss.name": "hinge"})
  gan = create_gan(config, CIFAR_LIKE)
  mesh = parallel.make_mesh(1)
  state = jax.vmap(functools.partial(init_state, gan))(*stacked_seeds_and_hparams(member_configs(config)))
  step = sharded_train_step(gan, Options.from_config(config), mesh)
  rng = np.random.default_rng(0)
  for _ in range(2):
    batch = {
      "x": rng.uniform(-1, 1, (1, 1, 2, 32, 32, 3)).astype(np.float32),
      "label": rng.integers(0, 10, (1, 1, 2)).astype(np.int32),
    }
    state, metrics = step(state, parallel.put_batch(batch, mesh))
  assert int(state.step[0]) == 2
  assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves((state, metrics)))


def test_dropout_masks_do_not_depend_on_the_device_layout():
  """ExampleDropout keys each example's mask by its global index: 8 examples on one device or 4 on each of two
  give the same masks."""
  x_B = jnp.ones((8, 16))
  module = layers.ExampleDropout(0.5)
  key = jax.random.PRNGKey(3)

  def apply(x):
    return module.apply({}, x, train=True, rngs={"dropout": key})

  one = jax.vmap(apply, axis_name=parallel.AXIS)(x_B[None])[0]
  two = jax.vmap(apply, axis_name=parallel.AXIS)(x_B.reshape(2, 4, 16)).reshape(8, 16)
  np.testing.assert_array_equal(one, two)
  assert 0 < float(jnp.mean(one == 0)) < 1  # some dropped, some kept (and scaled)
