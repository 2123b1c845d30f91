"""Gradient penalties on discriminators whose input gradient is known in closed form, and weight clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import penalties

KEY = jax.random.PRNGKey(0)


def linear_d(w):
  """D(x) = <x, w> over all non-batch axes: its input gradient is w at every x."""
  return lambda x_B___: jnp.sum(x_B___ * w, axis=tuple(range(1, x_B___.ndim)))


def square_d(x_B___):
  """D(x) = ‖x‖²: its input gradient is 2x."""
  return jnp.sum(jnp.square(x_B___), axis=tuple(range(1, x_B___.ndim)))


def evaluate(name, d_fn, real, fake, key=KEY, **options):
  """The penalty under jit, as the train step runs it (and far faster than op-by-op on CPU)."""
  fn = penalties.get(name, **options)
  return float(jax.jit(lambda real, fake, key: fn(d_fn, real, fake, key))(real, fake, key))


def batch(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def per_example_norms(x):
  return np.linalg.norm(np.asarray(x, np.float64).reshape(x.shape[0], -1), axis=1)


def test_registered_names():
  assert penalties.names() == ["dragan", "none", "r1", "r2", "wgan_gp"]


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 5, 2)], ids=["vectors", "images"])
@pytest.mark.parametrize("target_norm", [0.6, 2.5])
def test_linear_discriminator(shape, target_norm):
  w = batch(1, shape[1:])
  w = w * (target_norm / jnp.linalg.norm(w))
  norm_w = np.linalg.norm(np.asarray(w, np.float64))
  d_fn, real, fake = linear_d(w), batch(2, shape), batch(3, shape)
  pen = lambda name, **options: evaluate(name, d_fn, real, fake, **options)
  assert pen("wgan_gp") == pytest.approx((norm_w - 1.0) ** 2, rel=1e-5)
  assert pen("dragan") == pytest.approx((norm_w - 1.0) ** 2, rel=1e-5)
  assert pen("r1") == pytest.approx(norm_w**2, rel=1e-5)
  assert pen("r2") == pytest.approx(norm_w**2, rel=1e-5)
  if norm_w < 1.0:
    assert pen("wgan_gp", one_sided=True) == 0.0
  else:
    assert pen("wgan_gp", one_sided=True) == pytest.approx((norm_w - 1.0) ** 2, rel=1e-5)
  assert pen("none") == 0.0


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 5, 2)], ids=["vectors", "images"])
def test_square_discriminator(shape):
  d_fn, real, fake = square_d, batch(4, shape), batch(5, shape)
  pen = lambda name, real=real, fake=fake: evaluate(name, d_fn, real, fake)
  assert pen("r1") == pytest.approx(np.mean(4 * per_example_norms(real) ** 2), rel=1e-5)
  assert pen("r2") == pytest.approx(np.mean(4 * per_example_norms(fake) ** 2), rel=1e-5)
  # With fake = real every interpolate is real itself, whatever epsilon was drawn.
  expected = np.mean((2 * per_example_norms(real) - 1.0) ** 2)
  assert pen("wgan_gp", fake=real) == pytest.approx(expected, rel=1e-5)


# The sampling checks below use D(x) = x²/(2c) on one-dimensional examples, whose gradient norm at x̂
# is |x̂| / c, so the penalty is a known function of the random draws. With B = 2^14 the Monte Carlo
# standard errors are about 0.002 (wgan_gp) and 0.0003 (dragan), well inside the tolerances; the keys
# are fixed, so the tests are deterministic.
B = 1 << 14


def half_square_d(c):
  return lambda x_B1: jnp.sum(jnp.square(x_B1), axis=1) / (2.0 * c)


def test_wgan_gp_interpolates_with_uniform_per_example_epsilon():
  # real = 2, fake = 0: x̂ = 2ε and ‖∇‖ = 2ε, so (2ε - 1)² has mean 1/3 for ε ~ U[0, 1], and the one-sided
  # max(0, 2ε - 1)² has mean 1/6. A single ε shared by the batch could not give both.
  real, fake = jnp.full((B, 1), 2.0), jnp.zeros((B, 1))
  d_fn = half_square_d(1.0)
  two_sided = evaluate("wgan_gp", d_fn, real, fake)
  assert two_sided == pytest.approx(1 / 3, abs=0.01)
  assert evaluate("wgan_gp", d_fn, real, fake, one_sided=True) == pytest.approx(1 / 6, abs=0.01)
  assert evaluate("wgan_gp", d_fn, real, fake) == two_sided
  assert evaluate("wgan_gp", d_fn, real, fake, jax.random.PRNGKey(1)) != two_sided


@pytest.mark.parametrize("c", [1.0, 3.0])
def test_dragan_perturbs_real_by_half_its_std_times_uniform_noise(c):
  # real = ±c (std c): x̂ = x + α·0.5·c·u with α, u ~ U[0, 1], so ‖∇‖ = |x̂| / c = 1 ± αu/2 and the
  # penalty (αu/2)² has mean E[α²]·E[u²]/4 = 1/36 for every c, which pins the 0.5·std(real) scale.
  real = c * jnp.tile(jnp.array([[1.0], [-1.0]]), (B // 2, 1))
  assert evaluate("dragan", half_square_d(c), real, jnp.zeros_like(real)) == pytest.approx(1 / 36, abs=0.0015)


def test_penalty_gradients_reach_discriminator_parameters():
  real, fake = batch(6, (5, 3)), batch(7, (5, 3))
  w = jnp.array([0.4, -1.3, 0.9])
  norm_w = np.linalg.norm(np.asarray(w, np.float64))
  grad = lambda name: jax.jit(jax.grad(lambda w: penalties.get(name)(linear_d(w), real, fake, KEY)))(w)
  np.testing.assert_allclose(grad("wgan_gp"), 2 * (norm_w - 1) * np.asarray(w) / norm_w, rtol=1e-5)
  np.testing.assert_allclose(grad("dragan"), 2 * (norm_w - 1) * np.asarray(w) / norm_w, rtol=1e-5)
  np.testing.assert_allclose(grad("r1"), 2 * np.asarray(w), rtol=1e-6)


def test_zero_input_gradient_gives_finite_parameter_gradients():
  # A constant D has ‖∇‖ = 0, where sqrt's derivative is infinite.
  real, fake = batch(8, (4, 3)), batch(9, (4, 3))
  for name in ("wgan_gp", "dragan"):
    fn = penalties.get(name)
    value, grad = jax.jit(jax.value_and_grad(lambda w, fn=fn: fn(linear_d(w), real, fake, KEY)))(jnp.zeros(3))
    assert float(value) == 1.0
    assert np.isfinite(grad).all()


def test_eager_matches_jit():
  real, fake, d_fn = batch(10, (4, 3)), batch(11, (4, 3)), linear_d(jnp.array([0.5, 0.5, 2.0]))
  eager = float(penalties.get("wgan_gp")(d_fn, real, fake, KEY))
  assert eager == pytest.approx(evaluate("wgan_gp", d_fn, real, fake), rel=1e-6)


def test_misuse_errors():
  with pytest.raises(ValueError, match=r"unknown penalty 'gp'; expected one of \['dragan', 'none', 'r1'"):
    penalties.get("gp")
  with pytest.raises(TypeError, match=r"penalty 'r1' got unknown options \['one_sided'\]; it accepts none"):
    penalties.get("r1", one_sided=True)
  with pytest.raises(TypeError, match=r"unknown options \['centre'\]; it accepts \['form', 'one_sided'\]"):
    penalties.get("wgan_gp", centre=0.0)
  with pytest.raises(ValueError, match=r"pairs real and fake examples; got shapes \(4, 3\) and \(2, 3\)"):
    penalties.get("wgan_gp")(linear_d(jnp.ones(3)), jnp.zeros((4, 3)), jnp.zeros((2, 3)), KEY)


def test_weight_clip_bounds_every_leaf():
  dense = {"kernel": batch(12, (3, 4)) * 0.05, "bias": jnp.array([0.02, -0.5, 0.001])}
  params = {"dense": dense, "scale": jnp.ones(())}
  clipped = penalties.weight_clip(params, 0.01)
  assert jax.tree.structure(clipped) == jax.tree.structure(params)
  for before, after in zip(jax.tree.leaves(params), jax.tree.leaves(clipped), strict=True):
    np.testing.assert_array_equal(after, np.clip(np.asarray(before), np.float32(-0.01), np.float32(0.01)))
  assert max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(clipped)) == pytest.approx(0.01)
  with pytest.raises(ValueError, match="expected a positive bound"):
    penalties.weight_clip(params, 0.0)
