"""Losses x penalties on the 2D mode-collapse benchmarks, 5 seeds each (the shipped 2D study).

  gan-jax sweep --config experiments/study_2d.py:ring8 --workdir runs/study_ring8 --vectorize
  gan-jax sweep --config experiments/study_2d.py:grid25 --workdir runs/study_grid25 --vectorize
  gan-jax sweep --report runs/study_ring8 --metric modes

Each loss is paired with no penalty and with R1 (weight 0.1, i.e. gamma = 0.2); wasserstein is paired
with its gradient penalty instead, since without a Lipschitz constraint its critic is unbounded.
`--vectorize` trains the 5 seeds of a pair as one population. The networks and recipe are those of
experiments/mlp2d_baseline.py (3x128 MLPs, Adam 1e-3, batch 256); PacGAN's (4x400 G, maxout D, 400k
updates) are far larger, so the numbers are comparable in kind, not digit for digit. Results:
docs/studies.md.

Does a run of the non_saturating recipe reproduce? Its 10-seed references (`scripts/reference_study.py`):

  gan-jax train --config experiments/study_2d.py:ring8 --workdir runs/check --config.seed=7
  gan-jax curves runs/check --reference experiments/references/study_2d_ring8_non_saturating.json --out check.png

Expected: "reproduces the reference" and exit status 0 for about 95 seeds in 100 (the verdict's false-alarm
rate is --alpha, 5%).
"""

import os

from gan_jax import config as config_lib
from gan_jax.sweep import product, seeds, sweep, zip_

LOGISTIC = ["non_saturating", "minimax", "relativistic", "relativistic_average"]
MARGIN = ["hinge", "least_squares", "relativistic_hinge"]


def get_config(arg=None):
  c = config_lib.load(os.path.join(os.path.dirname(__file__), f"mlp2d_baseline.py:{arg or 'ring8'}"))
  c.penalty.weight = 0.1
  c.train.steps = 4000 if (arg or "ring8") == "ring8" else 6000
  c.train.log_every = 200
  c.train.sample_every = c.train.steps
  c.checkpoint.every = c.train.steps
  c.eval.every = 1000
  return c


def get_sweep(arg=None):
  losses = LOGISTIC + MARGIN
  pairs = zip_(sweep("loss.name", losses * 2), sweep("penalty.name", ["none"] * len(losses) + ["r1"] * len(losses)))
  pairs += zip_(sweep("loss.name", ["wasserstein"]), sweep("penalty.name", ["wgan_gp"]), sweep("penalty.weight", [1.0]))
  return product(pairs, seeds(5))
