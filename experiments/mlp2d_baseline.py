"""The first 2D recipe (experiments/ring8.py until the recipes of docs/studies.md replaced it): one seed, 4000 steps.

  gan-jax train --config experiments/mlp2d_baseline.py --workdir runs/ring8_baseline
  gan-jax train --config experiments/mlp2d_baseline.py:grid25 ...   # same recipe on the 5x5 grid

G and D are 3x128 MLPs (ReLU / LeakyReLU), z in R^2, Adam 1e-3 (beta 0.5, 0.999), batch 256, no EMA. Kept as
the base of the losses x penalties study (experiments/study_2d.py), its references and the speed benchmarks,
whose numbers were measured with it. Seed 0 ends with all 8 modes, about 93% of the points high-quality and
reverse KL 0.002; over 10 seeds at 4000 steps, 86% +- 5% high-quality (docs/studies.md).
"""

from gan_jax.config import base_config


def get_config(arg=None):
  c = base_config()
  c.data.name = arg or "ring8"
  c.model.name = "mlp2d"
  c.model.latent_dim = 2
  c.model.g_width = 128
  c.model.d_width = 128
  c.loss.name = "non_saturating"
  c.optim.g.lr = c.optim.d.lr = 1e-3
  c.train.ema_decay = 0.0
  c.train.steps = 4000
  c.train.batch_size = 256
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.checkpoint.every = 1000
  return c
