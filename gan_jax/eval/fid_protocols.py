"""How pixels reach the FID Inception: one protocol per published pipeline, named after what it reproduces.

Each protocol fixes three things, and every evaluation record names the protocol it used:
* quantisation: whether generated images are rounded to uint8 first (a file would hold them so) or fed as
  floats;
* the resize to 299x299 (gan_jax/eval/resize.py), as that pipeline's library computes it;
* gray to RGB by repeating the channel, then (pixel - 128) / 128, the TF graph's own input scaling.

| name        | reproduces                                 | quantised | resize                          |
|-------------|--------------------------------------------|-----------|---------------------------------|
| `legacy_tf` | TTUR, TF-GAN, compare_gan (Lucic et al.)   | no        | TF1 resize_bilinear, no half-px |
| `nvidia`    | StyleGAN2-ADA's metrics                    | uint8     | torch bilinear, half-pixel      |
| `clean`     | clean-fid (its default "clean" mode)       | uint8     | PIL bicubic, clipped to 0..255  |

compare_gan feeds its generator's [0, 1] output times 255 as floats; gan_jax's [-1, 1] output maps the same
way, (x + 1) * 127.5. Real images come from uint8 files, so they are the same under every protocol before the
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

  @property
  def description(self) -> str:
    pixels = "uint8-quantised" if self.quantize else "float (not quantised)"
    clip = ", clipped to 0..255" if self.clip else ""
    return (
      f"{self.name} ({self.reproduces}): {pixels} pixels in 0..255, gray repeated to RGB, {self.resize} resize to "
      f"{INPUT_SIZE}x{INPUT_SIZE}{clip}, then (x - 128) / 128"
    )


PROTOCOLS: Registry[Protocol] = Registry("FID protocol")
for _p in (
  Protocol("legacy_tf", "tf1_bilinear", quantize=False, clip=False, reproduces="TTUR / TF-GAN / compare_gan"),
  Protocol("nvidia", "torch_bilinear", quantize=True, clip=False, reproduces="StyleGAN2-ADA"),
  Protocol("clean", "pil_bicubic", quantize=True, clip=True, reproduces="clean-fid"),
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
  return (x - 128.0) / 128.0
