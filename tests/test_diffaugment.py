"""DiffAugment: shapes, identity, gradients, the ops' statistics, per-example keying, device invariance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_runs_close, image_config, losses_of, ring_config

from gan_jax import diffaugment
from gan_jax.train import loop

FULL = diffaugment.parse_policy("color,translation,cutout")
KEY = jax.random.PRNGKey(0)


def images(batch, size=32, channels=3, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (batch, size, size, channels), minval=-1.0, maxval=1.0)


def run(x_BHWC, policy, key=KEY, ids_B=None):
  ids_B = jnp.arange(x_BHWC.shape[0]) if ids_B is None else ids_B
  return jax.jit(diffaugment.diff_augment, static_argnums=3)(x_BHWC, key, ids_B, policy)


def test_parse_policy():
  assert diffaugment.parse_policy("") == ()
  assert diffaugment.parse_policy(" color, cutout ") == ("color", "cutout")
  with pytest.raises(ValueError, match="unknown ops \\['flip'\\]"):
    diffaugment.parse_policy("color,flip")


def test_empty_policy_is_identity_and_full_policy_keeps_shape():
  x = images(4, 28, 1)
  assert diffaugment.diff_augment(x, KEY, jnp.arange(4), ()) is x
  y = run(x, FULL)
  assert y.shape == x.shape and y.dtype == x.dtype and not np.allclose(y, x)


def test_gradient_flows_and_is_finite():
  x = images(4)
  grads = jax.grad(lambda x: jnp.sum(run(x, FULL) ** 2))(x)
  assert np.all(np.isfinite(grads)) and np.count_nonzero(grads) > 0.5 * grads.size


def test_same_key_same_draws_and_draws_are_per_example():
  x = images(8)
  np.testing.assert_array_equal(run(x, FULL), run(x, FULL))
  assert not np.allclose(run(x, FULL), run(x, FULL, jax.random.PRNGKey(1)))
  # Example i's draw depends on (key, i) only, not on its batch: the device-count invariance.
  np.testing.assert_array_equal(run(x, FULL)[5:7], run(x[5:7], FULL, ids_B=jnp.arange(5, 7)))


def test_color_of_a_grey_constant_image_is_a_shifted_constant():
  y = run(jnp.full((64, 8, 8, 1), 0.25), ("color",))
  np.testing.assert_allclose(y, y[:, :1, :1, :] * jnp.ones_like(y), atol=1e-6)  # contrast keeps constants
  shifts = np.asarray(y[:, 0, 0, 0]) - 0.25
  assert np.all(np.abs(shifts) <= 0.5) and np.std(shifts) > 0.2  # brightness ~ U[-0.5, 0.5)


def test_translation_shifts_by_at_most_an_eighth_with_zero_fill():
  n, size = 400, 32
  x = jnp.broadcast_to(1.0 + jnp.arange(size * size, dtype=jnp.float32).reshape(1, size, size, 1), (n, size, size, 1))
  y = np.asarray(run(x, ("translation",)))[..., 0]
  centre = y[:, size // 2, size // 2].astype(int) - 1  # the source pixel index of the output centre
  dy, dx = centre // size - size // 2, centre % size - size // 2
  assert np.abs(dy).max() == np.abs(dx).max() == size // 8
  assert abs(np.abs(dy).mean() - 20 / 9) < 0.3  # |shift| for shift ~ U{-4..4}: 20/9
  source = np.asarray(x)[0, ..., 0]
  padded = np.pad(source, size // 8)
  for i in range(20):
    expected = padded[size // 8 + dy[i] : size // 8 + dy[i] + size, size // 8 + dx[i] : size // 8 + dx[i] + size]
    np.testing.assert_array_equal(y[i], expected)


def expected_cutout_fraction(size):
  """E[zeroed fraction] of the authors' cutout: centres uniform over 0..size, squares clipped at the border."""
  side = diffaugment.cutout_size(size, size)[0]
  centres = np.arange(size + 1 - side % 2)
  start = centres - side // 2
  lengths = np.minimum(start + side, size) - np.maximum(start, 0)
  return (lengths.mean() / size) ** 2


@pytest.mark.parametrize("size", [28, 32])
def test_cutout_zeroes_a_clipped_half_size_square(size):
  y = np.asarray(run(jnp.ones((2000, size, size, 1)), ("cutout",)))
  zeroed = (y == 0).mean(axis=(1, 2, 3))
  assert zeroed.max() == 0.25  # a whole half-side square when it lies inside
  np.testing.assert_allclose(zeroed.mean(), expected_cutout_fraction(size), atol=0.01)
  assert 0.18 < expected_cutout_fraction(size) < 0.19


@pytest.mark.slow  # test-all; the fast tier trains with a policy in test_train.py::test_sample_writes_uint8_images
@pytest.mark.parametrize("devices", [8])
def test_augmented_run_matches_on_one_and_more_devices(devices, tmp_path, fashion_idx_dir):
  states = {}
  for n in (1, devices):
    overrides = {"train.num_devices": n, "train.steps": 2, "augment.policy": "color,translation,cutout"}
    config = image_config(fashion_idx_dir, tmp_path / "tfds", "mlp_gan", **overrides, **{"penalty.name": "r1"})
    states[n] = loop.train_and_evaluate(config, str(tmp_path / f"d{n}"))
  assert_runs_close(losses_of(tmp_path / "d1"), losses_of(tmp_path / f"d{devices}"))
  for a, b in zip(jax.tree.leaves(states[1]), jax.tree.leaves(states[devices]), strict=True):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-5)


def test_policy_on_points_is_one_clear_error(tmp_path):
  with pytest.raises(ValueError, match="augment.policy='color' augments images"):
    loop.train_and_evaluate(ring_config(**{"augment.policy": "color"}), str(tmp_path))
