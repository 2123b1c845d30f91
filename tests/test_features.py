"""Feature networks: the shipped Fashion-MNIST classifier (hash, accuracy, input checks) and the FID Inception."""

import os
import shutil

import numpy as np
import pytest
from flax import traverse_util

from gan_jax.data import fashion_mnist
from gan_jax.eval import feature_net, features, inception

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="module")
def net():
  return features.load_fashion_classifier()


def _blob_images(idx_dir, n=40):
  images_NHW = fashion_mnist.read_idx(os.path.join(idx_dir, "train-images-idx3-ubyte.gz"))[:n]
  return images_NHW[..., None].astype(np.float32) / 127.5 - 1.0


# ---- Fashion-MNIST classifier ----


def test_shipped_weights_match_recorded_hash(net):
  assert feature_net.file_sha256(features.fashion_weights_path()) == features.FASHION_WEIGHTS_SHA256
  assert net.weights_sha256 == features.FASHION_WEIGHTS_SHA256
  assert os.path.getsize(features.fashion_weights_path()) < 400_000


def test_corrupted_copy_is_refused(tmp_path):
  copy = tmp_path / "weights.npz"
  shutil.copy(features.fashion_weights_path(), copy)
  raw = bytearray(copy.read_bytes())
  raw[len(raw) // 2] ^= 0xFF
  copy.write_bytes(bytes(raw))
  with pytest.raises(ValueError, match="sha256"):
    features.load_fashion_classifier(copy)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR), reason=f"real Fashion-MNIST not installed at {DEBIAN_DIR}")
def test_accuracy_on_real_test_subset(net):
  images_NHW = fashion_mnist.read_idx(os.path.join(DEBIAN_DIR, "t10k-images-idx3-ubyte.gz"))[:1000]
  labels_N = fashion_mnist.read_idx(os.path.join(DEBIAN_DIR, "t10k-labels-idx1-ubyte.gz"))[:1000]
  _, probs_NC = net(images_NHW[..., None].astype(np.float32) / 127.5 - 1.0)
  assert (probs_NC.argmax(axis=1) == labels_N).mean() > 0.88


def test_features_shape_and_batch_independence(net, fashion_idx_dir):
  images_NHWC = _blob_images(fashion_idx_dir)
  feats_ND, probs_NC = net(images_NHWC)
  assert feats_ND.shape == (40, 128) and probs_NC.shape == (40, 10)
  assert feats_ND.dtype == np.float32 and (feats_ND >= 0).all()  # post-ReLU
  np.testing.assert_allclose(probs_NC.sum(axis=1), 1.0, rtol=1e-5)
  again_ND, _ = net(images_NHWC)
  np.testing.assert_array_equal(feats_ND, again_ND)
  small = features.load_fashion_classifier(batch_size=7)  # several padded batches
  small_ND, small_NC = small(images_NHWC)
  np.testing.assert_allclose(small_ND, feats_ND, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(small_NC, probs_NC, rtol=1e-5, atol=1e-6)
  assert net(images_NHWC[:0])[0].shape == (0, 128)


@pytest.mark.parametrize(
  "images, message",
  [
    (np.zeros((2, 32, 32, 1), np.float32), "28x28"),
    (np.zeros((2, 28, 28, 3), np.float32), "C in"),
    (np.zeros((2, 28, 28), np.float32), "C in"),
    (np.full((2, 28, 28, 1), 255.0, np.float32), r"\[-1, 1\]"),
    (np.full((2, 28, 28, 1), np.nan, np.float32), r"\[-1, 1\]"),
  ],
)
def test_wrong_input_is_refused(net, images, message):
  with pytest.raises(ValueError, match=message):
    net(images)


def test_unknown_feature_net():
  with pytest.raises(ValueError, match="unknown feature net"):
    features.get_feature_net("vgg")


# ---- FID Inception ----


def _torch_key(collection, path):
  """Written out from torchvision's Inception3 naming, independently of the converter."""
  leaf = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
  return ".".join(path[:-1]) + "." + leaf[path[-1]]


def _synthetic_state_dict():
  """Random tensors under pytorch-fid's names and PyTorch layouts (OIHW convs, [out, in] fc)."""
  rng = np.random.default_rng(0)
  state = {}
  for (collection, *path), shape in traverse_util.flatten_dict(inception.variable_shapes()).items():
    if len(shape) == 4:
      kh, kw, cin, cout = shape
      value = rng.normal(0, np.sqrt(2 / (kh * kw * cin)), (cout, cin, kh, kw))
    elif len(shape) == 2:
      value = rng.normal(0, 0.01, shape[::-1])
    elif path[-1] in ("var", "scale"):
      value = rng.uniform(0.5, 1.5, shape)
    else:
      value = rng.normal(0, 0.1, shape)
    state[_torch_key(collection, path)] = value.astype(np.float32)
    if path[-1] == "mean":
      state[".".join(path[:-1]) + ".num_batches_tracked"] = np.array(0)
  return state


@pytest.fixture(scope="module")
def synthetic_state():
  return _synthetic_state_dict()


def test_synthetic_state_dict_has_pytorch_fid_names_and_shapes(synthetic_state):
  state = synthetic_state
  expected = {  # From torchvision's Inception3 / pytorch-fid's fid_inception_v3 definitions.
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
  }
  for key, shape in expected.items():
    assert state[key].shape == shape, key
  assert sum(k.endswith(".conv.weight") for k in state) == 94
  # torchvision's inception_v3 has 27,161,264 parameters; less AuxLogits (3,326,696), plus 8 classes.
  trainable = sum(v.size for k, v in state.items() if not k.endswith(("running_mean", "running_var", "tracked")))
  assert trainable == 27_161_264 - 3_326_696 + 8 * 2049


def test_converter_maps_layouts_and_round_trips(synthetic_state):
  state = synthetic_state
  variables = inception.convert_state_dict(state)
  np.testing.assert_array_equal(
    variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"][0, 5, 3, 7],
    state["Mixed_6b.branch7x7_2.conv.weight"][7, 3, 0, 5],
  )
  np.testing.assert_array_equal(variables["params"]["fc"]["kernel"][11, 5], state["fc.weight"][5, 11])
  np.testing.assert_array_equal(
    variables["batch_stats"]["Mixed_7c"]["branch1x1"]["bn"]["var"], state["Mixed_7c.branch1x1.bn.running_var"]
  )
  back = inception.to_state_dict(variables)
  assert back.keys() == {k for k in state if not k.endswith("num_batches_tracked")}
  for key, value in back.items():
    np.testing.assert_array_equal(value, state[key], err_msg=key)


@pytest.mark.parametrize(
  "edit, message",
  [
    (lambda s: s.pop("Mixed_5b.branch1x1.conv.weight"), "1 missing"),
    (lambda s: s.update({"AuxLogits.fc.weight": np.zeros((1000, 768))}), "1 unexpected"),
    (lambda s: s.update({"fc.weight": np.zeros((1000, 2048), np.float32)}), "1 wrong shapes"),
  ],
)
def test_converter_refuses_other_networks(synthetic_state, edit, message):
  state = dict(synthetic_state)
  edit(state)
  with pytest.raises(ValueError, match=message):
    inception.convert_state_dict(state)


def test_missing_weights_is_one_clear_error(monkeypatch, tmp_path):
  monkeypatch.delenv(inception.ENV_VAR, raising=False)
  with pytest.raises(FileNotFoundError, match="make inception"):
    inception.load_inception()
  monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "absent.npz"))
  with pytest.raises(FileNotFoundError, match="absent.npz"):
    inception.load_inception()


