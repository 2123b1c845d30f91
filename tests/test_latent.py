"""Latent tools: interpolation, truncation, latent search recovering a known code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.apps import latent
from gan_jax.models.mlp import MLPGenerator


def test_linear_is_exactly_linear():
  z_a, z_b = jnp.array([[1.0, -2.0, 3.0]]), jnp.array([[5.0, 2.0, -1.0]])
  z = latent.interpolate(z_a, z_b, 5, "linear")
  assert z.shape == (1, 5, 3)
  t = np.linspace(0, 1, 5)[:, None]
  np.testing.assert_allclose(z[0], (1 - t) * z_a + t * z_b, atol=1e-6)
  np.testing.assert_allclose(np.diff(z[0], axis=0), np.broadcast_to((z_b - z_a) / 4, (4, 3)), atol=1e-6)


def test_slerp_follows_the_great_circle():
  key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
  unit = lambda z: z / jnp.linalg.norm(z, axis=-1, keepdims=True)
  z_a, z_b = 3.0 * unit(jax.random.normal(key_a, (4, 16))), 3.0 * unit(jax.random.normal(key_b, (4, 16)))
  z = latent.interpolate(z_a, z_b, 9, "slerp")
  np.testing.assert_allclose(z[:, 0], z_a, atol=1e-5)
  np.testing.assert_allclose(z[:, -1], z_b, atol=1e-5)
  np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 3.0, rtol=1e-5)  # equal norms stay on the sphere
  omega = np.arccos(np.sum(unit(z_a) * unit(z_b), axis=-1))
  angle_from_a = np.arccos(np.clip(np.sum(unit(z) * unit(z_a)[:, None], axis=-1), -1, 1))
  np.testing.assert_allclose(angle_from_a, omega[:, None] * np.linspace(0, 1, 9), atol=1e-3)  # uniform in angle
  # Unequal norms: White's formula still hits both endpoints.
  z = latent.interpolate(z_a, 2 * z_b, 3, "slerp")
  np.testing.assert_allclose(z[:, -1], 2 * z_b, atol=1e-5)


def test_slerp_of_parallel_codes_is_finite_and_linear():
  z_a = jnp.array([[1.0, 2.0]])
  z = latent.interpolate(z_a, 2 * z_a, 3, "slerp")
  np.testing.assert_allclose(z[0], [[1, 2], [1.5, 3], [2, 4]], atol=1e-5)


def test_interpolate_rejects_bad_arguments():
  z = jnp.zeros((1, 2))
  with pytest.raises(ValueError, match="method='cubic'"):
    latent.interpolate(z, z, 3, "cubic")
  with pytest.raises(ValueError, match="n=1"):
    latent.interpolate(z, z, 1)


def test_truncation_resamples_within_psi():
  z = np.asarray(latent.truncated_normal(jax.random.PRNGKey(0), (2000, 64), 0.7))
  assert np.abs(z).max() <= 0.7
  # Resampled, not clipped (which would put 48% at ±psi): the density's own 1.2% in the last 0.01.
  assert np.mean(np.abs(z) > 0.69) < 0.02
  assert abs(z.mean()) < 0.01 and 0.35 < z.std() < 0.42  # std of N(0,1) truncated at 0.7 is 0.3886
  assert latent.latent_normal(jax.random.PRNGKey(0), (3, 2)).shape == (3, 2)
  with pytest.raises(ValueError, match="psi=0"):
    latent.truncated_normal(jax.random.PRNGKey(0), (3,), 0)


@pytest.fixture(scope="module")
def known_generator():
  """A small fixed random MLP generator z_4 -> 8x8 images, and codes z*_NZ with their images."""
  gen = MLPGenerator((32, 64), (8, 8, 1), tanh=True)
  g_vars = gen.init(jax.random.PRNGKey(1), jnp.zeros((1, 4)), train=False)
  generate = jax.jit(lambda z_NZ: gen.apply(g_vars, z_NZ, train=False))
  z_true_NZ = jax.random.normal(jax.random.PRNGKey(2), (8, 4))
  return generate, z_true_NZ, generate(z_true_NZ)


def _recover(generate, target_NHWC, restarts, steps=300, z0_RNZ=None):
  loss_fn = lambda x, z: jnp.sum((x - target_NHWC) ** 2, axis=(1, 2, 3))
  if z0_RNZ is None:
    z0_RNZ = latent.initial_latents(jax.random.PRNGKey(3), restarts, jnp.arange(len(target_NHWC)), 4)
  search = jax.jit(lambda z0: latent.latent_search(generate, loss_fn, z0, steps=steps, lr=0.05))
  return search(z0_RNZ), loss_fn, z0_RNZ


def test_latent_search_recovers_a_known_code(known_generator):
  generate, z_true_NZ, target_NHWC = known_generator
  (z_NZ, loss_N), loss_fn, _ = _recover(generate, target_NHWC, restarts=4)
  np.testing.assert_allclose(loss_N, loss_fn(generate(z_NZ), z_NZ), rtol=1e-5, atol=1e-7)  # loss is z's
  random_N = np.stack(
    [loss_fn(generate(jax.random.normal(jax.random.PRNGKey(10 + i), z_true_NZ.shape)), None) for i in range(20)]
  )
  assert np.all(loss_N < 0.01 * np.median(random_N, axis=0)), (loss_N, np.median(random_N, axis=0))


def test_latent_search_keeps_the_best_restart(known_generator):
  generate, _, target_NHWC = known_generator
  (_, loss_all_N), _, z0_RNZ = _recover(generate, target_NHWC, restarts=3, steps=20)
  for r in range(3):
    (_, loss_r_N), _, _ = _recover(generate, target_NHWC, restarts=1, steps=20, z0_RNZ=z0_RNZ[r : r + 1])
    assert np.all(loss_all_N <= loss_r_N + 1e-6)
  (z_N, loss_N), loss_fn, _ = _recover(generate, target_NHWC, restarts=3, steps=0, z0_RNZ=z0_RNZ)
  np.testing.assert_allclose(loss_N, np.min(jax.vmap(lambda z: loss_fn(generate(z), z))(z0_RNZ), axis=0), rtol=1e-6)


def test_latent_search_is_the_best_of_its_restarts(known_generator):
  generate, _, target_NHWC = known_generator
  loss_fn = lambda x, z: jnp.sum((x - target_NHWC) ** 2, axis=(1, 2, 3))
  z0_RNZ = latent.initial_latents(jax.random.PRNGKey(3), 3, jnp.arange(len(target_NHWC)), 4)
  z_RNZ, loss_RN = latent.latent_search_restarts(generate, loss_fn, z0_RNZ, steps=20, lr=0.05)
  z_NZ, loss_N = latent.latent_search(generate, loss_fn, z0_RNZ, steps=20, lr=0.05)
  r_N = np.argmin(loss_RN, axis=0)
  np.testing.assert_array_equal(loss_N, np.min(loss_RN, axis=0))
  np.testing.assert_array_equal(z_NZ, np.asarray(z_RNZ)[r_N, np.arange(len(r_N))])
  np.testing.assert_allclose(loss_RN, jax.vmap(lambda z: loss_fn(generate(z), z))(z_RNZ), rtol=1e-5, atol=1e-7)


def test_initial_latents_do_not_depend_on_batching():
  key = jax.random.PRNGKey(0)
  whole = latent.initial_latents(key, 2, jnp.arange(6), 3)
  part = latent.initial_latents(key, 2, jnp.arange(4, 6), 3)
  assert whole.shape == (2, 6, 3)
  np.testing.assert_array_equal(whole[:, 4:], part)
  with pytest.raises(ValueError, match="restarts, examples, latent_dim"):
    latent.latent_search(lambda z: z, lambda x, z: x.sum(-1), whole[0], steps=1)
