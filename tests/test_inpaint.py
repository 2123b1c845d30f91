"""Inpainting: masks, losses, baselines, PSNR/SSIM against independent computations, the CLI end to end."""

import json
import os
import pathlib

import jax
import numpy as np
import pytest
from helpers import image_config
from PIL import Image
from scipy.ndimage import gaussian_filter

from gan_jax.apps import given_images, inpaint
from gan_jax.cli import main
from gan_jax.eval.metrics import restoration
from gan_jax.train import loop


def test_center_and_half_masks_have_their_coverage():
  center = inpaint.make_mask("center", (28, 28))
  assert center.dtype == np.float32 and set(np.unique(center)) == {0, 1}
  assert (1 - center).mean() == 0.25
  assert (1 - center[7:21, 7:21]).all()  # the central 14x14 square
  half = inpaint.make_mask("half", (28, 28))
  assert (1 - half).mean() == 0.5 and not half[:, :14].any() and half[:, 14:].all()  # left half missing
  assert (1 - inpaint.make_mask("center", (32, 30))).mean() == 0.25


@pytest.mark.parametrize("kind, rate", [("random", 0.8), ("random:0.5", 0.5)])
def test_random_masks_miss_their_rate(kind, rate):
  masks = inpaint.masks_for(kind, 4, (64, 64), jax.random.PRNGKey(0))
  assert masks.shape == (4, 64, 64)
  assert abs((1 - masks).mean() - rate) < 0.01  # 16384 pixels: std 0.003
  assert not np.array_equal(masks[0], masks[1])  # each image its own draw
  third = inpaint.make_mask(kind, (64, 64), jax.random.fold_in(jax.random.PRNGKey(0), 2))
  np.testing.assert_array_equal(masks[2], third)


def test_mask_png_round_trip_and_bad_masks(tmp_path):
  mask = inpaint.make_mask("random", (28, 28), jax.random.PRNGKey(1))
  inpaint.save_mask(str(tmp_path / "m.png"), mask)
  np.testing.assert_array_equal(inpaint.make_mask(str(tmp_path / "m.png"), (28, 28)), mask)
  Image.fromarray(np.where(mask > 0, 7, 0).astype(np.uint8)).save(tmp_path / "grey.png")  # nonzero = known
  np.testing.assert_array_equal(inpaint.make_mask(str(tmp_path / "grey.png"), (28, 28)), mask)
  with pytest.raises(ValueError, match="expected the images' 32x32"):
    inpaint.make_mask(str(tmp_path / "m.png"), (32, 32))
  with pytest.raises(ValueError, match="mask 'square'"):
    inpaint.make_mask("square", (28, 28))
  with pytest.raises(ValueError, match="random:1.5"):
    inpaint.make_mask("random:1.5", (28, 28), jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="PRNG key"):
    inpaint.make_mask("random", (28, 28))


def test_importance_weights_follow_the_hole():
  mask = inpaint.make_mask("center", (28, 28))[None]
  w = np.asarray(inpaint.importance_weights(mask))[0]
  assert not w[7:21, 7:21].any()  # missing pixels weigh nothing
  np.testing.assert_allclose(w[6, 14], 7 * 3 / 49, rtol=1e-6)  # next to the hole: 3 of its 7 rows are missing
  assert w[0, 0] == 0 and w[3, 14] == 0  # farther than 3 pixels: no weight


def test_losses_and_blend():
  logits = np.array([-3.0, 0.0, 4.0], np.float32)
  expected = 0.003 * np.log(1 - 1 / (1 + np.exp(-logits)))
  np.testing.assert_allclose(inpaint.prior_loss(logits), expected, rtol=1e-5)
  y, x = np.zeros((1, 2, 2, 1), np.float32), np.full((1, 2, 2, 1), 0.5, np.float32)
  mask = np.array([[[1, 0], [0, 0]]], np.float32)
  np.testing.assert_allclose(inpaint.contextual_loss(x, y, mask), [0.5])
  np.testing.assert_array_equal(np.asarray(inpaint.blend(y, x, mask))[0, :, :, 0], [[0, 0.5], [0.5, 0.5]])


