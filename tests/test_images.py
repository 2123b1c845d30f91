"""Images between the model and files: uint8 quantization, sample grids a person can see, one PNG per sample."""

import os

import numpy as np
import pytest
from PIL import Image

from gan_jax import images


def test_quantize_is_an_identity_on_images_read_from_uint8():
  u = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
  x = images.from_uint8(u)
  np.testing.assert_array_equal(x, u.astype(np.float32) / np.float32(127.5) - np.float32(1.0))  # the data pipeline's
  assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
  np.testing.assert_array_equal(images.to_uint8(x), u)
  np.testing.assert_array_equal(images.quantize(x), x)  # bit for bit: real data is scored unchanged


def test_quantize_rounds_to_the_nearest_uint8_level():
  x = np.array([-1.0, -0.999, 0.0, 0.3, 1.0], np.float32)
  levels = np.array([0, 0, 128, 166, 255], np.uint8)  # (x + 1) * 127.5 rounded by hand, the half to even
  np.testing.assert_array_equal(images.to_uint8(x), levels)
  np.testing.assert_array_equal(images.quantize(x), images.from_uint8(levels))
  assert images.quantize(x)[1] == -1.0 and images.quantize(x)[3] != x[3]


def _tiles(n, h=28, w=28, c=1, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (n, h, w, c)).astype(np.float32)


def test_grid_is_bordered_and_enlarged_by_an_integer_factor():
  x = _tiles(64)
  grid = images.image_grid(x)
  gap, scale = 2, 3
  assert (images.GRID_GAP, images.GRID_MIN_WIDTH) == (2, 512)
  width = 8 * (28 + gap) + gap  # 8 columns, a gap before each and one after the last
  assert 2 * width < 512 <= 3 * width  # so 3 is the least integer factor
  assert grid.shape == (726, 726) == (3 * width, 3 * width) and grid.dtype == np.uint8  # 8 x 8 tiles: square
  u = images.to_uint8(x)[..., 0]
  for i in (0, 9, 63):  # row 0 column 0, row 1 column 1, the last
    r, q = divmod(i, 8)
    top, left = (gap + r * (28 + gap)) * scale, (gap + q * (28 + gap)) * scale
    # Nearest neighbour: every source pixel becomes a scale x scale block.
    np.testing.assert_array_equal(
      grid[top : top + 28 * scale, left : left + 28 * scale], np.kron(u[i], np.ones((scale, scale)))
    )
  assert (grid[: gap * scale] == 255).all() and (grid[:, : gap * scale] == 255).all()  # the border
  assert (grid[-gap * scale :] == 255).all() and (grid[:, -gap * scale :] == 255).all()


def test_grid_already_wide_enough_keeps_its_size_and_rgb_its_channels():
  grid = images.image_grid(_tiles(3, 40, 300, 3), cols=3)
  assert grid.shape == (40 + 2 * images.GRID_GAP, 3 * 300 + 4 * images.GRID_GAP, 3)
  partial = images.image_grid(_tiles(5), cols=4)  # a short last row stays background
  scale = partial.shape[1] // (4 * 30 + 2)
  assert (partial[(2 + 30) * scale :, (2 + 30) * scale :] == 255).all()


def test_save_samples_writes_and_returns_the_picture(tmp_path):
  x = _tiles(16)
  path = str(tmp_path / "samples" / "step_1.png")
  grid = images.save_samples(path, x, "images")
  np.testing.assert_array_equal(np.asarray(Image.open(path)), grid)
  np.testing.assert_array_equal(grid, images.image_grid(x))
  points = np.random.default_rng(0).normal(size=(100, 2))
  picture = images.save_samples(str(tmp_path / "points.png"), points, "points", reference=np.zeros((1, 2)))
  assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
  assert Image.open(tmp_path / "points.png").size == (picture.shape[1], picture.shape[0])


def test_save_pngs_writes_each_image_by_index_and_label(tmp_path):
  u = images.to_uint8(_tiles(12))
  paths = images.save_pngs(str(tmp_path / "out"), u)
  assert [os.path.basename(p) for p in paths] == [f"{i:05d}.png" for i in range(12)]
  assert sorted(os.listdir(tmp_path / "out")) == [os.path.basename(p) for p in paths]
  for i in (0, 11):
    read = Image.open(paths[i])
    assert read.mode == "L"
    np.testing.assert_array_equal(np.asarray(read), u[i, ..., 0])
  rgb = images.to_uint8(_tiles(3, 8, 6, 3))
  labelled = images.save_pngs(str(tmp_path / "rgb"), rgb, labels=np.array([4, 0, 9]))
  assert [os.path.basename(p) for p in labelled] == ["00000_label4.png", "00001_label0.png", "00002_label9.png"]
  np.testing.assert_array_equal(np.asarray(Image.open(labelled[2])), rgb[2])


@pytest.mark.parametrize(
  "array, labels, message",
  [
    (np.zeros((2, 8, 8, 1), np.float32), None, "uint8"),
    (np.zeros((2, 8, 8), np.uint8), None, "uint8"),
    (np.zeros((2, 8, 8, 1), np.uint8), np.array([1]), "one label per image"),
  ],
)
def test_save_pngs_refuses_what_is_not_uint8_images(tmp_path, array, labels, message):
  with pytest.raises(ValueError, match=message):
    images.save_pngs(str(tmp_path / "out"), array, labels)
  assert not (tmp_path / "out").exists()  # refused before anything is written
