"""The classic tutorial MLP GAN on Fashion-MNIST.

  gan-jax train --config experiments/mlp_gan_fashion_mnist.py --workdir runs/mlp_gan_fashion_mnist

G 100->256->512->1024->784 (LeakyReLU 0.2, tanh); D 784->1024->512->256->1 (LeakyReLU 0.2,
dropout 0.3). 5000 steps, then a 10,000-sample evaluation (wall times: docs/speed.md). Samples are
speckled but plainly garments: shirts, trousers, sneakers, boots, bags. FID about 43 at step 5000 on the
shipped Fashion-MNIST classifier's features (42.8 for seed 0; the real-data floor is 0.2).
"""

from gan_jax.config import base_config


def get_config(arg=None):
  c = base_config()
  c.data.name = "fashion_mnist"
  c.model.name = "mlp_gan"
  c.model.g_width = 256
  c.model.d_width = 256
  c.model.dropout = 0.3
  c.loss.name = "non_saturating"
  c.train.steps = 5000
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.checkpoint.every = 1000
  return c