def _dense_poisson(y_HW, fill_HW, known_HW):
  """The same Poisson problem as an explicit linear system over the hole's pixels, solved by numpy."""
  H, W = y_HW.shape
  hole = [(i, j) for i in range(H) for j in range(W) if not known_HW[i, j]]
  index = {p: k for k, p in enumerate(hole)}
  A, b = np.zeros((len(hole), len(hole))), np.zeros(len(hole))
  for (i, j), k in index.items():
    for q in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
      if not (0 <= q[0] < H and 0 <= q[1] < W):
        continue
      A[k, k] += 1
      b[k] += fill_HW[i, j] - fill_HW[q]
      if q in index:
        A[k, index[q]] -= 1
      else:
        b[k] += y_HW[q]
  x = y_HW.astype(np.float64).copy()
  for (i, j), v in zip(hole, np.linalg.solve(A, b), strict=True):
    x[i, j] = v
  return x


def test_poisson_blend_against_a_dense_solve_and_its_invariants():
  rng = np.random.default_rng(0)
  y, fill = rng.uniform(-1, 1, (2, 7, 9, 2)).astype(np.float32), rng.uniform(-1, 1, (2, 7, 9, 2)).astype(np.float32)
  mask = np.stack([inpaint.make_mask("center", (7, 9)), (rng.random((7, 9)) > 0.6)]).astype(np.float32)
  mask[1, 0, 0] = 1.0  # the random hole touches a known pixel
  x = np.asarray(jax.jit(inpaint.poisson_blend)(y, fill, mask))
  for n in range(2):
    for c in range(2):
      np.testing.assert_allclose(x[n, ..., c], _dense_poisson(y[n, ..., c], fill[n, ..., c], mask[n] > 0), atol=2e-5)
  # Poisson blending keeps the fill's gradients: a fill off by a constant comes back as y itself, seamless,
  # where pasting keeps the offset.
  smooth = np.asarray(inpaint.blend(y, y + 0.3, mask))
  np.testing.assert_allclose(np.asarray(inpaint.poisson_blend(y, y + 0.3, mask)), y, atol=1e-5)
  assert np.abs(smooth - y).max() == pytest.approx(0.3, abs=1e-6)


def test_baselines():
  rng = np.random.default_rng(0)
  train = rng.uniform(-1, 1, (50, 8, 8, 1)).astype(np.float32)
  mask = np.broadcast_to(inpaint.make_mask("center", (8, 8)), (3, 8, 8)).copy()
  y = train[[4, 17, 33]] + (1 - mask[..., None]) * rng.normal(0, 1, (3, 8, 8, 1)).astype(np.float32)
  filled, index = inpaint.nearest_neighbour_fill(y, mask, train, chunk=16)  # across chunks
  np.testing.assert_array_equal(index, [4, 17, 33])
  np.testing.assert_allclose(filled, train[[4, 17, 33]], atol=1e-6)
  mean = inpaint.mean_fill(y, mask, train.mean(0))
  np.testing.assert_allclose(mean[:, 2:6, 2:6], np.broadcast_to(train.mean(0)[2:6, 2:6], (3, 4, 4, 1)), atol=1e-6)
  np.testing.assert_array_equal(mean[:, :2], y[:, :2])


def _images(seed, shape=(3, 28, 28, 2)):
  """Smooth random images in [-1, 1] and noisy, brightened copies of them."""
  rng = np.random.default_rng(seed)
  a = np.clip(gaussian_filter(rng.normal(0, 2, shape), (0, 1.5, 1.5, 0)), -1, 1).astype(np.float32)
  b = np.clip(0.8 * a + rng.normal(0, 0.2, shape) + 0.1, -1, 1).astype(np.float32)
  return a, b


