"""The train step: each network moves only with its own loss; every objective trains ring8 without NaN."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ring_config

from gan_jax import losses, parallel, penalties
from gan_jax.records import read_jsonl
from gan_jax.train import loop, setup


def one_step(config, loss_fn):
  """(state before, state after) of one jitted step on one device."""
  config.train.num_devices = 1
  run = setup.build(config, loss_fn)
  state = run.init_state()
  before = jax.device_get(state)  # the step donates its input
  batches = loop.step_batches(run.members, 0, config.train.d_steps, config.train.batch_size)
  after, _ = run.train_step()(state, parallel.put_batch(next(batches), run.mesh))
  return before, jax.device_get(after)


def only_d_loss(real_logits, fake_logits):
  d_loss, _ = losses.non_saturating(real_logits, fake_logits)
  return d_loss, 0.0 * jnp.mean(fake_logits)


def only_g_loss(real_logits, fake_logits):
  _, g_loss = losses.non_saturating(real_logits, fake_logits)
  return 0.0 * (jnp.mean(real_logits) + jnp.mean(fake_logits)), g_loss


def changed(a, b) -> list[bool]:
  return [bool(np.any(x != y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]


@pytest.mark.parametrize("update_order", ["alternating", "simultaneous"])
def test_each_network_moves_only_with_its_own_loss(update_order):
  """A zero g_loss leaves G exactly where it was (Adam's step on zero gradients is zero) while D moves, and
  vice versa: no gradient of d_loss reaches G, none of g_loss reaches D."""
  config = ring_config(**{"train.update_order": update_order})
  before, after = one_step(config, only_d_loss)
  assert not any(changed(before.g.params, after.g.params)) and all(changed(before.d.params, after.d.params))
  before, after = one_step(config, only_g_loss)
  assert all(changed(before.g.params, after.g.params)) and not any(changed(before.d.params, after.d.params))


def test_lazy_regularisation_branches_and_logs_where_it_applies():
  """penalty.every = 2: the compiled step keeps a real branch (not a select running the penalty at every
  update), and the penalty applies on D updates 2, 4, ..., the ones a log_every of 2 logs."""
  config = ring_config(**{"penalty.name": "r1", "penalty.weight": 1.0, "penalty.every": 2, "train.num_devices": 1})
  run = setup.build(config)
  members, mesh, state, step = run.members, run.mesh, run.init_state(), run.train_step()
  batches = loop.step_batches(members, 0, config.train.d_steps, config.train.batch_size)
  first = next(loop.step_batches(members, 0, config.train.d_steps, config.train.batch_size))
  hlo = step.lower(state, parallel.put_batch(first, mesh)).as_text()
  assert "stablehlo.case" in hlo or "stablehlo.if" in hlo
  penalties_logged = []
  for _ in range(4):
    state, metrics = step(state, parallel.put_batch(next(batches), mesh))
    penalties_logged.append(float(metrics["penalty"][0]))
  assert penalties_logged[0] == penalties_logged[2] == 0.0 and penalties_logged[1] > 0 and penalties_logged[3] > 0
  config.penalty.every = 0
  with pytest.raises(ValueError, match=r"penalty.every=0: expected an integer in \[1, "):
    setup.build(config)


# Every registered loss, each with one of the penalties in turn, so that 8 short runs cover both registries;
# the rarer training options ride along, one per loss.
PENALTIES = penalties.names()
OPTIONS = {
  "minimax": {"loss.label_smoothing": 0.1},
  "hinge": {"penalty.every": 2},
  "least_squares": {"train.d_steps": 2},
  "least_squares_sigmoid": {"train.g_fresh_noise": True, "train.d_steps": 2},
  "wasserstein": {"train.weight_clip": 0.5},
  "non_saturating": {"train.update_order": "simultaneous"},
  "relativistic": {"optim.d.grad_clip": 1.0, "optim.g.schedule": "cosine", "optim.g.warmup_steps": 50},
  "relativistic_average": {"train.ema_start": 100},
  "relativistic_hinge": {},
}


# The fast tier trains these two (simultaneous updates, lazy regularisation); test-all every loss.
FAST = ("non_saturating", "hinge")


def objective_cases():
  assert sorted(OPTIONS) == losses.names()
  for i, loss in enumerate(losses.names()):
    overrides = {"loss.name": loss, "penalty.name": PENALTIES[i % len(PENALTIES)], **OPTIONS[loss]}
    marks = () if loss in FAST else pytest.mark.slow
    yield pytest.param(overrides, id=f"{loss}+{overrides['penalty.name']}", marks=marks)


@pytest.mark.parametrize("overrides", list(objective_cases()))
def test_every_objective_trains_ring8_without_nan(overrides, tmp_path):
  config = ring_config(
    **{
      "train.steps": 300,
      "train.batch_size": 64,
      "train.log_every": 25,
      "checkpoint.every": 1000,
      "penalty.weight": 1.0,
      "optim.g.lr": 1e-3,
      "optim.d.lr": 1e-3,
      **overrides,
    }
  )
  config.eval.final = False
  loop.train_and_evaluate(config, str(tmp_path))
  rows = read_jsonl(os.path.join(tmp_path, "metrics.jsonl"))
  assert [r["step"] for r in rows] == list(range(25, 301, 25))
  assert all(math.isfinite(v) for r in rows for v in r.values()), rows[-1]
  if overrides["penalty.name"] != "none":
    assert any(r["penalty"] > 0 for r in rows)


def test_fresh_g_noise_changes_only_gs_update():
  """train.g_fresh_noise (compare_gan's WGAN-GP): the D updates are bit for bit those of the shared-pass step,
  while G, updated on its own draw of z, lands elsewhere."""
  shared = one_step(ring_config(**{"train.d_steps": 2}), None)
  fresh = one_step(ring_config(**{"train.d_steps": 2, "train.g_fresh_noise": True}), None)
  for a, b in zip(jax.tree.leaves(shared[1].d), jax.tree.leaves(fresh[1].d), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(changed(shared[1].g.params, fresh[1].g.params))  # Adam's first step is about lr·sign(grad)
