"""Frozen feature networks for FID, KID, IS and the k-NN metrics, with their weights pinned by hash.

Two networks map [-1, 1] NHWC images to (features, class probabilities):

* "fashion_mnist": a small CNN classifier trained on Fashion-MNIST, shipped with the package. Its
  128-d penultimate layer gives features and its softmax the Inception-Score predictions. Inception
  features of 28x28 grayscale images upsampled to 299x299 describe ImageNet textures that Fashion-MNIST
  does not have, and cost ~6 GFLOPs an image; this network is trained on the data itself and scores
  10,000 images in seconds on a CPU. Its numbers are comparable only with other numbers of this network
  (the protocol records its weights hash), not with published Inception FIDs.

  Trained by `.venv/bin/python scripts/train_classifier.py` (seed 0, 5 epochs of Adam on the 60,000
  training images; a retrain writes a byte-identical file); the file's meta/test_accuracy is its accuracy
  on the 10,000 test images.

* "inception": the FID InceptionV3 (gan_jax/eval/inception.py) under one of the published pixel pipelines
  (gan_jax/eval/fid_protocols.py), from the weights `make inception` converts into the user cache. Its FIDs
  are the ones papers report.

`auto` (the config's default) picks the classifier for Fashion-MNIST and the Inception for any other images.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from collections.abc import Callable

import flax.linen as nn
import jax

from gan_jax.eval import fid_protocols, inception
from gan_jax.eval.feature_net import FeatureNet, check_sha256, jit_with_probs, load_variables
from gan_jax.registry import Registry

FASHION_WEIGHTS_FILE = "fashion_mnist_classifier.npz"
FASHION_WEIGHTS_SHA256 = "3e701624f6849b3c1cc5432fd2c36f43de5fa0bb1da7dde056f609373b58916c"
FASHION_IMAGE_SHAPE = (28, 28, 1)


class FashionClassifier(nn.Module):
  """Three 3x3 conv + max-pool stages (28 -> 14 -> 7 -> 3) and a 128-unit hidden layer.

  The third stage shrinks the flattened map to 3x3x64, so the whole net is ~131k parameters and its
  weight file stays small; returns (post-ReLU features, logits).
  """

  num_classes: int = 10
  feature_dim: int = 128

  @nn.compact
  def __call__(self, images_NHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = images_NHWC
    for width in (32, 64, 64):
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    feats_ND = nn.relu(nn.Dense(self.feature_dim)(x.reshape(x.shape[0], -1)))
    return feats_ND, nn.Dense(self.num_classes)(feats_ND)


def fashion_weights_path() -> str:
  return os.fspath(importlib.resources.files("gan_jax") / "assets" / FASHION_WEIGHTS_FILE)


def load_fashion_classifier(
  path: str | os.PathLike | None = None, *, expected_sha256: str = FASHION_WEIGHTS_SHA256, batch_size: int = 500
) -> FeatureNet:
  """The shipped Fashion-MNIST classifier (or a copy at `path`), refused unless its sha256 matches."""
  path = fashion_weights_path() if path is None else path
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Fashion-MNIST classifier weights {os.fspath(path)!r} not found; reinstall gan_jax")
  check_sha256(path, expected_sha256, "Fashion-MNIST classifier weights")
  variables, _ = load_variables(path)
  module = FashionClassifier()
  return FeatureNet(
    name="fashion_mnist",
    weights_sha256=expected_sha256,
    feature_dim=module.feature_dim,
    num_classes=module.num_classes,
    input_hw=FASHION_IMAGE_SHAPE[:2],
    input_channels=FASHION_IMAGE_SHAPE[2:],
    variables=variables,
    apply_fn=jit_with_probs(module),
    batch_size=batch_size,
    description="28x28x1 in [-1, 1], no resizing; 128-d penultimate features, 10-way softmax",
  )


# eval.feature_net (and `gan-jax eval --feature-net`) -> a loader taking (weights path or "", FID protocol).
FEATURE_NETS: Registry[Callable[[str, str], FeatureNet]] = Registry("feature net")
AUTO = "auto"


@FEATURE_NETS.register("fashion_mnist")
def _fashion(weights: str = "", protocol: str = "") -> FeatureNet:
  """The shipped classifier; it takes no other weights, and its one protocol is uint8 pixels at 28x28."""
  return _shipped_fashion_classifier()


@functools.lru_cache(maxsize=1)
def _shipped_fashion_classifier() -> FeatureNet:
  return load_fashion_classifier()


@FEATURE_NETS.register("inception")
def _inception(weights: str = "", protocol: str = fid_protocols.DEFAULT) -> FeatureNet:
  """`weights`, else $GAN_JAX_INCEPTION_WEIGHTS, else the cache of `make inception`, resolved on every call."""
  path = inception.weights_path(weights or None)
  return _inception_from(path, os.path.getmtime(path), protocol or fid_protocols.DEFAULT)


@functools.lru_cache(maxsize=4)
def _inception_from(path: str, mtime: float, protocol: str) -> FeatureNet:
  return inception.load_inception(path, protocol=protocol)


def resolve_feature_net(name: str, dataset: str, image_shape: tuple[int, ...]) -> str:
  """`auto`: the shipped classifier for Fashion-MNIST's 28x28x1 images, the FID Inception for anything else."""
  if name != AUTO:
    return name
  return "fashion_mnist" if dataset == "fashion_mnist" and image_shape == FASHION_IMAGE_SHAPE else "inception"


def get_feature_net(name: str, inception_weights: str = "", protocol: str = fid_protocols.DEFAULT) -> FeatureNet:
  """A feature network by name, loaded once per process (per weight file and protocol for "inception")."""
  return FEATURE_NETS.get(name)(inception_weights, protocol)