def test_psnr_against_an_independent_computation():
  a, b = _images(0)
  region = inpaint.make_mask("half", (28, 28))[None].repeat(3, 0)
  got = np.asarray(restoration.psnr(b, a, region))
  for i in range(3):
    diff = (b[i] - a[i])[region[i] > 0]
    np.testing.assert_allclose(got[i], 10 * np.log10(4 / np.mean(diff**2)), rtol=1e-5)
  from skimage.metrics import peak_signal_noise_ratio

  known = region[0] > 0
  np.testing.assert_allclose(got[0], peak_signal_noise_ratio(a[0][known], b[0][known], data_range=2), rtol=1e-5)
  assert np.asarray(restoration.psnr(a, a, region)).min() == 100.0


def test_ssim_of_an_image_with_itself_is_one():
  a, b = _images(1)
  region = 1 - inpaint.make_mask("center", (28, 28))[None].repeat(3, 0)
  np.testing.assert_allclose(restoration.ssim(a, a, region), 1.0, rtol=1e-6)
  assert np.all(np.asarray(restoration.ssim(b, a, region)) < 0.99)


@pytest.mark.parametrize("seed", [2, 3])
def test_ssim_matches_skimage(seed):
  from skimage.metrics import structural_similarity

  a, b = _images(seed)
  b_uniform = np.random.default_rng(seed).uniform(-1, 1, a.shape).astype(np.float32)
  got_map = np.asarray(restoration.ssim_map(np.concatenate([b, b_uniform]), np.concatenate([a, a])))
  for i, other in enumerate([*b, *b_uniform]):
    mean, full = structural_similarity(
      a[i % 3].astype(np.float64),
      other.astype(np.float64),
      gaussian_weights=True,
      sigma=1.5,
      use_sample_covariance=False,
      data_range=2.0,
      channel_axis=-1,
      full=True,
    )
    np.testing.assert_allclose(got_map[i], full.mean(-1), atol=2e-5)
    np.testing.assert_allclose(got_map[i][5:-5, 5:-5].mean(), mean, atol=2e-6)  # skimage crops the window's radius
  region = 1 - inpaint.make_mask("center", (28, 28))[None].repeat(6, 0)
  got = restoration.ssim(np.concatenate([b, b_uniform]), np.concatenate([a, a]), region)
  np.testing.assert_allclose(got, got_map[:, 7:21, 7:21].mean(axis=(1, 2)), rtol=1e-6)


def test_parse_image_spec():
  assert given_images.parse_image_spec("test:0-63") == ("test", 0, 64)
  assert given_images.parse_image_spec("train:5-5") == ("train", 5, 6)
  for bad in ("test", "test:5-2", "test:a-b", ":0-3"):
    with pytest.raises(ValueError, match="expected SPLIT:FIRST-LAST"):
      given_images.parse_image_spec(bad)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, fashion_idx_dir):
  """A 3-step DCGAN run and a 3-step conditional MLP-GAN run on the small IDX fixture."""
  root = tmp_path_factory.mktemp("runs")
  tfds_dir = root / "tfds"
  runs = {}
  for name, model, extra in (("dcgan", "dcgan", {}), ("conditional", "mlp_gan", {"model.conditional": True})):
    overrides = {"train.steps": 3, "train.log_every": 3, **extra}
    loop.train_and_evaluate(image_config(fashion_idx_dir, tfds_dir, model, **overrides), str(root / name))
    runs[name] = str(root / name)
  return runs


def _run_cli(capsys, argv):
  assert main(argv) == 0
  return capsys.readouterr().out


