"""GAN losses against TF-GAN's published values and against the papers' formulas written out in numpy."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

# TF-GAN's test logits (tensorflow_gan/python/losses/losses_impl_test.py).
REAL = np.array([-5.0, 1.4, 12.5, 2.7])
FAKE = np.array([10.0, 4.4, -5.5, 3.6])

ALL = [
  "hinge",
  "least_squares",
  "least_squares_sigmoid",
  "minimax",
  "non_saturating",
  "relativistic",
  "relativistic_average",
  "relativistic_hinge",
  "wasserstein",
]
SMOOTHABLE = ["minimax", "non_saturating", "relativistic", "relativistic_average"]


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def bce(logits, target):
  """Sigmoid cross-entropy written naively, as in the papers; fine in float64 for these logits."""
  p = sigmoid(logits)
  return -(target * np.log(p) + (1.0 - target) * np.log(1.0 - p))


def reference(name, r, f, s=0.0):
  """(d_loss, g_loss) from each paper's definition; `s` moves D's real targets to 1 - s."""
  r, f = np.asarray(r, np.float64), np.asarray(f, np.float64)
  hinge = lambda x: np.maximum(0.0, x)
  if name in ("minimax", "non_saturating"):
    d = bce(r, 1.0 - s).mean() + bce(f, 0.0).mean()
    g = np.log(1.0 - sigmoid(f)).mean() if name == "minimax" else -np.log(sigmoid(f)).mean()
  elif name == "wasserstein":
    d, g = f.mean() - r.mean(), -f.mean()
  elif name == "hinge":
    d, g = hinge(1.0 - r).mean() + hinge(1.0 + f).mean(), -f.mean()
  elif name == "least_squares":
    d, g = 0.5 * ((r - 1.0) ** 2).mean() + 0.5 * (f**2).mean(), 0.5 * ((f - 1.0) ** 2).mean()
  elif name == "least_squares_sigmoid":  # compare_gan v1's LSGAN: the squares of D's sigmoid
    sr, sf = sigmoid(r), sigmoid(f)
    d, g = 0.5 * ((sr - 1.0) ** 2).mean() + 0.5 * (sf**2).mean(), 0.5 * ((sf - 1.0) ** 2).mean()
  elif name == "relativistic":
    d, g = bce(r - f, 1.0 - s).mean(), -np.log(sigmoid(f - r)).mean()
  elif name == "relativistic_average":
    real_rel, fake_rel = r - f.mean(), f - r.mean()
    d = -((1.0 - s) * np.log(sigmoid(real_rel)) + s * np.log(1.0 - sigmoid(real_rel))).mean()
    d += -np.log(1.0 - sigmoid(fake_rel)).mean()
    g = -np.log(sigmoid(fake_rel)).mean() - np.log(1.0 - sigmoid(real_rel)).mean()
  elif name == "relativistic_hinge":
    real_rel, fake_rel = r - f.mean(), f - r.mean()
    d = hinge(1.0 - real_rel).mean() + hinge(1.0 + fake_rel).mean()
    g = hinge(1.0 - fake_rel).mean() + hinge(1.0 + real_rel).mean()
  return d, g


def evaluate(fn, r, f, dtype=jnp.float32):
  d, g = fn(jnp.asarray(r, dtype), jnp.asarray(f, dtype))
  return float(d), float(g)


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


# ---- values ----


def test_registered_names():
  assert losses.names() == ALL


# TF-GAN's expected values. Its modified/minimax D losses default to label_smoothing=0.25, which TF
# smooths towards 0.5 (target 1 - 0.25/2), i.e. our one-sided s = 0.125. Its minimax G loss is minus its
# D loss evaluated with real logits of 1, so it carries the constant -softplus(-1) that ours does not.
TFGAN = [
  ("least_squares", 0.0, 41.73375, 17.69625),
  ("wasserstein", 0.0, 0.22500, -3.12500),
  ("hinge", 0.0, 6.75000, -3.12500),
  ("non_saturating", 0.125, 6.19637, 1.38582),
  ("minimax", 0.125, 6.19637, -4.82408 + np.log1p(np.exp(-1.0))),
]


@pytest.mark.parametrize("name,smoothing,d_expected,g_expected", TFGAN)
def test_tfgan_published_values(name, smoothing, d_expected, g_expected):
  d, g = evaluate(losses.get(name, label_smoothing=smoothing), REAL, FAKE)
  assert d == pytest.approx(d_expected, abs=1e-5)
  assert g == pytest.approx(g_expected, abs=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_losses_match_paper_formulas(name):
  rng = np.random.default_rng(0)
  for r, f in [(REAL, FAKE), (rng.normal(0, 2, 7), rng.normal(-1, 2, 7))]:
    np.testing.assert_allclose(evaluate(losses.get(name), r, f), reference(name, r, f), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", SMOOTHABLE)
@pytest.mark.parametrize("s", [0.1, 0.3])
def test_one_sided_label_smoothing(name, s):
  d, g = evaluate(losses.get(name, label_smoothing=s), REAL, FAKE)
  d_unsmoothed, g_unsmoothed = reference(name, REAL, FAKE)
  assert d == pytest.approx(reference(name, REAL, FAKE, s)[0], rel=2e-6)
  assert d != pytest.approx(d_unsmoothed, rel=1e-3)
  assert g == pytest.approx(g_unsmoothed, rel=2e-6)  # one-sided: only D's real targets move


@pytest.mark.parametrize("name", ALL)
def test_saturated_logits_stay_finite_in_float32(name):
  r = jnp.array([-1e4, -100.0, 100.0, 1e4], jnp.float32)
  f = jnp.array([1e4, 100.0, -100.0, -1e4], jnp.float32)
  fn = losses.get(name)
  for k in (0, 1):
    value, (grad_r, grad_f) = jax.value_and_grad(lambda r, f, k=k: fn(r, f)[k], argnums=(0, 1))(r, f)
    assert np.isfinite(value) and np.isfinite(grad_r).all() and np.isfinite(grad_f).all(), (name, k)


def test_non_saturating_g_loss_is_exact_where_log_sigmoid_would_underflow():
  # float32 log(sigmoid(-200)) is log(0) = -inf; the loss must be softplus(200) = 200.
  _, g = evaluate(losses.get("non_saturating"), np.zeros(2), np.array([-200.0, -200.0]))
  assert g == pytest.approx(200.0, rel=1e-6)


# ---- gradients ----


def central_differences(out, r, f, h=1e-6):
  """d out / d r and d out / d f, one coordinate at a time (vmapped over the perturbation)."""
  steps = h * jnp.eye(r.shape[0])
  fd_r = (jax.vmap(lambda e: out(r + e, f))(steps) - jax.vmap(lambda e: out(r - e, f))(steps)) / (2 * h)
  fd_f = (jax.vmap(lambda e: out(r, f + e))(steps) - jax.vmap(lambda e: out(r, f - e))(steps)) / (2 * h)
  return fd_r, fd_f


@pytest.mark.parametrize("name,s", [(n, 0.0) for n in ALL] + [(n, 0.2) for n in SMOOTHABLE])
@pytest.mark.parametrize("k", [0, 1], ids=["d_loss", "g_loss"])
def test_gradients_match_central_differences(name, s, k, x64):
  rng = np.random.default_rng(1)
  r, f = jnp.asarray(rng.normal(0.5, 2.0, 5)), jnp.asarray(rng.normal(-0.5, 2.0, 5))
  fn = losses.get(name, label_smoothing=s)
  out = lambda r, f: fn(r, f)[k]
  grad_r, grad_f = jax.grad(out, argnums=(0, 1))(r, f)
  fd_r, fd_f = central_differences(out, r, f)
  assert grad_r.dtype == jnp.float64
  np.testing.assert_allclose(grad_r, fd_r, rtol=1e-6, atol=1e-8, err_msg="w.r.t. real logits")
  np.testing.assert_allclose(grad_f, fd_f, rtol=1e-6, atol=1e-8, err_msg="w.r.t. fake logits")


def test_losses_are_jittable_and_agree_with_eager():
  fn = losses.get("relativistic_average", label_smoothing=0.1)
  r, f = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
  np.testing.assert_allclose(jax.jit(fn)(r, f), fn(r, f), rtol=1e-6)


# ---- lookup, custom losses and misuse ----


def test_get_returns_registered_function_and_callables_as_is():
  assert losses.get("hinge") is losses.hinge
  custom = lambda r, f: (jnp.mean(r), jnp.mean(f))
  assert losses.get(custom) is custom


def test_register_adds_a_name_and_refuses_duplicates(monkeypatch):
  monkeypatch.setattr(losses.LOSSES, "_entries", dict(losses.LOSSES._entries))
  monkeypatch.setattr(losses.LOSSES, "_meta", dict(losses.LOSSES._meta))

  @losses.register("mean_gap")
  def mean_gap(real_logits, fake_logits):
    return jnp.mean(fake_logits - real_logits), -jnp.mean(fake_logits)

  assert "mean_gap" in losses.names()
  assert losses.get("mean_gap") is mean_gap
  with pytest.raises(ValueError, match="already registered"):
    losses.register("hinge")(mean_gap)


@pytest.mark.parametrize("name", ["hinge", "wasserstein", "least_squares", "relativistic_hinge"])
def test_smoothing_on_a_loss_without_it_is_an_error(name):
  with pytest.raises(ValueError, match=rf"{name}.*does not support label_smoothing=0.1.*non_saturating"):
    losses.get(name, label_smoothing=0.1)
  assert losses.get(name, label_smoothing=0.0) is losses.get(name)


@pytest.mark.parametrize("s", [-0.1, 1.0, 1.5])
def test_smoothing_out_of_range(s):
  with pytest.raises(ValueError, match=r"expected a value in \[0, 1\)"):
    losses.get("non_saturating", label_smoothing=s)


def test_unknown_name_lists_names_and_the_path_form():
  with pytest.raises(ValueError, match=r"unknown loss 'hinj'.*'hinge'.*'package\.module:function'"):
    losses.get("hinj")


@pytest.mark.parametrize(
  "spec,error,pattern",
  [
    ("no_such_module_for_gan_jax:loss", ImportError, "cannot import module 'no_such_module_for_gan_jax'"),
    ("math:no_such_loss", ImportError, "'math' has no attribute 'no_such_loss'"),
    ("math:pi", TypeError, "'math:pi' is a float, not callable"),
    ("math:", ValueError, "malformed"),
    (3, TypeError, "is a int; expected a name"),
  ],
)
def test_bad_specs(spec, error, pattern):
  with pytest.raises(error, match=pattern):
    losses.get(spec)


CUSTOM_MODULE = """
import jax.numpy as jnp


