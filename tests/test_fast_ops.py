"""The CPU speed settings (train.xla_cpu, models.fast_ops) compute what JAX's defaults and flax's layers compute.

Each check is one jitted program holding both formulations where it can: XLA:CPU compiles cost far more than
these runs. The rest of the suite runs with the settings on, as `gan-jax` does (conftest.py).
"""

import ctypes
import functools
import re
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import parallel
from gan_jax.data import DatasetInfo
from gan_jax.models import layers
from gan_jax.models.dcgan import DCGANGenerator, _num_upsamples
from gan_jax.models.fast_ops import ConvTranspose4x4S2
from gan_jax.models.layers import batch_norm, dcgan_init
from gan_jax.train import xla_cpu
from gan_jax.train.options import Options
from gan_jax.train.population import member_configs, stacked_seeds_and_hparams
from gan_jax.train.state import create_gan, init_state
from gan_jax.train.step import sharded_train_step


def assert_trees_close(a, b, rel: float = 1e-5):
  """Leaves equal to `rel` of each leaf's largest magnitude: the formulations sum in different orders."""
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    y = np.asarray(y)
    np.testing.assert_allclose(np.asarray(x), y, rtol=rel, atol=rel * max(float(np.max(np.abs(y), initial=0.0)), 1e-3))


def fashion_like_batches(count: int) -> list[dict[str, np.ndarray]]:
  """`count` step batches of 8 random 28x28x1 images with labels, shaped [members, D updates, B, ...]."""
  rng = np.random.default_rng(0)
  return [
    {"x": rng.uniform(-1, 1, (1, 1, 8, 28, 28, 1)).astype(np.float32), "label": rng.integers(0, 10, (1, 1, 8), "int32")}
    for _ in range(count)
  ]


def normal(seed: int, shape: tuple[int, ...]) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 5)])
def test_dense_matches_flax_dense_under_the_population_vmap(shape):
  """layers.dense(fast_ops=True): flax's parameters, outputs and gradients, for 2 members with their own
  parameters."""
  x = normal(0, (2, *shape))
  cotangent = normal(1, (2, *shape[:-1], 7))
  fast = layers.dense(7, fast_ops=True, bias_init=nn.initializers.normal(1.0))
  plain = layers.dense(7, bias_init=nn.initializers.normal(1.0))
  assert type(plain) is nn.Dense and plain.dot_general is None
  keys = jax.random.split(jax.random.PRNGKey(2), 2)
  variables = jax.vmap(plain.init)(keys, x)
  assert_trees_close(jax.vmap(fast.init)(keys, x)["params"]["kernel"], variables["params"]["kernel"])

  @jax.jit
  def outputs_and_grads(variables, x):
    def of(module):
      loss = lambda v, x, c: jnp.sum(module.apply(v, x) * jnp.cos(c))
      return jax.vmap(lambda v, x, c: (module.apply(v, x), jax.grad(loss, (0, 1))(v, x, c)))(variables, x, cotangent)

    return of(fast), of(plain)

  got, want = outputs_and_grads(variables, x)
  assert_trees_close(got, want)
  with pytest.raises(ValueError, match="expected nn.Dense's own"):
    layers.dense(7, fast_ops=True, precision=jax.lax.Precision.HIGHEST).init(keys[0], x[0])


@pytest.mark.slow  # test-all; the fast tier compiles with the same options in test_cpu_options_train_as_jax_defaults
def test_one_device_step_runs_no_collectives_and_updates_in_place():
  """On one device the step holds no collective, and with xla_cpu's copy insertion no copy of a donated
  parameter, moment or statistic; without that option XLA copies them, and both programs train alike."""
  config = config_lib.base_config()
  config.model.name, config.model.latent_dim, config.model.g_width, config.model.d_width = "mlp_gan", 8, 8, 8
  config.model.dropout, config.train.batch_size = 0.3, 8
  info = DatasetInfo("fashion_like", "images", (28, 28, 1), 10, None)
  batches = fashion_like_batches(2)
  gan, opts = create_gan(config, info, fast_ops=True), Options.from_config(config)

  def compiled(mesh, options=xla_cpu.COMPILER_OPTIONS):
    state = jax.vmap(functools.partial(init_state, gan))(*stacked_seeds_and_hparams(member_configs(config)))
    step = sharded_train_step(gan, opts, mesh, options).lower(state, parallel.put_batch(batches[0], mesh)).compile()
    text = step.as_text()
    copies = len(re.findall(r"= f32\[[^\]]*\]\S* copy\(%state_", text))
    collectives = len(re.findall(r"= \S+ (all-reduce|all-gather|reduce-scatter)\(", text))
    for batch in batches:
      state, metrics = step(state, parallel.put_batch(batch, mesh))
    return jax.device_get((state, metrics)), copies, collectives

  (trained, copies, collectives) = compiled(parallel.make_mesh(1))
  assert (copies, collectives) == (0, 0)
  assert compiled(parallel.make_mesh(2))[2] > 0  # the count sees collectives where there are some
  no_region_analysis = {k: v for k, v in xla_cpu.COMPILER_OPTIONS.items() if "copy_insertion" not in k}
  default_trained, default_copies, _ = compiled(parallel.make_mesh(1), no_region_analysis)
  assert default_copies > 0
  assert_trees_close(trained, default_trained, rel=0.0)


