"""compare_gan v1's pieces (Lucic et al. 2018): the InfoGAN-style pair, uniform z, LSGAN on the sigmoid, the
compare_gan form of WGAN-GP and DRAGAN, G's fresh noise, and the experiment file's settings."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from gan_jax import config as config_lib
from gan_jax import losses, models, parallel, penalties
from gan_jax.data import DatasetInfo
from gan_jax.models import layers
from gan_jax.train.options import Options

EXPERIMENT = os.path.join(os.path.dirname(__file__), "..", "experiments", "lucic_fashion_mnist.py")
FASHION = DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10, 60000)


def model_config(**overrides):
  c = config_lib.base_config()
  c.model.name = "infogan"
  c.model.latent_dim = 64
  config_lib.apply_overrides(c, overrides)
  return c.model


def init(info=FASHION, **overrides):
  g, d = models.get(model_config(**overrides), info)
  z = jnp.zeros((4, 64))
  g_vars = g.init(jax.random.PRNGKey(0), z, train=False)
  x = jnp.zeros((4, *info.shape))
  d_vars = d.init(jax.random.PRNGKey(1), x, train=False)
  return g, d, g_vars, d_vars


def count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_parameter_counts_follow_the_layer_list():
  """Counted from compare_gan's layer list by hand: weights + biases, and scale + offset per BN."""
  _, _, g_vars, d_vars = init()
  g_expected = (64 * 1024 + 1024) + 2 * 1024 + (1024 * 7 * 7 * 128 + 7 * 7 * 128) + 2 * 7 * 7 * 128
  g_expected += (4 * 4 * 128 * 64 + 64) + 2 * 64 + (4 * 4 * 64 * 1 + 1)
  d_expected = (4 * 4 * 1 * 64 + 64) + (4 * 4 * 64 * 128 + 128) + 2 * 128 + (7 * 7 * 128 * 1024 + 1024) + 2 * 1024
  d_expected += 1024 + 1
  assert count(g_vars["params"]) == g_expected
  assert count(d_vars["params"]) == d_expected
  _, _, _, d_plain = init(**{"model.d_norm": "none"})
  assert count(d_plain["params"]) == d_expected - 2 * 128 - 2 * 1024
  assert "batch_stats" not in d_plain


def test_initialisation_statistics():
  """N(0, 0.02) weights, the convolutions' cut at 2 std without rescaling (TF1's truncated_normal_initializer),
  zero biases, unit BN scales."""
  _, _, g_vars, d_vars = init()
  d_params, g_params = d_vars["params"], g_vars["params"]
  cut_std = 0.02 * np.sqrt(1 - 2 * 2 * stats.norm.pdf(2) / (2 * stats.norm.cdf(2) - 1))  # std of N cut at 2σ
  for name in ("Conv_0", "Conv_1"):
    w = np.asarray(d_params[name]["kernel"])
    assert np.abs(w).max() <= 0.04
    assert w.std() == pytest.approx(cut_std, rel=0.05 if w.size > 10000 else 0.2)
  for name in ("Dense_0", "Dense_1"):
    w = np.asarray(d_params[name]["kernel"])
    assert w.std() == pytest.approx(0.02, rel=0.05 if w.size > 10000 else 0.2)
  w = np.asarray(g_params["Dense_1"]["kernel"])
  assert w.std() == pytest.approx(0.02, rel=0.01) and np.abs(w).max() > 0.08  # not truncated
  for tree in (g_params, d_params):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
      key = jax.tree_util.keystr(path)
      if key.endswith("['bias']"):
        assert not np.any(np.asarray(leaf)), key
      if key.endswith("['scale']"):
        assert np.all(np.asarray(leaf) == 1.0), key


