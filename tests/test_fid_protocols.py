"""The FID Inception's pixel pipelines, its weights reader and its name map: each against its definition."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from PIL import Image

from gan_jax.cli import parser as cli_parser
from gan_jax.eval import evaluate, feature_net, fid_protocols, inception, inception_fetch, resize, torchscript

SIZES = [(28, 299), (40, 299), (299, 299), (512, 299), (7, 3), (300, 17)]


# ---- resizes, each against its library's index arithmetic written out as a loop ----


def _tf1_loop(size_in, size_out):
  """tensorflow/core/kernels/image/resize_bilinear_op.cc, legacy (half_pixel_centers=False)."""
  w = np.zeros((size_out, size_in))
  scale = np.float32(size_in) / np.float32(size_out)  # float in TF's kernel, as the source coordinate
  for i in range(size_out):
    src = float(np.float32(i) * scale)
    lo = int(np.floor(src))
    hi = min(lo + 1, size_in - 1)
    w[i, lo] += 1 - (src - lo)
    w[i, hi] += src - lo
  return w


def _torch_loop(size_in, size_out):
  """aten/src/ATen/native/UpSample.h: area_pixel_compute_source_index (linear, align_corners=False)."""
  w = np.zeros((size_out, size_in))
  scale = np.float32(size_in) / np.float32(size_out)  # accscalar_t: float for float images
  for i in range(size_out):
    src = float(max(scale * (np.float32(i) + np.float32(0.5)) - np.float32(0.5), np.float32(0.0)))
    lo = int(src)
    hi = lo + (1 if lo < size_in - 1 else 0)
    w[i, lo] += 1 - (src - lo)
    w[i, hi] += src - lo
  return w


@pytest.mark.parametrize("size_in, size_out", SIZES)
def test_tf1_and_torch_bilinear_follow_their_index_arithmetic(size_in, size_out):
  np.testing.assert_allclose(resize.tf1_bilinear(size_in, size_out), _tf1_loop(size_in, size_out), atol=1e-12)
  np.testing.assert_allclose(resize.torch_bilinear(size_in, size_out), _torch_loop(size_in, size_out), atol=1e-12)


def test_tf1_bilinear_has_no_half_pixel_offset():
  """28 -> 299: output pixel 0 copies input pixel 0, and the last output pixels repeat the last input pixel."""
  w = resize.tf1_bilinear(28, 299)
  assert w[0, 0] == 1.0
  assert (w[-10:, -1] == 1.0).all()  # src = i * 28/299 >= 27 for the last ten: the edge pixel repeats
  half = resize.torch_bilinear(28, 299)
  assert np.abs(w - half).max() > 0.4  # the two kernels differ by about half an input pixel


@pytest.mark.parametrize("size_in, size_out", SIZES)
def test_pil_bicubic_equals_pil(size_in, size_out):
  """PIL's own float ("F") resize, as clean-fid calls it, against our matrix on random pixels."""
  pixels = np.random.default_rng(size_in).uniform(0, 255, (size_in, 5)).astype(np.float32)
  want = np.asarray(Image.fromarray(pixels, mode="F").resize((5, size_out), Image.BICUBIC), np.float64)
  got = resize.pil_bicubic(size_in, size_out) @ pixels.astype(np.float64)
  np.testing.assert_allclose(got, want, atol=2e-3)


@pytest.mark.parametrize("name", resize.RESIZES.names())
def test_resize_rows_sum_to_one_and_same_size_is_identity(name):
  rows_OH, cols_PW = resize.resize_matrices(name, (28, 40), (299, 40))
  np.testing.assert_allclose(rows_OH.sum(axis=1), 1.0, atol=1e-6)
  np.testing.assert_array_equal(cols_PW, np.eye(40))


def test_torch_bilinear_equals_torch_where_installed():
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(0).uniform(0, 255, (1, 3, 40, 32)).astype(np.float32)
  want = torch.nn.functional.interpolate(torch.from_numpy(x), size=(299, 299), mode="bilinear", align_corners=False)
  got = resize.resize_numpy("torch_bilinear", x.transpose(0, 2, 3, 1), (299, 299)).transpose(0, 3, 1, 2)
  np.testing.assert_allclose(got, want.numpy(), atol=2e-3)


