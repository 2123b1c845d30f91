"""The tensors of a TorchScript archive, read without torch and without unpickling anything unknown.

A TorchScript file is a zip: `data.pkl` pickles the module tree, and every tensor's bytes lie in `data/<key>`.
Unpickling it with `pickle` would run whatever callables the file names; here `find_class` hands out only
inert stand-ins for an allowlist (module classes under `__torch__.`, `torch._utils._rebuild_tensor_v2`,
the float storage, `collections.OrderedDict`, `torch.jit._pickle.build_intlist`) and refuses any other
global in one line, so a tampered file cannot run code. Storages are read as little-endian float32.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from typing import IO, Any

import numpy as np

_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4")}


class _Module:
  """Stands in for a scripted module: pickle's BUILD fills its __dict__ with parameters and children."""


class _Storage:
  def __init__(self, dtype: np.dtype, key: str):
    self.dtype, self.key = dtype, key


class _StorageType:
  def __init__(self, name: str):
    self.name = name


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_unused: Any) -> np.ndarray:
  """torch._utils._rebuild_tensor_v2 on a numpy buffer: a strided view, copied to a contiguous array."""
  itemsize = storage.dtype.itemsize
  last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if all(size) else offset - 1
  if offset < 0 or min(stride, default=0) < 0 or last >= len(storage):
    raise pickle.UnpicklingError(f"tensor of size {tuple(size)} at offset {offset} lies outside its storage")
  view = np.lib.stride_tricks.as_strided(
    storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
  )
  return np.array(view)


class _Unpickler(pickle.Unpickler):
  def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str):
    super().__init__(file)
    self._archive, self._prefix = archive, prefix

  def find_class(self, module: str, name: str) -> Any:
    if module.startswith("__torch__."):
      return type(name, (_Module,), {})
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch.jit._pickle", "build_intlist"):
      return list
    raise pickle.UnpicklingError(f"refused global {module}.{name}: not a tensor, storage or scripted module")

  def persistent_load(self, pid: Any) -> np.ndarray:
    kind, storage_type, key, _location, numel = pid
    if kind != "storage" or not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f"refused persistent id {pid!r}: expected a float storage")
    raw = self._archive.read(f"{self._prefix}data/{key}")
    array = np.frombuffer(raw, _STORAGE_DTYPES[storage_type.name])
    if array.size != numel:
      raise pickle.UnpicklingError(f"storage {key}: {array.size} floats on disk, the pickle says {numel}")
    return array


def _tensors(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
  for name, value in vars(obj).items():
    if isinstance(value, np.ndarray):
      out[prefix + name] = value
    elif isinstance(value, _Module):
      _tensors(value, f"{prefix}{name}.", out)


def read_tensors(source: str | os.PathLike | IO[bytes]) -> dict[str, np.ndarray]:
  """{dotted module path: float32 array} of every tensor attribute in a TorchScript archive's module tree."""
  name = repr(os.fspath(source)) if isinstance(source, str | os.PathLike) else "the TorchScript archive"
  with zipfile.ZipFile(source) as archive:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
      raise ValueError(f"{name} is not a TorchScript archive (no single <name>/data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    with archive.open(pickles[0]) as f:
      root = _Unpickler(f, archive, prefix).load()
  if not isinstance(root, _Module):
    raise ValueError(f"{name}: data.pkl holds {type(root).__name__}, not a scripted module")
  out: dict[str, np.ndarray] = {}
  _tensors(root, "", out)
  return out
