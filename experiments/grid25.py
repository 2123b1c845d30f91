"""A 5x5 grid of Gaussians (means {-4,-2,0,2,4}^2, sigma 0.05): the grid mode-collapse benchmark.

  gan-jax train --config experiments/grid25.py --workdir runs/grid25

Same networks and recipe as experiments/ring8.py, for 6000 steps. The final scatter plot has most modes as
tight clusters joined by thin trails of low-quality points: seed 0 ends with about 22 of 25 modes, 61%
high-quality, reverse KL 0.20; over 5 seeds, docs/studies.md.
"""

import os

from gan_jax import config as config_lib


def get_config(arg=None):
  c = config_lib.load(os.path.join(os.path.dirname(__file__), "ring8.py:grid25"))
  c.train.steps = 6000
  return c
