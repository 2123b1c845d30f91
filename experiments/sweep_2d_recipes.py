"""The search for the 2D recipes of experiments/ring8.py and experiments/grid25.py (docs/studies.md).

  gan-jax sweep --config experiments/sweep_2d_recipes.py:ring8 --workdir runs/recipes_ring8 --vectorize
  gan-jax sweep --config experiments/sweep_2d_recipes.py:ring8,2 --workdir runs/recipes_ring8_2 --vectorize
  gan-jax sweep --config experiments/sweep_2d_recipes.py:ring8,3 --workdir runs/recipes_ring8_3 --vectorize
  gan-jax sweep --config experiments/sweep_2d_recipes.py:grid25 --workdir runs/recipes_grid25 --vectorize
  gan-jax sweep --config experiments/sweep_2d_recipes.py:grid25,2 --workdir runs/recipes_grid25_2 --vectorize
  gan-jax sweep --config experiments/sweep_2d_recipes.py:grid25,3 --workdir runs/recipes_grid25_3 --vectorize
  gan-jax sweep --report runs/recipes_ring8_3 --metric high_quality

ARG is `DATA[,STAGE]`; each stage narrows the one before it. The starting point is the shipped study's recipe
(experiments/study_2d.py: 3x128 MLPs, Adam, batch 256, non-saturating loss), written out here so that the
sweep does not move when ring8.py does. High quality is limited by the points G leaves between modes, so the
levers swept are those that let G settle late in training: a cosine decay of both rates to 0, the rates, an
EMA of G's weights, then packing and R1 for coverage and longer schedules. Within a stage the points differ
only in float hyperparameters and seeds (or in one int, one population each), so `--vectorize` trains each
group as one population. Stage 3 of each is the shipped recipe.
"""

from gan_jax.config import base_config
from gan_jax.sweep import product, seeds, sweep, zip_

STEPS = {"ring8": 8000, "grid25": 12000}


def get_config(arg=None):
  c = base_config()
  c.data.name = (arg or "ring8").split(",")[0]
  c.model.name = "mlp2d"
  c.model.latent_dim = 2
  c.model.g_width = c.model.d_width = 128
  c.loss.name = "non_saturating"
  for o in (c.optim.g, c.optim.d):
    o.schedule = "cosine"
  c.train.steps = STEPS[c.data.name]
  c.train.batch_size = 256
  c.train.log_every = 500
  c.train.sample_every = c.train.steps
  c.checkpoint.every = c.train.steps
  c.eval.every = 2000
  return c


def get_sweep(arg=None):
  data, _, stage = (arg or "ring8").partition(",")
  rates = [1e-3, 3e-3]
  lrs = zip_(sweep("optim.g.lr", rates), sweep("optim.d.lr", rates))
  if data == "ring8" and not stage:
    return product(lrs, sweep("train.ema_decay", [0.0, 0.999]), seeds(5))
  if data == "ring8" and stage == "2":
    # Stage 2: stage 1's best rates on 10 seeds, unpacked and packed in pairs (PacGAN2).
    best = product(sweep("optim.g.lr", [3e-3]), sweep("optim.d.lr", [3e-3]), sweep("train.ema_decay", [0.0]))
    return product(sweep("model.pac", [1, 2]), best, seeds(10))
  if data == "ring8" and stage == "3":
    # Stage 3: packed pairs cover every mode; twice the steps, for the last points' quality.
    best = product(sweep("optim.g.lr", [3e-3]), sweep("optim.d.lr", [3e-3]), sweep("train.ema_decay", [0.0]))
    return product(sweep("model.pac", [2]), sweep("train.steps", [16000]), best, seeds(10))
  if not stage:
    # grid25: R1 (weight 0 is no penalty, so both share one population) spreads G over the 25 modes.
    r1 = product(sweep("penalty.name", ["r1"]), sweep("penalty.weight", [0.0, 0.1]))
    return product(lrs, r1, sweep("train.ema_decay", [0.999]), seeds(5))
  # Stage 2: stage 1's best point (rates 3e-3, R1 weight 0.1) on 10 seeds, trained longer.
  r1 = product(sweep("penalty.name", ["r1"]), sweep("penalty.weight", [0.1]))
  best = product(sweep("optim.g.lr", [3e-3]), sweep("optim.d.lr", [3e-3]), sweep("train.ema_decay", [0.999]))
  if stage == "2":
    return product(sweep("train.steps", [16000]), best, r1, seeds(10))
  if stage != "3":
    raise ValueError(f"sweep_2d_recipes.py:{arg}: expected ARG ring8 or grid25, optionally ,2 or ,3")
  # Stage 3: longer still, within the same time: R1 lazily, every 4th D update at 4x the weight (StyleGAN2).
  return product(sweep("train.steps", [24000]), sweep("penalty.every", [4]), best, r1, seeds(10))
