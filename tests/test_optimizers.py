"""The optimizer door: optim.{g,d}.name picks a registered direction, which the step scales by -lr (from the
state) and the schedule; at a constant rate each equals optax's own optimizer to the bit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import ring_config

from gan_jax import optimizers
from gan_jax.train import setup, state
from gan_jax.train.loop import train_and_evaluate


def updates(tx: optax.GradientTransformation, scale: float, steps: int = 3) -> list[np.ndarray]:
  params = {"w": jnp.arange(6.0).reshape(2, 3)}
  opt_state, out = tx.init(params), []
  for i in range(steps):
    grads = {"w": jnp.sin(params["w"] * (i + 1))}
    u, opt_state = tx.update(grads, opt_state, params)
    out.append(np.asarray(u["w"]) * scale)
  return out


@pytest.mark.parametrize(
  ("name", "reference"),
  [
    ("adam", lambda lr, o: optax.adam(lr, b1=o.b1, b2=o.b2)),
    ("rmsprop", lambda lr, o: optax.rmsprop(lr, decay=o.b2, eps=1e-8)),
    ("sgd", lambda lr, o: optax.sgd(lr, momentum=o.b1)),
  ],
)
def test_each_direction_times_minus_lr_is_optaxs_optimizer(name, reference):
  config = ring_config(**{"optim.d.name": name, "optim.d.b1": 0.3})
  o, lr = config.optim.d, 1e-3
  ours = updates(state.make_optimizer(o, total_steps=10), -lr)
  theirs = updates(reference(lr, o), 1.0)
  for a, b in zip(ours, theirs, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_a_registered_optimizer_trains_by_name(tmp_path):
  """One file plus one registration: a sign-SGD direction moves every D weight by exactly lr in the first step."""

  @optimizers.register("sign_sgd")
  def sign_sgd(o):
    return optax.stateless(lambda updates, params: jax.tree.map(jnp.sign, updates))

  try:
    lr = 1e-3
    config = ring_config(**{"optim.d.name": "sign_sgd", "optim.d.lr": lr, "train.steps": 1})
    initial = setup.build(config).init_state()
    final = train_and_evaluate(config, str(tmp_path / "run"))
    moved = jax.tree.leaves(
      jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)), final.d.params, initial.d.params)
    )
    moved = np.concatenate([m.ravel() for m in moved])
    assert np.allclose(moved[moved > 0], lr, rtol=1e-3) and (moved > 0).mean() > 0.9
  finally:
    optimizers.OPTIMIZERS._entries.pop("sign_sgd")
    optimizers.OPTIMIZERS._meta.pop("sign_sgd")
