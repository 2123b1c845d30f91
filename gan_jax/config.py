"""The default config every experiment derives from, and the loading / override machinery.

An experiment file under `experiments/` defines `get_config(arg=None)`, usually by calling
`base_config()` and changing a few fields. Every field is documented here, once.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections

# Keys that fix the shapes of the state: a workdir cannot be resumed when any of them changes.
ARCHITECTURE_KEYS = ("data.name", "data.resolution", "data.channels", "model", "population.size")
# The layout of config.json and of the checkpointed state; train.run refuses a workdir of another layout.
LAYOUT_VERSION = 2
# config.json's entries beside the config: the data's shape and classes, and provenance.
RUN_METADATA = ("data_info", "provenance")
# population.KEY -> the config key it sets per member: what the state carries per member (train.population).
MEMBER_KEYS = {
  "seed": "seed",
  "g_lr": "optim.g.lr",
  "d_lr": "optim.d.lr",
  "penalty_weight": "penalty.weight",
  "ema_decay": "train.ema_decay",
}


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seeds parameters, noise, dropout and the data order.

  c.data = ml_collections.ConfigDict()
  # fashion_mnist | ring8 | grid25 | tfds:<catalog name> (needs [tf]) | folder:PATH (your PNG/JPEG files; first-
  # level subfolders are classes) | npz:PATH (`images` uint8 NHWC or `points` N x 2, optional `labels`).
  c.data.name = "fashion_mnist"
  c.data.resolution = 0  # Image side for folder: and npz: data (0: 32 for folders, an npz's own size); models follow.
  c.data.channels = 0  # 1 or 3 for folder: and npz: data; 0: gray when every image is, else RGB.
  c.data.data_dir = ""  # TFDS data dir (array_record); "" = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  c.data.source_dir = ""  # Where the raw IDX files are; "" = search the Debian path, then download.
  c.data.split = "train"  # The split G learns from; evaluation compares against the test split.
  # Classes left out of the training batches, e.g. (3,) or (3, 5) (one-class anomaly detection, `gan-jax
  # anomaly`). Labelled image datasets only. Evaluation's real statistics still use the whole test split.
  c.data.exclude_classes = ()

  c.model = ml_collections.ConfigDict()
  # mlp_gan | dcgan | mlp2d | pacgan_mlp | resnet | infogan (Lucic et al. 2018) | a name registered in gan_jax.models.
  c.model.name = "dcgan"
  c.model.latent_dim = 100  # Size of z ~ N(0, I).
  c.model.latent_dist = "normal"  # normal | uniform: z ~ U(-1, 1), as compare_gan (model infogan only).
  c.model.g_width = 64  # Base channel / unit count of G; meaning is per model.
  c.model.d_width = 64  # Base channel / unit count of D.
  c.model.dropout = 0.3  # D dropout rate where the model has dropout (mlp_gan).
  # D normalisation: none | batch | spectral (Miyato et al. 2018) | layer; "" = the model's own
  # (mlp none, dcgan batch, resnet spectral). Spectral-norm vectors live in the state's d_stats.
  c.model.d_norm = ""
  c.model.g_spectral_norm = False  # Spectral normalisation in G too (SAGAN, Zhang et al. 2019).
  c.model.conditional = False  # Condition G and D on the dataset's labels (class-conditional GAN).
  # How a conditional D uses labels: projection (Miyato & Koyama 2018) | acgan (a class head trained
  # with loss.acgan_weight, Odena et al. 2017).
  c.model.d_conditioning = "projection"
  # PacGAN packing (Lin et al. 2018): D scores this many examples joined into one input, so it sees B / pac
  # inputs; a penalty is on the packed inputs. 1: unpacked. Batch per device divisible by it; unconditional.
  c.model.pac = 1
  c.model.minibatch_std = False  # Append the batch's mean feature std before D's last hidden layer (Karras 2018).

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "non_saturating"  # A registered name or "package.module:function".
  c.loss.label_smoothing = 0.0  # One-sided: real targets become 1 - s (logistic losses only).
  c.loss.acgan_weight = 0.0  # ACGAN class cross-entropy weight; > 0 needs model.d_conditioning="acgan".

  c.penalty = ml_collections.ConfigDict()
  c.penalty.name = "none"  # none | wgan_gp | r1 | r2 | dragan.
  c.penalty.weight = 10.0  # For r1 / r2 the penalty is mean ||grad||^2, so weight = gamma / 2.
  c.penalty.one_sided = False  # wgan_gp only: max(0, ||grad|| - 1)^2 (Petzka et al. 2018).
  # paper | compare_gan (wgan_gp, dragan): sqrt(1e-4 + ||g||^2) of [0, 1]-pixel gradients, DRAGAN's of sigmoid(D).
  c.penalty.form = "paper"
  c.penalty.every = 1  # Lazy regularisation: apply every k D steps with weight * k (StyleGAN2).

  c.augment = ml_collections.ConfigDict()
  # DiffAugment (Zhao et al. 2020) of real and fake before every D call: "" or comma-separated
  # color | translation | cutout, e.g. "color,translation,cutout"; images only.
  c.augment.policy = ""

  c.optim = ml_collections.ConfigDict()
  for net in ("g", "d"):
    o = ml_collections.ConfigDict()
    o.name = "adam"  # adam | rmsprop | sgd, or one registered in gan_jax.optimizers.
    o.lr = 2e-4  # Separate G / D rates give TTUR (Heusel et al. 2017).
    o.b1 = 0.5  # Adam betas (SGD's momentum is b1, RMSProp's decay b2); 0.5 / 0.999 is DCGAN's, 0 / 0.9 SNGAN's.
    o.b2 = 0.999
    o.schedule = "constant"  # constant | cosine | linear (decay to 0 over train.steps); warmup below.
    o.warmup_steps = 0
    o.grad_clip = 0.0  # Global-norm clipping; 0 disables.
    setattr(c.optim, net, o)

  c.train = ml_collections.ConfigDict()
  c.train.steps = 5000  # Generator updates.
  c.train.batch_size = 64  # Global batch over all devices and processes.
  c.train.d_steps = 1  # D updates per G update, each on its own real batch.
  # alternating: D update(s), then G against the updated D (PyTorch DCGAN). simultaneous: one
  # D pass gives both losses and both networks step at once (TF DCGAN tutorial); needs d_steps=1.
  c.train.update_order = "alternating"
  # G's update draws its own z instead of reusing the last D update's generator pass (compare_gan's WGAN-GP);
  # costs one more G forward pass per step; needs train.update_order="alternating".
  c.train.g_fresh_noise = False
  c.train.weight_clip = 0.0  # Clip every D parameter to [-c, c] after each update (WGAN); 0 disables.
  c.train.ema_decay = 0.999  # EMA of G params used for samples and evaluation; 0 disables.
  c.train.ema_start = 0  # Step before which the EMA copies G (warm-up).
  # float32 | bfloat16: the dtype of G's and D's Dense / Conv math (mixed precision). Parameters, optimizer
  # states and gradients stay float32, as do batch norm, spectral norm's power iteration, the logits, losses
  # and penalties. bfloat16 has float32's exponent range, so no loss scaling is needed.
  c.train.compute_dtype = "float32"
  c.train.log_every = 100  # Steps between metrics.jsonl rows (metrics stay on device in between).
  # Stop a run whose losses (at log steps) or state (before each save) hold NaN or inf, keeping the newest
  # finite checkpoint; checked on device. False trains on regardless.
  c.train.check_finite = True
  c.train.sample_every = 500  # PNG grid of a fixed noise batch from the EMA generator.
  c.train.num_devices = 0  # Local devices in the data-parallel mesh; 0 = all.
  # Devices that split a population's members, each member's batch split over the rest (parallel.make_mesh):
  # 0 = as many as divide both population and devices (1 on multi-host runs); 1 = every member on every device.
  c.train.member_devices = 0

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every = 1000  # Steps between checkpoints (and one at the end); a restarted run resumes there.
  c.checkpoint.keep = 3  # The latest N checkpoints, in checkpoints/.
  c.checkpoint.keep_best = 2  # The best N by eval.best_metric, in checkpoints_best/ (after evaluations).

  c.eval = ml_collections.ConfigDict()
  c.eval.every = 0  # Evaluate every N steps (0: only at the end); results go to eval.jsonl with their protocol.
  c.eval.final = True  # Evaluate at the end of the run.
  c.eval.num_samples = 0  # 0: the protocol's default, 10,000 images or 2,500 points (PacGAN).
  # auto: the shipped classifier on Fashion-MNIST, the FID Inception on other images | fashion_mnist | inception.
  c.eval.feature_net = "auto"
  c.eval.protocol = "legacy_tf"  # The Inception's pixel pipeline: legacy_tf | nvidia | clean (eval/fid_protocols.py).
  c.eval.final_inception = True  # The final evaluation adds inception_fid where it used another net and weights exist.
  c.eval.inception_weights = ""  # "" = $GAN_JAX_INCEPTION_WEIGHTS, else the cache of `make inception`.
  c.eval.best_metric = ""  # "": fid for images, modes for 2D data; picks checkpoints_best/.

  # Where a run reports besides metrics.jsonl, eval.jsonl and TensorBoard (DIR/tensorboard, always on).
  c.log = ml_collections.ConfigDict()
  c.log.wandb = (
    False  # Also log to Weights & Biases (pip install 'gan-jax[wandb]'); WANDB_MODE=offline needs no account.
  )
  c.log.wandb_project = ""  # "" = W&B's default project.

  # Each point's job under `gan-jax sweep --launcher slurm` (submitit); unused by local runs.
  c.slurm = ml_collections.ConfigDict()
  c.slurm.partition = ""  # "" = the cluster's default partition.
  c.slurm.timeout_min = 24 * 60  # A job past it is requeued and resumes from its checkpoint.
  c.slurm.gpus_per_node = 1
  c.slurm.cpus_per_task = 8
  c.slurm.mem_gb = 32

  # Populations (gan_jax/train/population.py): `size` independent members trained by one program (jax.vmap).
  # Each other key holds one value per member, or () for the config's own value (seeds: seed, seed + 1, ...).
  c.population = ml_collections.ConfigDict()
  c.population.size = 1
  for key in MEMBER_KEYS:
    c.population[key] = ()
  # Locked: an experiment file can only set keys that exist, as --config overrides can; a typo fails at once.
  c.lock()
  return c


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/file.py[:arg]` by calling its `get_config(arg)`, or a run's recorded `DIR/config.json` (the
  config that run trained with, to train it again elsewhere)."""
  path, _, arg = spec.partition(":")
  if os.path.basename(path) == "config.json" and not arg:
    try:
      return read_run_config(os.path.dirname(path) or ".")
    except json.JSONDecodeError as e:
      raise ValueError(f"{path!r} is not valid JSON ({e}); expected a config.json written by `gan-jax train`") from None
  if not path.endswith(".py"):
    raise ValueError(f"config file {path!r}: expected an experiment file FILE.py[:ARG] or a run's DIR/config.json")
  return config_of(import_file(path), path, arg)


