"""Sweeps as code: an experiment's `get_sweep()` lists override dicts; `gan-jax sweep` runs them.

  # experiments/ring8.py, next to get_config()
  from gan_jax.sweep import product, seeds, sweep

  def get_sweep(arg=None):
    return product(sweep("loss.name", ["hinge", "non_saturating"]), seeds(5))

  gan-jax sweep --config experiments/ring8.py --workdir runs/ring8_losses --parallel 2
  gan-jax sweep --report runs/ring8_losses --metric modes

Each point trains in DIR/NAME (e.g. runs/ring8_losses/loss.name=hinge_seed=1); DIR/manifest.json
tracks them, so running the same command again retries only the points that are not done.

With --vectorize, points that differ only in the seed and the float hyperparameters (optim.g.lr,
optim.d.lr, penalty.weight, train.ema_decay) train together as one population run in DIR/GROUP
(gan_jax.sweep.vectorize); the manifest and the report still list every point.
"""

from __future__ import annotations

from gan_jax.sweep.space import (
  choice,
  log_uniform,
  name_points,
  point_name,
  product,
  random_search,
  seeds,
  sweep,
  uniform,
  zip_,
)

__all__ = [
  "choice",
  "log_uniform",
  "name_points",
  "point_name",
  "product",
  "random_search",
  "seeds",
  "sweep",
  "uniform",
  "zip_",
]