def test_inpaint_cli_end_to_end(tiny_runs, tmp_path, capsys):
  out = str(tmp_path / "inp")
  argv = ["inpaint", "--workdir", tiny_runs["dcgan"], "--images", "test:2-9", "--out", out]
  argv += ["--steps", "4", "--restarts", "2", "--mask", "center"]
  report = json.loads(_run_cli(capsys, argv))
  for metric in ("psnr", "ssim"):
    assert set(report[metric]) == {"gan", "gan_poisson", "mean_fill", "nearest_neighbour"}
    assert all(np.isfinite(v) for v in report[metric].values())
  assert report["protocol"]["count"] == 8 and report["protocol"]["step"] == 3
  assert report["protocol"]["missing_fraction"] == 0.25 and report["protocol"]["lambda"] == 0.003
  with np.load(out + ".npz") as f:
    arrays = {k: f[k] for k in f.files}
  assert set(arrays) == {"mask", "original", "masked", "gan", "gan_poisson", "mean_fill", "nearest_neighbour"}
  for k in ("original", "masked", "gan", "gan_poisson", "mean_fill", "nearest_neighbour"):
    assert arrays[k].shape == (8, 28, 28, 1) and arrays[k].dtype == np.uint8
  known = arrays["mask"][..., None] > 0
  for k in ("gan", "gan_poisson"):
    np.testing.assert_array_equal(np.where(known, arrays[k], 0), np.where(known, arrays["original"], 0))
  picture = np.asarray(Image.open(out + ".png"))
  # original / masked / gan / gan_poisson / mean / neighbour rows, 2-pixel gaps, enlarged 3x to be 512 or wider
  assert picture.shape == (3 * (6 * 30 + 2), 3 * (8 * 30 + 2))
  grid = picture[::3, ::3]
  np.testing.assert_array_equal(grid[2:30, 2:30], arrays["original"][0, ..., 0])
  np.testing.assert_array_equal(grid[2 + 2 * 30 : 30 + 2 * 30, 2:30], arrays["gan"][0, ..., 0])

  # A pooled start and an averaged fill: recorded in the protocol, the known pixels still the image's own.
  flags = ["--pool", "16", "--average", "2", "--combine", "midmean", "--pool-temperature", "0.5"]
  pooled = json.loads(_run_cli(capsys, [*argv, *flags, "--latent-weight", "0.25"]))
  assert pooled["protocol"]["pool"] == 16 and pooled["protocol"]["average"] == 2
  assert pooled["protocol"]["combine"] == "midmean" and pooled["protocol"]["pool_temperature"] == 0.5
  assert pooled["protocol"]["latent_weight"] == 0.25
  assert all(np.isfinite(v) for v in pooled["psnr"].values())
  with np.load(out + ".npz") as f:
    np.testing.assert_array_equal(np.where(known, f["gan"], 0), np.where(known, arrays["original"], 0))

  # The same images as a FILE.npz, a FILE.png mask: the same numbers, whatever the images' source.
  np.savez(tmp_path / "imgs.npz", images=arrays["original"])
  inpaint.save_mask(str(tmp_path / "m.png"), inpaint.make_mask("center", (28, 28)))
  argv[argv.index("test:2-9")] = str(tmp_path / "imgs.npz")
  argv[argv.index("center")] = str(tmp_path / "m.png")
  again = json.loads(_run_cli(capsys, argv))
  for metric in ("psnr", "ssim"):
    for k, v in report[metric].items():
      np.testing.assert_allclose(again[metric][k], v, rtol=1e-4)


@pytest.mark.slow  # test-all; the fast tier runs the inpaint CLI end to end (test_inpaint_cli_end_to_end)
def test_inpaint_cli_conditional_random_and_errors(tiny_runs, tmp_path, capsys):
  out = str(tmp_path / "c")
  argv = ["inpaint", "--workdir", tiny_runs["conditional"], "--images", "test:0-3", "--out", out]
  argv += ["--steps", "2", "--restarts", "1", "--mask", "random"]
  report = json.loads(_run_cli(capsys, argv))
  assert report["protocol"]["labels"] == "given" and abs(report["protocol"]["missing_fraction"] - 0.8) < 0.05
  assert os.path.isfile(out + ".png")
  np.savez(tmp_path / "unlabelled.npz", images=np.zeros((2, 28, 28, 1), np.uint8))
  argv[argv.index("test:0-3")] = str(tmp_path / "unlabelled.npz")
  assert main(argv) == 2
  assert "this run is conditional" in capsys.readouterr().err
  argv[argv.index(str(tmp_path / "unlabelled.npz"))] = "test:0-3"
  assert main([*argv, "--pool", "8"]) == 2
  assert "pool=8" in capsys.readouterr().err
  assert main([*argv, "--average", "2"]) == 2  # more fills to average than the 1 restart
  assert "average=2" in capsys.readouterr().err
  read = lambda path: pathlib.Path(path).read_bytes()
  written = {ext: read(out + ext) for ext in (".npz", ".png")}
  for flag, value in [("--combine", "mode"), ("--pool-temperature", "0"), ("--latent-weight", "-1")]:
    assert main([*argv, flag, value]) == 2
    assert value in capsys.readouterr().err
  assert all(read(out + ext) == data for ext, data in written.items())  # refusals write nothing
  argv[argv.index("test:0-3")] = "test:0-99999"
  assert main(argv) == 2
  assert "has only 64 examples" in capsys.readouterr().err


