"""A loss of your own, trained on ring8 by dotted path: this file is both the experiment and the loss.

  gan-jax train --config experiments/custom_loss_example.py --workdir runs/custom_loss

`loss.name = "custom_loss_example:softplus_margin"` imports this module (the experiment's folder is on
sys.path) and uses `softplus_margin`; it is checked once at start-up. Any function
`(real_logits, fake_logits) -> (d_loss, g_loss)` of scalars works the same way. The ring's modes appear in
samples/ as with the built-in losses.
"""

import jax
import jax.numpy as jnp

from gan_jax.config import base_config


def softplus_margin(real_logits, fake_logits):
  """A smooth hinge: softplus(1 - D(x)) + softplus(1 + D(G(z))) for D, softplus(1 - D(G(z))) for G."""
  d_loss = jnp.mean(jax.nn.softplus(1.0 - real_logits)) + jnp.mean(jax.nn.softplus(1.0 + fake_logits))
  g_loss = jnp.mean(jax.nn.softplus(1.0 - fake_logits))
  return d_loss, g_loss


def get_config(arg=None):
  c = base_config()
  c.data.name = "ring8"
  c.model.name = "mlp2d"
  c.model.latent_dim = 2
  c.model.g_width = c.model.d_width = 128
  c.loss.name = "custom_loss_example:softplus_margin"
  c.optim.g.lr = c.optim.d.lr = 1e-3
  c.train.ema_decay = 0.0
  c.train.steps = 2000
  c.train.batch_size = 256
  c.train.log_every = 100
  c.train.sample_every = 500
  return c