def test_batch_norm_uses_compare_gans_decay_and_epsilon():
  """One train-mode G pass moves the running mean by 0.001 of the batch mean; the output uses epsilon 1e-3."""
  g, _, g_vars, _ = init()
  z = jax.random.normal(jax.random.PRNGKey(3), (16, 64))
  # Train mode's batch norm averages over the data axis, so it runs inside shard_map (here on one device).
  train_pass = lambda z: g.apply(
    g_vars, z, train=True, mutable=["batch_stats", "intermediates"], capture_intermediates=True
  )
  spec = jax.sharding.PartitionSpec()
  out, new = jax.shard_map(train_pass, mesh=parallel.make_mesh(1), in_specs=spec, out_specs=spec, check_vma=False)(z)
  p = g_vars["params"]["Dense_0"]
  h = np.asarray(z, np.float64) @ np.asarray(p["kernel"], np.float64)
  np.testing.assert_allclose(new["batch_stats"]["BatchNorm_0"]["mean"], 0.001 * h.mean(0), rtol=1e-4, atol=1e-9)
  # That batch norm's output: scale 1, offset 0, epsilon 1e-3 beside a batch variance of about 0.03.
  expected = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-3)
  np.testing.assert_allclose(new["intermediates"]["BatchNorm_0"]["__call__"][0], expected, rtol=2e-4, atol=2e-5)
  assert out.shape == (16, 28, 28, 1)


def test_shapes_and_ranges():
  g, d, g_vars, d_vars = init()
  z = jax.random.normal(jax.random.PRNGKey(2), (5, 64))
  x = g.apply(g_vars, z, train=False)
  assert x.shape == (5, 28, 28, 1) and x.dtype == jnp.float32
  assert float(x.min()) > -1.0 and float(x.max()) < 1.0  # 2·sigmoid - 1
  assert d.apply(d_vars, x, train=False).shape == (5,)
  rgb = DatasetInfo("folder:x", "images", (32, 32, 3), 0, 100)
  g3, d3, g3_vars, d3_vars = init(rgb)
  assert g3.apply(g3_vars, z, train=False).shape == (5, 32, 32, 3)