@pytest.mark.parametrize(
  "shape_BHWC, features, use_bias", [((3, 7, 7, 16), 8, False), ((2, 5, 6, 3), 4, True), ((2, 1, 1, 2), 1, True)]
)
def test_conv_transpose_4x4_s2_matches_flax(shape_BHWC, features, use_bias):
  x = normal(0, shape_BHWC)
  init = dict(use_bias=use_bias, bias_init=nn.initializers.normal(1.0))
  fast, plain = ConvTranspose4x4S2(features, **init), nn.ConvTranspose(features, (4, 4), (2, 2), "SAME", **init)
  key = jax.random.PRNGKey(1)
  fast_variables, variables = jax.jit(lambda x: (fast.init(key, x), plain.init(key, x)))(x)
  assert_trees_close(fast_variables, variables)  # same parameters, same initial values

  H, W = shape_BHWC[1:3]
  cotangent = normal(2, (shape_BHWC[0], 2 * H, 2 * W, features))

  @jax.jit
  def outputs_and_grads(variables, x):
    def of(module):
      loss = lambda v, x: jnp.sum(module.apply(v, x) * cotangent)
      return module.apply(variables, x), jax.grad(loss, (0, 1))(variables, x)

    return of(fast), of(plain)

  got, want = outputs_and_grads(variables, x)
  assert_trees_close(got, want)


class PlainGenerator(nn.Module):
  """DCGANGenerator as written with flax's layers only: the reference for both of its layer choices."""

  out_shape: tuple[int, int, int]
  width: int

  @nn.compact
  def __call__(self, z_BZ, labels_B=None, *, train: bool):
    H, _, C = self.out_shape
    n_up = _num_upsamples(H)
    s = H // 2**n_up
    widths = [self.width * 2**i for i in reversed(range(n_up))]
    h = nn.Dense(s * s * widths[0], use_bias=False, kernel_init=dcgan_init)(z_BZ)
    h = nn.relu(batch_norm(train)(h)).reshape((-1, s, s, widths[0]))
    for w in widths[1:]:
      h = nn.ConvTranspose(w, (4, 4), (2, 2), "SAME", use_bias=False, kernel_init=dcgan_init)(h)
      h = nn.relu(batch_norm(train)(h))
    return jnp.tanh(nn.ConvTranspose(C, (4, 4), (2, 2), "SAME", kernel_init=dcgan_init)(h))


@pytest.mark.parametrize("out_shape", [(28, 28, 1), pytest.param((32, 32, 3), marks=pytest.mark.slow)])
@pytest.mark.parametrize("fast_ops", [True, False])
def test_dcgan_generator_matches_plain_flax(out_shape, fast_ops):
  """Same parameter tree and initial values (checkpoints load both ways), same samples and gradients."""
  fast, plain = DCGANGenerator(out_shape, width=8, fast_ops=fast_ops), PlainGenerator(out_shape, width=8)
  z_BZ = normal(0, (4, 16))
  key = jax.random.PRNGKey(1)
  fast_variables, variables = jax.jit(lambda z: (fast.init(key, z, train=False), plain.init(key, z, train=False)))(z_BZ)
  assert_trees_close(fast_variables, variables)

  @jax.jit
  def samples_stats_and_grads(variables, z_BZ):
    def of(module):
      def loss(params, z_BZ):
        # Batch norm averages its statistics over the data axis: a one-device vmap names it.
        x, stats = jax.vmap(
          lambda z: module.apply({**variables, "params": params}, z, train=True, mutable=["batch_stats"]),
          axis_name="data",
        )(z_BZ[None])
        return jnp.sum(x * jnp.cos(x)), (x, stats)

      grads, train_outputs = jax.grad(loss, (0, 1), has_aux=True)(variables["params"], z_BZ)
      return module.apply(variables, z_BZ, train=False), train_outputs, grads

    return of(fast), of(plain)

  got, want = samples_stats_and_grads(variables, z_BZ)
  assert_trees_close(got, want)  # eval samples; train samples and batch-norm statistics; param and z grads


