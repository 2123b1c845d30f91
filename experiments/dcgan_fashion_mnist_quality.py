"""DCGAN on Fashion-MNIST for quality: the default's rates at width 64 for 20,000 steps, under an hour on this CPU.

  gan-jax train --config experiments/dcgan_fashion_mnist_quality.py --workdir runs/dcgan_quality

The first default's DCGAN-28 (experiments/dcgan_fashion_mnist_baseline.py, width 64) with the default's Adam
4e-4 and EMA 0.999, for 20,000 steps, evaluated on 10,000 samples every 4000 (the :quality stage of
experiments/sweep_fashion_mnist.py). Expected on the shipped Fashion-MNIST classifier's features, seed 0: FID
9.5 at step 8000, 6.9 at 16,000 and 6.0 at 20,000, in 47 minutes pinned to one core of this CPU (docs/studies.md
has the curve). Its EMA generator is the one the inpainting table of docs/studies.md uses. In the field's
currency, after `make inception`: Inception FID about 17 (17.2 for seed 0; legacy_tf, 10,000 samples against
the 10,000 test images, as Lucic et al. 2018), the final record's `inception_fid`.
"""

import os

from gan_jax import config as config_lib


def get_config(arg=None):
  c = config_lib.load(os.path.join(os.path.dirname(__file__), "dcgan_fashion_mnist_baseline.py"))
  c.optim.g.lr = c.optim.d.lr = 4e-4
  c.train.steps = 20000
  c.train.ema_decay = 0.999
  c.train.log_every = 100
  c.train.sample_every = 2000
  c.checkpoint.every = 2000
  c.eval.every = 4000
  return c