def test_ranked_fills_rank_the_restarts_by_their_loss(tiny_runs):
  """With 0 search steps the codes are the initial ones: the ranked images are theirs, best first."""
  from gan_jax.apps import latent
  from gan_jax.train import run as run_lib

  run = run_lib.load_run(tiny_runs["dcgan"])
  g_vars, d_vars = run_lib.member_variables(run)
  y_NHWC, _ = given_images.load_images(run, "test:0-5")
  mask_NHW = inpaint.masks_for("half", 6, (28, 28), jax.random.PRNGKey(0))
  key, restarts, Z = jax.random.PRNGKey(7), 3, run.gan.latent_dim
  ranked = lambda k: inpaint.ranked_fills(
    run.gan.generator, run.gan.discriminator, g_vars, d_vars, y_NHWC, mask_NHW, key,
    steps=0, restarts=restarts, keep=k, latent_dim=Z, batch_size=4,
  )  # fmt: skip
  z0_RNZ = latent.initial_latents(key, restarts, np.arange(6), Z)
  images_RNHWC = np.stack([run.gan.generator.apply(g_vars, z, train=False) for z in z0_RNZ])
  (every_NKHWC, loss_NK), (best_NKHWC, best_NK) = ranked(3), ranked(1)
  assert every_NKHWC.shape == (6, 3, 28, 28, 1) and np.all(np.diff(loss_NK, axis=1) >= 0)
  np.testing.assert_array_equal(best_NKHWC[:, 0], every_NKHWC[:, 0])
  np.testing.assert_array_equal(best_NK[:, 0], loss_NK[:, 0])
  for n in range(6):  # each image's three ranked fills are its three restarts' images, in some order
    match = [np.argmin(np.abs(images_RNHWC[:, n] - x).max(axis=(1, 2, 3))) for x in every_NKHWC[n]]
    assert sorted(match) == [0, 1, 2]
    np.testing.assert_allclose(every_NKHWC[n], images_RNHWC[match, n], atol=1e-5)
  with pytest.raises(ValueError, match="keep=4"):
    ranked(4)


def test_pooled_latents_are_the_pool_codes_nearest_on_the_known_pixels(tiny_runs):
  from gan_jax.train import run as run_lib

  run = run_lib.load_run(tiny_runs["dcgan"])
  g_vars, _ = run_lib.member_variables(run)
  gen = lambda z: run.gan.generator.apply(g_vars, z, train=False)
  y_NHWC, _ = given_images.load_images(run, "test:0-2")
  mask_NHW = inpaint.masks_for("half", 3, (28, 28), jax.random.PRNGKey(0))
  key, Z = jax.random.PRNGKey(5), run.gan.latent_dim
  for temperature in (1.0, 0.5):  # the pool ~ N(0, T² I): T times the standard normal draws
    z0_RNZ = np.asarray(inpaint.pooled_latents(gen, y_NHWC, mask_NHW, key, 40, 3, Z, temperature))
    z_PZ = temperature * np.asarray(jax.random.normal(key, (40, Z)))
    x_PHWC = np.asarray(gen(z_PZ), np.float64)
    for n in range(3):
      d_P = (((x_PHWC - y_NHWC[n]) ** 2)[..., 0] * mask_NHW[n]).sum(axis=(1, 2))
      np.testing.assert_allclose(z0_RNZ[:, n], z_PZ[np.argsort(d_P)[:3]], rtol=1e-6)
  with pytest.raises(ValueError, match="pool=2"):
    inpaint.ranked_fills(
      run.gan.generator, run.gan.discriminator, g_vars, {}, y_NHWC, mask_NHW, key,
      steps=0, restarts=3, pool=2, latent_dim=Z,
    )  # fmt: skip


