"""The FID InceptionV3 in Flax: pool3 features (2048) and logits (1008), from user-converted weights.

The network is the TensorFlow graph of 2015-12-05 that TTUR's FID and the original Inception Score
use, in the PyTorch port of pytorch-fid (`fid_inception_v3`): torchvision's Inception3 with 1008
classes, no auxiliary head, and its FIDInceptionA/C/E blocks, whose pooling branches average over
unpadded pixels only (count_include_pad=False) and, in the last block (Mixed_7c), max-pool instead.
Module names follow the PyTorch state dict, so conversion is a layout change per tensor.

The Inception Score's class probabilities are the softmax of pool3 times the final layer's weights without
its bias (`is_logits`), as the original TF code computes them (improved-gan's inception_score.py multiplies
pool3 by the input of `softmax/logits/MatMul`); the module's own logits, as pytorch-fid's fc, add the bias.

Weights are not downloaded at run time. Convert the public pytorch-fid file once (needs torch to
read the .pth; the result loads with numpy alone):

  python -m gan_jax.eval.inception pt_inception-2015-12-05-6726825d.pth ~/inception_fid.npz

then pass it as `--inception-weights`, the config's eval.inception_weights, or $GAN_JAX_INCEPTION_WEIGHTS.

Input: [-1, 1] NHWC images of any size, 1 or 3 channels. Grayscale is repeated to 3 channels and the
image resized to 299x299 with jax.image.resize "bilinear", antialias=False: half-pixel centres, as
pytorch-fid's F.interpolate(mode="bilinear", align_corners=False), so the pixels match its pipeline. TTUR's
TF graph resizes inside with the legacy tf.image.resize_bilinear (no half-pixel offset, content shifted by
up to half a pixel) and maps [0, 255] with (x - 128) / 128 instead of x / 127.5 - 1; FIDs differ slightly
from that code's, as pytorch-fid's do.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gan_jax.eval import feature_net

ENV_VAR = "GAN_JAX_INCEPTION_WEIGHTS"
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
CONVERT_COMMAND = f"python -m gan_jax.eval.inception {PTH_NAME} OUT.npz"
INPUT_SIZE = 299
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
  """[-1, 1] NHWC images (1 or 3 channels, any size) -> (pool3_N2048, logits_N1008)."""

  @nn.compact
  def __call__(self, images_NHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
    n, _, _, c = images_NHWC.shape
    x = jax.image.resize(images_NHWC, (n, INPUT_SIZE, INPUT_SIZE, c), "bilinear", antialias=False)
    if c == 1:
      x = jnp.repeat(x, 3, axis=-1)
    x = BasicConv(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)
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
    return pool3_ND, nn.Dense(NUM_LOGITS, name="fc")(pool3_ND)


def is_logits(variables: Mapping, pool3_ND: jax.Array) -> jax.Array:
  """The Inception Score's logits_N1008: pool3 times the fc weights, no bias (see the module docstring)."""
  kernel_DC = variables["params"]["fc"]["kernel"]
  return jnp.matmul(pool3_ND, kernel_DC, precision=jax.lax.Precision.HIGHEST)


def _pool3_and_is_probs() -> Callable[[Mapping, jax.Array], tuple[jax.Array, jax.Array]]:
  """The FeatureNet apply_fn: (pool3_N2048, softmax of is_logits), jitted (the biased logits are never computed)."""
  module = InceptionV3()

  def apply(variables: Mapping, images_NHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
    pool3_ND, _ = module.apply(variables, images_NHWC)
    return pool3_ND, jax.nn.softmax(is_logits(variables, pool3_ND), axis=-1)

  return jax.jit(apply)


@functools.lru_cache(maxsize=1)
def variable_shapes() -> dict:
  """The {collection: {module path: shape}} tree of InceptionV3, traced once and never computed; read-only."""
  zeros = jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32)
  tree = jax.eval_shape(InceptionV3().init, jax.random.PRNGKey(0), zeros)
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
  """Flax variables {"params", "batch_stats"} from a pytorch-fid state dict (numpy arrays or tensors).

  Every expected key must be present with its exact shape and nothing else may be left over, so a
  torchvision Inception (1000 classes, AuxLogits) or a truncated file is refused, not half-loaded.
  """
  arrays = {k: np.asarray(v, np.float32) for k, v in state_dict.items() if not k.endswith(_IGNORED_SUFFIX)}
  flat_shapes = traverse_util.flatten_dict(variable_shapes())
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
      f"not a pytorch-fid FID Inception state dict: {len(missing)} missing keys {missing[:5]}, "
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


def convert_file(src: str | os.PathLike, dst: str | os.PathLike) -> str:
  """Converts a pytorch-fid weight file to a Flax npz at `dst`; returns the npz's sha256."""
  feature_net.save_variables(dst, convert_state_dict(read_state_dict(src)))
  return feature_net.file_sha256(dst)


def weights_path(path: str | os.PathLike | None = None) -> str:
  """`path`, else $GAN_JAX_INCEPTION_WEIGHTS; one error naming every way to provide the file."""
  path = os.fspath(path) if path else os.environ.get(ENV_VAR, "")
  if path and os.path.isfile(path):
    return path
  where = f"{path!r} does not exist" if path else "no weight file given"
  raise FileNotFoundError(
    f"Inception weights: {where}. Weights are never downloaded here: convert pytorch-fid's {PTH_NAME} once "
    f"with `{CONVERT_COMMAND}` and pass OUT.npz via --inception-weights, config eval.inception_weights, "
    f"or the {ENV_VAR} environment variable"
  )


def load_inception(path: str | os.PathLike | None = None, *, batch_size: int = 50) -> feature_net.FeatureNet:
  """The FID Inception feature net from a converted npz; its hash is recorded in every protocol."""
  path = weights_path(path)
  sha256 = feature_net.file_sha256(path)
  variables, _ = feature_net.load_variables(path)
  expected = traverse_util.flatten_dict(variable_shapes())
  got = {k: v.shape for k, v in traverse_util.flatten_dict(variables).items()}
  if got != expected:
    raise ValueError(f"{path!r} does not hold InceptionV3 variables; re-create it with `{CONVERT_COMMAND}`")
  return feature_net.FeatureNet(
    name="inception",
    weights_sha256=sha256,
    feature_dim=POOL3_DIM,
    num_classes=NUM_LOGITS,
    input_hw=None,
    input_channels=(1, 3),
    variables=variables,
    apply_fn=_pool3_and_is_probs(),
    batch_size=batch_size,
    description="any HxW, 1 or 3 channels in [-1, 1]; bilinear (half-pixel, no antialias) resize to 299x299, "
    "gray repeated to RGB; pool3 2048-d features; 1008-way softmax of pool3 x fc weights without the bias "
    "(the original Inception Score)",
  )


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description="Convert pytorch-fid's Inception weights to a Flax npz.")
  parser.add_argument("src", help=f"{PTH_NAME} (needs torch) or an npz of its state dict")
  parser.add_argument("dst", help="output .npz")
  args = parser.parse_args(argv)
  sha256 = convert_file(args.src, args.dst)
  print(f"wrote {args.dst} (sha256 {sha256}); use it with {ENV_VAR}={os.path.abspath(args.dst)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