def config_of(module, path: str, arg: str = "") -> ml_collections.ConfigDict:
  """`get_config(arg)` of an experiment module imported from `path`."""
  if not hasattr(module, "get_config"):
    raise ValueError(f"config file {path!r} defines no get_config(); expected one returning a ConfigDict")
  with user_code(path, "get_config()"):
    config = module.get_config(arg) if arg else module.get_config()
  if not isinstance(config, ml_collections.ConfigDict):
    raise ValueError(
      f"get_config() of {path!r} returned {type(config).__name__}; expected an ml_collections.ConfigDict "
      "(e.g. `c = config.base_config(); ...; return c`)"
    )
  return config


class user_code:
  """Errors raised by an experiment file become one line naming the file, the line and the error."""

  def __init__(self, path: str, what: str):
    self.path, self.what = path, what

  def __enter__(self) -> None:
    return None

  def __exit__(self, kind, error, tb) -> bool:
    # sys.exit() in an experiment file is a refusal of its own: said in one line too, not a silent exit.
    refused = isinstance(error, SystemExit)
    if error is None or not (isinstance(error, Exception) or refused) or isinstance(error, ValueError | KeyError):
      return False
    line = getattr(error, "lineno", None)  # SyntaxError
    frame = tb
    while frame is not None:
      if os.path.abspath(frame.tb_frame.f_code.co_filename) == os.path.abspath(self.path):
        line = frame.tb_lineno
      frame = frame.tb_next
    where = f"{self.path}:{line}" if line else self.path
    raise ValueError(f"{where}: {self.what} raised {type(error).__name__}: {error}") from error