def test_discriminator_sees_unit_pixels():
  """D on [-1, 1] input x equals the same layers applied by hand to (x + 1) / 2."""
  _, d, _, d_vars = init(**{"model.d_norm": "none"})
  x = jax.random.uniform(jax.random.PRNGKey(4), (3, 28, 28, 1), minval=-1, maxval=1)
  p = d_vars["params"]
  conv = lambda h, q: (
    jax.lax.conv_general_dilated(h, q["kernel"], (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + q["bias"]
  )
  lrelu = lambda h: jnp.where(h > 0, h, 0.2 * h)
  h = lrelu(conv((x + 1) / 2, p["Conv_0"]))
  h = lrelu(conv(h, p["Conv_1"])).reshape(3, -1)
  h = lrelu(h @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
  expected = (h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])[:, 0]
  np.testing.assert_allclose(d.apply(d_vars, x, train=False), expected, rtol=1e-5, atol=1e-6)


def test_uniform_latent_is_uniform_and_the_same_map_as_the_normal_cdf():
  z = jax.random.normal(jax.random.PRNGKey(5), (20000, 4))
  u = np.asarray(layers.latent(z, "uniform")).ravel()
  assert u.min() >= -1 and u.max() <= 1
  assert stats.kstest(u, stats.uniform(-1, 2).cdf).pvalue > 1e-3
  np.testing.assert_allclose(u, 2 * special.ndtr(np.asarray(z, np.float64)).ravel() - 1, atol=1e-6)
  g_uniform, _, g_vars, _ = init(**{"model.latent_dist": "uniform"})
  g_normal = g_uniform.clone(latent_dist="normal")
  z = z[:8].repeat(16, axis=1)
  np.testing.assert_array_equal(
    g_uniform.apply(g_vars, z, train=False), g_normal.apply(g_vars, layers.latent(z, "uniform"), train=False)
  )


def test_latent_dist_only_where_a_generator_takes_it():
  c = config_lib.base_config()
  c.model.latent_dist = "uniform"
  with pytest.raises(ValueError, match="model.latent_dist='uniform'.*infogan"):
    models.get(c.model, FASHION)
  with pytest.raises(ValueError, match="model.latent_dist='cauchy'"):
    init(**{"model.latent_dist": "cauchy"})


def test_least_squares_sigmoid_closed_form():
  r, f = jnp.array([0.3, -2.0, 1.5]), jnp.array([-0.7, 0.4])
  sr, sf = 1 / (1 + np.exp(-np.asarray(r, np.float64))), 1 / (1 + np.exp(-np.asarray(f, np.float64)))
  d_loss, g_loss = losses.get("least_squares_sigmoid")(r, f)
  assert float(d_loss) == pytest.approx(0.5 * np.mean((sr - 1) ** 2) + 0.5 * np.mean(sf**2), rel=1e-6)
  assert float(g_loss) == pytest.approx(0.5 * np.mean((sf - 1) ** 2), rel=1e-6)


def linear_d(w):
  return lambda x: jnp.sum(x * w, axis=tuple(range(1, x.ndim)))


def test_compare_gan_wgan_gp_is_the_smoothed_norm_of_unit_pixel_gradients():
  """D(x) = <x, w> has gradient w in [-1, 1] pixels, 2w in [0, 1] ones: (sqrt(1e-4 + 4‖w‖²) - 1)²."""
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(5, 5, 1)) * 0.05, jnp.float32)
  real, fake = (jnp.asarray(rng.uniform(-1, 1, (4, 5, 5, 1)), jnp.float32) for _ in range(2))
  norm_w = np.linalg.norm(np.asarray(w, np.float64))
  fn = penalties.get("wgan_gp", form="compare_gan")
  expected = (np.sqrt(1e-4 + 4 * norm_w**2) - 1) ** 2
  assert float(fn(linear_d(w), real, fake, jax.random.PRNGKey(0))) == pytest.approx(expected, rel=1e-5)
  assert float(penalties.get("wgan_gp")(linear_d(w), real, fake, jax.random.PRNGKey(0))) == pytest.approx(
    (norm_w - 1) ** 2, rel=1e-5
  )


def test_compare_gan_dragan_penalises_the_sigmoid():
  """For D(x) = <x, w>, ∇σ(D(x̂)) = σ'(<x̂, w>)·w; x̂ as the penalty draws it (the draw is the paper form's too)."""
  rng = np.random.default_rng(1)
  w = jnp.asarray(rng.normal(size=(6, 6, 1)), jnp.float32)
  real = jnp.asarray(rng.uniform(-1, 1, (5, 6, 6, 1)), jnp.float32)
  key = jax.random.PRNGKey(7)
  noise_key, alpha_key = jax.random.split(key)
  perturbed = real + 0.5 * jnp.std(real) * jax.random.uniform(noise_key, real.shape)
  x_hat = np.asarray(real + jax.random.uniform(alpha_key, (5, 1, 1, 1)) * (perturbed - real), np.float64)
  s = (x_hat * np.asarray(w, np.float64)).sum(axis=(1, 2, 3))
  sigmoid_slope = np.exp(-s) / (1 + np.exp(-s)) ** 2
  norms = 2 * sigmoid_slope * np.linalg.norm(np.asarray(w, np.float64))
  expected = np.mean((np.sqrt(1e-4 + norms**2) - 1) ** 2)
  got = penalties.get("dragan", form="compare_gan")(linear_d(w), real, real, key)
  assert float(got) == pytest.approx(expected, rel=1e-4)


def test_penalty_form_refused_where_it_means_nothing():
  c = config_lib.base_config()
  c.penalty.name, c.penalty.form = "r1", "compare_gan"
  with pytest.raises(ValueError, match="penalty.form='compare_gan' with penalty.name='r1'"):
    Options.from_config(c)
  c.penalty.name, c.penalty.form = "wgan_gp", "tf"
  with pytest.raises(ValueError, match="penalty.form='tf'"):
    Options.from_config(c)
  c.penalty.form, c.train.g_fresh_noise, c.train.update_order = "paper", True, "simultaneous"
  with pytest.raises(ValueError, match="train.g_fresh_noise=True"):
    Options.from_config(c)


