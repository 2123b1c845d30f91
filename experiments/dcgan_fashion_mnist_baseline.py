"""The first Fashion-MNIST default (experiments/dcgan_fashion_mnist.py until docs/studies.md's recipe replaced it).

  gan-jax train --config experiments/dcgan_fashion_mnist_baseline.py --workdir runs/dcgan_baseline

DCGAN-28 at width 64, Adam 2e-4 (0.5, 0.999), batch 64, EMA 0.995, 3000 steps, then a 10,000-sample
evaluation. Kept as the base of the four-objective study (experiments/study_dcgan_losses.py), its references
and the anomaly experiment, whose numbers were measured with it, and as the time budget the default must keep.
Final FID about 22 at step 3000 on the shipped Fashion-MNIST classifier's features (21.9 for seed 0); Inception
FID about 48 (48.5 for seed 0; legacy_tf, 10,000 samples against the 10,000 test images).
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
