"""gan_jax: functional, data-parallel GAN research in JAX/Flax.

Layers, each importing only from itself and the layers above it in this list:
  core        config, registry, losses, penalties, diffaugment, parallel, images, records (the top-level modules)
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
