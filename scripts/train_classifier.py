"""Trains the Fashion-MNIST feature network shipped as gan_jax/assets/fashion_mnist_classifier.npz.

  .venv/bin/python scripts/train_classifier.py [--epochs 5] [--seed 0] [--out PATH]

Deterministic for a fixed seed: the parameter init and every epoch's order come from it, and the file
is written byte for byte from the arrays, so a rerun on the same platform reproduces its sha256. Weights
are stored in float16 to keep the package small; the test accuracy printed (and stored in the file's
meta/test_accuracy) is that of the rounded weights, loaded through the same code the evaluator uses.
After retraining, paste the printed sha256 into FASHION_WEIGHTS_SHA256 in gan_jax/eval/features.py.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax import data
from gan_jax.apps import classifier_study
from gan_jax.eval import feature_net, features

DEFAULT_OUT = os.path.join(os.path.dirname(__file__), os.pardir, "gan_jax", "assets", features.FASHION_WEIGHTS_FILE)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--epochs", type=int, default=5)
  parser.add_argument("--batch-size", type=int, default=128)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)

  config = config_lib.base_config()  # fashion_mnist from the Debian IDX files (or a download)
  train_x, train_y = data.load_split(config, "train")
  test_x, test_y = data.load_split(config, "test")
  print(f"train {train_x.shape}, test {test_x.shape}", flush=True)
  log = functools.partial(print, flush=True)
  variables = classifier_study.train_classifier(
    train_x, train_y, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, log=log
  )

  rounded = jax.tree.map(lambda a: np.asarray(a, np.float16), jax.device_get(variables))
  feature_net.save_variables(args.out, rounded)
  sha256 = feature_net.file_sha256(args.out)
  net = features.load_fashion_classifier(args.out, expected_sha256=sha256)
  accuracy = classifier_study.accuracy(net.variables, test_x, test_y)
  # The accuracy goes into the file too, so the hash covers it: write again and rehash.
  feature_net.save_variables(args.out, rounded, test_accuracy=accuracy, epochs=args.epochs, seed=args.seed)
  sha256 = feature_net.file_sha256(args.out)
  print(f"test accuracy {accuracy:.4f} on {len(test_y)} images (float16 weights)")
  print(f"wrote {os.path.normpath(args.out)} ({os.path.getsize(args.out)} bytes), sha256 {sha256}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
