"""Where a run's numbers and pictures go: metrics.jsonl, TensorBoard events, optionally Weights & Biases.

Every writer takes the same calls, so the loop drives them alike: `write` (a log step's scalars),
`write_eval` (eval.jsonl records), `write_image` (a sample grid), `write_config` (the resolved config).
TensorBoard tags: losses as logged (`d_loss`), evaluation metrics under `eval/` (`eval/fid`), the grid as
`samples`, the config as the text `config` and as hparams. A population's member m is its own TensorBoard run,
DIR/tensorboard/member_{m}/, with the same tags, so the members' curves overlay in one chart; W&B and
metrics.jsonl keep one run, with `member_{m}/` tags and a `member` field.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gan_jax import config as config_lib
from gan_jax import files
from gan_jax.records import keep_records_until

EVAL_PREFIX = "eval/"
IMAGE_TAG = "samples"
CONFIG_TAG = "config"
# The hparams dashboard's metric columns: the evaluation metrics of images and of 2D points.
HPARAM_METRICS = ("fid", "kid_mean", "is_mean", "precision", "recall", "density", "coverage", "modes", "high_quality")
WANDB_ID_FILE = os.path.join("wandb", "gan_jax_run_id")


def summary_writer_class() -> type:
  """tensorboardX's SummaryWriter, imported without torch.

  tensorboardX imports torch whenever it is installed (the `[bench]` extra), only to accept torch tensors.
  That import takes seconds, in every `gan-jax train` process of a sweep; scalars need none of it, so the
  import is blocked while tensorboardX loads (it falls back to numpy without torch).
  """
  blocked = "torch" not in sys.modules
  if blocked:
    sys.modules["torch"] = None  # `import torch` now raises ImportError
  try:
    from tensorboardX import SummaryWriter
  finally:
    if blocked:
      del sys.modules["torch"]
  return SummaryWriter


def member_prefix(member: int | None) -> str:
  return "" if member is None else f"member_{member}/"


def eval_scalars(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
  """{tag: value} of eval.jsonl records: numeric metrics only, under `eval/` and the record's member.

  "step" and "member" place a value rather than being one; the nested protocol is not a metric.
  """
  out = {}
  for record in records:
    prefix = member_prefix(record.get("member")) + EVAL_PREFIX
    for key, value in record.items():
      if key in ("step", "member") or isinstance(value, bool) or not isinstance(value, int | float | np.number):
        continue
      out[prefix + key] = float(value)
  return out


def hparam_values(config_dict: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
  """The config flattened to dotted keys, each a number, bool or string as the hparams dashboard takes them."""
  out = {}
  for key, value in config_lib.flatten(config_dict).items():
    out[key] = value if isinstance(value, bool | int | float | str) else json.dumps(value)
  return out


def config_text(config_dict: Mapping[str, Any]) -> str:
  """The config as indented JSON in a Markdown code block (TensorBoard renders text as Markdown)."""
  return "```\n" + json.dumps(config_dict, indent=2, sort_keys=True) + "\n```"


class MetricsWriter:
  """metrics.jsonl and TensorBoard; on resume drops lines and events past the restored step.

  Only the primary process (process 0 of a multi-host run) writes: every process holds the same metrics,
  and N of them appending to (and, on resume, rewriting) one file on a shared filesystem would garble it.
  """

  def __init__(self, workdir: str, resume_step: int, primary: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._file = self._tb = None
    if not primary:
      return
    keep_records_until(self.path, resume_step)
    self._file = open(self.path, "a")  # noqa: SIM115  (lives as long as the run)
    self._logdir, self._resume_step = os.path.join(workdir, "tensorboard"), resume_step
    self._tb = summary_writer_class()(self._logdir, purge_step=resume_step + 1)
    self._member_tb: dict[int, Any] = {}

  def _tb_of(self, member: int | None) -> Any:
    """The run's TensorBoard writer, or member m's own run (opened at its first value, cut on resume alike)."""
    if member is None:
      return self._tb
    if member not in self._member_tb:
      logdir = os.path.join(self._logdir, f"member_{member}")
      self._member_tb[member] = summary_writer_class()(logdir, purge_step=self._resume_step + 1)
    return self._member_tb[member]

  def write(self, step: int, scalars: dict[str, Any], member: int | None = None) -> None:
    """One record; `member` tags the records of a population's members."""
    if self._file is None:
      return
    tagged = {} if member is None else {"member": member}
    record = {"step": int(step), **tagged, **{k: float(v) for k, v in scalars.items()}}
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    tb = self._tb_of(member)
    for k, v in scalars.items():
      tb.add_scalar(k, float(v), int(step))

  def write_eval(self, step: int, records: Sequence[Mapping[str, Any]]) -> None:
    """One evaluation's records (one per member), as eval.jsonl holds them; eval.jsonl itself is written elsewhere."""
    if self._tb is None:
      return
    for record in records:
      tb = self._tb_of(record.get("member"))
      for tag, value in eval_scalars([{k: v for k, v in record.items() if k != "member"}]).items():
        tb.add_scalar(tag, value, int(step))
      tb.flush()

  def write_image(self, step: int, picture: np.ndarray, tag: str = IMAGE_TAG) -> None:
    """A uint8 picture, [H, W] (gray) or [H, W, 3]: the sample grid of `step`."""
    if self._tb is None:
      return
    picture = np.asarray(picture, np.uint8)
    self._tb.add_image(tag, picture, int(step), dataformats="HW" if picture.ndim == 2 else "HWC")
    self._tb.flush()

  def write_config(self, config_dict: Mapping[str, Any], step: int = 0) -> None:
    """The resolved config as text and as hparams (dotted keys), so runs can be told apart and compared."""
    if self._tb is None:
      return
    from tensorboardX.summary import hparams

    self._tb.add_text(CONFIG_TAG, config_text(config_dict), int(step))
    # The experiment and session-start summaries in this run's own file (add_hparams would open a sub-run).
    experiment, session_start, _ = hparams(hparam_values(config_dict), {EVAL_PREFIX + m: 0.0 for m in HPARAM_METRICS})
    self._tb.file_writer.add_summary(experiment, int(step))
    self._tb.file_writer.add_summary(session_start, int(step))
    self._tb.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      for tb in (self._tb, *self._member_tb.values()):
        tb.close()


