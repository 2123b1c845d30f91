"""PacGAN's Table 1 rows GAN, PacGAN2 (ring) and PacGAN4 (grid) with PacGAN's networks (Lin et al. 2018).

  gan-jax train --config experiments/pacgan_2d.py:ring8 --workdir runs/pacgan_ring8
  gan-jax train --config experiments/pacgan_2d.py:ring8,2 --workdir runs/pacgan_ring8_2
  gan-jax train --config experiments/pacgan_2d.py:grid25 --workdir runs/pacgan_grid25
  gan-jax train --config experiments/pacgan_2d.py:grid25,4 --workdir runs/pacgan_grid25_4

ARG is `DATA[,PAC]`. Networks (model.name = pacgan_mlp): G 4 x [Dense 400, BatchNorm, ReLU] -> Dense 2 on a
2D standard normal z; D 3 x maxout(200 units, 5 pieces) -> Dense 1, scoring PAC samples joined. Adam 1e-4
(beta1 0.8), non-saturating loss, no EMA, and 100 inputs per D batch: PAC x 100 samples. The 10 trials of
the paper's table are one population of 10 seeds. The paper trains 400k updates; a 2-core CPU affords a few
thousand in 15 minutes, so train.steps is that budget's and eval.every records the curve on the way
(docs/studies.md, with the table).
"""

from gan_jax.config import base_config


def get_config(arg=None):
  data, _, pac = (arg or "ring8").partition(",")
  c = base_config()
  c.data.name = data
  c.model.name = "pacgan_mlp"
  c.model.latent_dim = 2
  c.model.g_width = 400
  c.model.d_width = 200
  c.model.pac = int(pac or 1)
  c.loss.name = "non_saturating"
  for o in (c.optim.g, c.optim.d):
    o.lr = 1e-4
    o.b1 = 0.8
  c.train.ema_decay = 0.0
  c.train.batch_size = 100 * c.model.pac
  c.train.steps = 5000
  c.train.log_every = 500
  c.train.sample_every = 5000
  c.checkpoint.every = 5000
  c.eval.every = 1000
  c.population.size = 10
  return c
