"""Run writers: what goes into TensorBoard's event files, read back with a reader written here, and into W&B."""

import glob
import io
import json
import os
import struct
import types

import numpy as np
import pytest
from PIL import Image
from tensorboardX.proto import event_pb2, plugin_hparams_pb2

from gan_jax.train import writers

CONFIG = {"seed": 3, "model": {"name": "dcgan", "latent_dim": 8}, "train": {"lr": 2e-4, "betas": [0.5, 0.9]}, "x": None}
RECORDS = [
  {"step": 5, "member": 0, "fid": 12.5, "is_mean": np.float64(2.0), "protocol": {"seed": 1, "ema": True}},
  {"step": 5, "member": 1, "fid": 30.0, "is_mean": 1.5, "protocol": {"seed": 2, "ema": True}},
]


def read_events(logdir):
  """Every Event in a folder's event files: TFRecords of [length u64, crc u32, data, crc u32], little-endian."""
  events = []
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    with open(path, "rb") as f:
      raw = f.read()
    at = 0
    while at < len(raw):
      (length,) = struct.unpack("<Q", raw[at : at + 8])
      event = event_pb2.Event()
      event.ParseFromString(raw[at + 12 : at + 12 + length])
      events.append(event)
      at += 12 + length + 4
  return events


def values_by_tag(events):
  """{tag: [(step, Summary.Value)]}."""
  out = {}
  for e in events:
    for v in e.summary.value:
      out.setdefault(v.tag, []).append((e.step, v))
  return out


def test_eval_scalars_take_numbers_only_under_eval_and_the_member():
  record = {"step": 7, "fid": 3, "ok": True, "note": "x", "kid_mean": np.float32(0.5), "protocol": {"seed": 0}}
  assert writers.eval_scalars([record]) == {"eval/fid": 3.0, "eval/kid_mean": 0.5}
  assert writers.eval_scalars(RECORDS) == {
    "member_0/eval/fid": 12.5,
    "member_0/eval/is_mean": 2.0,
    "member_1/eval/fid": 30.0,
    "member_1/eval/is_mean": 1.5,
  }


def test_tensorboard_holds_losses_eval_metrics_a_grid_and_the_config(tmp_path):
  w = writers.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(5, {"d_loss": 1.25, "g_loss": np.float32(0.5)})
  w.write_eval(5, RECORDS)
  grid_HW = np.arange(40 * 60, dtype=np.uint32).reshape(40, 60).astype(np.uint8)
  w.write_image(5, grid_HW)
  w.write_config(CONFIG)
  w.close()
  tags = values_by_tag(read_events(tmp_path / "tensorboard"))
  # Each member is its own TensorBoard run under the same tags, so the members' curves overlay.
  for logdir, tag, want in [
    ("", "d_loss", 1.25),
    ("member_0", "eval/fid", 12.5),
    ("member_1", "eval/fid", 30.0),
    ("member_1", "eval/is_mean", 1.5),
  ]:
    ((step, value),) = values_by_tag(read_events(tmp_path / "tensorboard" / logdir))[tag]
    assert (step, value.simple_value) == (5, want), (logdir, tag)
  assert not [t for t in tags if t.startswith("member_")]
  assert not [t for t in tags if "protocol" in t or t.endswith(("/step", "/member", "/seed"))]

  ((step, image),) = tags["samples"]
  assert step == 5 and (image.image.height, image.image.width) == (40, 60)
  decoded = np.asarray(Image.open(io.BytesIO(image.image.encoded_image_string)))
  np.testing.assert_array_equal(decoded[..., 0], grid_HW)  # gray shown as RGB, pixel for pixel

  ((_, text),) = tags["config/text_summary"]  # tensorboardX's suffix for text
  assert text.metadata.plugin_data.plugin_name == "text"
  shown = text.tensor.string_val[0].decode()
  assert json.loads(shown.removeprefix("```\n").removesuffix("\n```")) == CONFIG

  ((_, start),) = tags["_hparams_/session_start_info"]
  hparams = plugin_hparams_pb2.HParamsPluginData.FromString(
    start.metadata.plugin_data.content
  ).session_start_info.hparams
  assert hparams["model.name"].string_value == "dcgan"
  assert hparams["train.lr"].number_value == pytest.approx(2e-4) and hparams["seed"].number_value == 3
  assert json.loads(hparams["train.betas"].string_value) == [0.5, 0.9]
  assert "_hparams_/experiment" in tags


