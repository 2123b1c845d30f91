"""The config, validated once into what the train step reads: `Options.from_config(config)`.

train.setup builds every run from it, and `gan-jax sweep` checks every point with it before any trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import ml_collections

from gan_jax import diffaugment, losses, penalties
from gan_jax.train import population, state

UPDATE_ORDERS = ("alternating", "simultaneous")
D_CONDITIONINGS = ("projection", "acgan")


@dataclasses.dataclass(frozen=True)
class Options:
  """The static choices of one member's step; the float hyperparameters live in the state (state.HPARAMS)."""

  d_steps: int  # D updates per step, each on its own real batch
  update_order: str  # "alternating": G against the updated D; "simultaneous": both from one D pass
  loss_fn: losses.LossFn
  penalty_fn: penalties.PenaltyFn | None
  penalty_at: str  # where penalty_fn evaluates D: penalties.SIDES
  penalty_every: int  # lazy regularisation: every k-th D update, weighted by k
  acgan_weight: float  # > 0: an ACGAN class head's cross-entropy joins both losses
  augment_policy: tuple[str, ...]  # DiffAugment ops before every D call
  weight_clip: float  # > 0: D's parameters clipped to [-c, c] after each update
  ema_start: int  # steps before which the EMA copies G

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, loss_fn: Callable | None = None) -> Options:
    """Checks every value the step depends on; `loss_fn` overrides loss.name. Raises ValueError in one line."""
    train, penalty = config.train, config.penalty
    _check_int("train.d_steps", train.d_steps, 1)
    _check_int("penalty.every", penalty.every, 1, "(1: every D update; k: lazy, every k-th)")
    _check_int("train.ema_start", train.ema_start, 0)
    if train.update_order not in UPDATE_ORDERS:
      raise ValueError(f"train.update_order={train.update_order!r}: expected one of {UPDATE_ORDERS}")
    if train.update_order == "simultaneous" and train.d_steps != 1:
      raise ValueError(
        f"train.update_order='simultaneous' takes one D update per step; got train.d_steps={train.d_steps}"
      )
    if config.model.d_conditioning not in D_CONDITIONINGS:
      raise ValueError(f"model.d_conditioning={config.model.d_conditioning!r}: expected one of {D_CONDITIONINGS}")
    acgan = config.model.conditional and config.model.d_conditioning == "acgan"
    weight = config.loss.acgan_weight
    if weight < 0 or (weight > 0) != acgan:
      raise ValueError(
        f"loss.acgan_weight={weight} with model.conditional={config.model.conditional}, "
        f"model.d_conditioning={config.model.d_conditioning!r}: the ACGAN class head needs all of "
        "model.conditional=True, model.d_conditioning='acgan' and loss.acgan_weight > 0 (1.0 in Odena et al. 2017)"
      )
    loss = losses.get(loss_fn or config.loss.name, label_smoothing=config.loss.label_smoothing)
    losses.check(loss)
    pen_options = {"one_sided": True} if penalty.one_sided else {}
    pen = None if penalty.name == "none" else penalties.get(penalty.name, **pen_options)
    population.member_configs(config)  # population.* must fit population.size
    state.optimizers(config)  # schedules by name
    return cls(
      d_steps=train.d_steps,
      update_order=train.update_order,
      loss_fn=loss,
      penalty_fn=pen,
      penalty_at=penalties.applies_at(penalty.name),
      penalty_every=penalty.every,
      acgan_weight=float(weight),
      augment_policy=diffaugment.parse_policy(config.augment.policy),
      weight_clip=float(train.weight_clip),
      ema_start=train.ema_start,
    )

  @property
  def acgan(self) -> bool:
    return self.acgan_weight > 0


def _check_int(key: str, value: object, low: int, why: str = "") -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < low:
    raise ValueError(f"{key}={value!r}: expected an integer >= {low}{' ' + why if why else ''}")