def _softmax_rows(logits_NC):
  e = np.exp(logits_NC - logits_NC.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


def test_inception_score_logits_leave_out_the_bias(synthetic_state):
  """As the original TF Inception Score: pool3 times the softmax layer's weights, with no bias added."""
  variables = inception.convert_state_dict(synthetic_state)
  pool3_ND = np.random.default_rng(1).uniform(0, 1, (5, inception.POOL3_DIM)).astype(np.float32)
  weight_CD, bias_C = synthetic_state["fc.weight"], synthetic_state["fc.bias"]  # PyTorch layout, not converted
  want_NC = pool3_ND.astype(np.float64) @ weight_CD.T.astype(np.float64)
  got_NC = np.asarray(inception.is_logits(variables, pool3_ND))
  np.testing.assert_allclose(got_NC, want_NC, rtol=1e-5, atol=1e-5)
  assert np.abs(got_NC - (want_NC + bias_C)).max() > 0.1  # the bias is large enough to tell the two apart


@pytest.mark.slow  # test-all: InceptionV3 at 299x299; the fast tier checks the converted names and shapes
def test_converted_random_weights_give_pool3_and_logits(synthetic_state, monkeypatch, tmp_path):
  src, dst = tmp_path / "state.npz", tmp_path / "inception.npz"
  np.savez(src, **synthetic_state)
  assert inception.main([str(src), str(dst)]) == 0
  monkeypatch.setenv(inception.ENV_VAR, str(dst))
  net = inception.load_inception(batch_size=4)
  assert net.weights_sha256 == feature_net.file_sha256(dst)
  gray_NHWC = np.linspace(-1, 1, 3 * 28 * 28, dtype=np.float32).reshape(3, 28, 28, 1)
  pool3_ND, probs_NC = net(gray_NHWC)  # padded to a batch of 4
  assert pool3_ND.shape == (3, 2048) and probs_NC.shape == (3, 1008)
  assert np.isfinite(pool3_ND).all() and (pool3_ND >= 0).all()
  assert pool3_ND.std(axis=0).mean() > 1e-3  # the synthetic weights do not wash the input out
  np.testing.assert_allclose(probs_NC.sum(axis=1), 1.0, rtol=1e-5)
  # The IS probabilities, in numpy from the state dict: softmax of pool3 x fc weights, no bias.
  want_NC = _softmax_rows(pool3_ND.astype(np.float64) @ synthetic_state["fc.weight"].T.astype(np.float64))
  np.testing.assert_allclose(probs_NC, want_NC, rtol=1e-4, atol=1e-7)
  with_bias_NC = _softmax_rows(
    pool3_ND.astype(np.float64) @ synthetic_state["fc.weight"].T + synthetic_state["fc.bias"]
  )
  assert np.abs(probs_NC - with_bias_NC).max() > 1e-3
  rgb_pool3_ND, _ = net(np.repeat(gray_NHWC, 3, axis=-1))  # gray is repeated to RGB
  np.testing.assert_allclose(rgb_pool3_ND, pool3_ND, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="C in"):
    net(np.zeros((3, 32, 32, 2), np.float32))
