"""Loading a trained run from its workdir and drawing samples from it."""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import ml_collections
import numpy as np

from gan_jax import checkpoint, data, losses
from gan_jax.train.population import member_configs, stacked_seeds_and_hparams
from gan_jax.train.state import GAN, GANState, create_gan, init_state


@dataclasses.dataclass
class Run:
  config: ml_collections.ConfigDict
  info: data.DatasetInfo
  gan: GAN
  state: GANState


def load_run(workdir: str) -> Run:
  """The resolved config and the latest checkpointed state of a workdir."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path!r} does not exist; expected a workdir written by `gan-jax train`")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  info = data.get_info(config)
  # Sampling needs no loss, and a user's loss module need not be importable where samples are drawn.
  gan = create_gan(config, info, loss_fn=losses.non_saturating)
  like = jax.jit(jax.vmap(functools.partial(init_state, gan)))(*stacked_seeds_and_hparams(member_configs(config)))
  mngr = checkpoint.manager(workdir, config.checkpoint.keep)
  if mngr.latest_step() is None:
    raise FileNotFoundError(f"workdir {workdir!r} has no checkpoint yet; expected checkpoints/ from a train run")
  state = checkpoint.restore(mngr, like)
  mngr.close()
  return Run(config, info, gan, state)


def generate(
    run: Run, num: int, seed: int = 0, ema: bool = True, member: int = 0, batch_size: int = 500
) -> np.ndarray:
  """`num` samples in [-1, 1] (images NHWC or points N2) of one member, from noise seeded by `seed`."""
  K = run.config.population
  if not 0 <= member < K:
    raise ValueError(f"member={member}: expected 0..{K - 1} for this population of {K}")
  params, stats = jax.tree.map(
      lambda a: a[member], (run.state.ema_params if ema else run.state.g_params, run.state.g_stats)
  )
  fn = jax.jit(run.gan.generate)
  z_NZ = jax.random.normal(jax.random.PRNGKey(seed), (num, run.gan.latent_dim))
  out = [np.asarray(fn(params, stats, z_NZ[i : i + batch_size])) for i in range(0, num, batch_size)]
  return np.concatenate(out) if out else np.zeros((0, *run.gan.data_shape), np.float32)