def import_file(path: str):
  """The experiment file as a module. Its folder joins sys.path, so `loss.name = "my_module:my_loss"` and the
  file's own imports find modules next to it."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path!r} does not exist; expected e.g. experiments/ring8.py")
  folder = os.path.dirname(os.path.abspath(path))
  if folder not in sys.path:
    sys.path.append(folder)
  name = "gan_jax_experiment_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  with user_code(path, "importing it"):
    spec.loader.exec_module(module)
  return module


class BareFlag(str):
  """A boolean override given as ml_collections' config_flags accept it: `--config.a.b` (True) or `--noconfig.a.b`
  (False). apply_overrides refuses it for a key that is not a boolean."""


def parse_override_args(argv: Iterable[str]) -> tuple[dict[str, str], list[str]]:
  """Splits `--config.a.b=v` / `--config.a.b v` / `--config.a.b` / `--noconfig.a.b` arguments from the rest."""
  overrides, rest, argv = {}, [], list(argv)
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--noconfig."):
      key = arg[len("--noconfig.") :]
      if "=" in key:
        raise ValueError(
          f"override {arg!r}: --noconfig.KEY takes no value; expected --noconfig.{key.partition('=')[0]}"
        )
      overrides[key] = BareFlag("false")
    elif arg.startswith("--config."):
      key, eq, value = arg[len("--config.") :].partition("=")
      if not eq:
        if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
          value = BareFlag("true")
        else:
          value, i = argv[i + 1], i + 1
      overrides[key] = value
    else:
      rest.append(arg)
    i += 1
  return overrides, rest


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> None:
  """Sets dotted keys in place; string values are parsed to the type of the existing field."""
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = cfg
    for i, part in enumerate(parents):
      if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
        raise KeyError(f"unknown config key {key!r}: {'.'.join(parents[: i + 1])!r} is not a section")
      node = node[part]
    if leaf not in node:
      raise KeyError(f"unknown config key {key!r}; known keys here: {sorted(node.keys())}")
    current = node[leaf]
    if isinstance(value, BareFlag) and not isinstance(current, bool):
      given = "--config." + key if value == "true" else "--noconfig." + key
      raise ValueError(f"override {given!r} has no value; expected --config.{key}=VALUE ({key} is not a boolean)")
    if isinstance(value, str):
      value = _coerce(key, value, current)
    elif isinstance(current, tuple) and isinstance(value, list):  # sweep points come as JSON
      value = tuple(value)
    node[leaf] = value


def _coerce(key: str, text: str, current: Any) -> Any:
  if isinstance(current, str):
    return text
  if isinstance(current, bool) and text.lower() in ("true", "false"):
    return text.lower() == "true"
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ValueError(f"--config.{key}={text!r} is not a Python literal; expected a {type(current).__name__}") from None
  if isinstance(current, bool) and not isinstance(value, bool):
    raise ValueError(f"--config.{key}={text!r}: expected true or false")
  if isinstance(current, tuple):  # "3" -> (3,), "3,5" and "[3, 5]" -> (3, 5)
    value = tuple(value) if isinstance(value, list) else value if isinstance(value, tuple) else (value,)
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if current is not None and not isinstance(value, type(current)):
    raise ValueError(f"--config.{key}={text!r}: expected a {type(current).__name__}, got {type(value).__name__}")
  return value


def from_dict(resolved: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A run's config.json as a ConfigDict, keys added to base_config() since then at their defaults."""
  return ml_collections.ConfigDict(_merge(base_config().to_dict(), resolved))


