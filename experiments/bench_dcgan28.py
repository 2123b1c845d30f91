"""DCGAN-28 on Fashion-MNIST, the PyTorch DCGAN recipe: the throughput benchmark of `make bench`.

  python -m benchmarks.bench --out BENCHMARKS.md            # this, bench_mlp_gan.py and ring8.py
  gan-jax train --config experiments/bench_dcgan28.py --workdir runs/bench_dcgan28

G: z(100) -> Dense(7*7*128, no bias) -> BN -> ReLU -> ConvT(64, 4x4, s2) -> BN -> ReLU -> ConvT(1, 4x4, s2)
-> tanh; D: Conv(64, 4x4, s2) -> LeakyReLU(0.2) -> Conv(128, 4x4, s2, no bias) -> BN -> LeakyReLU(0.2)
-> Dense(1). Non-saturating loss, Adam 2e-4 (0.5, 0.999), N(0, 0.02) init, batch 64, one D update per G
update. No EMA: the reference implementations keep none, and the benchmark times their recipe.

`make bench` times this step paired in one process with the PyTorch 2.13 eager version of it
(benchmarks/torch_reference.py), against targets of 1x and 1.5x PyTorch's images/s. The current numbers are in
BENCHMARKS.md; earlier runs, per CPU, and what each speed setting gave are in docs/speed.md.
"""

from gan_jax.config import base_config


def get_config(arg=None):
  c = base_config()
  c.data.name = "fashion_mnist"
  c.model.name = "dcgan"
  c.model.latent_dim = 100
  c.model.g_width = c.model.d_width = 64
  c.loss.name = "non_saturating"
  c.train.batch_size = 64
  c.train.d_steps = 1
  c.train.ema_decay = 0.0
  c.train.steps = 1000
  c.train.log_every = 100
  c.train.sample_every = 500
  c.checkpoint.every = 1000
  return c
