"""DCGAN-28 on Fashion-MNIST, the PyTorch DCGAN recipe: the throughput benchmark of `make bench`.

  python -m gan_jax.bench --out BENCHMARKS.md            # this, bench_mlp_gan.py and ring8.py
  gan-jax train --config experiments/bench_dcgan28.py --workdir runs/bench_dcgan28

G: z(100) -> Dense(7*7*128, no bias) -> BN -> ReLU -> ConvT(64, 4x4, s2) -> BN -> ReLU -> ConvT(1, 4x4, s2)
-> tanh; D: Conv(64, 4x4, s2) -> LeakyReLU(0.2) -> Conv(128, 4x4, s2, no bias) -> BN -> LeakyReLU(0.2)
-> Dense(1). Non-saturating loss, Adam 2e-4 (0.5, 0.999), N(0, 0.02) init, batch 64, one D update per G
update. No EMA: the reference implementations keep none, and the benchmark times their recipe.

Measured by `make bench` (BENCHMARKS.md), paired in one process with the PyTorch 2.13 eager version of this
step (gan_jax/bench_torch.py); targets 1x and 1.5x:
- 2-core Intel Xeon with AVX-512 and AMX-BF16, 2026-12-05 08:49 (the latest code): 92.3 ms per step, 693
  images/s; paired, 725 against 814 images/s, so 0.88x. 40% of the f32 matmul ceiling (230-236 GFLOP/s);
  compile 3.4 s cold, 1.2 s cached. Simultaneous: 723 images/s.
- 2-core AMD EPYC with AVX-512, 2026-12-02 17:13 (the latest code): 92.8 ms per step, 690 images/s; paired,
  775 against 831 images/s, so 0.95x. 48% of the f32 matmul ceiling (188-194 GFLOP/s); compile 2.9 s cold,
  1.0 s cached. Simultaneous: 832 images/s. The runs below predate the transposed convolutions' XLA forward.
- 2-core Intel Xeon with AVX-512 and AMX-BF16, 2026-12-02 10:41: 61.0 ms per step, 1049 images/s; paired,
  1100 against 1351 images/s, so 0.82x. 42% of the f32 matmul ceiling (336-362 GFLOP/s); compile 2.4 s cold,
  0.7 s cached. Simultaneous: 1156 images/s.
- 2-core AMD EPYC with AVX2, 2026-12-02 05:26: 149.8 ms per step, 427 images/s; paired, 475 against 397
  images/s, so 1.24x. 49% of the f32 matmul ceiling (119-124 GFLOP/s); compile 6.3 s cold, 1.7 s cached.
- 2-core AMD EPYC with AVX-512, 2026-12-02 01:33: 86.9 ms, 736 images/s; paired, 713 against 778, so 0.88x.
  XLA:CPU's default convolutions (train.cpu_convolutions="library") gave 644. Simultaneous: 871 images/s
  (Keras, reported for that machine: 850-870). 55% of the ceiling (180-191 GFLOP/s); compile 3.2 s, 0.8 s.
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