# ---- protocols ----


def test_parser_lists_every_protocol():
  assert tuple(fid_protocols.names()) == cli_parser.FID_PROTOCOLS
  for convention in cli_parser.CONVENTIONS.values():
    assert convention["protocol"] in fid_protocols.names()


def test_network_input_is_the_definition():
  """(x + 1) * 127.5, the protocol's resize, gray repeated, the network's scaling; against numpy in float64."""
  images = np.random.default_rng(0).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
  for name in fid_protocols.names():
    protocol = fid_protocols.get(name)
    got = np.asarray(fid_protocols.network_input(protocol, jnp.asarray(images)))
    want = resize.resize_numpy(protocol.resize, (images.astype(np.float64) + 1) * 127.5, (299, 299))
    want = np.clip(want, 0, 255) if protocol.clip else want
    want = (np.repeat(want, 3, axis=-1) - protocol.centre) / protocol.centre
    assert got.shape == (2, 299, 299, 3)
    np.testing.assert_allclose(got, want, atol=2e-5, err_msg=name)


def _identity_net(protocol: fid_protocols.Protocol) -> feature_net.FeatureNet:
  """A feature 'network' whose features are its input pixels: shows exactly what reaches a network."""
  return feature_net.FeatureNet(
    name="identity",
    weights_sha256="0",
    feature_dim=4,
    num_classes=0,
    input_hw=(2, 2),
    input_channels=(1,),
    variables={},
    apply_fn=lambda v, x: (x.reshape(len(x), -1), jnp.zeros((len(x), 0))),
    batch_size=8,
    description="",
    protocol=protocol.name,
    quantize=protocol.quantize,
  )


def test_only_legacy_tf_scores_generated_floats_unquantised():
  """compare_gan feeds floats; StyleGAN2-ADA and clean-fid quantise to uint8 first."""
  floats = np.full((1, 2, 2, 1), 0.1234, np.float32)  # between two uint8 levels
  for name in fid_protocols.names():
    feats, _ = evaluate._features(_identity_net(fid_protocols.get(name)), floats)
    if name == "legacy_tf":
      np.testing.assert_array_equal(feats, floats.reshape(1, 4))
    else:
      np.testing.assert_allclose(feats, np.round((0.1234 + 1) * 127.5) / 127.5 - 1, atol=1e-6)


# ---- the TorchScript reader ----


def _global(module: str, name: str) -> bytes:
  return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
  return b"X" + struct.pack("<I", len(text)) + text.encode()


def _tensor(key: str, numel: int, size: tuple, stride: tuple) -> bytes:
  """torch's pickle of a float tensor: _rebuild_tensor_v2((storage pid), offset, size, stride, False, {})."""
  ints = lambda t: b"(" + b"".join(b"K" + bytes([v]) for v in t) + b"t"
  storage = b"(" + _str("storage") + _global("torch", "FloatStorage") + _str(key) + _str("cpu") + b"K" + bytes([numel])
  storage += b"tQ"  # TUPLE, BINPERSID
  empty_dict = _global("collections", "OrderedDict") + b")R"
  return (
    _global("torch._utils", "_rebuild_tensor_v2")
    + b"("
    + storage
    + b"K\x00"
    + ints(size)
    + ints(stride)
    + b"\x89"
    + empty_dict
    + b"tR"
  )


def _module(cls: str, fields: dict[str, bytes]) -> bytes:
  body = b"".join(_str(k) + v for k, v in fields.items())
  return _global("__torch__.tiny", cls) + b")\x81}(" + body + b"ub"  # NEWOBJ, dict, SETITEMS, BUILD


def _archive(pickled: bytes, storages: dict[str, np.ndarray]) -> io.BytesIO:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    z.writestr("tiny/data.pkl", b"\x80\x02" + pickled + b".")
    for key, values in storages.items():
      z.writestr(f"tiny/data/{key}", values.astype("<f4").tobytes())
  buf.seek(0)
  return buf