def scaled_wasserstein(real_logits, fake_logits):
  return 2.0 * (jnp.mean(fake_logits) - jnp.mean(real_logits)), -2.0 * jnp.mean(fake_logits)


def smoothed(real_logits, fake_logits, *, label_smoothing=0.0):
  return jnp.mean(real_logits) * (1.0 - label_smoothing), jnp.mean(fake_logits)


NOT_A_LOSS = 3
"""


@pytest.fixture
def custom_module(tmp_path, monkeypatch):
  name = "gan_jax_test_custom_losses"
  (tmp_path / f"{name}.py").write_text(CUSTOM_MODULE)
  monkeypatch.syspath_prepend(str(tmp_path))
  yield name
  sys.modules.pop(name, None)


def test_custom_loss_by_dotted_path(custom_module):
  fn = losses.get(f"{custom_module}:scaled_wasserstein")
  losses.check(fn)
  d, g = evaluate(fn, REAL, FAKE)
  assert d == pytest.approx(2 * (FAKE.mean() - REAL.mean()), rel=1e-6)
  assert g == pytest.approx(-2 * FAKE.mean(), rel=1e-6)
  d, _ = evaluate(losses.get(f"{custom_module}:smoothed", label_smoothing=0.25), REAL, FAKE)
  assert d == pytest.approx(0.75 * REAL.mean(), rel=1e-6)
  with pytest.raises(ValueError, match="scaled_wasserstein.*does not support label_smoothing"):
    losses.get(f"{custom_module}:scaled_wasserstein", label_smoothing=0.25)
  with pytest.raises(TypeError, match="NOT_A_LOSS.*is a int, not callable"):
    losses.get(f"{custom_module}:NOT_A_LOSS")


# ---- check ----


@pytest.mark.parametrize("name", ALL)
def test_check_accepts_every_registered_loss(name):
  losses.check(losses.get(name, label_smoothing=0.1 if name in SMOOTHABLE else 0.0))


def test_check_names_the_shapes_of_a_loss_returning_vectors():
  def per_example(real_logits, fake_logits):
    return fake_logits - real_logits, -fake_logits

  with pytest.raises(TypeError, match=r"per_example must return a pair .* returned shapes \(4,\) float32, \(4,\)"):
    losses.check(per_example)
  with pytest.raises(TypeError, match=r"returned shapes \(6,\)"):
    losses.check(per_example, batch_sizes=(6,))


def test_check_traces_the_run_batch_size_too():
  """A loss scalar at the small probe batch but not at the run's batch fails at start-up, not at step 1."""

  def grouped_by_four(real_logits, fake_logits):
    d = jnp.mean(jnp.reshape(fake_logits - real_logits, (4, -1)), axis=0)  # scalar-shaped only when B == 4
    return d.squeeze(), -jnp.mean(fake_logits)

  losses.check(grouped_by_four)  # the probe batch alone passes
  with pytest.raises(TypeError, match=r"on float32 logits of shape \(64,\) it returned shapes \(16,\)"):
    losses.check(grouped_by_four, batch_sizes=(4, 64))


def test_check_rejects_a_single_output_and_integer_scalars():
  with pytest.raises(TypeError, match=r"must return a pair .* returned \(\) float32"):
    losses.check(lambda r, f: jnp.mean(f - r))
  with pytest.raises(TypeError, match=r"returned shapes \(\) int32"):
    losses.check(lambda r, f: (jnp.sum(r > 0), jnp.sum(f > 0)))


def test_check_reports_a_loss_that_raises_or_is_not_finite():
  def broken(real_logits, fake_logits):
    return jnp.mean(real_logits @ jnp.ones((3, 3))), jnp.mean(fake_logits)

  with pytest.raises(ValueError, match=r"loss .*broken raised on float32 logits of shape \(4,\): TypeError"):
    losses.check(broken)
  with pytest.raises(ValueError, match="is not finite"):
    losses.check(lambda r, f: (jnp.mean(jnp.log(r)), jnp.mean(f)))


def test_relativistic_needs_paired_logits():
  with pytest.raises(ValueError, match=r"elementwise; got logits of shapes \(4,\) and \(3,\)"):
    losses.get("relativistic")(jnp.zeros(4), jnp.zeros(3))
