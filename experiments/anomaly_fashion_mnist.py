"""One-class anomaly detection on Fashion-MNIST (Schlegl et al. 2017's AnoGAN, the one-class protocol).

The first default DCGAN (experiments/dcgan_fashion_mnist_baseline.py) trained on nine classes, one held out (the
config's argument, 0 by default); `gan-jax anomaly` then scores test images by latent search, and the held-out
class's images are the anomalies its AUROC separates from the rest:

  gan-jax sweep --config experiments/anomaly_fashion_mnist.py --workdir runs/anomaly --parallel 1
  for point in runs/anomaly/*/; do gan-jax anomaly --workdir "$point" >> runs/anomaly/auroc.jsonl; done
  for point in runs/anomaly/*/; do gan-jax anomaly --workdir "$point" --method fanogan >> runs/anomaly/f.jsonl; done

or one class alone:

  gan-jax train --config experiments/anomaly_fashion_mnist.py:3 --workdir runs/anomaly_3
  gan-jax anomaly --workdir runs/anomaly_3 --images test:0-9999   # the whole test split; default: its first 1000

auroc.jsonl then holds one JSON line per held-out class (protocol.held_out_classes) with its AUROC; their mean
is the protocol's summary. What to expect (one seed per class, the first 1000 test images; docs/studies.md has
the table): mean AUROC over the 10 classes about 0.64 for AnoGAN (100 search steps) and 0.70 for f-AnoGAN (an
encoder trained for 2000 steps), from about 0.47 (sneakers, AnoGAN) to 0.94 (bags, f-AnoGAN). Wall times:
docs/speed.md.
"""

import os

from gan_jax import config as config_lib
from gan_jax.data import fashion_mnist
from gan_jax.sweep import product, seeds, sweep


def get_config(arg=None):
  held_out = int(arg or 0)
  if not 0 <= held_out < fashion_mnist.NUM_CLASSES:
    raise ValueError(f"held-out class {arg!r}: expected 0..{fashion_mnist.NUM_CLASSES - 1}")
  c = config_lib.load(os.path.join(os.path.dirname(__file__), "dcgan_fashion_mnist_baseline.py"))
  c.data.exclude_classes = (held_out,)
  return c


def get_sweep(arg=None):
  return product(sweep("data.exclude_classes", [[k] for k in range(fashion_mnist.NUM_CLASSES)]), seeds(1))