def test_rgb_picture_and_a_writer_that_is_not_primary(tmp_path):
  (tmp_path / "a").mkdir()
  w = writers.MetricsWriter(str(tmp_path / "a"), resume_step=0)
  picture_HWC = np.random.default_rng(0).integers(0, 256, (8, 12, 3)).astype(np.uint8)
  w.write_image(2, picture_HWC, tag="points")
  w.close()
  ((_, image),) = values_by_tag(read_events(tmp_path / "a" / "tensorboard"))["points"]
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.image.encoded_image_string))), picture_HWC)
  quiet = writers.MetricsWriter(str(tmp_path / "b"), resume_step=0, primary=False)
  quiet.write(1, {"d_loss": 1.0})
  quiet.write_eval(1, RECORDS)
  quiet.write_image(1, picture_HWC)
  quiet.write_config(CONFIG)
  quiet.close()
  assert not (tmp_path / "b").exists()


class FakeRun:
  """Records what a W&B run is asked to do."""

  def __init__(self):
    self.logged, self.config, self.finished = [], types.SimpleNamespace(values={}), False
    self.config.update = lambda d, allow_val_change: self.config.values.update(d)

  def log(self, data, step):
    self.logged.append((step, data))

  def finish(self):
    self.finished = True


def test_wandb_writer_and_the_fan_out_send_the_same_calls(tmp_path):
  run = FakeRun()
  group = writers.Writers([writers.MetricsWriter(str(tmp_path), 0), writers.WandbWriter(str(tmp_path), run=run)])
  group.write_config(CONFIG)
  group.write(3, {"d_loss": 1.0}, member=1)
  group.write_eval(3, RECORDS[:1])
  group.write_image(3, np.zeros((4, 4), np.uint8))
  group.close()
  assert run.config.values["train.lr"] == 2e-4 and run.config.values["model.name"] == "dcgan"
  assert run.logged[:2] == [
    (3, {"member_1/d_loss": 1.0}),
    (3, {"member_0/eval/fid": 12.5, "member_0/eval/is_mean": 2.0}),
  ]
  assert run.logged[2][0] == 3 and set(run.logged[2][1]) == {"samples"}
  assert run.finished
  assert "d_loss" in values_by_tag(read_events(tmp_path / "tensorboard" / "member_1"))


def test_wandb_offline_run_is_written_and_resumed(tmp_path, monkeypatch):
  pytest.importorskip("wandb")
  for var, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
    monkeypatch.setenv(var, str(tmp_path / sub))
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_SILENT", "true")
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  w = writers.open_writers(workdir, 0, wandb=True, wandb_project="gan-jax-test")
  w.write_config(CONFIG)
  w.write(1, {"d_loss": 1.0})
  w.write_eval(2, RECORDS)
  w.write_image(2, np.zeros((6, 6), np.uint8))
  w.write(3, {"d_loss": 0.5})  # a later step commits step 2
  run = w.writers[1]._run
  assert run.config["model.latent_dim"] == 8
  assert run.summary["member_1/eval/fid"] == 30.0 and run.summary["member_0/eval/is_mean"] == 2.0
  run_id = run.id
  w.close()
  with open(os.path.join(workdir, writers.WANDB_ID_FILE)) as f:
    assert f.read().strip() == run_id
  (folder,) = glob.glob(os.path.join(workdir, "wandb", f"offline-run-*-{run_id}"))
  assert glob.glob(os.path.join(folder, "files", "media", "images", "samples_*.png"))
  again = writers.WandbWriter(workdir, project="gan-jax-test")  # a resumed training run: the same W&B run
  assert again._run.id == run_id
  again.close()


def test_a_trained_run_shows_everything_in_tensorboard(tmp_path):
  """Through the train loop: losses, each evaluation's metrics at its step, the sample grids, the config."""
  from helpers import ring_config

  from gan_jax.records import read_jsonl
  from gan_jax.train import loop

  workdir = tmp_path / "run"
  config = ring_config(**{"eval.every": 3, "eval.num_samples": 256, "train.sample_every": 3})
  loop.train_and_evaluate(config, str(workdir))
  tags = values_by_tag(read_events(workdir / "tensorboard"))
  evals = {r["step"]: r for r in read_jsonl(workdir / "eval.jsonl")}
  assert sorted(evals) == [3, 6]
  for metric in ("modes", "high_quality", "reverse_kl"):
    assert [(s, v.simple_value) for s, v in tags[f"eval/{metric}"]] == [
      (s, pytest.approx(evals[s][metric])) for s in (3, 6)
    ]
  assert [s for s, _ in tags["d_loss"]] == list(range(1, 7))
  assert [s for s, _ in tags["samples"]] == [3, 6]
  assert min(v.image.width for _, v in tags["samples"]) >= 512
  ((_, text),) = tags["config/text_summary"]
  shown = json.loads(text.tensor.string_val[0].decode().removeprefix("```\n").removesuffix("\n```"))
  assert shown["train"]["steps"] == 6 and shown["data_info"]["name"] == "ring8" and "provenance" in shown
