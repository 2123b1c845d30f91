"""The latent search of `gan-jax inpaint`, tuned on held-out test images: a table of PSNR / SSIM per setting.

  .venv/bin/python scripts/tune_inpainting.py --workdir runs/dcgan_quality [--images test:256-287] [--settings 0 2]

Tunes on test images other than the 0-255 that docs/studies.md's table reports, so the table does not score the
settings on the images that chose them. For each mask (centre, left half) and each search setting of SETTINGS
(weighting, λ, restarts, steps, Adam's step, pool), one search ranks every restart's fill; the means of its k
best images for k = 1, 2, 4, ... up to the restarts are the `--average k` fills, scored on the missing pixels
beside the nearest-neighbour baseline. One row per setting and k, as a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np

from gan_jax import data
from gan_jax.apps import given_images, inpaint
from gan_jax.cli import configure_jax
from gan_jax.eval.metrics import restoration
from gan_jax.train import run as run_lib

# (weighting, λ, restarts, steps, lr, pool, T, β): Yeh et al.'s search as `gan-jax inpaint` defaults it, then
# variants.
SETTINGS = (
  ("importance", 0.003, 4, 300, 0.03, 0, 1.0, 0.0),
  ("uniform", 0.003, 16, 0, 0.03, 4096, 1.0, 0.0),
  ("uniform", 0.003, 16, 100, 0.03, 4096, 1.0, 0.0),
  ("importance", 0.003, 16, 100, 0.03, 4096, 1.0, 0.0),
  ("uniform", 0.003, 16, 300, 0.03, 4096, 1.0, 0.0),
  ("uniform", 0.003, 16, 300, 0.03, 0, 1.0, 0.0),
  ("uniform", 0.003, 64, 0, 0.03, 32768, 1.0, 0.0),
  ("uniform", 0.003, 32, 100, 0.03, 32768, 1.0, 0.0),
  ("uniform", 0.3, 16, 100, 0.03, 4096, 1.0, 0.0),
  ("uniform", 3.0, 16, 100, 0.03, 4096, 1.0, 0.0),
  ("uniform", 0.3, 16, 100, 0.03, 4096, 1.0, 0.5),
  ("uniform", 3.0, 16, 100, 0.03, 4096, 1.0, 0.5),
  ("uniform", 3.0, 16, 100, 0.03, 4096, 0.5, 0.5),
  ("uniform", 3.0, 16, 100, 0.03, 4096, 0.5, 0.25),
)


def _row(kind: str, fill_NHWC: np.ndarray, y_NHWC: np.ndarray, mask_NHW: np.ndarray, cells: list) -> str:
  """A table row: the setting's cells around the fill's mean PSNR and SSIM on the missing pixels."""
  missing_NHW = 1.0 - mask_NHW
  psnr = float(np.mean(restoration.psnr(fill_NHWC, y_NHWC, missing_NHW)))
  ssim = float(np.mean(restoration.ssim(fill_NHWC, y_NHWC, missing_NHW)))
  return "| " + " | ".join([kind, *map(str, cells[:-1]), f"{psnr:.2f}", f"{ssim:.3f}", str(cells[-1])]) + " |"


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--images", default="test:256-383", help="held-out images to tune on (SPLIT:FIRST-LAST)")
  p.add_argument("--masks", nargs="+", default=["center", "half"])
  p.add_argument("--settings", type=int, nargs="+", help="indices into SETTINGS (default: all)")
  args = p.parse_args(argv)
  configure_jax()
  run = run_lib.load_run(args.workdir)
  y_NHWC, _ = given_images.load_images(run, args.images)
  g_vars, d_vars = run_lib.member_variables(run)
  train_THWC, _ = data.load_split(run.config, run.config.data.split)
  columns = ["mask", "weighting", "λ", "restarts", "steps", "lr", "pool", "T", "β", "average", "combine"]
  print("| " + " | ".join([*columns, "PSNR (dB)", "SSIM", "seconds"]) + " |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
  for kind in args.masks:
    mask_NHW = inpaint.masks_for(kind, len(y_NHWC), y_NHWC.shape[1:3], jax.random.PRNGKey(0))
    nearest_NHWC, _ = inpaint.nearest_neighbour_fill(y_NHWC, mask_NHW, train_THWC)
    print(_row(kind, nearest_NHWC, y_NHWC, mask_NHW, ["nearest neighbour", *[""] * 10]), flush=True)
    for i in args.settings or range(len(SETTINGS)):
      weighting, prior_weight, restarts, steps, lr, pool, temperature, latent_weight = SETTINGS[i]
      start = time.time()
      ranked_NKHWC, _ = inpaint.ranked_fills(
        run.gan.generator,
        run.gan.discriminator,
        g_vars,
        d_vars,
        y_NHWC,
        mask_NHW,
        jax.random.PRNGKey(0),
        steps=steps,
        restarts=restarts,
        keep=restarts,
        pool=pool,
        pool_temperature=temperature,
        latent_weight=latent_weight,
        prior_weight=prior_weight,
        lr=lr,
        weighting=weighting,
        latent_dim=run.gan.latent_dim,
      )
      seconds = f"{time.time() - start:.0f}"
      for k in (2**i for i in range(restarts.bit_length()) if 2**i <= restarts):
        for combine in inpaint.COMBINES[: 1 if k == 1 else None]:
          fill_NHWC = np.asarray(inpaint.blend(y_NHWC, inpaint.combine_fills(ranked_NKHWC[:, :k], combine), mask_NHW))
          cells = [weighting, prior_weight, restarts, steps, lr, pool, temperature, latent_weight, k, combine, seconds]
          print(_row(kind, fill_NHWC, y_NHWC, mask_NHW, cells), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
