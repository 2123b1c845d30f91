"""A folder of one's own images (`data.name = "folder:PATH"`) as a TFDS array_record dataset, without TensorFlow.

PNG and JPEG files anywhere under PATH are decoded once, fitted to `data.resolution` x `data.channels`
(data.prepare.fit) and written as array_record, so runs after the first read fixed-size uint8 arrays. Several
first-level subfolders are classes (sorted names -> labels 0..K-1); files at the top level or in one subfolder
are unlabelled. A prepared copy is found again by a hash of the sorted file list, the file sizes and the options,
so a folder that changes gets a fresh copy rather than stale data. A tenth of the images (at least one), those
whose paths hash lowest, form the "test" split that evaluation scores against: adding images moves few others.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from gan_jax.data import prepare

PREFIX = "folder:"
EXTENSIONS = (".png", ".jpg", ".jpeg")
# Part of the cache key: bump it when preparation changes what a folder's records hold.
FORMAT = 1
_DECODE_THREADS = min(8, os.cpu_count() or 1)  # PIL decodes and resamples without the GIL


@dataclasses.dataclass(frozen=True)
class Listing:
  """The image files under a folder: relative '/'-separated paths in sorted order, their sizes, the classes."""

  root: str
  files: tuple[str, ...]
  sizes: tuple[int, ...]
  classes: tuple[str, ...]  # the first-level subfolders, sorted; () when unlabelled

  def label(self, relpath: str) -> int:
    return self.classes.index(relpath.split("/", 1)[0]) if self.classes else 0

  def key(self, resolution: int, channels: int) -> str:
    """Names the prepared copy: what the records would hold, short of decoding the files."""
    digest = hashlib.sha256(json.dumps([FORMAT, resolution, channels, self.files, self.sizes]).encode())
    return f"r{resolution}_c{channels}_{digest.hexdigest()[:16]}"


def list_folder(spec: str) -> Listing:
  """The listing of `folder:PATH`; a missing folder or one without image files is a one-line ValueError."""
  root = prepare.source_path(spec, PREFIX, folder=True, expected="a folder of PNG/JPEG images")
  found = []
  for directory, subdirs, names in os.walk(root):
    subdirs[:] = [d for d in subdirs if not d.startswith(".")]  # .ipynb_checkpoints, .git and the like
    rel = os.path.relpath(directory, root)
    for name in names:
      if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
        relpath = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
        try:
          size = os.path.getsize(os.path.join(directory, name))
        except OSError:  # a dangling link: listed, then counted among the unreadable files
          size = -1
        found.append((relpath, size))
  if not found:
    raise ValueError(f"data.name={spec!r}: no {'/'.join(e[1:] for e in EXTENSIONS)} files under {root!r}")
  found.sort()
  files, sizes = zip(*found, strict=True)
  top_level = [f for f in files if "/" not in f]
  folders = sorted({f.split("/", 1)[0] for f in files if "/" in f})
  if len(folders) >= 2 and top_level:
    raise ValueError(
      f"data.name={spec!r}: {len(top_level)} images (e.g. {top_level[0]!r}) lie beside {len(folders)} class "
      f"subfolders; expected images only in class subfolders, or no subfolders for unlabelled data"
    )
  return Listing(root, files, sizes, tuple(folders) if len(folders) >= 2 else ())


def _probe(path: str) -> str | None:
  """The image's PIL mode from its header alone; None when PIL cannot open it."""
  try:
    with Image.open(path) as image:
      return image.mode
  except Exception:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError... for a bad file
    return None


def _decode(path: str, resolution: int, channels: int) -> np.ndarray | None:
  try:
    with Image.open(path) as image:
      return prepare.fit(image, resolution, channels)
  except Exception:  # a header that opened but a body that does not decode (a truncated file)
    return None