@pytest.mark.parametrize("model", ["ns_gan", "mm_gan", "lsgan", "wgan", "wgan_gp", "dragan"])
def test_experiment_settings_are_compare_gans_defaults(model):
  c = config_lib.load(f"{EXPERIMENT}:{model}")
  opts = Options.from_config(c)
  disc_iters = {"wgan": 5, "wgan_gp": 5}.get(model, 1)
  assert c.train.d_steps == disc_iters and c.train.steps * disc_iters == 15625
  # Evaluations (besides the final one) within disc_iters - 1 D updates of compare_gan's 3906, 7812, 11718, 15624.
  d_updates = [s * disc_iters for s in range(1, c.train.steps + 1) if s % c.eval.every == 0]
  assert len(d_updates) == 4
  assert all(0 <= b - a < disc_iters for a, b in zip(d_updates, (3906, 7812, 11718, 15624), strict=True))
  assert c.model.name == "infogan" and c.model.latent_dim == 64 and c.model.latent_dist == "uniform"
  assert c.optim.g.lr == c.optim.d.lr and c.optim.g.b1 == c.optim.d.b1 and c.train.ema_decay == 0.0
  assert opts.g_fresh_noise == (model == "wgan_gp")
  assert (c.model.d_norm == "none") == (model == "wgan_gp")


def test_unknown_model_is_one_line():
  with pytest.raises(ValueError, match="lucic_fashion_mnist.py:began: expected one of"):
    config_lib.load(f"{EXPERIMENT}:began")


@pytest.mark.parametrize(
  "model", ["ns_gan", pytest.param("wgan", marks=pytest.mark.slow), pytest.param("wgan_gp", marks=pytest.mark.slow)]
)
def test_wide_search_draws_inside_lucics_ranges(model):
  sweep_file = config_lib.import_file(os.path.join(os.path.dirname(EXPERIMENT), "sweep_lucic.py"))
  points = sweep_file.get_sweep(model)
  assert len(points) == 16 and points == sweep_file.get_sweep(model)
  for point in points:
    c = sweep_file.get_config(model)
    config_lib.apply_overrides(c, point)
    Options.from_config(c)
    lr, b1, k = c.optim.d.lr, c.optim.d.b1, c.train.d_steps
    assert 1e-5 <= lr <= 1e-2 and c.optim.g.lr == lr and 0 <= b1 <= 1 and c.optim.g.b1 == b1
    assert k in (1, 5) and c.train.steps * k == 15625 and c.model.d_norm in ("batch", "none")
    if model == "wgan":
      assert 1e-3 <= c.train.weight_clip <= 1
    if model == "wgan_gp":
      assert 0.1 <= c.penalty.weight <= 100
  assert {p["train.d_steps"] for p in points} == {1, 5}


def test_fast_ops_layers_keep_parameters_and_maps():
  """train.xla_cpu's custom gradients (models.fast_ops) change neither the parameter tree nor the forward maps."""
  g, d, g_vars, d_vars = init(**{"model.d_norm": "none"})
  g_fast, d_fast = g.clone(fast_ops=True), d.clone(fast_ops=True)
  z = jax.random.normal(jax.random.PRNGKey(8), (3, 64))
  fast_vars = g_fast.init(jax.random.PRNGKey(0), jnp.zeros((4, 64)), train=False)
  assert jax.tree.structure(fast_vars) == jax.tree.structure(g_vars)
  np.testing.assert_allclose(g_fast.apply(g_vars, z, train=False), g.apply(g_vars, z, train=False), atol=1e-6)
  x = g.apply(g_vars, z, train=False)
  np.testing.assert_allclose(d_fast.apply(d_vars, x, train=False), d.apply(d_vars, x, train=False), atol=1e-6)
