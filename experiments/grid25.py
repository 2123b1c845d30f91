"""A 5x5 grid of Gaussians (means {-4,-2,0,2,4}^2, sigma 0.05): the grid mode-collapse benchmark.

  gan-jax train --config experiments/grid25.py --workdir runs/grid25

Same networks and recipe as experiments/ring8.py. Takes about MINUTES on a 2-core CPU.
"""

import os

from gan_jax import config as config_lib


def get_config(arg=None):
  c = config_lib.load(os.path.join(os.path.dirname(__file__), "ring8.py:grid25"))
  c.train.steps = 6000
  return c
