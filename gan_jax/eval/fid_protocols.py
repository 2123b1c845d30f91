"""How pixels reach the FID Inception: one protocol per published pipeline, named after what it reproduces.

Each protocol fixes three things, and every evaluation record names the protocol it used:
* quantisation: whether generated images are rounded to uint8 first (a file would hold them so) or fed as
  floats;
* the resize to 299x299 (gan_jax/eval/resize.py), as that pipeline's library computes it;
* gray to RGB by repeating the channel, then the network's input scaling.

| name          | reproduces                           | quantised | resize                          | scaling         |
|---------------|--------------------------------------|-----------|---------------------------------|-----------------|
| `legacy_tf`   | TTUR, TF-GAN, compare_gan (Lucic)    | no        | TF1 resize_bilinear, no half-px | (x - 128) / 128 |
| `nvidia`      | StyleGAN2-ADA's metrics              | uint8     | the same, as grid_sample        | (x - 128) / 128 |
| `clean`       | clean-fid (its default "clean" mode) | uint8     | PIL bicubic, clipped to 0..255  | (x - 128) / 128 |
| `pytorch_fid` | pytorch-fid                          | uint8     | torch bilinear, half-pixel      | x / 127.5 - 1   |

compare_gan feeds its generator's [0, 1] output times 255 as floats; gan_jax's [-1, 1] output maps the same
way, (x + 1) * 127.5. NVIDIA's network resizes inside with affine_grid + grid_sample (align_corners=False,
shifted by 1/in - 1/out), which samples the input at i * in/out: TF1's legacy kernel. clean-fid and
pytorch-fid score uint8 files (clean-fid feeds a generator's floats as they are: the `clean` protocol matches
its scores of sample files). Real images come from uint8 files, so every protocol sees them alike before the
resize.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from gan_jax.eval import resize
from gan_jax.registry import Registry

INPUT_SIZE = 299
DEFAULT = "legacy_tf"


@dataclasses.dataclass(frozen=True)
class Protocol:
  name: str
  resize: str  # a gan_jax.eval.resize name
  quantize: bool  # generated images rounded to uint8 before the resize
  clip: bool  # resized pixels clipped to [0, 255] (clean-fid clips PIL's overshooting bicubic)
  reproduces: str
  centre: float = 128.0  # the network sees (x - centre) / centre: 128 in the TF graph, 127.5 in pytorch-fid

  @property
  def description(self) -> str:
    pixels = "uint8-quantised" if self.quantize else "float (not quantised)"
    clip = ", clipped to 0..255" if self.clip else ""
    return (
      f"{self.name} ({self.reproduces}): {pixels} pixels in 0..255, gray repeated to RGB, {self.resize} resize to "
      f"{INPUT_SIZE}x{INPUT_SIZE}{clip}, then (x - {self.centre:g}) / {self.centre:g}"
    )


PROTOCOLS: Registry[Protocol] = Registry("FID protocol")
for _p in (
  Protocol("legacy_tf", "tf1_bilinear", quantize=False, clip=False, reproduces="TTUR / TF-GAN / compare_gan"),
  Protocol("nvidia", "tf1_bilinear", quantize=True, clip=False, reproduces="StyleGAN2-ADA"),
  Protocol("clean", "pil_bicubic", quantize=True, clip=True, reproduces="clean-fid"),
  Protocol("pytorch_fid", "torch_bilinear", quantize=True, clip=False, reproduces="pytorch-fid", centre=127.5),
):
  PROTOCOLS.register(_p.name)(_p)


def get(name: str) -> Protocol:
  return PROTOCOLS.get(name)


def names() -> list[str]:
  return PROTOCOLS.names()


def network_input(protocol: Protocol, images_NHWC: jax.Array) -> jax.Array:
  """[-1, 1] NHWC images (1 or 3 channels, any size; quantised already where the protocol says) -> 299x299x3
  in the network's range. Traced under jit: the resize matrices are constants of the input's static shape."""
  pixels = (images_NHWC.astype(jnp.float32) + 1.0) * 127.5
  rows_OH, cols_PW = resize.resize_matrices(protocol.resize, pixels.shape[1:3], (INPUT_SIZE, INPUT_SIZE))
  highest = jax.lax.Precision.HIGHEST  # the resize is part of the definition: no reduced-precision passes
  x = jnp.einsum("oh,nhwc->nowc", rows_OH, pixels, precision=highest)
  x = jnp.einsum("pw,nowc->nopc", cols_PW, x, precision=highest)
  if protocol.clip:
    x = jnp.clip(x, 0.0, 255.0)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  return (x - protocol.centre) / protocol.centre
