"""DCGAN on Fashion-MNIST: the default experiment (`make train`).

  gan-jax train --config experiments/dcgan_fashion_mnist.py --workdir runs/dcgan_fashion_mnist

Takes about MINUTES on a 2-core CPU. Samples (runs/dcgan_fashion_mnist/samples/, EMA generator)
show shirts, trousers, sneakers and bags from about step 1000; the final grid is sharp enough
to name every garment class.
"""

from gan_jax.config import base_config


def get_config(arg=None):
  c = base_config()
  c.data.name = "fashion_mnist"
  c.model.name = "dcgan"
  c.loss.name = "non_saturating"
  c.train.steps = 2000
  c.train.batch_size = 64
  c.train.log_every = 50
  c.train.sample_every = 250
  c.checkpoint.every = 500
  return c
