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

* "inception": the FID InceptionV3 (see gan_jax/eval/inception.py), from weights the user converts.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from collections.abc import Callable

import flax.linen as nn
import jax

from gan_jax.eval import inception
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


# eval.feature_net (and `gan-jax eval --feature-net`) -> a loader taking the weights path ("" = its default).
FEATURE_NETS: Registry[Callable[[str], FeatureNet]] = Registry("feature net")


@FEATURE_NETS.register("fashion_mnist")
def _fashion(weights: str = "") -> FeatureNet:
  """The shipped classifier; it takes no other weights."""
  return _shipped_fashion_classifier()


@functools.lru_cache(maxsize=1)
def _shipped_fashion_classifier() -> FeatureNet:
  return load_fashion_classifier()


@FEATURE_NETS.register("inception")
def _inception(weights: str = "") -> FeatureNet:
  """`weights`, else $GAN_JAX_INCEPTION_WEIGHTS, resolved on every call so a changed variable takes effect."""
  return _inception_from(inception.weights_path(weights or None))


@functools.lru_cache(maxsize=2)
def _inception_from(path: str) -> FeatureNet:
  return inception.load_inception(path)


def get_feature_net(name: str, inception_weights: str = "") -> FeatureNet:
  """A feature network by name, loaded once per process (per weight file for "inception")."""
  return FEATURE_NETS.get(name)(inception_weights)