def test_reader_takes_tensors_strides_included():
  a, b = np.arange(6, dtype=np.float32), np.arange(4, dtype=np.float32) * 10
  child = _module("Conv", {"weight": _tensor("0", 6, (3, 2), (1, 3)), "stride": b"K\x02"})
  root = _module("Root", {"conv": child, "beta": _tensor("1", 4, (4,), (1,)), "training": b"\x89"})
  tensors = torchscript.read_tensors(_archive(root, {"0": a, "1": b}))
  assert sorted(tensors) == ["beta", "conv.weight"]
  np.testing.assert_array_equal(tensors["conv.weight"], a.reshape(2, 3).T)  # a transposed view, as stored
  np.testing.assert_array_equal(tensors["beta"], b)


def test_reader_refuses_any_other_global():
  evil = _global("os", "system") + _str("echo owned") + b"\x85R"  # os.system("echo owned")
  with pytest.raises(pickle.UnpicklingError, match="refused global os.system"):
    torchscript.read_tensors(_archive(_module("Root", {"x": evil}), {}))


# ---- the TF -> pytorch-fid name map ----


def test_tf_names_cover_every_conv_layer_once():
  conv_layers = {
    ".".join(path[:-2])
    for (collection, *path) in traverse_util.flatten_dict(inception.variable_shapes(False))
    if path[-2] == "conv"
  }
  assert len(conv_layers) == 94
  assert sorted(inception_fetch.TF_TO_PYTORCH_FID.values()) == sorted(conv_layers)
  assert len(inception_fetch.TF_TO_PYTORCH_FID) == 94 and inception_fetch.NUM_TENSORS == 4 * 94


def test_tf_tensors_convert_with_unit_scales():
  """Synthetic TF-named tensors of the right shapes through the map and the converter."""
  shapes = traverse_util.flatten_dict(inception.variable_shapes(False))
  rng = np.random.default_rng(0)
  tensors = {}
  for tf_layer, layer in inception_fetch.TF_TO_PYTORCH_FID.items():
    path = tuple(layer.split("."))
    kh, kw, cin, cout = shapes[("params", *path, "conv", "kernel")]
    tensors[f"{tf_layer}.weight"] = rng.normal(size=(cout, cin, kh, kw)).astype(np.float32)
    for leaf in ("beta", "mean", "var"):
      tensors[f"{tf_layer}.{leaf}"] = rng.normal(size=cout).astype(np.float32)
  variables = inception.convert_state_dict(inception_fetch.to_pytorch_fid_state(tensors))
  assert not inception.has_logits(variables)
  got = variables["params"]["Mixed_7c"]["branch3x3dbl_3b"]["conv"]["kernel"]
  want = tensors["net.layers.mixed_10.tower_1_mixed_conv_1.weight"].transpose(2, 3, 1, 0)
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(variables["params"]["Mixed_5b"]["branch_pool"]["bn"]["scale"], 1.0)
  np.testing.assert_array_equal(
    variables["batch_stats"]["Mixed_6e"]["branch7x7dbl_5"]["bn"]["var"],
    tensors["net.layers.mixed_7.tower_1.conv_4.var"],
  )
  tensors.pop("net.layers.conv.var")
  with pytest.raises(ValueError, match="375 tensors"):
    inception_fetch.to_pytorch_fid_state(tensors)


def test_damaged_weights_name_the_command(tmp_path, monkeypatch):
  """A converted file whose bytes no longer match the sha256 written beside it is refused in one line."""
  path = tmp_path / "inception.npz"
  path.write_bytes(b"not the weights")
  (tmp_path / "inception.npz.sha256").write_text("0" * 64 + "\n")
  with pytest.raises(ValueError, match="damaged.*make inception"):
    inception.load_inception(str(path))
  monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path / "empty"))
  monkeypatch.delenv(inception.ENV_VAR, raising=False)
  with pytest.raises(FileNotFoundError, match="make inception"):
    inception.weights_path()