class WandbWriter:
  """The same calls, to a Weights & Biases run (`pip install gan-jax[wandb]`; WANDB_MODE=offline works unsynced).

  The run's id is kept in DIR/wandb/, so a resumed training run logs into the same W&B run. W&B cannot
  rewind: values of steps that a resumed run trains again stay as first logged. `run` replaces wandb.init
  (a test's stand-in).
  """

  def __init__(self, workdir: str, *, project: str = "", primary: bool = True, run: Any = None):
    self._run = None
    if not primary:
      return
    if run is None:
      run = _init_wandb(workdir, project)
    self._run = run

  def write(self, step: int, scalars: dict[str, Any], member: int | None = None) -> None:
    if self._run is not None:
      prefix = member_prefix(member)
      self._run.log({prefix + k: float(v) for k, v in scalars.items()}, step=int(step))

  def write_eval(self, step: int, records: Sequence[Mapping[str, Any]]) -> None:
    if self._run is not None:
      self._run.log(eval_scalars(records), step=int(step))

  def write_image(self, step: int, picture: np.ndarray, tag: str = IMAGE_TAG) -> None:
    if self._run is not None:
      import wandb

      self._run.log({tag: wandb.Image(np.asarray(picture, np.uint8))}, step=int(step))

  def write_config(self, config_dict: Mapping[str, Any], step: int = 0) -> None:
    if self._run is not None:
      # Changed values are allowed: a resumed run may change its learning rates.
      self._run.config.update(hparam_values(config_dict), allow_val_change=True)

  def close(self) -> None:
    if self._run is not None:
      self._run.finish()
      self._run = None


def check_wandb_credentials() -> None:
  """log.wandb=True (W&B installed) checked before the run writes anything: credentials unless WANDB_MODE is
  offline or disabled (W&B would otherwise fail at its first call, after the workdir was written)."""
  if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun") or os.environ.get("WANDB_API_KEY"):
    return
  try:  # W&B's own lookup of stored credentials (netrc, settings), without prompting; private, so guarded
    from wandb.sdk.lib.wbauth import authenticate

    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    found = authenticate.authenticate_session(host=host, source="gan-jax", prompt=False, update_session=False)
  except (ImportError, AttributeError, TypeError):
    return  # another W&B version: its own error comes at wandb.init
  if found is None:
    raise ValueError(
      "log.wandb=True: no W&B credentials (`wandb login`, or WANDB_API_KEY); expected those, or WANDB_MODE=offline "
      "to log unsynced, or log.wandb=False"
    )


def _init_wandb(workdir: str, project: str) -> Any:
  try:
    import wandb
  except ImportError:
    raise ImportError("log.wandb=True needs Weights & Biases: `pip install gan-jax[wandb]`") from None
  id_path = os.path.join(workdir, WANDB_ID_FILE)
  run_id = ""
  if os.path.exists(id_path):
    with open(id_path) as f:
      run_id = f.read().strip()
  if not run_id:
    run_id = secrets.token_hex(6)  # W&B ids are letters and digits, unique in a project
    os.makedirs(os.path.dirname(id_path), exist_ok=True)
    files.write_atomic(id_path, run_id + "\n")
  name = os.path.basename(os.path.abspath(workdir))
  # WANDB_MODE as set now: W&B keeps process-wide settings from its first use (the credentials check) otherwise.
  mode = os.environ.get("WANDB_MODE") or None
  return wandb.init(project=project or None, dir=workdir, id=run_id, name=name, resume="allow", mode=mode)


class Writers:
  """Fans each call out to several writers (TensorBoard and metrics.jsonl, then W&B when enabled)."""

  def __init__(self, writers: Sequence[Any]):
    self.writers = list(writers)

  def write(self, step: int, scalars: dict[str, Any], member: int | None = None) -> None:
    for w in self.writers:
      w.write(step, scalars, member=member)

  def write_eval(self, step: int, records: Sequence[Mapping[str, Any]]) -> None:
    for w in self.writers:
      w.write_eval(step, records)

  def write_image(self, step: int, picture: np.ndarray, tag: str = IMAGE_TAG) -> None:
    for w in self.writers:
      w.write_image(step, picture, tag)

  def write_config(self, config_dict: Mapping[str, Any], step: int = 0) -> None:
    for w in self.writers:
      w.write_config(config_dict, step)

  def close(self) -> None:
    for w in self.writers:
      w.close()


def open_writers(
  workdir: str, resume_step: int, *, primary: bool = True, wandb: bool = False, wandb_project: str = ""
) -> Writers:
  """metrics.jsonl + TensorBoard, and a W&B run when `wandb` (config log.wandb, log.wandb_project)."""
  writers: list[Any] = [MetricsWriter(workdir, resume_step, primary)]
  if wandb:
    writers.append(WandbWriter(workdir, project=wandb_project, primary=primary))
  return Writers(writers)
