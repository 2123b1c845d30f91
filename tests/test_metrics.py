"""FID, KID, IS and k-NN manifold metrics against formulas written out here in numpy/scipy."""

import itertools

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.stats

from gan_jax.eval.metrics import (
  FeatureMoments,
  GaussianStats,
  density_coverage,
  fid,
  inception_score,
  kid,
  knn_sq_radii,
  precision_recall,
)


def _features(seed, n=300, d=12, scale=1.0, shift=0.0):
  rng = np.random.default_rng(seed)
  mix_DD = rng.normal(size=(d, d)) / np.sqrt(d)
  return shift + scale * rng.normal(size=(n, d)) @ mix_DD


def _reference_fid(feats1, feats2):
  """The TTUR/pytorch-fid formula: np.cov and scipy sqrtm of the covariance product."""
  mu1, mu2 = feats1.mean(0), feats2.mean(0)
  s1, s2 = np.cov(feats1, rowvar=False), np.cov(feats2, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)


# ---- streaming statistics ----


def test_streaming_stats_match_numpy_and_one_shot():
  feats = _features(0, n=257)
  streamed = FeatureMoments()
  for lo, hi in [(0, 1), (1, 64), (64, 64), (64, 200), (200, 257)]:  # includes 1-row and empty batches
    streamed.update(feats[lo:hi])
  streamed = streamed.stats()
  one_shot = GaussianStats.from_features(feats)
  assert streamed.count == one_shot.count == 257
  np.testing.assert_allclose(streamed.mu_D, feats.mean(0), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(streamed.sigma_DD, np.cov(feats, rowvar=False), rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(streamed.sigma_DD, one_shot.sigma_DD, rtol=1e-10, atol=1e-12)
  other = GaussianStats.from_features(_features(1))
  assert fid(streamed, other) == pytest.approx(fid(one_shot, other), rel=1e-10)


def test_streaming_covariance_survives_large_offset():
  # Naive float64 E[xx^T] - mu mu^T loses every digit here (|mu|^2 / var = 1e16).
  feats = _features(2, n=400, shift=1e8)
  stats = FeatureMoments().update(feats[:100]).update(feats[100:]).stats()
  np.testing.assert_allclose(stats.sigma_DD, np.cov(feats - 1e8, rowvar=False), rtol=1e-6, atol=1e-8)


def test_streaming_float32_batches_accumulate_in_float64():
  feats32 = _features(3, n=200).astype(np.float32)
  stats = FeatureMoments().update(feats32[:50]).update(feats32[50:]).stats()
  assert stats.sigma_DD.dtype == np.float64
  np.testing.assert_allclose(stats.sigma_DD, np.cov(feats32.astype(np.float64), rowvar=False), rtol=1e-10)


def test_stats_need_two_samples():
  with pytest.raises(ValueError):
    FeatureMoments().update(np.ones((1, 4))).stats()


def test_stats_save_load_roundtrip(tmp_path):
  stats = GaussianStats.from_features(_features(4))
  path = tmp_path / "ref_stats"  # no .npz suffix: must be written at exactly this path
  stats.save(path)
  loaded = GaussianStats.load(path)
  np.testing.assert_array_equal(loaded.mu_D, stats.mu_D)
  np.testing.assert_array_equal(loaded.sigma_DD, stats.sigma_DD)
  assert loaded.count == stats.count == 300


def test_load_reads_published_reference_layout(tmp_path):
  path = tmp_path / "fid_stats.npz"
  np.savez(path, mu=np.arange(3.0), sigma=np.eye(3))
  loaded = GaussianStats.load(path)
  np.testing.assert_array_equal(loaded.mu_D, np.arange(3.0))
  assert loaded.count == 0


# ---- FID ----


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_fid_matches_reference_formula(method):
  feats1, feats2 = _features(5), _features(6, scale=1.5, shift=0.3)
  expected = _reference_fid(feats1, feats2)
  got = fid(GaussianStats.from_features(feats1), GaussianStats.from_features(feats2), method=method)
  assert got == pytest.approx(expected, rel=1e-8)
  assert got > 1.0


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_fid_of_set_with_itself_is_zero(method):
  stats = GaussianStats.from_features(_features(7))
  assert abs(fid(stats, stats, method=method)) < 1e-9 * np.trace(stats.sigma_DD)


def test_fid_closed_form_commuting_diagonal_covariances():
  mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, -0.5])
  var1, var2 = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))  # = 6 + 5.5
  for method in ("eigh", "sqrtm"):
    got = fid(GaussianStats(mu1, np.diag(var1), 0), GaussianStats(mu2, np.diag(var2), 0), method=method)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(11.5, rel=1e-12)


