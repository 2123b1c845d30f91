"""What the train loop and evaluation read: dataset metadata, the batches of each step, whole splits.

The batch of step s holds positions [s*E, (s+1)*E) of one infinite stream (the dataset reshuffled every
epoch), so it depends on (seed, s) only: a resumed run needs no iterator state, and any number of
processes, each taking a contiguous slice, together read the same global batch. `data.exclude_classes`
shrinks the dataset the stream shuffles to the examples of the other classes; whole splits keep every class.

Sources: Fashion-MNIST and TFDS catalog datasets at their own size, a folder of images (data.folder) or an npz
file (data.npz) fitted to `data.resolution` and `data.channels`, and the synthetic 2D mixtures.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Iterator, Mapping
from typing import Any

import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from gan_jax.data import catalog, fashion_mnist, folder, npz, prepare, synthetic

CATALOG_PREFIX = "tfds:"
KNOWN_NAMES = (
  "fashion_mnist",
  *synthetic.MODES,
  CATALOG_PREFIX + "<catalog name>",
  folder.PREFIX + "PATH",
  npz.PREFIX + "PATH",
)
# Splits up to this size are decoded once and held in memory: decoding one array_record example costs
# ~60 us, too slow for the train step. Larger ones are decoded batch by batch in the prefetch threads.
IN_MEMORY_LIMIT_BYTES = 2 << 30
_READ_CHUNK = 4096
_NO_END = 2**62  # the step stream's bound: infinite in practice
# Batches are built ahead in threads, while the train step waits on the device.
READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=8)
# The example order's own entropy stream under the run's seed.
_ORDER_STREAM = 0x6F72646572


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What models and metrics need to know about a dataset before they see a batch."""

  name: str
  kind: str  # "images" or "points"
  shape: tuple[int, ...]  # One example: (28, 28, 1) or (2,).
  num_classes: int  # 0 when unlabeled; the number of modes for ring8 / grid25 (label = mode index).
  num_examples: int | None  # Size of the split; None for infinite synthetic data.


_INFO_FIELDS = tuple(f.name for f in dataclasses.fields(DatasetInfo))


def info_to_json(info: DatasetInfo) -> dict[str, Any]:
  """The `data_info` a workdir's config.json keeps, so a run loads without its dataset (info_from_json)."""
  return {**dataclasses.asdict(info), "shape": list(info.shape)}


def info_from_json(d: Mapping[str, Any]) -> DatasetInfo:
  """The DatasetInfo of an info_to_json dict; num_classes null reads as 0 (unlabelled)."""
  missing = [k for k in _INFO_FIELDS if k not in d]
  if missing or d["kind"] not in ("images", "points") or not isinstance(d["shape"], list | tuple):
    raise ValueError(f"data_info {dict(d)!r}: expected the keys {list(_INFO_FIELDS)}, kind images or points")
  return DatasetInfo(
    name=d["name"],
    kind=d["kind"],
    shape=tuple(int(n) for n in d["shape"]),
    num_classes=int(d["num_classes"] or 0),
    num_examples=None if d["num_examples"] is None else int(d["num_examples"]),
  )


def _builder_key(config: ml_collections.ConfigDict) -> tuple:
  """What picks an image dataset's prepared copy; a folder's includes its listing's hash, so edits show at once."""
  data = config.data
  resolution, channels = prepare.options(config)
  fingerprint = ""
  if data.name.startswith(folder.PREFIX):
    fingerprint = folder.list_folder(data.name).key(resolution or prepare.DEFAULT_RESOLUTION, channels)
  elif data.name != "fashion_mnist" and not (data.name.startswith(CATALOG_PREFIX) and data.name != CATALOG_PREFIX):
    raise ValueError(f"unknown data.name {data.name!r}; known: {', '.join(KNOWN_NAMES)}")
  return data.name, data.data_dir, data.source_dir, resolution, channels, fingerprint


@functools.lru_cache(maxsize=4)
def _builder(
  name: str, data_dir: str, source_dir: str, resolution: int, channels: int, fingerprint: str
) -> tfds.core.DatasetBuilder:
  if name.startswith(folder.PREFIX):
    return folder.prepared_builder(name, resolution, channels, data_dir)
  if name == "fashion_mnist":
    builder = fashion_mnist.prepared_builder(data_dir, source_dir)
  else:
    builder = catalog.prepared_builder(name[len(CATALOG_PREFIX) :], data_dir)
  height, _, stored_channels = builder.info.features["image"].shape
  if resolution not in (0, height) or channels not in (0, stored_channels):
    raise ValueError(
      f"data.resolution={resolution}, data.channels={channels}: {name} is read at its own shape "
      f"{builder.info.features['image'].shape}; expected 0 for both (folder: and npz: data are resized)"
    )
  return builder


SPLITS = ("train", "test")