def test_cpu_options_train_as_jax_defaults():
  """xla_cpu.COMPILER_OPTIONS with fast_ops give the DCGAN steps of JAX's defaults with flax's layers, to float
  rounding, and the options reach the compiled program: the defaults hand convolutions to YNNPACK."""
  config = config_lib.base_config()
  # Widths at which YNNPACK takes the convolutions when allowed to (it leaves the narrowest to XLA anyway).
  config.model.name, config.model.latent_dim, config.model.g_width, config.model.d_width = "dcgan", 8, 16, 16
  config.train.batch_size = 8
  info = DatasetInfo("fashion_like", "images", (28, 28, 1), 10, None)
  batches = fashion_like_batches(3)
  mesh, opts = parallel.make_mesh(1), Options.from_config(config)
  runs = {}
  for on in (True, False):
    gan = create_gan(config, info, fast_ops=on)
    state = jax.vmap(functools.partial(init_state, gan))(*stacked_seeds_and_hparams(member_configs(config)))
    options = xla_cpu.COMPILER_OPTIONS if on else {}
    step = sharded_train_step(gan, opts, mesh, options).lower(state, parallel.put_batch(batches[0], mesh)).compile()
    library_fusions = step.as_text().count("__ynn_fusion")
    metrics = []
    for batch in batches:
      state, m = step(state, parallel.put_batch(batch, mesh))
      metrics.append(m)
    runs[on] = (jax.device_get((state.g.params, state.d.params)), jax.device_get(metrics), library_fusions)
  assert 0 < runs[True][2] < runs[False][2]  # on: YNNPACK keeps dots and reductions only
  assert_trees_close(runs[True][1], runs[False][1], rel=1e-4)
  assert_trees_close(runs[True][0], runs[False][0], rel=1e-4)


def test_enable_is_explicit_and_falls_back_safely(monkeypatch):
  """Building a model or a step changes nothing process-wide; the threefry rule keeps JAX's own where its
  private names are missing or the JAX version is untested."""
  assert xla_cpu.enable() and xla_cpu.enabled()  # the CPU backend
  assert xla_cpu.compiler_options() == xla_cpu.COMPILER_OPTIONS
  monkeypatch.setattr(jax, "__version__", "0.99.0")
  with pytest.warns(UserWarning, match="keep JAX's CPU lowering"):
    assert not xla_cpu.unroll_threefry()
  monkeypatch.undo()
  from jax._src.random import threefry2x32

  monkeypatch.delattr(threefry2x32, "_threefry2x32_cpu_lowering_rule")
  assert not xla_cpu.unroll_threefry()
  monkeypatch.undo()
  monkeypatch.setattr(xla_cpu, "_enabled", False)
  assert xla_cpu.compiler_options() == {}


# glibc's bytes in mmapped blocks while a 48 MB malloc block is live, before and after keep_freed_memory.
MMAPPED_BYTES = """
import ctypes
from gan_jax.train import xla_cpu

class MallInfo2(ctypes.Structure):
  names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
  _fields_ = [(f, ctypes.c_size_t) for f in names.split()]

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes, libc.mallinfo2.restype = [ctypes.c_void_p], MallInfo2

def mmapped_bytes_holding(size):
  block = libc.malloc(size)
  try:
    return libc.mallinfo2().hblkhd
  finally:
    libc.free(block)

before = mmapped_bytes_holding(48 << 20)
xla_cpu.keep_freed_memory()
print(before, mmapped_bytes_holding(48 << 20))
"""


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc >= 2.33's mallinfo2")
def test_large_blocks_come_from_the_reused_heap():
  """XLA:CPU's per-call temporary buffers past 32 MB would each be a fresh mapping, faulted in at every step."""
  out = subprocess.run([sys.executable, "-c", MMAPPED_BYTES], capture_output=True, text=True, check=True).stdout
  before, after = map(int, out.split())
  assert before >= 48 << 20  # glibc's default: a block this large is its own mapping
  assert after < 48 << 20


def test_large_threefry_draws_unroll_and_keep_jax_s_bits():
  """xla_cpu.unroll_threefry: draws of THREEFRY_UNROLL_MIN blocks and more lose JAX's CPU while loop,
  smaller ones (key derivations) keep it, and every draw gives the bits of JAX's own rule."""
  from jax._src.interpreters import mlir
  from jax._src.random import threefry2x32

  large = xla_cpu.THREEFRY_UNROLL_MIN

  def draws(key):  # called anew per lowering: JAX caches a function's lowering
    ids_B = jnp.arange(8)  # dropout-like masks drawn per example: 8 x large / 8 blocks
    return (
      jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(key, i), 0.7, (large // 8,)))(ids_B),
      jax.random.normal(jax.random.fold_in(key, 1), (3, large)),
      jax.random.bits(key, (large - 1,)),
    )

  def lowered():
    return {
      "all": jax.jit(lambda k: draws(k)).lower(key),
      "large": jax.jit(lambda k: jax.random.normal(k, (3, large))).lower(key),
      "small": jax.jit(lambda k: jax.random.bits(k, (large - 1,))).lower(key),
    }

  key = jax.random.key(11)
  try:
    mlir.register_lowering(threefry2x32.threefry2x32_p, threefry2x32._threefry2x32_cpu_lowering_rule, platform="cpu")
    jax_rule = lowered()
    assert xla_cpu.unroll_threefry()
    ours = lowered()
  finally:
    xla_cpu.unroll_threefry()
  assert "while" in jax_rule["large"].as_text() and "while" not in ours["large"].as_text()
  assert "while" in ours["small"].as_text()
  for want, got in zip(jax_rule["all"].compile()(key), ours["all"].compile()(key), strict=True):
    np.testing.assert_array_equal(got, want)
