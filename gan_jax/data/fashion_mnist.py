"""Fashion-MNIST (Xiao et al. 2017) as a TFDS array_record dataset, prepared from the raw IDX files.

TFDS's own `fashion_mnist` builder needs TensorFlow to prepare; this one only needs numpy, so the
random-access data source works in a TF-free install.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import urllib.request
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from gan_jax.data import prepare

SHAPE = (28, 28, 1)
NUM_CLASSES = 10
SPLIT_FILE_PREFIXES = {"train": "train", "test": "t10k"}
FILENAMES = tuple(
  f"{prefix}-{kind}-ubyte" for prefix in SPLIT_FILE_PREFIXES.values() for kind in ("images-idx3", "labels-idx1")
)
# Searched after `data.source_dir`; module-level so a test can keep a run off this machine's copy.
SEARCH_DIRS: list[str] = ["/usr/share/datasets/fashion-mnist"]
MIRRORS: list[str] = [
  "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
  "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]
# Short, so an offline machine reports the missing files instead of hanging.
DOWNLOAD_TIMEOUT_S = 5.0
_IDX_UNSIGNED_BYTE = 0x08


def read_idx(path: str) -> np.ndarray:
  """Reads an unsigned-byte IDX file, gzipped or not: the only kind (Fashion-)MNIST uses."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  if len(data) < 4 or data[:2] != b"\0\0" or data[2] != _IDX_UNSIGNED_BYTE:
    raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()}, expected 000008xx)")
  ndim = data[3]
  dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
  body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if body.size != math.prod(dims):
    raise ValueError(f"{path}: header says shape {dims} ({math.prod(dims)} bytes), file holds {body.size}")
  return body.reshape(dims)


def _idx_path(directory: str, filename: str) -> str | None:
  for candidate in (filename, filename + ".gz"):
    path = os.path.join(directory, candidate)
    if os.path.isfile(path):
      return path
  return None


def _has_all_files(directory: str) -> bool:
  return all(_idx_path(directory, f) is not None for f in FILENAMES)


def _download(dest_dir: str) -> list[str]:
  """Tries each mirror in turn; returns why each failed, so empty means the files are in dest_dir."""
  failures = []
  for mirror in MIRRORS:
    try:
      os.makedirs(dest_dir, exist_ok=True)
      for filename in FILENAMES:
        target = os.path.join(dest_dir, filename + ".gz")
        if os.path.isfile(target):
          continue
        url, part = mirror + filename + ".gz", target + ".part"
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(part, "wb") as f:
          shutil.copyfileobj(response, f)
        os.replace(part, target)
      return []
    except OSError as e:
      failures.append(f"{mirror}: {e}")
  return failures


def locate_idx_dir(source_dir: str, download_dir: str) -> str:
  """The first directory holding all four IDX files: source_dir, SEARCH_DIRS, then a fresh download."""
  searched = ([source_dir] if source_dir else []) + list(SEARCH_DIRS) + [download_dir]
  for directory in searched:
    if _has_all_files(directory):
      return directory
  failures = _download(download_dir)
  if MIRRORS and not failures:
    return download_dir
  download = f"download failed ({'; '.join(failures)})" if failures else "download disabled (no mirrors)"
  raise FileNotFoundError(
    f"Fashion-MNIST IDX files not found in {searched} and {download}. Get them with "
    f"`apt-get install dataset-fashion-mnist`, or download {', '.join(f + '.gz' for f in FILENAMES)} "
    f"from {MIRRORS[0] if MIRRORS else 'https://github.com/zalandoresearch/fashion-mnist'} into a "
    f"directory DIR and pass --config.data.source_dir=DIR."
  )


class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
  """Keeps the IDX order (no TFDS shuffling), so example i of a split is record i of its IDX file."""

  name = "gan_jax_fashion_mnist"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Built from the IDX files, in their order."}
  # TFDS finds a builder's checksums file through `code_path`, which needs the uninstalled
  # importlib_resources for a builder inside a package; the IDX files are fetched here, with no checksums.
  code_path = None

  def __init__(self, *, source_dir: str = "", **kwargs):
    self._source_dir = source_dir
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="Fashion-MNIST: 28x28 grayscale images of 10 clothing classes.",
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Tensor(shape=SHAPE, dtype=np.uint8),
          "label": tfds.features.Tensor(shape=(), dtype=np.int64),
        }
      ),
      supervised_keys=("image", "label"),
      homepage="https://github.com/zalandoresearch/fashion-mnist",
      disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
    download_dir = os.path.join(os.fspath(dl_manager.download_dir), "fashion_mnist")
    idx_dir = locate_idx_dir(self._source_dir, download_dir)
    return {split: self._generate_examples(idx_dir, prefix) for split, prefix in SPLIT_FILE_PREFIXES.items()}

  def _generate_examples(self, idx_dir: str, prefix: str) -> Iterator[tuple[int, dict]]:
    images_NHW = read_idx(_idx_path(idx_dir, f"{prefix}-images-idx3-ubyte"))
    labels_N = read_idx(_idx_path(idx_dir, f"{prefix}-labels-idx1-ubyte"))
    if images_NHW.shape[1:] != SHAPE[:2] or labels_N.shape != images_NHW.shape[:1]:
      raise ValueError(
        f"{idx_dir}/{prefix}-*: images {images_NHW.shape} and labels {labels_N.shape} are not N x {SHAPE[:2]} and N"
      )
    for i in range(len(labels_N)):
      yield i, {"image": images_NHW[i, :, :, None], "label": np.int64(labels_N[i])}


def prepared_builder(data_dir: str = "", source_dir: str = "") -> FashionMnistIdx:
  """Prepares on first use (seconds); later calls find the array_record files and return at once."""
  builder = FashionMnistIdx(data_dir=data_dir or None, file_format="array_record", source_dir=source_dir)
  if not builder.is_prepared():
    # Beside the version folder, not in it: TFDS renames its finished files into place as that folder.
    with prepare.exclusive(f"{os.path.normpath(builder.data_dir)}.lock"):
      builder = FashionMnistIdx(data_dir=data_dir or None, file_format="array_record", source_dir=source_dir)
      if not builder.is_prepared():  # another run may have prepared it while this one waited
        builder.download_and_prepare()
  return builder
