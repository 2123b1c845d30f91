"""gan_jax: functional, data-parallel GAN research in JAX/Flax.

Layers, each importing only from itself and the layers above it in this list:
  core        config, registry, losses, penalties, diffaugment, parallel, images, records, files, provenance,
              progress (the top-level modules)
  data/       datasets and the input pipeline
  models/     generator / discriminator families; fast_ops (CPU-only custom gradients)
  eval/       metrics, feature networks, the evaluation protocol, curves against references
  train/      options, state, objective, step, setup, loop, populations, checkpoints, loading runs, xla_cpu
  apps/       latent search, inpainting, anomaly scores, the classifier-augmentation study
  sweep/      sweeps from experiment files, launched locally or on SLURM
  cli/        the `gan-jax` command

Shape letters. An array's name ends in its axes, one letter each (`logits_B`, `images_NHWC`, `x_UB...`):
  B  examples of a batch (in the train step: this device's share)
  N  samples or examples, any count outside the train step;  Q  a second such count, compared with N
  M  members of a population
  U  D updates in one train step (train.d_steps)
  R  restarts of a latent search
  L  paths of a latent interpolation;  S  steps along one path
  Z  latent dimensions
  H, W, C  image height, width, channels;  Y, X  a layer's output height and width
  F  a layer's features;  I, O  a dense layer's input and output features;  J  columns of an unfolded image
  D  features of a feature network (FID, KID, precision / recall statistics)
  K  classes (a 2D mixture's modes are its classes)
  P  pixels of a flattened image;  T  templates (images searched by nearest neighbour)
Digits are fixed sizes (`points_N2`); a lower-case letter is a slice of the capital's axis (`chunk_bHWC`).
"""

import importlib

# The public API, imported on first use: `import gan_jax` (and so `gan-jax --help`) stays free of JAX.
_LAZY = {"load_run": "gan_jax.train.run", "train_and_evaluate": "gan_jax.train.loop"}
__all__ = ["__version__", "load_run", "train_and_evaluate"]


def __getattr__(name: str):
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  if name == "__version__":
    from gan_jax.provenance import package_version  # stdlib only: stays light

    globals()["__version__"] = version = package_version()
    return version
  raise AttributeError(f"module 'gan_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))
