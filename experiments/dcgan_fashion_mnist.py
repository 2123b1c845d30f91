"""DCGAN on Fashion-MNIST: the default experiment (`make train`).

  gan-jax train --config experiments/dcgan_fashion_mnist.py --workdir runs/dcgan_fashion_mnist

The first default's DCGAN-28 (experiments/dcgan_fashion_mnist_baseline.py) at half the width, twice the
learning rate and with a slower EMA, for 7500 steps in less time than the first default's 3000: a width-32 step
costs about 0.37 of a width-64 one on this CPU, and the search of experiments/sweep_fashion_mnist.py found the
extra steps worth more than the width (docs/studies.md). Then a 10,000-sample evaluation of the EMA generator.
Expected: FID about 14 at step 7500 on the shipped Fashion-MNIST classifier's features (13.6 ± 0.3 over seeds
0-4; the first default: about 22), garments recognisable in runs/dcgan_fashion_mnist/samples/ from step 4000.
In the field's currency, after `make inception`: Inception FID about 29 (28.9 ± 1.0 over seeds 0-4: 30.1, 28.8,
27.3, 28.7, 29.5; legacy_tf, 10,000 samples against the 10,000 test images, as Lucic et al. 2018), the final
record's `inception_fid`.
"""

from gan_jax.config import base_config


def get_config(arg=None):
  c = base_config()
  c.data.name = "fashion_mnist"
  c.model.name = "dcgan"
  c.model.g_width = c.model.d_width = 32
  c.loss.name = "non_saturating"
  c.optim.g.lr = c.optim.d.lr = 4e-4
  c.train.steps = 7500
  c.train.ema_decay = 0.999  # averages ~1000 steps: forgets the initial weights by step 4600 (0.999^4600 < 0.01)
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.checkpoint.every = 2000
  return c
