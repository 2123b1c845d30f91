"""Lucic et al. 2018 ("Are GANs Created Equal?", Table 2, Fashion-MNIST) under compare_gan v1's protocol.

  gan-jax train --config experiments/lucic_fashion_mnist.py:ns_gan --workdir runs/lucic_ns_gan

ARG is a model at its default settings (sample 0 of compare_gan's search): ns_gan, mm_gan, lsgan, wgan, wgan_gp,
dragan. The InfoGAN-style pair (models/infogan.py) on the 60,000 training images, batch 64, z ~ U(-1, 1) of 64
dimensions, Adam with one lr and beta1 for both networks (beta2 0.999), no EMA (samples come from G in inference
mode), 15,625 D updates with G updated every `disc_iters` of them. FID is scored as compare_gan scores it at 4
points and the end; here the shipped classifier scores those 5 (seconds each) and picks the best checkpoint,
whose Inception FID (legacy_tf, 10,000 samples against the 10,000 test images) is the run's number:

  gan-jax eval --workdir runs/lucic_ns_gan --best --feature-net inception --convention ttur

Published (Lucic et al. Table 2, best of 100 settings, 50 re-runs): NS GAN 26.5 ± 1.6, MM GAN 29.6 ± 1.6, LSGAN
30.7 ± 2.2, WGAN 21.5 ± 1.6, WGAN GP 24.5 ± 2.1, DRAGAN 27.7 ± 1.2; at these default settings their Figure 4
puts the best model near 32. What gan_jax measured, and every deviation, is in docs/studies.md ("Lucic et al.").

Deviations that are structural: a gan_jax step is `disc_iters` D updates then one G update, so train.steps counts
G updates (15,625 / disc_iters) and evaluations fall within disc_iters - 1 D updates of compare_gan's; compare_gan
also updates G once more at its first step.
"""

from gan_jax.config import base_config

D_UPDATES = 15_625  # compare_gan v1's training_steps for Fashion-MNIST: each one D update
EVALUATIONS = 4  # at D updates 3906, 7812, 11718, 15624 (every D_UPDATES // 4), and at the end

# model -> (loss.name, lr, beta1, disc_iters, D batch norm, penalty.name, penalty.weight, weight clip)
DEFAULTS = {
  "ns_gan": ("non_saturating", 5e-5, 0.0, 1, True, "none", 0.0, 0.0),
  "mm_gan": ("minimax", 5e-5, 0.0, 1, True, "none", 0.0, 0.0),
  "lsgan": ("least_squares_sigmoid", 2e-4, 0.5, 1, True, "none", 0.0, 0.0),
  "wgan": ("wasserstein", 5e-5, 0.5, 5, True, "none", 0.0, 0.01),
  "wgan_gp": ("wasserstein", 1e-4, 0.5, 5, False, "wgan_gp", 10.0, 0.0),
  "dragan": ("non_saturating", 1e-4, 0.5, 1, True, "dragan", 10.0, 0.0),
}


def setting(c, lr: float, beta1: float, disc_iters: int, d_batch_norm: bool) -> None:
  """One point of Lucic et al.'s search space on config `c` (also used by experiments/sweep_lucic.py)."""
  c.optim.g.lr = c.optim.d.lr = lr
  c.optim.g.b1 = c.optim.d.b1 = beta1
  c.train.d_steps = disc_iters
  c.train.steps = D_UPDATES // disc_iters
  c.eval.every = D_UPDATES // EVALUATIONS // disc_iters
  c.model.d_norm = "batch" if d_batch_norm else "none"


def get_config(arg=None):
  model = arg or "ns_gan"
  if model not in DEFAULTS:
    raise ValueError(f"lucic_fashion_mnist.py:{model}: expected one of {tuple(DEFAULTS)}")
  loss, lr, beta1, disc_iters, d_bn, penalty, weight, clip = DEFAULTS[model]
  c = base_config()
  c.data.name = "fashion_mnist"
  c.model.name = "infogan"
  c.model.latent_dim = 64
  c.model.latent_dist = "uniform"
  c.loss.name = loss
  c.penalty.name = penalty
  c.penalty.weight = weight
  c.penalty.form = "compare_gan" if penalty != "none" else "paper"
  c.train.weight_clip = clip
  c.train.g_fresh_noise = model == "wgan_gp"  # compare_gan's WGAN-GP resamples z before G's update
  c.train.batch_size = 64
  c.train.ema_decay = 0.0  # compare_gan samples from G itself
  c.optim.g.b2 = c.optim.d.b2 = 0.999
  setting(c, lr, beta1, disc_iters, d_bn)
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.checkpoint.every = c.eval.every
  c.checkpoint.keep_best = 1
  c.eval.feature_net = "fashion_mnist"  # the curve and the best checkpoint; the Inception scores that one
  c.eval.final_inception = False
  return c
