"""The first default DCGAN on Fashion-MNIST under four objectives: loss curves and FID against steps.

  gan-jax sweep --config experiments/study_dcgan_losses.py --workdir runs/study_dcgan --parallel 1
  gan-jax curves runs/study_dcgan/* --out runs/study_dcgan/curves.png
  gan-jax curves runs/study_dcgan/loss.name=hinge* \
      --reference experiments/references/study_dcgan_hinge.json --out hinge.png   # exit 1: not reproduced

non_saturating, hinge and least_squares train with no penalty; wasserstein with WGAN-GP (weight 10, as in
Gulrajani et al. 2017) and, as its critic needs, layer norm instead of batch norm in D (a batch-normalised
critic breaks the per-example gradient penalty). Everything else is experiments/dcgan_fashion_mnist_baseline.py,
with an evaluation (10,000 samples, shipped classifier) every 500 steps. One seed per objective by default
(`:N` gives N seeds, trained as populations with --vectorize); WGAN-GP's runs take more than twice as long as the
others (its penalty differentiates D twice; wall times in docs/studies.md). FID at 2000 steps, seed 0 (and
over the reference's seeds, 3 unless said): non_saturating 35.6 (35.7 ± 0.7 over 5), hinge 36.7 (37.3 ± 1.5
over 5), least_squares 73.4 (79.1 ± 4.1), WGAN-GP 34.6 (34.9 ± 0.4).
The references hold 5 seeds over the first 1000 steps (evaluations at 500 and 1000), the part of the recipe a
2-core CPU affords for 5 seeds; a check compares the steps both cover. Results, curves and the references'
checks: docs/studies.md.
"""

import os

from gan_jax import config as config_lib
from gan_jax.sweep import product, seeds, sweep, zip_


def get_config(arg=None):
  c = config_lib.load(os.path.join(os.path.dirname(__file__), "dcgan_fashion_mnist_baseline.py"))
  c.train.steps = 2000
  c.eval.every = 500
  c.checkpoint.every = 500
  return c


def get_sweep(arg=None):
  objectives = zip_(
    sweep("loss.name", ["non_saturating", "hinge", "least_squares", "wasserstein"]),
    sweep("penalty.name", ["none", "none", "none", "wgan_gp"]),
    sweep("model.d_norm", ["batch", "batch", "batch", "layer"]),
  )
  return product(objectives, seeds(int(arg or 1)))