def get_info(config: ml_collections.ConfigDict) -> DatasetInfo:
  """Prepares an image dataset on first use: its split size comes from the prepared files.

  Also checks data.exclude_classes against the dataset, so a bad value stops a run before it starts.
  """
  data = config.data
  if data.name in synthetic.MODES:
    if data.split not in SPLITS:  # drawn afresh, but a typo is still refused
      raise ValueError(f"data.split={data.split!r}: expected one of {SPLITS}")
    means_K2, _ = synthetic.mode_geometry(data.name)
    excluded_classes(config, "points", len(means_K2))
    return DatasetInfo(data.name, "points", (2,), len(means_K2), None)
  if data.name.startswith(npz.PREFIX):
    arrays = npz.load(data.name, data.split, *prepare.options(config))
    excluded_classes(config, arrays.kind, arrays.num_classes)
    return DatasetInfo(data.name, arrays.kind, arrays.x.shape[1:], arrays.num_classes, len(arrays.x))
  builder = _builder(*_builder_key(config))
  num_classes = fashion_mnist.NUM_CLASSES if data.name == "fashion_mnist" else catalog.num_classes(builder)
  excluded_classes(config, "images", num_classes)
  return DatasetInfo(
    name=data.name,
    kind="images",
    shape=tuple(builder.info.features["image"].shape),
    num_classes=num_classes,
    num_examples=builder.info.splits[data.split].num_examples,
  )


def split_size(config: ml_collections.ConfigDict, split: str) -> int:
  """The number of examples in `split` of an image dataset (preparing it on first use)."""
  data = config.data
  if data.name.startswith(npz.PREFIX):
    return len(npz.load(data.name, split, *prepare.options(config)).x)
  return _builder(*_builder_key(config)).info.splits[split].num_examples


def excluded_classes(config: ml_collections.ConfigDict, kind: str, num_classes: int) -> tuple[int, ...]:
  """data.exclude_classes, e.g. (3, 5), sorted and checked against a dataset of `kind` with `num_classes` labels."""
  given = config.data.exclude_classes
  if not given:
    return ()
  where = f"data.exclude_classes={tuple(given)!r}"
  if kind != "images" or not num_classes:
    raise ValueError(f"{where}: data.name={config.data.name!r} has no image classes; expected a labelled image dataset")
  if not all(isinstance(c, int) and not isinstance(c, bool) for c in given):
    raise ValueError(f"{where}: expected a tuple of class indices like (3,) or (3, 5)")
  classes = tuple(sorted(set(given)))
  bad = [c for c in classes if not 0 <= c < num_classes]
  if bad:
    raise ValueError(f"{where}: classes {bad} outside 0..{num_classes - 1}")
  if len(classes) == num_classes:
    raise ValueError(f"{where} leaves no class to train on; expected at most {num_classes - 1} of {num_classes}")
  return classes


class _ArraySource:
  """A split decoded once into memory: a batch is one vectorised gather. Holds uint8 images, or float points."""

  def __init__(self, x: np.ndarray, labels_N: np.ndarray, feature: str = "image"):
    self.x, self.labels_N, self.feature = x, labels_N, feature

  def __len__(self) -> int:
    return len(self.labels_N)

  def read(self, indices_B: np.ndarray) -> dict[str, np.ndarray]:
    return {self.feature: self.x[indices_B], "label": self.labels_N[indices_B]}

  def labels(self) -> np.ndarray:
    return self.labels_N


class _RecordSource:
  """A split too large for memory: a batch decodes its examples from the array_record files."""

  def __init__(self, records, has_label: bool):
    self._records = records
    self._has_label = has_label

  def __len__(self) -> int:
    return len(self._records)

  def read(self, indices_B: np.ndarray) -> dict[str, np.ndarray]:
    examples = self._records.__getitems__([int(i) for i in indices_B])
    labels = [e["label"] for e in examples] if self._has_label else np.zeros(len(examples))
    return {"image": np.stack([e["image"] for e in examples]), "label": np.asarray(labels, np.int32)}

  def labels(self) -> np.ndarray:
    """Every example's label: decodes the whole split once (excluding classes from a large dataset)."""
    chunks = range(0, len(self), _READ_CHUNK)
    return np.concatenate([self.read(np.arange(i, min(i + _READ_CHUNK, len(self))))["label"] for i in chunks])


@functools.lru_cache(maxsize=4)
def _image_source(builder_key: tuple, split: str) -> _ArraySource | _RecordSource:
  builder = _builder(*builder_key)
  records = builder.as_data_source(split)
  has_label = "label" in builder.info.features
  shape = tuple(builder.info.features["image"].shape)
  if len(records) * math.prod(shape) > IN_MEMORY_LIMIT_BYTES:
    return _RecordSource(records, has_label)
  images_NHWC = np.empty((len(records), *shape), np.uint8)
  labels_N = np.zeros(len(records), np.int32)
  for start in range(0, len(records), _READ_CHUNK):
    examples = records.__getitems__(list(range(start, min(start + _READ_CHUNK, len(records)))))
    images_NHWC[start : start + len(examples)] = np.stack([e["image"] for e in examples])
    if has_label:
      labels_N[start : start + len(examples)] = [e["label"] for e in examples]
  return _ArraySource(images_NHWC, labels_N)