def test_fid_closed_form_non_commuting_2x2():
  # For 2x2 M with non-negative eigenvalues: (tr M^{1/2})^2 = tr M + 2 sqrt(det M).
  s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
  s2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
  assert not np.allclose(s1 @ s2, s2 @ s1)
  prod = s1 @ s2
  tr_sqrt = np.sqrt(np.trace(prod) + 2 * np.sqrt(np.linalg.det(prod)))
  expected = 1.0**2 + 2.0**2 + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  mu1, mu2 = np.zeros(2), np.array([1.0, -2.0])
  for method in ("eigh", "sqrtm"):
    got = fid(GaussianStats(mu1, s1, 0), GaussianStats(mu2, s2, 0), method=method)
    assert got == pytest.approx(expected, rel=1e-12)


def test_fid_methods_agree_on_rank_deficient_covariances():
  # Fewer samples than dimensions: both covariances are singular, the case the eigh path is built for.
  stats1 = GaussianStats.from_features(_features(8, n=30, d=48))
  stats2 = GaussianStats.from_features(_features(9, n=40, d=48, scale=1.3, shift=0.2))
  by_eigh, by_sqrtm = fid(stats1, stats2, method="eigh"), fid(stats1, stats2, method="sqrtm")
  assert by_eigh == pytest.approx(by_sqrtm, rel=1e-6)


def test_fid_rejects_unknown_method_and_mismatched_dims():
  stats = GaussianStats.from_features(_features(10))
  with pytest.raises(ValueError):
    fid(stats, stats, method="svd")
  with pytest.raises(ValueError):
    fid(stats, GaussianStats.from_features(_features(10, d=5)))


# ---- KID ----


