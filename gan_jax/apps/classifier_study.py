"""Training and scoring the Fashion-MNIST classifier on any labelled images; the `gan-jax augment` study.

The shipped feature network (scripts/train_classifier.py) and the augmentation study train the same network
(metrics.features.FashionClassifier) through the same loop, so the study measures that recipe on other data.

The study asks whether a class-conditional generator's images are worth training on. For each fraction f and
seed s it trains three classifiers and scores them on the test split: "real", on a class-stratified f-subset
of the train split; "real+generated", on that subset plus N generated labelled images; "generated", on the N
generated images alone (the Classification Accuracy Score of Ravuri & Vinyals 2019). The generated images
depend on s only, so the "generated" classifier is trained once per seed and reported under every fraction.
One seed fixes the subset, the generator's noise and the classifier's init and batch order, so the settings
of a seed differ only in their training data.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data, models
from gan_jax.eval import features
from gan_jax.progress import progress_bar
from gan_jax.train import run as run_lib

SETTINGS = ("real", "real+generated", "generated")
_SUBSET_STREAM = 0x5B5E7  # Keeps the subset's draws apart from the batch order's, which also come from the seed.


def training_schedule(num: int, *, epochs: int, batch_size: int, min_steps: int = 0) -> tuple[int, int, int]:
  """(batch size, epochs, steps per epoch) for `num` examples.

  Whole epochs, each dropping its last partial batch; a set smaller than a batch trains on all of it per step,
  and one that would take under `min_steps` steps gets more epochs, so small subsets are not left untrained.
  """
  if num < 1:
    raise ValueError(f"{num} training examples: expected at least 1")
  if epochs < 1 or batch_size < 1:
    raise ValueError(f"epochs={epochs}, batch_size={batch_size}: expected both at least 1")
  batch_size = min(batch_size, num)
  steps_per_epoch = num // batch_size
  return batch_size, max(epochs, -(-min_steps // steps_per_epoch)), steps_per_epoch


def train_classifier(
  images_NHWC: np.ndarray,
  labels_N: np.ndarray,
  *,
  epochs: int,
  seed: int,
  batch_size: int = 128,
  lr: float = 1e-3,
  num_classes: int = 10,
  min_steps: int = 0,
  log: Callable[[str], None] | None = None,
  progress: bool = True,
) -> dict:
  """Adam with a cosine-decayed rate; float32 variables, a function of the data, `seed` and the hyperparameters.

  The init and every epoch's order come from `seed` (see `training_schedule` for the epochs); `log`, if given,
  gets a line of mean loss and time per epoch; `progress` shows a bar of the steps.
  """
  if len(images_NHWC) != len(labels_N):
    raise ValueError(f"{len(images_NHWC)} images and {len(labels_N)} labels: expected one label per image")
  batch_size, epochs, steps_per_epoch = training_schedule(
    len(labels_N), epochs=epochs, batch_size=batch_size, min_steps=min_steps
  )
  module, tx, step = _training_step(num_classes, lr, epochs * steps_per_epoch)
  variables = module.init(jax.random.PRNGKey(seed), jnp.zeros((1, *images_NHWC.shape[1:])))
  opt_state = tx.init(variables)

  rng = np.random.default_rng(seed)
  bar = progress_bar(epochs * steps_per_epoch, "classifier", "step") if progress else None
  for epoch in range(epochs):
    start, order_N, losses = time.time(), rng.permutation(len(labels_N)), []
    for i in range(steps_per_epoch):
      batch_B = order_N[i * batch_size : (i + 1) * batch_size]
      variables, opt_state, loss = step(variables, opt_state, images_NHWC[batch_B], labels_N[batch_B])
      losses.append(loss)
    if bar is not None:
      jax.block_until_ready(loss)  # steps are dispatched ahead; counting them done when they are
      bar.update(steps_per_epoch)
    if log is not None:
      log(
        f"epoch {epoch + 1}/{epochs}: loss {float(np.mean(jax.device_get(losses))):.4f} ({time.time() - start:.0f} s)"
      )
  if bar is not None:
    bar.close()
  return variables


@functools.lru_cache(maxsize=16)
def _training_step(
  num_classes: int, lr: float, total_steps: int
) -> tuple[nn.Module, optax.GradientTransformation, Callable]:
  """(module, optimizer, jitted step), one per schedule, so classifiers trained alike share one compilation."""
  module = features.FashionClassifier(num_classes=num_classes)
  tx = optax.adam(optax.cosine_decay_schedule(lr, total_steps))

  @jax.jit
  def step(variables, opt_state, images_BHWC, labels_B):
    def loss_fn(v):
      _, logits_BC = module.apply(v, images_BHWC)
      return optax.softmax_cross_entropy_with_integer_labels(logits_BC, labels_B).mean()

    loss, grads = jax.value_and_grad(loss_fn)(variables)
    updates, opt_state = tx.update(grads, opt_state, variables)
    return optax.apply_updates(variables, updates), opt_state, loss

  return module, tx, step


@jax.jit
def _predict(variables: Any, images_BHWC: jax.Array) -> jax.Array:
  num_classes = variables["params"]["Dense_1"]["bias"].shape[-1]  # the output layer's width
  _, logits_BC = features.FashionClassifier(num_classes=num_classes).apply(variables, images_BHWC)
  return jnp.argmax(logits_BC, axis=-1)


def accuracy(variables: Any, images_NHWC: np.ndarray, labels_N: np.ndarray, batch_size: int = 500) -> float:
  """Top-1 accuracy of FashionClassifier variables, in batches (the last, shorter one compiles once more)."""
  if len(images_NHWC) != len(labels_N) or not len(labels_N):
    raise ValueError(f"{len(images_NHWC)} images and {len(labels_N)} labels: expected the same, nonzero number")
  correct = sum(
    int(np.sum(np.asarray(_predict(variables, images_NHWC[i : i + batch_size])) == labels_N[i : i + batch_size]))
    for i in range(0, len(labels_N), batch_size)
  )
  return correct / len(labels_N)


def stratified_subset(labels_N: np.ndarray, fraction: float, seed: int) -> np.ndarray:
  """Sorted indices of round(fraction * N) examples drawn at random by `seed`, each class's share its own.

  Each class gets fraction * its count, rounded down, and the classes with the largest remainders one more, so
  a 1% subset keeps the split's class balance instead of a random draw's.
  """
  if not 0 < fraction <= 1:
    raise ValueError(f"fraction {fraction}: expected 0 < fraction <= 1")
  classes_C, counts_C = np.unique(labels_N, return_counts=True)
  quota_C = fraction * counts_C
  take_C = np.floor(quota_C).astype(int)
  take_C[np.argsort(take_C - quota_C, kind="stable")[: round(fraction * len(labels_N)) - take_C.sum()]] += 1
  if (take_C == 0).any():
    empty = classes_C[take_C == 0].tolist()
    raise ValueError(f"fraction {fraction} of {len(labels_N)} examples leaves classes {empty} empty; expected more")
  rng = np.random.default_rng([seed, _SUBSET_STREAM])
  picks = [rng.permutation(np.flatnonzero(labels_N == c))[:k] for c, k in zip(classes_C, take_C, strict=True)]
  return np.sort(np.concatenate(picks))


def parse_fractions(spec: str) -> tuple[float, ...]:
  """`--fractions 0.01,0.1` as floats in (0, 1]."""
  try:
    fractions = tuple(float(s) for s in spec.split(","))
  except ValueError:
    raise ValueError(f"--fractions {spec!r}: expected comma-separated numbers like 0.01,0.1") from None
  bad = [f for f in fractions if not 0 < f <= 1]
  if bad:
    raise ValueError(f"--fractions {spec!r}: {bad} outside (0, 1]")
  if len(set(fractions)) < len(fractions):
    raise ValueError(f"--fractions {spec!r}: expected each fraction once")
  return fractions


def _summary(per_seed: list[float], train_images: int, steps: int) -> dict:
  std = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0
  return {
    "mean": round(float(np.mean(per_seed)), 4),
    "std": round(std, 4),
    "per_seed": [round(a, 4) for a in per_seed],
    "train_images": train_images,
    "steps": steps,
  }


def _check_study(run: run_lib.Run, generated: int, seeds: Sequence[int]) -> int:
  """The run's number of classes, once the study's inputs are checked (ValueError in one line)."""
  num_classes = models.generator_classes(run.gan.generator)
  if run.info.kind != "images":
    raise ValueError(f"augment trains an image classifier; data.name={run.info.name!r} is {run.info.kind}")
  if not num_classes:
    raise ValueError(
      "augment needs a class-conditional run, got model.conditional=False: train with --config.model.conditional=True"
    )
  if generated < 1:
    raise ValueError(f"--generated {generated}: expected at least 1 generated image")
  if not seeds:
    raise ValueError("no seeds: expected at least one")
  return num_classes


def augmentation_study(
  run: run_lib.Run,
  fractions: Sequence[float],
  seeds: Sequence[int],
  *,
  epochs: int,
  generated: int,
  min_steps: int = 0,
  batch_size: int = 128,
  lr: float = 1e-3,
  ema: bool = True,
  member: int = 0,
  log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
  """Test accuracies of a conditional run's study, and the sizes of the splits they come from.

  "accuracy" is {fraction: {setting: mean, std, per_seed, train_images, steps}}, fractions keyed as "%g"
  strings in the order given; see the module docstring for the settings.
  """
  num_classes = _check_study(run, generated, seeds)
  train_x, train_y = data.load_split(run.config, "train")
  test_x, test_y = data.load_split(run.config, "test")
  subsets = {f: {s: stratified_subset(train_y, f, s) for s in seeds} for f in fractions}  # bad fractions fail first
  fit = dict(epochs=epochs, batch_size=batch_size, lr=lr, num_classes=num_classes, min_steps=min_steps)
  # One bar over the study's classifiers (a "generated" one per seed, two per fraction and seed), none per classifier.
  bar = progress_bar(len(seeds) * (1 + 2 * len(fractions)), "augment study", "classifier")

  def score(x: np.ndarray, y: np.ndarray, s: int) -> float:
    acc = accuracy(train_classifier(x, y, seed=s, progress=False, **fit), test_x, test_y)
    bar.update(1)
    return acc

  per_seed: dict[tuple[float, str], list[float]] = {}
  with bar:
    for s in seeds:
      gen_y = run_lib.sample_labels("all", generated, num_classes)
      gen_x = run_lib.generate(run, generated, seed=s, ema=ema, member=member, labels_N=gen_y)
      cas = score(gen_x, gen_y, s)
      line = [f"generated {cas:.4f}"]
      for f in fractions:
        real_x, real_y = train_x[subsets[f][s]], train_y[subsets[f][s]]
        real = score(real_x, real_y, s)
        both = score(np.concatenate([real_x, gen_x]), np.concatenate([real_y, gen_y]), s)
        for setting, acc in zip(SETTINGS, (real, both, cas), strict=True):
          per_seed.setdefault((f, setting), []).append(acc)
        line.append(f"{f:g}: real {real:.4f}, real+generated {both:.4f}")
      if log is not None:
        log(f"seed {s}: " + "; ".join(line))
  table = {}
  for f in fractions:
    n = len(subsets[f][seeds[0]])
    sizes = {"real": n, "real+generated": n + generated, "generated": generated}
    table[f"{f:g}"] = {
      k: _summary(per_seed[(f, k)], sizes[k], _steps(sizes[k], epochs, batch_size, min_steps)) for k in SETTINGS
    }
  return {"accuracy": table, "train_split_images": len(train_y), "test_images": len(test_y)}


def _steps(num: int, epochs: int, batch_size: int, min_steps: int) -> int:
  _, epochs, steps_per_epoch = training_schedule(num, epochs=epochs, batch_size=batch_size, min_steps=min_steps)
  return epochs * steps_per_epoch