def _source_for(config: ml_collections.ConfigDict, split: str) -> _ArraySource | _RecordSource:
  if config.data.name.startswith(npz.PREFIX):
    arrays = npz.load(config.data.name, split, *prepare.options(config))
    return _ArraySource(arrays.x, arrays.labels_N, "image" if arrays.kind == "images" else "points")
  return _image_source(_builder_key(config), split)


def _scaled(images_NHWC: np.ndarray) -> np.ndarray:
  return images_NHWC.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def _to_model_inputs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  x = batch["points"] if "points" in batch else _scaled(batch["image"])
  return {"x": x, "label": batch["label"].astype(np.int32)}


class _ExampleOrder:
  """Positions of the infinite example stream -> indices into the source: each epoch a fresh permutation.

  One vectorised permutation per epoch, so a batch costs a slice, not a shuffle call per example (grain's
  per-example index shuffle cost far more Python than the gather it feeds; docs/speed.md). NumPy keeps
  RandomState's stream fixed across versions, so the order of (seed, epoch) does not move with upgrades.
  """

  def __init__(self, seed: int, kept_N: np.ndarray):
    self._seed, self._kept_N = seed, kept_N
    self._epochs: dict[int, np.ndarray] = {}  # the latest epochs' permutations; prefetch threads share it

  def _permutation(self, epoch: int) -> np.ndarray:
    indices_N = self._epochs.get(epoch)
    if indices_N is None:
      words = np.random.SeedSequence([self._seed, _ORDER_STREAM, epoch]).generate_state(4)
      indices_N = self._kept_N[np.random.RandomState(words).permutation(len(self._kept_N))]
      # A new dict, swapped in whole: threads reading the old one see a consistent (if older) cache.
      self._epochs = {e: p for e, p in self._epochs.items() if e >= epoch - 1} | {epoch: indices_N}
    return indices_N

  def __call__(self, start: int, count: int) -> np.ndarray:
    """Source indices of stream positions [start, start + count)."""
    epochs_B, offsets_B = np.divmod(np.arange(start, start + count), len(self._kept_N))
    return np.concatenate([self._permutation(int(e))[offsets_B[epochs_B == e]] for e in np.unique(epochs_B)])


def make_batches(
  config: ml_collections.ConfigDict,
  *,
  start_step: int,
  examples_per_step: int,
  process_index: int = 0,
  process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """This process's slice of the global batch of each step from start_step on, forever.

  Yields {"x": float32 [examples_per_step // process_count, *shape], "label": int32 [same]}; images
  are in [-1, 1].
  """
  if examples_per_step <= 0 or examples_per_step % process_count:
    raise ValueError(
      f"examples_per_step={examples_per_step} is not a positive multiple of process_count={process_count}"
    )
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} is outside [0, process_count={process_count})")
  if start_step < 0:
    raise ValueError(f"start_step={start_step} is negative")
  per_process = examples_per_step // process_count
  name = config.data.name
  info = get_info(config)
  excluded = excluded_classes(config, info.kind, info.num_classes)
  if name in synthetic.MODES:
    return _point_batches(name, config.seed, start_step, examples_per_step, process_index, per_process)
  source = _source_for(config, config.data.split)
  kept_N = np.arange(len(source))  # the examples the stream shuffles: all, or those of the classes kept
  if excluded:
    kept_N = np.flatnonzero(~np.isin(source.labels(), excluded))
  order = _ExampleOrder(config.seed, kept_N)
  # Grain's elements are steps, so its per-element costs come once per batch: process p's slice of step s is
  # stream positions [s * E + p * E / P, s * E + (p + 1) * E / P), read in one gather.
  first = process_index * per_process
  steps = grain.MapDataset.range(start_step, _NO_END)
  batches = steps.map(lambda s: _to_model_inputs(source.read(order(s * examples_per_step + first, per_process))))
  return iter(batches.to_iter_dataset(READ_OPTIONS))


def _point_batches(
  name: str, seed: int, start_step: int, global_size: int, process_index: int, per_process: int
) -> Iterator[dict[str, np.ndarray]]:
  lo = process_index * per_process
  for step in itertools.count(start_step):
    points_N2, labels_N = synthetic.step_batch(name, seed, step, global_size)
    yield {"x": points_N2[lo : lo + per_process], "label": labels_N[lo : lo + per_process]}


def load_split(
  config: ml_collections.ConfigDict, split: str, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """(x float32, labels int32) of a whole split, or its first `limit` examples, in stored order.

  Synthetic data is infinite: there a split is a fixed sample of `limit` points per (seed, split).
  """
  name = config.data.name
  if name in synthetic.MODES:
    if limit is None:
      raise ValueError(f"data.name={name!r} is infinite: load_split needs a limit")
    return synthetic.split_sample(name, config.seed, split, limit)
  source = _source_for(config, split)
  batch = _to_model_inputs(source.read(np.arange(len(source))[:limit]))
  return batch["x"], batch["label"]
