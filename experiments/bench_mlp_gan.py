"""The tutorial MLP GAN on Fashion-MNIST: the small-matmul throughput benchmark of `make bench`.

  python -m benchmarks.bench --out BENCHMARKS.md            # this, bench_dcgan28.py and ring8.py
  gan-jax train --config experiments/bench_mlp_gan.py --workdir runs/bench_mlp_gan

G 100->256->512->1024->784 (LeakyReLU 0.2, tanh); D 784->1024->512->256->1 (LeakyReLU 0.2, dropout 0.3).
Non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 64, one D update per G update, no EMA (as the
reference implementations).

`make bench` times this step paired in one process with the PyTorch 2.13 eager version of it
(benchmarks/torch_reference.py), against a target of 2.5x PyTorch's images/s. The current numbers are in
BENCHMARKS.md; earlier runs, per CPU, and what each speed setting gave are in docs/speed.md.
"""

from gan_jax.config import base_config


def get_config(arg=None):
  c = base_config()
  c.data.name = "fashion_mnist"
  c.model.name = "mlp_gan"
  c.model.latent_dim = 100
  c.model.g_width = c.model.d_width = 256
  c.model.dropout = 0.3
  c.loss.name = "non_saturating"
  c.train.batch_size = 64
  c.train.d_steps = 1
  c.train.ema_decay = 0.0
  c.train.steps = 2000
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.checkpoint.every = 2000
  return c
