"""Every test process sees 8 fake CPU devices, so 1-vs-8-device equality runs anywhere."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gzip  # noqa: E402
import struct  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# submitit binds its log handlers to sys.stdout / sys.stderr when first imported. Imported under a test's
# capsys, they would keep that test's capture file, closed after it, and logging's exit-time flush fails.
import submitit  # noqa: E402,F401


def write_idx(path: str, array: np.ndarray, compress: bool = True) -> None:
  """Writes an IDX file (the MNIST format): magic 0x08 (ubyte) + ndim, big-endian dims, data."""
  header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  opener = gzip.open if compress else open
  with opener(path + (".gz" if compress else ""), "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def make_fashion_idx(directory, num_train: int = 256, num_test: int = 64, seed: int = 0) -> str:
  """Small Fashion-MNIST-shaped IDX files: class-dependent blobs, so a classifier can learn them."""
  rng = np.random.default_rng(seed)
  for prefix, n in (("train", num_train), ("t10k", num_test)):
    labels = rng.integers(0, 10, n)
    yy, xx = np.mgrid[:28, :28]
    centres = np.stack([6 + 2 * labels, 22 - 2 * labels], 1)
    blob = np.exp(-((yy[None] - centres[:, :1, None]) ** 2 + (xx[None] - centres[:, 1:, None]) ** 2) / 30.0)
    images = np.clip(blob * 255 + rng.normal(0, 10, blob.shape), 0, 255)
    write_idx(str(directory / f"{prefix}-images-idx3-ubyte"), images)
    write_idx(str(directory / f"{prefix}-labels-idx1-ubyte"), labels)
  return str(directory)


@pytest.fixture(scope="session")
def fashion_idx_dir(tmp_path_factory) -> str:
  return make_fashion_idx(tmp_path_factory.mktemp("fashion_idx"))