def run_config_json(config: ml_collections.ConfigDict, **metadata: Any) -> dict[str, Any]:
  """What a workdir's config.json holds: the resolved config, the layout it was written in and `metadata`
  (RUN_METADATA: what the run knew of its data, where it ran)."""
  unknown = set(metadata) - set(RUN_METADATA)
  if unknown:
    raise ValueError(f"config.json metadata {sorted(unknown)}: expected keys among {RUN_METADATA}")
  return {"layout_version": LAYOUT_VERSION, **metadata, **to_dict(config)}


def read_run_metadata(workdir: str) -> dict[str, Any]:
  """The RUN_METADATA entries of a workdir's config.json (those it has)."""
  with open(os.path.join(workdir, "config.json")) as f:
    resolved = json.load(f)
  return {k: resolved[k] for k in RUN_METADATA if k in resolved}


def read_run_config(workdir: str) -> ml_collections.ConfigDict:
  """A workdir's resolved config; a workdir of another layout gets one line saying what to do."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path!r} does not exist; expected a workdir written by `gan-jax train`")
  with open(path) as f:
    resolved = json.load(f)
  layout = resolved.pop("layout_version", 1)
  for key in RUN_METADATA:
    resolved.pop(key, None)
  if layout != LAYOUT_VERSION:
    raise ValueError(
      f"workdir {workdir!r} is of gan_jax layout {layout}; expected layout {LAYOUT_VERSION}: convert it with "
      f"`python -m gan_jax.train.migrate {workdir}`"
    )
  return from_dict(resolved)


def _merge(defaults: dict, values: Mapping[str, Any]) -> dict:
  out = dict(defaults)
  for k, v in values.items():
    if isinstance(v, Mapping) and isinstance(out.get(k), dict):
      v = _merge(out[k], v)
    elif isinstance(v, list) and isinstance(out.get(k), list | tuple):  # JSON has no tuples
      v = tuple(v)
    out[k] = v
  return out


def to_dict(cfg: ml_collections.ConfigDict) -> dict:
  return json.loads(cfg.to_json_best_effort())


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, Mapping):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def architecture_mismatch(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
  """Differences between two resolved configs in keys that fix the state's shapes."""
  old_flat, new_flat = flatten(old), flatten(new)
  keys = sorted(set(old_flat) | set(new_flat))
  return [
    f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}"
    for k in keys
    if any(k == a or k.startswith(a + ".") for a in ARCHITECTURE_KEYS) and old_flat.get(k) != new_flat.get(k)
  ]