def test_a_heavy_latent_prior_pulls_the_fills_to_the_centre_code(tiny_runs):
  """With β ||z||² dominating the loss, the best code on every path is near 0: the fills are G(0)'s image."""
  from gan_jax.train import run as run_lib

  run = run_lib.load_run(tiny_runs["dcgan"])
  g_vars, d_vars = run_lib.member_variables(run)
  y_NHWC, _ = given_images.load_images(run, "test:0-3")
  mask_NHW = inpaint.masks_for("center", 4, (28, 28), jax.random.PRNGKey(0))
  search = lambda beta: inpaint.ranked_fills(
    run.gan.generator, run.gan.discriminator, g_vars, d_vars, y_NHWC, mask_NHW, jax.random.PRNGKey(1),
    steps=150, restarts=2, latent_dim=run.gan.latent_dim, lr=0.05, latent_weight=beta,
  )[0][:, 0]  # fmt: skip
  centre_HWC = np.asarray(run.gan.generator.apply(g_vars, np.zeros((1, run.gan.latent_dim)), train=False))[0]
  far_N = np.abs(search(0.0) - centre_HWC).max(axis=(1, 2, 3))
  near_N = np.abs(search(1e4) - centre_HWC).max(axis=(1, 2, 3))
  assert (near_N < 0.05).all() and (far_N > 4 * near_N).all(), (near_N, far_N)
  with pytest.raises(ValueError, match="latent_weight=-1"):
    search(-1.0)


def test_combine_fills_takes_the_per_pixel_mean_median_or_midmean():
  from scipy.stats import trim_mean

  fills_NKHWC = np.random.default_rng(0).normal(size=(3, 5, 4, 4, 1)).astype(np.float32)
  for n, i, j in [(0, 0, 0), (2, 3, 1)]:
    column = sorted(fills_NKHWC[n, :, i, j, 0])
    np.testing.assert_allclose(inpaint.combine_fills(fills_NKHWC, "median")[n, i, j, 0], column[2])
    np.testing.assert_allclose(inpaint.combine_fills(fills_NKHWC, "mean")[n, i, j, 0], sum(column) / 5, rtol=1e-5)
    midmean = inpaint.combine_fills(fills_NKHWC, "midmean")[n, i, j, 0]
    np.testing.assert_allclose(midmean, sum(column[1:4]) / 3, rtol=1e-5)  # 5 // 4 = 1 dropped at each end
  for K in (4, 16, 7):
    fills = np.random.default_rng(K).normal(size=(2, K, 3, 3, 1))
    np.testing.assert_allclose(inpaint.combine_fills(fills, "midmean"), trim_mean(fills, 0.25, axis=1), rtol=1e-12)
  with pytest.raises(ValueError, match="combine='mode'"):
    inpaint.combine_fills(fills_NKHWC, "mode")


def test_interpolate_cli(tiny_runs, tmp_path, capsys):
  out = str(tmp_path / "walk.png")
  argv = ["interpolate", "--workdir", tiny_runs["dcgan"], "--out", out, "--rows", "3", "--steps", "5"]
  assert "3 rows x 5 slerp" in _run_cli(capsys, [*argv, "--truncation", "0.8"])
  assert np.asarray(Image.open(out)).shape == (4 * (3 * 30 + 2), 4 * (5 * 30 + 2))  # enlarged 4x to be 512 or wider
  assert "linear" in _run_cli(capsys, [*argv, "--method", "linear"])
  argv[argv.index(tiny_runs["dcgan"])] = tiny_runs["conditional"]
  assert "10 classes x 5" in _run_cli(capsys, argv)
  assert np.asarray(Image.open(out)).shape == (4 * (10 * 30 + 2), 4 * (5 * 30 + 2))
  assert main([*argv, "--method", "cubic"]) == 2
  assert "method='cubic'" in capsys.readouterr().err
