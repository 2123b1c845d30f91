"""Lucic et al. 2018's wide search on Fashion-MNIST, drawn with the same ranges (experiments/lucic_fashion_mnist.py).

  gan-jax sweep --config experiments/sweep_lucic.py:ns_gan --workdir runs/lucic_search_ns_gan --parallel 1
  gan-jax sweep --report runs/lucic_search_ns_gan --metric fid

ARG is the model (ns_gan, mm_gan, lsgan, wgan, wgan_gp, dragan); 16 settings drawn with seed 123, each one
compare_gan v1 point: beta1 ~ U[0, 1], lr = 10^U[-5, -2] (both networks), disc_iters in {1, 5}, D batch norm
on or off; WGAN's clip 10^U[-3, 0], WGAN-GP's and DRAGAN's lambda 10^U[-1, 2]. Each point ranks on the shipped
classifier's FID at its best evaluation; the Inception FID of the winners comes after, as in the experiment file.

The points differ in beta1 and disc_iters, which a population does not carry per member, so each trains alone
(`--vectorize` groups none of them). One point costs what one run of the experiment file costs (docs/studies.md).
"""

import os

from gan_jax import config as config_lib
from gan_jax.sweep import choice, log_uniform, random_search, uniform

EXPERIMENT = os.path.join(os.path.dirname(__file__), "lucic_fashion_mnist.py")
SETTINGS, SEED = 16, 123
# The keys lucic_fashion_mnist.setting() writes, and the checkpoint period that follows the evaluations.
SET_BY_SETTING = (
  "optim.g.lr",
  "optim.d.lr",
  "optim.g.b1",
  "optim.d.b1",
  "train.d_steps",
  "train.steps",
  "eval.every",
  "checkpoint.every",
  "model.d_norm",
)


def get_config(arg=None):
  return config_lib.load(f"{EXPERIMENT}:{arg or 'ns_gan'}")


def get_sweep(arg=None):
  model = arg or "ns_gan"
  lucic = config_lib.import_file(EXPERIMENT)
  extra = {}
  if model == "wgan":
    extra["train.weight_clip"] = log_uniform(1e-3, 1.0)
  if model in ("wgan_gp", "dragan"):
    extra["penalty.weight"] = log_uniform(0.1, 100.0)
  draws = random_search(
    SETTINGS,
    SEED,
    lr=log_uniform(1e-5, 1e-2),
    beta1=uniform(0.0, 1.0),
    disc_iters=choice([1, 5]),
    d_batch_norm=choice([True, False]),
    **extra,
  )
  points = []
  for draw in draws:
    c = get_config(model)
    lucic.setting(c, draw.pop("lr"), draw.pop("beta1"), draw.pop("disc_iters"), draw.pop("d_batch_norm"))
    c.checkpoint.every = c.eval.every
    flat = config_lib.flatten(config_lib.to_dict(c))
    points.append({**{key: flat[key] for key in SET_BY_SETTING}, **draw})
  return points
