"""train.compute_dtype = "bfloat16": bfloat16 layer math, float32 parameters, statistics, logits and losses.

The structural checks only trace (eval_shape / make_jaxpr): XLA:CPU compiles cost far more than the checks.
"""

import functools
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import register_model, ring_config

from gan_jax import config as config_lib
from gan_jax import models, parallel
from gan_jax.data import DatasetInfo
from gan_jax.models.fast_ops import ConvTranspose4x4S2
from gan_jax.records import read_jsonl
from gan_jax.train import loop
from gan_jax.train.options import Options
from gan_jax.train.state import HPARAMS, create_gan, init_state
from gan_jax.train.step import make_member_step

RING8 = DatasetInfo("ring8", "points", (2,), 8, None)
FASHION_LIKE = DatasetInfo("fashion_like", "images", (28, 28, 1), 10, None)
LAYERS = (nn.Dense, nn.Conv, nn.ConvTranspose, ConvTranspose4x4S2)


def bf16_config(model: str):
  c = ring_config(**{"model.name": model, "train.compute_dtype": "bfloat16"})
  c.model.latent_dim, c.train.batch_size = 8, 4
  return c


def layer_math_dtypes(jaxpr) -> set[str]:
  """Operand dtypes of every matmul and convolution in a jaxpr, sub-jaxprs (grads, conds) included."""
  found = set()
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
      found.update(str(v.aval.dtype) for v in eqn.invars)
    for param in eqn.params.values():
      for sub in param if isinstance(param, tuple | list) else (param,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          found |= layer_math_dtypes(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          found |= layer_math_dtypes(sub)
  return found


@pytest.mark.parametrize("model, info", [("mlp2d", RING8), ("dcgan", FASHION_LIKE)])
def test_bfloat16_layers_float32_params_and_outputs(model, info):
  config = bf16_config(model)
  gan = create_gan(config, info)
  state = jax.eval_shape(functools.partial(init_state, gan), 0, {k: 1.0 for k in HPARAMS})
  float_leaves = [a for a in jax.tree.leaves(state) if jnp.issubdtype(a.dtype, jnp.floating)]
  assert {a.dtype for a in float_leaves} == {jnp.dtype(jnp.float32)}  # params, stats, Adam moments, EMA

  # Inference passes: every Dense / Conv output is bfloat16; samples and logits are float32.
  z_BZ, x = jnp.zeros((4, gan.latent_dim)), jnp.zeros((4, *info.shape))
  capture = lambda mdl, _: isinstance(mdl, LAYERS)
  for module, params, stats, inputs in [
    (gan.generator, state.g.params, state.g.stats, z_BZ),
    (gan.discriminator, state.d.params, state.d.stats, x),
  ]:
    apply = lambda v, i, module=module: module.apply(
      v, i, train=False, capture_intermediates=capture, mutable=["intermediates"]
    )
    out, captured = jax.eval_shape(apply, {"params": params, **stats}, inputs)
    layer_outputs = jax.tree.leaves(captured["intermediates"])
    assert layer_outputs and {a.dtype for a in layer_outputs} == {jnp.dtype(jnp.bfloat16)}, type(module).__name__
    assert out.dtype == jnp.float32
  assert jax.eval_shape(gan.generate, state.ema_params, state.g.stats, z_BZ).dtype == jnp.float32

  # The train step: all matmuls / convolutions in bfloat16, and the state and metrics it returns in float32.
  member_step = make_member_step(gan, Options.from_config(config))
  step = jax.vmap(member_step, in_axes=(0, 0, None), axis_name=parallel.AXIS)
  state_D = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1, *a.shape), a.dtype), state)  # one device's
  batch = {"x": jax.ShapeDtypeStruct((1, 1, config.train.batch_size, *info.shape), jnp.float32)}
  assert layer_math_dtypes(jax.make_jaxpr(step)(state_D, batch, 0).jaxpr) == {"bfloat16"}
  new_state, metrics = jax.eval_shape(step, state_D, batch, 0)
  assert jax.tree.map(lambda a: a.dtype, new_state) == jax.tree.map(lambda a: a.dtype, state_D)
  assert {a.dtype for a in jax.tree.leaves(metrics)} == {jnp.dtype(jnp.float32)}


def test_bfloat16_trains_the_ring_close_to_float32(tmp_path):
  small = {"train.steps": 200, "train.batch_size": 64, "train.log_every": 10, "train.num_devices": 1}
  rows = {}
  for dtype in ("float32", "bfloat16"):
    config = ring_config(**small, **{"train.compute_dtype": dtype, "checkpoint.every": 1000, "eval.final": False})
    loop.train_and_evaluate(config, str(tmp_path / dtype))
    rows[dtype] = read_jsonl(os.path.join(tmp_path / dtype, "metrics.jsonl"))
  assert all(math.isfinite(v) for r in rows["bfloat16"] for v in r.values())
  assert [r["step"] for r in rows["bfloat16"]] == [r["step"] for r in rows["float32"]]
  final = {dtype: r[-1] for dtype, r in rows.items()}
  assert final["bfloat16"] != final["float32"]  # the bfloat16 math did run
  for key in ("d_loss", "g_loss"):  # 2e-3 apart at seeds 0-2
    np.testing.assert_allclose(final["bfloat16"][key], final["float32"][key], atol=0.1, err_msg=key)


def test_unknown_compute_dtype_is_one_clear_error(tmp_path):
  with pytest.raises(ValueError) as e:
    loop.train_and_evaluate(ring_config(**{"train.compute_dtype": "float16"}), str(tmp_path / "run"))
  message = str(e.value)
  assert "train.compute_dtype='float16'" in message and "'bfloat16'" in message and "\n" not in message
  assert not os.path.exists(tmp_path / "run" / "config.json")  # rejected before the workdir is written


def test_family_without_dtype_field_is_refused_only_in_bfloat16(monkeypatch):
  class Plain(nn.Module):
    @nn.compact
    def __call__(self, x, labels_B=None, *, train: bool):
      return nn.Dense(1)(x)

  register_model(monkeypatch, "plain", lambda cfg, info: (Plain(), Plain()))
  config = ring_config(**{"model.name": "plain"})
  models.get(config.model, RING8)  # float32 needs nothing of a family
  with pytest.raises(ValueError, match=r"compute_dtype='bfloat16': model.name='plain' has a Plain without a `dtype`"):
    models.get(config.model, RING8, "bfloat16")


def test_old_run_config_loads_as_float32():
  old = config_lib.to_dict(config_lib.base_config())
  del old["train"]["compute_dtype"]
  assert config_lib.from_dict(old).train.compute_dtype == "float32"
