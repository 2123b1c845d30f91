"""The tutorial MLP GAN on Fashion-MNIST: the small-matmul throughput benchmark of `make bench`.

  python -m gan_jax.bench --out BENCHMARKS.md            # this, bench_dcgan28.py and ring8.py
  gan-jax train --config experiments/bench_mlp_gan.py --workdir runs/bench_mlp_gan

G 100->256->512->1024->784 (LeakyReLU 0.2, tanh); D 784->1024->512->256->1 (LeakyReLU 0.2, dropout 0.3).
Non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 64, one D update per G update, no EMA (as the
reference implementations).

Measured by `make bench` (BENCHMARKS.md), paired in one process with the PyTorch 2.13 eager version of this
step (gan_jax/bench_torch.py); target 2.5x:
- 2-core Intel Xeon with AVX-512 and AMX-BF16, 2026-12-05 08:49: 4039 against 2010 images/s, so 2.01x. Its
  own row: 17.2 ms per step, 3718 images/s, 50% of the f32 matmul ceiling; compile 3.8 s cold, 1.3 s cached.
- 2-core AMD EPYC with AVX-512, 2026-12-02 17:13: 3558 against 1818 images/s, so 1.91x. Its own row: 19.6 ms,
  3268 images/s, 51% of the f32 matmul ceiling; compile 4.3 s cold, 1.3 s cached.
- 2-core Intel Xeon with AVX-512 and AMX-BF16, 2026-12-02 10:41: 6108 against 3638 images/s, so 1.65x. Its
  own row: 11.6 ms per step, 5500 images/s, 47% of the f32 matmul ceiling; compile 2.6 s cold, 0.8 s cached.
- 2-core AMD EPYC with AVX2, 2026-12-02 05:26: 2534 against 1299 images/s, so 1.90x. Its own row: 35.5 ms
  per step (repeats 24.0-37.8 ms), 45% of the f32 matmul ceiling; compile 4.9 s cold, 1.7 s cached.
- 2-core AMD EPYC with AVX-512, 2026-12-02 01:33: 3670 against 1980 images/s, so 1.97x. Its own row: 18.3 ms,
  3507 images/s, 57% of the ceiling; compile 4.6 s cold, 1.2 s cached.
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
