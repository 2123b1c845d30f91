"""`build(config) -> Setup`: everything a run is made of, built once from the config.

The train loop, the tools that load a run, the benchmarks and the tests all build runs here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import ml_collections

from gan_jax import data, models, parallel
from gan_jax.eval import evaluate, metrics
from gan_jax.train import xla_cpu
from gan_jax.train.options import Options
from gan_jax.train.population import member_configs, stacked_seeds_and_hparams
from gan_jax.train.state import GAN, GANState, create_gan, init_state
from gan_jax.train.step import sharded_train_step


def best_metric(config: ml_collections.ConfigDict, kind: str) -> str:
  """eval.best_metric with "" resolved: fid for images, modes for points."""
  return config.eval.best_metric or ("modes" if kind == "points" else "fid")


@dataclasses.dataclass(frozen=True)
class Setup:
  config: ml_collections.ConfigDict
  info: data.DatasetInfo
  members: list[ml_collections.ConfigDict]  # each member's config, as its own run would have it
  options: Options
  gan: GAN
  mesh: jax.sharding.Mesh

  def init_state(self) -> GANState:
    """The members' fresh states, stacked on a leading axis and split over the mesh's members axis."""
    init = jax.vmap(functools.partial(init_state, self.gan))
    return jax.jit(init, out_shardings=parallel.member_split(self.mesh))(*stacked_seeds_and_hparams(self.members))

  def train_step(self) -> Callable:
    """The sharded, donating step (train.step.sharded_train_step), with train.xla_cpu's options when on."""
    return sharded_train_step(self.gan, self.options, self.mesh, xla_cpu.compiler_options())


def check_config(
  config: ml_collections.ConfigDict, loss_fn: Callable | None = None
) -> tuple[Options, data.DatasetInfo, GAN, list[ml_collections.ConfigDict]]:
  """Every check a run makes of its config before it starts (train.options, the members, the data, the
  evaluation, the model and its optimizers): what `build` and `gan-jax sweep` (for each point) ask. Returns what
  it built, so nothing is built twice. Prepares the dataset's metadata; writes nothing into a workdir."""
  options = Options.from_config(config, loss_fn)
  members = member_configs(config)  # population.* must fit population.size
  info = data.get_info(config)
  if options.augment_policy and info.kind != "images":
    raise ValueError(
      f"augment.policy={config.augment.policy!r} augments images; data.name={info.name!r} is {info.kind}"
    )
  metric = config.eval.best_metric
  if metric and metric not in metrics.best_metrics(info.kind):
    raise ValueError(
      f"eval.best_metric={metric!r}: expected one of {metrics.best_metrics(info.kind)} for {info.kind} data, or '' "
      "(fid for images, modes for points)"
    )
  if config.eval.every or config.eval.final:
    evaluate.check_evaluable(config, info)
  gan = create_gan(config, info, fast_ops=xla_cpu.enabled())
  if config.model.conditional and not models.generator_classes(gan.generator):
    raise ValueError(f"model.name={config.model.name!r} has no conditional generator; expected model.conditional=False")
  return options, info, gan, members


def build(config: ml_collections.ConfigDict, loss_fn: Callable | None = None) -> Setup:
  """Checks the config (check_config) and builds the networks, the optimizers and the device mesh; `loss_fn`
  overrides loss.name. Writes nothing."""
  options, info, gan, members = check_config(config, loss_fn)
  mesh = parallel.make_mesh(config.train.num_devices, config.population.size, config.train.member_devices)
  parallel.check_divisible(config.train.batch_size, mesh)
  models.check_pac(config.model, config.train.batch_size // mesh.shape[parallel.AXIS])
  return Setup(config, info, members, options, gan, mesh)