def _brute_force_mmd2(x, y):
  """Unbiased MMD^2 with the cubic polynomial kernel, one pair at a time."""
  d = x.shape[1]
  k = lambda a, b: (a @ b / d + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2 * xy


def test_kid_matches_brute_force_on_same_subsets():
  real, fake = _features(11, n=60, d=6), _features(12, n=50, d=6, shift=0.4)
  num_subsets, subset_size, seed = 4, 20, 3
  rng = np.random.default_rng(seed)  # the subset draws kid documents: real then fake per subset
  mmds = []
  for _ in range(num_subsets):
    x = real[rng.choice(len(real), subset_size, replace=False)]
    y = fake[rng.choice(len(fake), subset_size, replace=False)]
    mmds.append(_brute_force_mmd2(x, y))
  got = kid(real, fake, num_subsets=num_subsets, subset_size=subset_size, seed=seed)
  assert got.mean == pytest.approx(np.mean(mmds), rel=1e-10)
  assert got.std == pytest.approx(np.std(mmds), rel=1e-8)
  assert got.mean > 0.01


def test_kid_subset_size_capped_at_sample_counts():
  # Subsets larger than either set shrink to the smaller count; with m = N every real subset is the
  # whole set, leaving only the choice of 25 fakes out of 30 to vary.
  real, fake = _features(13, n=25, d=5), _features(14, n=30, d=5, shift=0.5)
  got = kid(real, fake, num_subsets=3, subset_size=1000, seed=0)
  rng = np.random.default_rng(0)
  expected = []
  for _ in range(3):
    rng.choice(25, 25, replace=False)
    expected.append(_brute_force_mmd2(real, fake[rng.choice(30, 25, replace=False)]))
  assert got.mean == pytest.approx(np.mean(expected), rel=1e-10)


def test_kid_between_halves_of_one_set_is_near_zero():
  # Disjoint halves: the estimator is unbiased, so only subset noise remains. (Overlapping subsets of
  # literally the same array are biased negative: shared points put large k(x, x) in the cross term.)
  feats = _features(15, n=2000, d=16)
  shifted = feats[1000:] + 0.2
  same = kid(feats[:1000], feats[1000:], num_subsets=20, subset_size=200, seed=0)
  different = kid(feats[:1000], shifted, num_subsets=20, subset_size=200, seed=0)
  assert abs(same.mean) < same.std
  assert abs(same.mean) < 0.1 * different.mean


def test_kid_same_seed_same_answer():
  real, fake = _features(17, n=80, d=4), _features(18, n=80, d=4)
  assert kid(real, fake, num_subsets=5, subset_size=30, seed=1) == kid(
    real, fake, num_subsets=5, subset_size=30, seed=1
  )


# ---- Inception Score ----


def test_inception_score_uniform_predictions_is_one():
  score = inception_score(np.full((100, 10), 0.1))
  assert score.mean == pytest.approx(1.0, abs=1e-12)
  assert score.std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_even_one_hot_is_num_classes():
  num_classes = 7
  probs = np.eye(num_classes)[np.arange(10 * 3 * num_classes) % num_classes]  # every split: 3 of each
  score = inception_score(probs)
  assert score.mean == pytest.approx(num_classes, rel=1e-12)
  assert score.std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_matches_split_kl_reference():
  rng = np.random.default_rng(19)
  logits = 3 * rng.normal(size=(205, 6))  # 205 / 10 splits unevenly: 20 or 21 per split
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  scores = []
  for i in range(10):
    part = probs[i * 205 // 10 : (i + 1) * 205 // 10]
    scores.append(np.exp(np.mean([scipy.stats.entropy(p, part.mean(0)) for p in part])))
  got = inception_score(probs)
  assert got.mean == pytest.approx(np.mean(scores), rel=1e-12)
  assert got.std == pytest.approx(np.std(scores), rel=1e-10)


# ---- precision / recall / density / coverage ----


def _octagon(center, radius=1.0):
  angles = 2 * np.pi * np.arange(8) / 8
  return np.asarray(center) + radius * np.stack([np.cos(angles), np.sin(angles)], 1)


def test_identical_sets_are_fully_precise_and_covered():
  real = _features(20, n=200, d=8)
  assert precision_recall(real, real.copy()) == {"precision": 1.0, "recall": 1.0}
  assert density_coverage(real, real.copy())["coverage"] == 1.0


def test_far_apart_sets_score_zero():
  real, fake = _features(21, n=100, d=8), _features(22, n=120, d=8, shift=1e3)
  assert precision_recall(real, fake) == {"precision": 0.0, "recall": 0.0}
  assert density_coverage(real, fake) == {"density": 0.0, "coverage": 0.0}


def test_subset_of_real_is_precise_but_misses_a_cluster():
  # Three far-apart octagons of real points; the fakes are two of them exactly. Every fake sits on a
  # real point (precision 1); fake balls stay inside their octagon, so the third one's 8 reals are
  # missed: recall = 16 / 24.
  real = np.concatenate([_octagon((0, 0)), _octagon((100, 0)), _octagon((0, 100))])
  fake = real[:16].copy()
  assert precision_recall(real, fake) == {"precision": 1.0, "recall": pytest.approx(2 / 3)}


def test_density_coverage_hand_computed_on_a_line():
  # Reals at 0, 1, 4, 9, 11 (pairwise gaps all distinct, so no ties). Their k=2 radii are 4, 3, 4, 5, 7,
  # i.e. balls [-4, 4], [-2, 4], [0, 8], [4, 14], [4, 18]. Fakes at 12 and 13 each lie in the last two
  # balls, 20 and 30 in none: density = (2 + 2) / (k * 4) = 0.5, coverage = 2 / 5, precision = 2 / 4.
  on_line = lambda xs: np.stack([np.asarray(xs, float), np.zeros(len(xs))], 1)
  real, fake = on_line([0, 1, 4, 9, 11]), on_line([12, 13, 20, 30])
  assert density_coverage(real, fake, k=2) == {"density": 0.5, "coverage": pytest.approx(0.4)}
  assert precision_recall(real, fake, k=2)["precision"] == 0.5


def test_balls_are_closed():
  # A fake exactly at distance 4 from the real at 0, whose k=2 radius is 4 (the real at 4): it counts.
  on_line = lambda xs: np.stack([np.asarray(xs, float), np.zeros(len(xs))], 1)
  real, fake = on_line([0, 1, 4, 9, 11]), on_line([-4, 30, 40])
  assert density_coverage(real, fake, k=2) == {"density": pytest.approx(1 / 6), "coverage": pytest.approx(0.2)}


def _reference_manifold(real, fake, k_pr, k_dc):
  """Unchunked cdist version of the four definitions, radii from sorted distance rows."""
  kth = lambda feats, k: np.sort(scipy.spatial.distance.cdist(feats, feats), axis=1)[:, k]  # col 0 is self
  d_fr = scipy.spatial.distance.cdist(fake, real)
  real_r, fake_r = kth(real, k_pr), kth(fake, k_pr)
  real_r_dc = kth(real, k_dc)
  return {
    "precision": np.mean(np.any(d_fr <= real_r[None, :], axis=1)),
    "recall": np.mean(np.any(d_fr <= fake_r[:, None], axis=0)),
    "density": np.sum(d_fr <= real_r_dc[None, :]) / (k_dc * len(fake)),
    "coverage": np.mean(d_fr.min(axis=0) <= real_r_dc),
  }


@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_manifold_metrics_match_unchunked_reference(chunk_size):
  real = _features(23, n=150, d=5)
  fake = _features(24, n=130, d=5, scale=1.4, shift=0.3)
  expected = _reference_manifold(real, fake, k_pr=3, k_dc=5)
  got = {
    **precision_recall(real, fake, chunk_size=chunk_size),
    **density_coverage(real, fake, chunk_size=chunk_size),
  }
  assert got == pytest.approx(expected, rel=1e-12)
  assert 0.1 < got["precision"] < 0.99 and 0.1 < got["recall"] < 0.99  # a case that discriminates


def test_knn_radii_exclude_self():
  points = np.array([[0.0], [1.0], [3.0], [7.0]])
  np.testing.assert_allclose(knn_sq_radii(points, 1), [1.0, 1.0, 4.0, 16.0])
  np.testing.assert_allclose(knn_sq_radii(points, 2, chunk_size=3), [9.0, 4.0, 9.0, 36.0])


def test_manifold_metrics_need_more_samples_than_k():
  with pytest.raises(ValueError):
    precision_recall(np.zeros((3, 2)), np.ones((10, 2)), k=3)
