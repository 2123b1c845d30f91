"""Every test process sees 8 fake CPU devices, so 1-vs-8-device equality runs anywhere."""

import os

# LLVM at -O1: the tests run a few steps of tiny models, so compiling is most of their time. -O1 compiles
# nearly as fast as -O0 (one 8-device test: 20.3 s, against 19.7 s at -O0 and 22.9 s at the default) but
# does not slow the tests that run many steps (an f-AnoGAN encoder's 300: 23.6 s, 96 s at -O0). Every
# comparison in the tests is between programs compiled alike.
os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=1"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import tempfile  # noqa: E402

# gan_jax's user cache, per session: no test (nor a `gan-jax` subprocess) reads this machine's real-data
# features or finds its converted Inception, whose final-evaluation scores would cost minutes a run. The one
# test that needs the real weights (test_inception_golden.py) fetches them into USER_CACHE, kept across runs.
USER_CACHE = os.environ.get("GAN_JAX_CACHE", "")
_SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
os.environ["GAN_JAX_CACHE"] = os.path.join(tempfile.gettempdir(), f"gan_jax_tests_cache_{_SESSION}")
os.environ.pop("GAN_JAX_INCEPTION_WEIGHTS", None)

import jax  # noqa: E402

# One persistent XLA cache for the session's workers (pytest-xdist gives them one run id): the many tests that
# build the same small step (same shapes, same options) compile it once. Fresh per session, and set before any
# test module compiles anything, so no test sees another session's cache.
jax.config.update("jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), f"gan_jax_tests_xla_{_SESSION}"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)  # tiny programs: not worth the I/O
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import gzip  # noqa: E402
import struct  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gan_jax.train import xla_cpu  # noqa: E402

# Every test runs with the CPU speed settings `gan-jax` turns on, so a run through the CLI and one through the
# library compute alike whatever ran first; tests/test_fast_ops.py compares them with JAX's defaults.
xla_cpu.enable()

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


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  """A TFDS data dir for the module's image runs: one array_record preparation of the fake IDX files each."""
  return tmp_path_factory.mktemp("tfds")
