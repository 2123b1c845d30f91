"""The PyTorch eager reference of `make bench`: the bench experiments' networks and step, timed alike.

Written the way the PyTorch DCGAN example trains (one `G(z)` per iteration; D on real and on the detached
fake, then G against the updated D; BCE-with-logits, Adam 2e-4 (0.5, 0.999)), so `benchmarks.bench` can set
gan_jax's images/s beside PyTorch's on the same machine in the same run. Needs the `[bench]` extra
(torch); `python -m benchmarks.torch_reference dcgan28` prints one experiment's step times as JSON. `make bench`
times it in one process with the JAX step, in alternating windows (`benchmarks.bench.torch_paired`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from benchmarks.timing import step_medians

LATENT = 100


def dcgan28() -> tuple[nn.Module, nn.Module]:
  """experiments/bench_dcgan28.py's G and D; k=4, s=2, p=1 is TensorFlow's "SAME" for these even sizes."""
  generator = nn.Sequential(
    nn.Linear(LATENT, 7 * 7 * 128, bias=False),
    nn.BatchNorm1d(7 * 7 * 128),
    nn.ReLU(),
    nn.Unflatten(1, (128, 7, 7)),
    nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
    nn.BatchNorm2d(64),
    nn.ReLU(),
    nn.ConvTranspose2d(64, 1, 4, 2, 1),
    nn.Tanh(),
  )
  discriminator = nn.Sequential(
    nn.Conv2d(1, 64, 4, 2, 1),
    nn.LeakyReLU(0.2),
    nn.Conv2d(64, 128, 4, 2, 1, bias=False),
    nn.BatchNorm2d(128),
    nn.LeakyReLU(0.2),
    nn.Flatten(),
    nn.Linear(7 * 7 * 128, 1),
  )
  for module in (*generator, *discriminator):
    if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
      nn.init.normal_(module.weight, 0.0, 0.02)  # N(0, 0.02), as the JAX model
  return generator, discriminator


def mlp_gan() -> tuple[nn.Module, nn.Module]:
  """experiments/bench_mlp_gan.py's G and D (LeakyReLU 0.2; dropout 0.3 after each hidden layer of D)."""
  g_layers, d_layers = [], []
  for i, o in ((LATENT, 256), (256, 512), (512, 1024)):
    g_layers += [nn.Linear(i, o), nn.LeakyReLU(0.2)]
  for i, o in ((784, 1024), (1024, 512), (512, 256)):
    d_layers += [nn.Linear(i, o), nn.LeakyReLU(0.2), nn.Dropout(0.3)]
  generator = nn.Sequential(*g_layers, nn.Linear(1024, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
  discriminator = nn.Sequential(nn.Flatten(), *d_layers, nn.Linear(256, 1))
  return generator, discriminator


MODELS: dict[str, Callable[[], tuple[nn.Module, nn.Module]]] = {"dcgan28": dcgan28, "mlp_gan": mlp_gan}


def alternating_step(generator: nn.Module, discriminator: nn.Module) -> Callable[[torch.Tensor], None]:
  """One D update on (real, G(z).detach()), then one G update through the same G(z) against the new D."""
  bce = nn.BCEWithLogitsLoss()
  g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

  def step(real_BCHW: torch.Tensor) -> None:
    batch = real_BCHW.shape[0]
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    fake_BCHW = generator(torch.randn(batch, LATENT))
    d_opt.zero_grad(set_to_none=True)
    d_loss = bce(discriminator(real_BCHW), ones) + bce(discriminator(fake_BCHW.detach()), zeros)
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    bce(discriminator(fake_BCHW), ones).backward()
    g_opt.step()

  return step


def stepper(name: str, batch: int) -> Callable[[int], None]:
  """`name`'s alternating step on 4 fixed real batches, as a call per step (eager: it has finished on return)."""
  torch.manual_seed(0)
  generator, discriminator = MODELS[name]()
  step = alternating_step(generator.train(), discriminator.train())
  rng = np.random.default_rng(0)
  reals = [torch.from_numpy(rng.uniform(-1, 1, (batch, 1, 28, 28)).astype(np.float32)) for _ in range(4)]
  return lambda i: step(reals[i % 4])


def about() -> dict:
  return {"torch": torch.__version__, "threads": torch.get_num_threads()}


def time_steps(name: str, batch: int, warmup: int, repeats: int, steps: int) -> dict:
  """Median seconds per step of each repeat, timed by the JAX rows' own `step_medians`."""
  return {"step_s": step_medians(stepper(name, batch), warmup, repeats, steps), "batch": batch, **about()}


if __name__ == "__main__":
  spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].startswith("{") else {"name": sys.argv[1]}
  print(json.dumps(time_steps(**{"batch": 64, "warmup": 10, "repeats": 5, "steps": 30, **spec})))
