"""The image model families at the data's resolution: 28, 32 and 64; others are one clear error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ring_config

from gan_jax import models
from gan_jax.data import DatasetInfo
from gan_jax.models import dcgan, resnet


def _apply(generator, discriminator):
  """G's samples and D's logits of fixed noise and fixed initial parameters, and the parameter count."""
  z_BZ = jax.random.normal(jax.random.PRNGKey(0), (3, 8))
  g_vars = generator.init(jax.random.PRNGKey(1), z_BZ, None, train=False)
  x_BHWC = generator.apply(g_vars, z_BZ, None, train=False)
  d_vars = discriminator.init(jax.random.PRNGKey(2), x_BHWC, None, train=False)
  logits_B = discriminator.apply(d_vars, x_BHWC, None, train=False)
  count = sum(a.size for a in jax.tree.leaves((g_vars["params"], d_vars["params"])))
  return x_BHWC, logits_B, count


# Computed with the models before 64x64 support (commit fcc6eba): 28 and 32 must stay the same networks.
GOLDEN = {
  ("dcgan", 28): (-0.23618380725383759, 1.1720513105392456, 13034),
  ("dcgan", 32): (0.29368460178375244, 0.6202261447906494, 27036),
  ("resnet", 28): (-1218.2430419921875, 1262.0767822265625, 3582),
  ("resnet", 32): (-1677.068115234375, 4874.37939453125, 2880),
}
GOLDEN_LOGITS = {
  ("resnet", 28): [11.014861106872559, 12.580953598022461, 10.927032470703125],
  ("resnet", 32): [27.56241226196289, 27.74747085571289, 27.855745315551758],
}
FAMILIES = {
  "dcgan": lambda shape: (dcgan.DCGANGenerator(shape, 8), dcgan.DCGANDiscriminator(8)),
  "resnet": lambda shape: (resnet.ResNetGenerator(shape, 4), resnet.ResNetDiscriminator(4)),
}


@pytest.mark.parametrize("family, side", sorted(GOLDEN))
def test_28_and_32_are_unchanged(family, side):
  shape = (side, side, 1 if side == 28 else 3)
  x_BHWC, logits_B, count = _apply(*FAMILIES[family](shape))
  total, magnitude, expected_count = GOLDEN[family, side]
  assert x_BHWC.shape == (3, *shape) and count == expected_count
  np.testing.assert_allclose([float(jnp.sum(x_BHWC)), float(jnp.sum(jnp.abs(x_BHWC)))], [total, magnitude], rtol=1e-4)
  if (family, side) in GOLDEN_LOGITS:
    np.testing.assert_allclose(np.asarray(logits_B), GOLDEN_LOGITS[family, side], rtol=1e-4)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_64x64(family):
  config = ring_config(**{"model.name": family, "model.g_width": 4, "model.d_width": 4, "model.latent_dim": 8})
  info = DatasetInfo("folder:pictures", "images", (64, 64, 3), 0, 100)
  generator, discriminator = models.get(config.model, info)
  x_BHWC, logits_B, _ = _apply(generator, discriminator)
  assert x_BHWC.shape == (3, 64, 64, 3) and logits_B.shape == (3,)
  assert float(jnp.max(jnp.abs(x_BHWC))) <= 1.0 and np.isfinite(np.asarray(logits_B)).all()


@pytest.mark.parametrize(
  "family, shape, message",
  [
    ("dcgan", (48, 48, 3), r"model.name='dcgan' supports square images of side \(28, 32, 64\).* is 48x48"),
    ("dcgan", (32, 64, 3), r"model.name='dcgan' supports square images .* is 32x64"),
    ("resnet", (48, 48, 3), "resnet needs square images of side 4 \\* 2\\^n or 7 \\* 2\\^n .*got height 48"),
  ],
)
def test_other_resolutions_are_one_clear_error(family, shape, message):
  config = ring_config(**{"model.name": family})
  with pytest.raises(ValueError, match=message) as e:
    models.get(config.model, DatasetInfo("folder:pictures", "images", shape, 0, 100))
  assert "\n" not in str(e.value)
