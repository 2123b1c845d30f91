"""The search for the Fashion-MNIST default and quality recipes (docs/studies.md).

  gan-jax sweep --config experiments/sweep_fashion_mnist.py --workdir runs/sweep_fm --parallel 1
  gan-jax sweep --config experiments/sweep_fashion_mnist.py:seeds --workdir runs/sweep_fm_seeds --parallel 1
  gan-jax sweep --config experiments/sweep_fashion_mnist.py:levers --workdir runs/sweep_fm_levers --parallel 1
  gan-jax sweep --config experiments/sweep_fashion_mnist.py:confirm --workdir runs/sweep_fm_confirm --parallel 1
  gan-jax sweep --report runs/sweep_fm --metric fid

ARG is a stage. The base is the first default (experiments/dcgan_fashion_mnist_baseline.py: width 64, Adam
2e-4, 3000 steps, EMA 0.995), so that the search does not move when the defaults do. Every point evaluates
10,000 samples of its EMA generator every `eval.every` steps.
- "" (budget): width against steps in about the first default's wall time. A width-32 step costs about a third
  of a width-64 one on this CPU (docs/speed.md): width 32 for 12,000 steps at Adam 2e-4, then for 8000 steps
  at 4e-4, constant or decayed linearly to 0. Each longer run takes the slower EMA its length allows.
- seeds: the chosen point at 7500 steps (the first default's time with a margin), experiments/dcgan_fashion_mnist.py,
  on seeds 0-4.
- levers: one lever at a time on that recipe over a short proxy (4000 steps): two-timescale rates (Heusel et
  al. 2017), hinge loss with a spectrally normalised D (Miyato et al. 2018), DiffAugment translation (Zhao et
  al. 2020), simultaneous updates, the EMA decay and start, Adam's beta1 = 0 (as SNGAN), batch 128 (twice
  the samples per step) and an R1 penalty (Mescheder et al. 2018; weight 0.1, i.e. gamma 0.2).
- confirm: the two levers that won at 4000 steps, EMA 0.998 and R1 (lazily, every 16 D steps, to keep the
  step's cost), at the default's 7500 steps on seed 0.
- quality: width 64 at Adam 4e-4 for 20,000 steps, experiments/dcgan_fashion_mnist_quality.py.
"""

import os

from gan_jax import config as config_lib
from gan_jax.sweep import product, seeds, sweep, zip_


def get_config(arg=None):
  c = config_lib.load(os.path.join(os.path.dirname(__file__), "dcgan_fashion_mnist_baseline.py"))
  c.train.log_every = 100
  c.train.sample_every = 2000
  c.checkpoint.every = 2000
  c.eval.every = 2000
  c.eval.final_inception = False  # a search ranks on the classifier; Inception FIDs of the winners come after
  return c


def _width(w: int) -> list[dict]:
  return zip_(sweep("model.g_width", [w]), sweep("model.d_width", [w]))


def _rates(*lrs: float) -> list[dict]:
  return zip_(sweep("optim.g.lr", list(lrs)), sweep("optim.d.lr", list(lrs)))


def recipe(steps: int = 7500) -> list[dict]:
  """experiments/dcgan_fashion_mnist.py's changes to the first default."""
  return product(_width(32), _rates(4e-4), sweep("train.steps", [steps]), sweep("train.ema_decay", [0.999]))


def get_sweep(arg=None):
  if not arg:
    slow = product(_width(32), _rates(2e-4), sweep("train.steps", [12000]), sweep("train.ema_decay", [0.999]))
    schedule = ["constant", "linear"]
    fast = product(recipe(8000), zip_(sweep("optim.g.schedule", schedule), sweep("optim.d.schedule", schedule)))
    return product(product(slow, sweep("eval.every", [3000])) + fast, seeds(1))
  if arg == "seeds":
    return product(recipe(), seeds(5))
  if arg == "quality":
    long = product(_width(64), _rates(4e-4), sweep("train.steps", [20000]), sweep("train.ema_decay", [0.999]))
    return product(long, sweep("eval.every", [4000]), seeds(1))
  if arg == "confirm":  # the levers' two best at the default's full length, against seed 0 of the seeds stage
    # R1 every step more than doubled the step's cost; lazily, every 16 D steps at 16x the weight (StyleGAN2).
    lazy_r1 = {"penalty.name": "r1", "penalty.weight": 0.1, "penalty.every": 16}
    confirm = [{"train.ema_decay": 0.998}, lazy_r1]
    return product([{**recipe()[0], **lever} for lever in confirm], sweep("eval.every", [2500]), seeds(1))
  if arg != "levers":
    raise ValueError(f"sweep_fashion_mnist.py:{arg}: expected ARG '' (budget), seeds, levers, confirm or quality")
  levers = [
    {},
    {"optim.g.lr": 2e-4, "optim.d.lr": 8e-4},
    {"loss.name": "hinge", "model.d_norm": "spectral"},
    {"augment.policy": "translation"},
    {"train.update_order": "simultaneous"},
    {"train.ema_decay": 0.998},
    {"train.ema_start": 1000},
    {"optim.g.b1": 0.0, "optim.d.b1": 0.0},
    {"train.batch_size": 128},
    {"penalty.name": "r1", "penalty.weight": 0.1},
  ]
  return product([{**recipe(4000)[0], **lever} for lever in levers], seeds(1))