class FolderImages(tfds.core.GeneratorBasedBuilder):
  """One folder's images in sorted path order (no TFDS shuffling): train and a held-out test split."""

  name = "gan_jax_folder"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "PNG/JPEG files fitted to a square of data.resolution and data.channels."}
  code_path = None  # as fashion_mnist.FashionMnistIdx: no checksums file to find

  def __init__(self, *, listing: Listing, splits: dict[str, list[str]], resolution: int, channels: int, **kwargs):
    self._listing, self._splits = listing, splits
    self._resolution, self._channels = resolution, channels
    self.undecodable: list[str] = []
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    features = {"image": tfds.features.Tensor(shape=self.image_shape, dtype=np.uint8)}
    if self._listing.classes:
      features["label"] = tfds.features.ClassLabel(names=list(self._listing.classes))
    return tfds.core.DatasetInfo(
      builder=self,
      description=f"The images under {os.path.abspath(self._listing.root)}, fitted to {self.image_shape}.",
      features=tfds.features.FeaturesDict(features),
      disable_shuffling=True,
    )

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return (self._resolution, self._resolution, self._channels)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
    return {split: self._generate_examples(files) for split, files in self._splits.items()}

  def _generate_examples(self, files: list[str]) -> Iterator[tuple[int, dict]]:
    decode = lambda f: _decode(os.path.join(self._listing.root, f), self._resolution, self._channels)
    with concurrent.futures.ThreadPoolExecutor(_DECODE_THREADS) as pool:
      for i, (relpath, pixels) in enumerate(zip(files, pool.map(decode, files), strict=True)):
        if pixels is None:
          self.undecodable.append(relpath)
          continue
        example = {"image": pixels}
        if self._listing.classes:
          example["label"] = self._listing.label(relpath)
        yield i, example


def _split(listing: Listing, readable: list[str]) -> dict[str, list[str]]:
  """The held-out tenth: the files whose path hashes lowest, so one added image moves at most one other."""
  rank = lambda f: hashlib.sha256(f.encode()).digest()
  held_out = set(sorted(readable, key=rank)[: prepare.num_held_out(len(readable))])
  return {"train": [f for f in readable if f not in held_out], "test": [f for f in readable if f in held_out]}


def prepared_builder(spec: str, resolution: int, channels: int, data_dir: str = "") -> tfds.core.DatasetBuilder:
  """The prepared dataset of `folder:PATH`, preparing it first when this listing and these options are new."""
  listing = list_folder(spec)
  resolution = resolution or prepare.DEFAULT_RESOLUTION
  key = listing.key(resolution, channels)
  data_dir = data_dir or tfds.core.constants.get_default_data_dir()
  prepared = os.path.join(data_dir, FolderImages.name, key, str(FolderImages.VERSION))
  if os.path.isfile(os.path.join(prepared, "dataset_info.json")):
    return tfds.builder_from_directory(prepared)
  with prepare.exclusive(os.path.join(data_dir, FolderImages.name, f"{key}.lock")):
    if os.path.isfile(os.path.join(prepared, "dataset_info.json")):  # prepared meanwhile by another run
      return tfds.builder_from_directory(prepared)
    return _prepare(spec, listing, key, resolution, channels, data_dir)


def _prepare(
  spec: str, listing: Listing, key: str, resolution: int, channels: int, data_dir: str
) -> tfds.core.DatasetBuilder:
  modes = [_probe(os.path.join(listing.root, f)) for f in listing.files]
  readable = [f for f, mode in zip(listing.files, modes, strict=True) if mode is not None]
  if not readable:
    raise ValueError(f"data.name={spec!r}: none of the {len(listing.files)} image files under {listing.root!r} opens")
  if len(readable) < 2:
    raise ValueError(f"data.name={spec!r}: one readable image; expected at least 2, one held out for evaluation")
  if not channels:
    channels = 1 if all(m in prepare.GRAY_MODES for m in modes if m is not None) else 3
  builder = FolderImages(
    listing=listing,
    splits=_split(listing, readable),
    resolution=resolution,
    channels=channels,
    data_dir=data_dir,
    file_format="array_record",
    config=tfds.core.BuilderConfig(name=key),
  )
  try:
    builder.download_and_prepare()
  except AssertionError:  # TFDS refuses a split that yielded nothing: every file of it failed to decode
    raise ValueError(
      f"data.name={spec!r}: too few of the {len(listing.files)} image files under {listing.root!r} decode to fill "
      f"both the train and the held-out split (the rest are truncated or corrupt); expected at least 2 readable images"
    ) from None
  unreadable = [f for f, mode in zip(listing.files, modes, strict=True) if mode is None] + builder.undecodable
  if unreadable:
    print(
      f"warning: {spec}: skipped {len(unreadable)} unreadable of {len(listing.files)} image files "
      f"(e.g. {unreadable[0]!r})",
      file=sys.stderr,
    )
  return builder
