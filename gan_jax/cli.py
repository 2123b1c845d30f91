"""`gan-jax` (and `python -m gan_jax`): train, sample, eval, sweep, curves, gif, inpaint, interpolate, anomaly,
augment."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
  from gan_jax import config as config_lib

  overrides, rest = config_lib.parse_override_args(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  args = parser.parse_args(rest)
  if overrides and args.command != "train":
    parser.error(f"--config.* overrides only apply to `train`; got {sorted(overrides)}")
  enable_compilation_cache()
  keep_freed_memory()
  try:
    return args.run(args, overrides)
  except (ValueError, KeyError, FileNotFoundError, ImportError, TypeError) as e:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f"gan-jax {args.command}: error: {msg}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
  from gan_jax import evaluate
  from gan_jax import sweep as sweep_lib

  parser = argparse.ArgumentParser(prog="gan-jax", description=__doc__)
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("train", help="train (or resume) a run; --config.KEY=VALUE overrides config keys")
  p.add_argument("--config", required=True, help="experiments/FILE.py[:ARG]")
  p.add_argument("--workdir", required=True)
  p.set_defaults(run=_train)

  p = sub.add_parser("sample", help="write samples of a trained run to an .npz")
  p.add_argument("--workdir", required=True)
  p.add_argument("--num", type=int, default=64)
  p.add_argument("--out", required=True)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
  p.add_argument("--member", type=int, default=0, help="which member of a population run")
  p.add_argument(
      "--labels", help="conditional runs: classes of the samples, 'all' (in turn, the default) or e.g. 0,1,2 (repeated)"
  )
  p.set_defaults(run=_sample)

  evaluate.add_eval_parser(sub).set_defaults(run=lambda args, _: evaluate.run_eval(args))
  sweep_lib.add_parser(sub).set_defaults(run=lambda args, _: sweep_lib.run(args))

  p = sub.add_parser("curves", help="plot runs' curves; --reference checks them, --export writes a reference")
  p.add_argument("dirs", nargs="+", metavar="DIR")
  p.add_argument("--out", required=True, help="FILE.png (an .svg is written beside it), or FILE.json for --export")
  p.add_argument("--reference", help="a reference .json/.csv: exit status 1 when a curve leaves its band")
  p.add_argument("--export", action="store_true", help="write DIRs (one seed group) as a reference to --out")
  p.add_argument("--smooth", type=int, default=5, help="moving-average window in log points")
  p.set_defaults(run=_curves)

  p = sub.add_parser("gif", help="the sample grids saved during training as one animated GIF")
  p.add_argument("workdir")
  p.add_argument("--out", required=True)
  p.add_argument("--frame-ms", type=int, default=300)
  p.set_defaults(run=_gif)

  p = sub.add_parser("anomaly", help="AnoGAN / f-AnoGAN scores (Schlegl et al. 2017, 2019) of test images; AUROC")
  p.add_argument("--workdir", required=True, help="a run trained with data.exclude_classes (its anomalies)")
  p.add_argument("--images", default="test:0-999", help="SPLIT:FIRST-LAST of the run's dataset, or a labelled FILE.npz")
  p.add_argument("--method", choices=("anogan", "fanogan"), default="anogan",
                 help="anogan: a latent search per image; fanogan: an encoder trained once (kept in WORKDIR/fanogan/)")
  p.add_argument("--steps", type=int, help="anogan: Adam steps of the search (default 100; Schlegl et al.: 500); "
                 "fanogan: encoder training steps (default 2000)")
  p.add_argument("--lr", type=float, help="Adam step size: on z for anogan (default 0.03), the encoder's peak for "
                 "fanogan (default 1e-3)")
  p.add_argument("--restarts", type=int, default=1, help="anogan: random initial codes per image; the best one wins")
  p.add_argument("--discrimination-weight", type=float, default=0.1,
                 help="anogan: λ of D's feature loss (1 - λ: residual)")
  p.add_argument("--kappa", type=float, default=1.0, help="fanogan: κ, the weight of D's feature loss in izi_f")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", help="FILE.npz: also write each image's score, label and anomaly flag")
  p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
  p.add_argument("--member", type=int, default=0, help="which member of a population run")
  p.set_defaults(run=_anomaly)

  p = sub.add_parser("inpaint", help="fill masked images by latent search (Yeh et al. 2017); PSNR/SSIM vs baselines")
  p.add_argument("--workdir", required=True)
  p.add_argument("--mask", default="center", help="center | half (left) | random (80%% missing) | random:P | FILE.png")
  p.add_argument("--images", default="test:0-63", help="SPLIT:FIRST-LAST of the run's dataset, or FILE.npz")
  p.add_argument("--out", required=True, help="OUT: writes OUT.npz and OUT.png")
  p.add_argument("--steps", type=int, default=300, help="Adam steps of the latent search")
  p.add_argument("--restarts", type=int, default=4, help="random initial codes per image; the best one wins")
  p.add_argument("--lr", type=float, default=0.03, help="Adam step size on z")
  p.add_argument("--prior-weight", type=float, default=0.003, help="λ of the discriminator's prior loss")
  p.add_argument("--weighting", default="importance", help="contextual loss: importance (Yeh et al.) | uniform")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
  p.add_argument("--member", type=int, default=0, help="which member of a population run")
  p.set_defaults(run=_inpaint)

  p = sub.add_parser("interpolate", help="a grid of latent interpolations; one row per class for conditional runs")
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True, help="FILE.png")
  p.add_argument("--rows", type=int, default=8, help="interpolations (unconditional runs; conditional: one a class)")
  p.add_argument("--steps", type=int, default=10, help="images per row, endpoints included")
  p.add_argument("--method", default="slerp", help="slerp | linear")
  p.add_argument("--truncation", type=float, help="ψ: endpoints' coordinates beyond ±ψ are resampled")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
  p.add_argument("--member", type=int, default=0, help="which member of a population run")
  p.set_defaults(run=_interpolate)

  p = sub.add_parser(
      "augment",
      help="classifier accuracy on a real subset, on it plus generated images, on generated ones only (CAS)",
      description="Class-conditional runs: test accuracy of the Fashion-MNIST classifier trained on a stratified "
      "real subset, the subset plus N generated labelled images, and the N generated images alone (Classification "
      "Accuracy Score), per fraction and seed; prints one JSON object. The defaults take a few minutes on a CPU.",
  )
  p.add_argument("--workdir", required=True)
  p.add_argument("--fractions", default="0.01,0.1", help="stratified train-split fractions (default: %(default)s)")
  p.add_argument("--seeds", type=int, default=3, help="seeds 0..S-1: subset, noise, classifier (default: %(default)s)")
  p.add_argument("--epochs", type=int, default=2, help="passes over each training set (default: %(default)s)")
  p.add_argument(
      "--min-steps", type=int, default=100, help="more epochs where fewer steps would be run (default: %(default)s)"
  )
  p.add_argument("--generated", type=int, default=6000, help="N generated images, all classes (default: %(default)s)")
  p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
  p.add_argument("--member", type=int, default=0, help="which member of a population run")
  p.set_defaults(run=_augment)
  return parser


def enable_compilation_cache() -> None:
  """Compiled steps persist across processes (sweeps, resumes): $GAN_JAX_CACHE/xla, ~/.cache/gan_jax by default."""
  import jax

  if not jax.config.jax_compilation_cache_dir:
    root = os.environ.get("GAN_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gan_jax")
    jax.config.update("jax_compilation_cache_dir", os.path.join(root, "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def keep_freed_memory() -> None:
  """glibc malloc serves large blocks from its heap and keeps freed memory for reuse (Linux; elsewhere a no-op).

  XLA:CPU allocates a program's temporary buffer at every call: 33.8 MiB for the DCGAN-28 step. Past glibc's
  32 MiB ceiling for its mmap threshold each such block is a fresh mapping, unmapped when freed, so every
  step page-faults it in again (8.8k faults of 4 KiB per step on that step; 16-1000 with this). Numerics do
  not change; freed memory stays with the process.
  """
  import ctypes

  try:
    libc = ctypes.CDLL("libc.so.6")
  except OSError:
    return
  m_trim_threshold, m_mmap_max = -1, -4  # malloc.h
  libc.mallopt(m_mmap_max, 0)
  libc.mallopt(m_trim_threshold, 1 << 30)


def _train(args, overrides) -> int:
  from gan_jax import config as config_lib
  from gan_jax import parallel
  from gan_jax.train.loop import train_and_evaluate

  parallel.maybe_initialize_distributed()
  config = config_lib.load(args.config)
  config_lib.apply_overrides(config, overrides)
  train_and_evaluate(config, args.workdir)
  return 0


def _sample(args, _) -> int:
  from gan_jax import inference, models
  from gan_jax.train.writers import to_uint8

  run = inference.load_run(args.workdir)
  num_classes = models.generator_classes(run.gan.generator)
  labels_N = None
  if args.labels or num_classes:  # a conditional run's samples always come with their labels
    labels_N = inference.sample_labels(args.labels or "all", args.num, num_classes)
  x = inference.generate(run, args.num, seed=args.seed, ema=not args.no_ema, member=args.member, labels_N=labels_N)
  extra = {} if labels_N is None else {"labels": labels_N}
  if run.info.kind == "images":
    np.savez(args.out, images=to_uint8(x), **extra)
  else:
    np.savez(args.out, points=x.astype(np.float32), **extra)
  print(f"wrote {args.num} samples of {args.workdir} (step {int(run.state.step[0])}) to {args.out}")
  return 0


def _curves(args, _) -> int:
  from gan_jax import curves

  series = [s for d in curves.run_dirs(args.dirs) for s in curves.load_series(d)]
  if args.export:
    if len(series) == 1:
      print("note: one run gives std 0, so the band is only its floor (band.min_abs); export several seeds",
            file=sys.stderr)
    if len(curves.group_by_seed(series)) > 1:
      print("note: these runs differ in more than their seeds; the reference pools them all", file=sys.stderr)
    ref = curves.export_reference(series, args.out, args.smooth)
    print(f"wrote reference of {len(series)} runs, curves {sorted(ref['curves'])}, to {args.out}")
    return 0
  reference = curves.load_reference(args.reference) if args.reference else None
  window = reference["smoothing"] if reference else args.smooth
  groups = curves.group_by_seed(series)
  print("wrote " + ", ".join(curves.plot(groups, args.out, window, reference)))
  if reference is None:
    return 0
  failed = False
  for label, group in groups.items():
    for name, r in curves.check(group, reference).items():
      failed |= not r["ok"]
      verdict = "passes" if r["ok"] else "FAILS"
      partial = "" if r["points"] in (0, r["total"]) else (
          f"; the run reaches only {r['points']} of the reference's {r['total']} steps, up to step {r['last_step']:g}")
      print(f"{label}: {name}: {verdict}, inside the band at {r['fraction']:.0%} of {r['points']} reference steps "
            f"(needs {reference['band']['min_fraction']:.0%}){partial}")
  return 1 if failed else 0


def _gif(args, _) -> int:
  from gan_jax.train.writers import progress_gif

  n = progress_gif(args.workdir, args.out, args.frame_ms)
  print(f"wrote {n} frames to {args.out}")
  return 0


def _anomaly(args, _) -> int:
  import dataclasses
  import json
  import time

  from gan_jax import anomaly, data, inference

  start = time.time()
  run = inference.load_run(args.workdir)
  x_NHWC, labels_N = anomaly.load_images(run, args.images)
  given = {k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v is not None}
  if args.method == "fanogan":
    method = anomaly.FAnoGAN(seed=args.seed, kappa=args.kappa, **given)
    score = "mean (x - G(E(x)))^2 + kappa mean (f(x) - f(G(E(x))))^2; f: D's features before its head"
  else:
    method = anomaly.AnoGAN(restarts=args.restarts, seed=args.seed, weight=args.discrimination_weight, **given)
    score = "(1 - weight) sum|x - G(z)| + weight sum|f(x) - f(G(z))| at the best z; f: D's features before its head"
  log = lambda line: print(line, file=sys.stderr, flush=True)
  score_N, anomalous_N, summary = anomaly.evaluate_anomaly(
      run, x_NHWC, labels_N, method, workdir=args.workdir, ema=not args.no_ema, member=args.member, log=log
  )
  if args.out:
    np.savez(args.out, scores=score_N, labels=labels_N, anomalous=anomalous_N)
  protocol = {
      "workdir": args.workdir,
      "step": int(run.state.step[args.member]),
      "images": args.images,
      "held_out_classes": list(data.excluded_classes(run.config, run.info.kind, run.info.num_classes)),
      "method": args.method,
      **dataclasses.asdict(method),
      "score": score,
      "ema": not args.no_ema,
      "member": args.member,
      "seconds": round(time.time() - start, 1),
  }
  print(json.dumps({**summary, "protocol": protocol, "files": [args.out] if args.out else []}))
  return 0


def _inpaint(args, _) -> int:
  import json
  import time

  import jax

  from gan_jax import inference, inpaint, models
  from gan_jax.train.writers import save_samples, to_uint8

  start = time.time()
  run = inference.load_run(args.workdir)
  y_NHWC, labels_N = inpaint.load_images(run, args.images)
  mask_NHW = inpaint.masks_for(args.mask, len(y_NHWC), y_NHWC.shape[1:3], jax.random.PRNGKey(args.seed))
  search = dict(steps=args.steps, restarts=args.restarts, seed=args.seed, lr=args.lr, weighting=args.weighting)
  fills, scores = inpaint.evaluate_inpainting(
      run, y_NHWC, mask_NHW, labels_N, prior_weight=args.prior_weight, ema=not args.no_ema, member=args.member, **search
  )
  masked_NHWC = np.asarray(inpaint.blend(y_NHWC, np.zeros_like(y_NHWC), mask_NHW))  # holes shown mid-grey
  rows = {"original": y_NHWC, "masked": masked_NHWC, **fills}
  np.savez(f"{args.out}.npz", mask=mask_NHW.astype(np.uint8), **{k: to_uint8(v) for k, v in rows.items()})
  cols = min(len(y_NHWC), 16)
  save_samples(f"{args.out}.png", _row_blocks(list(rows.values()), cols), "images", cols=cols)
  conditional = bool(models.generator_classes(run.gan.generator))
  protocol = {
      "workdir": args.workdir,
      "step": int(run.state.step[args.member]),
      "images": args.images,
      "count": len(y_NHWC),
      "mask": args.mask,
      "missing_fraction": float(1 - mask_NHW.mean()),
      **search,
      "lambda": args.prior_weight,
      "ema": not args.no_ema,
      "member": args.member,
      "labels": "given" if conditional else "none",
      "region": "missing pixels: PSNR (data range 2) and the SSIM map's mean per image, then the mean over images",
  }
  files = [f"{args.out}.npz", f"{args.out}.png"]
  seconds = round(time.time() - start, 1)
  print(json.dumps({**scores, "rows": list(rows), "protocol": protocol, "files": files, "seconds": seconds}))
  return 0


def _row_blocks(rows: list[np.ndarray], cols: int) -> np.ndarray:
  """Same-length image rows interleaved in blocks of `cols` (white-padded), for a `cols`-wide grid."""
  blocks = []
  for start in range(0, len(rows[0]), cols):
    for r in rows:
      part = r[start : start + cols]
      blocks += [part, np.ones((cols - len(part), *part.shape[1:]), part.dtype)]
  return np.concatenate(blocks)


def _interpolate(args, _) -> int:
  import jax

  from gan_jax import inference, latent, models
  from gan_jax.train.writers import save_samples

  run = inference.load_run(args.workdir)
  if run.info.kind != "images":
    raise ValueError(f"interpolate draws image grids; data.name={run.info.name!r} is {run.info.kind}")
  if args.rows < 1:
    raise ValueError(f"--rows {args.rows}: expected at least 1")
  num_classes = models.generator_classes(run.gan.generator)
  key_a, key_b = jax.random.split(jax.random.PRNGKey(args.seed))
  pairs = 1 if num_classes else args.rows  # conditional: one path, drawn in every class
  z_a, z_b = (latent.latent_normal(k, (pairs, run.gan.latent_dim), args.truncation) for k in (key_a, key_b))
  z_PSZ = latent.interpolate(z_a, z_b, args.steps, args.method)
  labels_N = None
  if num_classes:
    z_PSZ = np.broadcast_to(z_PSZ, (num_classes, *z_PSZ.shape[1:]))
    labels_N = np.repeat(np.arange(num_classes, dtype=np.int32), args.steps)
  z_NZ = np.asarray(z_PSZ).reshape(-1, run.gan.latent_dim)
  x = inference.generate_from(run, z_NZ, ema=not args.no_ema, member=args.member, labels_N=labels_N)
  save_samples(args.out, x, "images", cols=args.steps)
  rows = f"{num_classes} classes" if num_classes else f"{args.rows} rows"
  print(f"wrote {rows} x {args.steps} {args.method} interpolations of {args.workdir} to {args.out}")
  return 0


def _augment(args, _) -> int:
  import json
  import time

  from gan_jax import classify, inference

  start = time.time()
  fractions, seeds = classify.parse_fractions(args.fractions), list(range(args.seeds))
  run = inference.load_run(args.workdir)
  fit = dict(epochs=args.epochs, generated=args.generated, min_steps=args.min_steps, batch_size=128, lr=1e-3)
  log = lambda line: print(line, file=sys.stderr, flush=True)
  study = classify.augmentation_study(run, fractions, seeds, **fit, ema=not args.no_ema, member=args.member, log=log)
  protocol = {
      "workdir": args.workdir,
      "step": int(run.state.step[args.member]),
      "fractions": list(fractions),
      "seeds": seeds,
      **fit,
      "ema": not args.no_ema,
      "member": args.member,
      "classifier": "metrics.features.FashionClassifier, Adam with cosine decay (scripts/train_classifier.py's loop)",
      "subset": "class-stratified, drawn per seed; generated images: noise per seed, classes in turn",
      "generated_setting": "trained once per seed on the N generated images, the same under every fraction",
      "accuracy": "top-1 on the whole test split; std over seeds with ddof=1",
      "train_split_images": study["train_split_images"],
      "test_images": study["test_images"],
  }
  print(json.dumps({"accuracy": study["accuracy"], "protocol": protocol, "seconds": round(time.time() - start, 1)}))
  return 0
