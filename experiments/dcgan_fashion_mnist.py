"""DCGAN on Fashion-MNIST: the default experiment (`make train`).

  gan-jax train --config experiments/dcgan_fashion_mnist.py --workdir runs/dcgan_fashion_mnist

3000 steps, then a 10,000-sample evaluation (wall times: docs/speed.md). Samples
(runs/dcgan_fashion_mnist/samples/, EMA generator) show rough shirts and sneakers at step 1000 and
recognisable shirts, trousers, dresses, sneakers and bags by step 2000. Final FID about 22 at step 3000 on
the shipped Fashion-MNIST classifier's features (21.9 for seed 0; the real-data floor of that protocol is 0.2).
"""

from gan_jax.config import base_config


def get_config(arg=None):
  c = base_config()
  c.data.name = "fashion_mnist"
  c.model.name = "dcgan"
  c.loss.name = "non_saturating"
  c.train.steps = 3000
  # A short run: an EMA over ~200 steps forgets the initial weights by step 1000 (0.995^1000 < 0.01).
  c.train.ema_decay = 0.995
  c.train.batch_size = 64
  c.train.log_every = 50
  c.train.sample_every = 250
  c.checkpoint.every = 500
  return c
