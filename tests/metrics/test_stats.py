import importlib.util
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sst
from scipy.stats import wilcoxon

from vitmusic.metrics import stats

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "bench_intervals.py"


def _bench():
    """The benchmark's shapes and coverage function: the tests check the chosen interval on the same shapes."""
    spec = importlib.util.spec_from_file_location("bench_intervals", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _bench()


def _numpy_percentile_ci(x, n_boot, seed, confidence=0.95):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    means = np.asarray(x)[idx].mean(axis=1)
    a = (1 - confidence) / 2
    return np.percentile(means, [100 * a, 100 * (1 - a)])


def test_bootstrap_ci_matches_numpy_directly():
    x = np.random.default_rng(3).normal(1.0, 2.0, size=40)
    lo, hi = stats.bootstrap_ci(x, n_boot=500, seed=7, method="percentile")
    ref = _numpy_percentile_ci(x, 500, 7)
    assert (lo, hi) == pytest.approx(tuple(ref), abs=1e-12)
    assert lo < x.mean() < hi


def test_bootstrap_counts_are_the_resampling_indices_counted():
    idx = stats.bootstrap_indices(7, 50, seed=3)
    counts = stats.bootstrap_counts(7, 50, seed=3)
    assert counts.shape == (50, 7) and np.all(counts.sum(axis=1) == 7)
    for row, c in zip(idx, counts):
        assert np.array_equal(np.bincount(row, minlength=7), c)


def test_bootstrap_is_seeded_and_seed_matters():
    x = np.arange(20.0)
    assert stats.bootstrap_ci(x, seed=1) == stats.bootstrap_ci(x, seed=1)
    assert stats.bootstrap_ci(x, seed=1) != stats.bootstrap_ci(x, seed=2)
    y = np.random.default_rng(0).lognormal(size=15)
    assert stats.summarize(y, seed=1) == stats.summarize(y, seed=1)
    assert stats.summarize(y, seed=1)["ci95"] != stats.summarize(y, seed=2)["ci95"]
    assert stats.summarize(y, seed=1, method="t") == stats.summarize(y, seed=2, method="t")


def test_bootstrap_ci_custom_statistic():
    x = np.array([1.0, 2.0, 3.0, 100.0])
    lo, hi = stats.bootstrap_ci(x, statistic=np.median, n_boot=200, seed=0)
    assert 1.0 <= lo <= hi <= 100.0


def test_undefined_values_are_dropped_not_zero():
    s = stats.summarize([1.0, float("nan"), 3.0, float("inf")], n_boot=100, method="t")
    assert s["mean"] == 2.0
    assert s["n"] == 2
    assert s["ci95"] == pytest.approx(list(stats.t_interval([1.0, 3.0])))
    g = stats.summarize([1.0, float("nan"), 3.0, 5.0], groups=["p1", "p1", "p2", "p3"])
    assert g["n"] == 3 and g["n_groups"] == 3 and g["mean"] == 3.0


def test_summarize_all_undefined_gives_nulls():
    s = stats.summarize([float("nan"), float("nan")])
    assert s == {"mean": None, "ci95": [None, None], "n": 0, "n_groups": None, "method": "boot-t(clip)",
                 "small_n": True}


def test_summarize_single_value_has_no_interval():
    s = stats.summarize([0.25], bounds=(0, 1))
    assert s == {"mean": 0.25, "ci95": [None, None], "n": 1, "n_groups": None,
                 "method": "wilson-boot-t(clip)", "small_n": True}
    one_piece = stats.summarize([0.25, 0.5, 0.75], groups=["a", "a", "a"])
    assert one_piece["mean"] == 0.5 and one_piece["ci95"] == [None, None] and one_piece["n_groups"] == 1


def test_method_named_in_every_summary():
    x = np.random.default_rng(0).uniform(size=12)
    pieces = np.repeat(np.arange(6), 2)
    assert stats.summarize(x)["method"] == "boot-t(clip)"
    assert stats.summarize(x, bounds=(0, 1))["method"] == "wilson-boot-t(clip)"
    assert stats.summarize(x, bounds=(0, None))["method"] == "boot-t(clip)"
    assert stats.summarize(x, groups=pieces, bounds=(0, 1))["method"] == "wilson-boot-t(piece)"
    assert stats.summarize(x, groups=pieces, method="t", unit="song")["method"] == "t(song)"
    d = stats.paired_difference(x, x[::-1], groups=pieces, bounds=(0, 1))
    assert d["method"] == "wilson-boot-t(piece)" and d["test"] == "sign-flip(piece)"
    d = stats.paired_difference(x, x[::-1], test="wilcoxon")
    assert d["method"] == "boot-t(clip)" and d["test"] == "wilcoxon(clip)" and d["p"] == d["p_wilcoxon"]


def test_wilcoxon_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=25)
    b = a + rng.normal(0.1, 0.1, size=25)
    assert stats.wilcoxon_p(a, b) == pytest.approx(wilcoxon(b - a).pvalue)


def test_wilcoxon_drops_unpaired_nan_and_handles_ties():
    a = np.array([0.1, 0.2, np.nan, 0.4, 0.5, 0.6, 0.7])
    b = np.array([0.3, 0.1, 0.9, np.nan, 0.9, 0.95, 1.0])
    keep = np.isfinite(a) & np.isfinite(b)
    assert stats.wilcoxon_p(a, b) == pytest.approx(wilcoxon(b[keep] - a[keep]).pvalue)
    assert stats.wilcoxon_p(a, a) == 1.0
    assert math.isnan(stats.wilcoxon_p([np.nan], [1.0]))


def test_paired_difference_values():
    rng = np.random.default_rng(1)
    a = rng.uniform(size=30)
    b = a + 0.2
    out = stats.paired_difference(a, b, n_boot=300, seed=4)
    assert out["mean_diff"] == pytest.approx(0.2)
    assert out["n"] == 30 and out["n_groups"] is None and out["small_n"] is False
    assert out["ci95"] == pytest.approx([0.2, 0.2])  # no spread: nothing to be unsure of
    assert out["p_wilcoxon"] == pytest.approx(wilcoxon(b - a).pvalue)
    d = rng.normal(size=30)
    out = stats.paired_difference(a, a + d, n_boot=300, seed=4, method="t")
    assert out["ci95"] == pytest.approx(list(stats.t_interval((a + d) - a)))
    same = stats.paired_difference(a, a, bounds=(0, 1))
    assert same["ci95"] == [0.0, 0.0] and same["p"] == 1.0 and same["p_wilcoxon"] == 1.0


def test_paired_difference_over_pieces():
    rng = np.random.default_rng(2)
    pieces = np.repeat([f"piece{i}" for i in range(8)], 2)
    a = rng.uniform(0.2, 0.6, 16)
    b = np.clip(a + rng.normal(0.1, 0.1, 16), 0, 1)
    b[3] = np.nan  # undefined clip: dropped with its pair
    out = stats.paired_difference(a, b, groups=pieces, bounds=(0, 1), test="wilcoxon")
    keep = np.isfinite(b)
    d = b[keep] - a[keep]
    piece_means = [d[pieces[keep] == p].mean() for p in sorted(set(pieces))]
    assert out["n"] == 15 and out["n_groups"] == 8 and out["small_n"] is True
    assert out["mean_diff"] == pytest.approx(d.mean())  # the clip mean, not the mean of piece means
    assert out["p"] == out["p_wilcoxon"] == pytest.approx(wilcoxon(piece_means).pvalue)
    assert out["ci95"][0] < d.mean() < out["ci95"][1]
    flip = stats.paired_difference(a, b, groups=pieces, bounds=(0, 1))
    assert flip["p"] == stats.sign_flip_p(d, pieces[keep]) and flip["test"] == "sign-flip(piece)"


def test_paired_length_mismatch_and_bad_args():
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError, match="method"):
        stats.summarize([1.0, 2.0], method="normal")
    with pytest.raises(ValueError, match="needs finite bounds"):
        stats.summarize([1.0, 2.0], method="wilson")
    with pytest.raises(ValueError, match="lo < hi"):
        stats.summarize([1.0, 2.0], bounds=(1, 0))
    with pytest.raises(ValueError, match="outside the bounds"):
        stats.summarize([0.5, 1.5], bounds=(0, 1))
    with pytest.raises(ValueError, match="outside the bounds"):
        stats.paired_difference([0.5, 1.5], [0.5, 0.7], bounds=(0, 1))
    with pytest.raises(ValueError, match="one label per value"):
        stats.summarize([0.5, 0.7], groups=["a"])
    with pytest.raises(ValueError, match="test must be"):
        stats.paired_difference([1.0, 2.0], [1.0, 3.0], test="t")


def test_t_interval_matches_scipy_and_paired_difference_uses_it():
    x = np.random.default_rng(2).normal(size=12)
    ref = sst.t.interval(0.95, df=11, loc=x.mean(), scale=sst.sem(x))
    assert stats.t_interval(x) == pytest.approx(ref)
    out = stats.paired_difference(np.zeros(12), x, method="t")
    assert out["ci95"] == pytest.approx(list(ref))


def test_default_interval_is_never_narrower_than_student_t():
    rng = np.random.default_rng(4)
    for n in (4, 8, 30):
        for x in (rng.normal(size=n), rng.lognormal(size=n), rng.uniform(size=n)):
            t_lo, t_hi = stats.t_interval(x)
            lo, hi = stats.summarize(x)["ci95"]
            assert lo <= t_lo + 1e-12 and hi >= t_hi - 1e-12


def test_pieces_t_interval_is_the_t_interval_of_piece_means():
    # equal clips per piece: the clip mean is the mean of piece means and the cluster-robust t interval over
    # pieces (df = pieces - 1) is the plain t interval of the piece means
    rng = np.random.default_rng(5)
    x = rng.normal(size=16)
    pieces = np.repeat(np.arange(8), 2)
    means = x.reshape(8, 2).mean(axis=1)
    s = stats.summarize(x, groups=pieces, method="t")
    assert s["mean"] == pytest.approx(x.mean())
    assert s["ci95"] == pytest.approx(list(sst.t.interval(0.95, df=7, loc=means.mean(), scale=sst.sem(means))))
    assert s["n"] == 16 and s["n_groups"] == 8 and s["method"] == "t(piece)" and s["small_n"] is True
    # unequal sizes: the point estimate stays the clip mean (not the mean of piece means)
    groups = [0, 0, 0, 0, 1, 2, 3, 3]
    y = rng.normal(size=8)
    assert stats.summarize(y, groups=groups)["mean"] == pytest.approx(y.mean())


def test_intervals_are_clipped_to_bounds():
    x = np.array([0.0, 0.0, 0.0, 0.01, 0.0, 0.3, 0.0, 0.0])
    assert stats.t_interval(x)[0] < 0
    for method in stats.METHODS:
        lo, hi = stats.summarize(x, bounds=(0, 1), method=method)["ci95"]
        assert 0.0 <= lo <= x.mean() <= hi <= 1.0, method
    lo, hi = stats.summarize(x, bounds=(0, None))["ci95"]
    assert lo == 0.0 and hi > x.mean()
    lo, hi = stats.summarize(1.0 - x, bounds=(0, 1))["ci95"]
    assert lo < 1.0 - x.mean() < hi <= 1.0


def test_all_values_on_a_bound_still_get_an_interval():
    # every clip scored 0 (a weak system): the worst case binomial variance, Wilson's upper end
    # k / (1 + k), k = t_{n-1}^2 / (n - 1) (the Bernoulli dispersion of n values with n - 1 degrees of freedom)
    for n in (5, 10, 20):
        k = sst.t.ppf(0.975, n - 1) ** 2 / (n - 1)
        s = stats.summarize(np.zeros(n), bounds=(0, 1))
        assert s["mean"] == 0.0 and s["ci95"] == pytest.approx([0.0, k / (1 + k)])
        s = stats.summarize(np.full(n, 100.0), bounds=(0, 100))
        assert s["ci95"] == pytest.approx([100 / (1 + k), 100.0])
    # pieces: the worst case counts pieces, not clips
    k = sst.t.ppf(0.975, 4) ** 2 / 4
    s = stats.summarize(np.zeros(10), bounds=(0, 1), groups=np.repeat(np.arange(5), 2))
    assert s["ci95"] == pytest.approx([0.0, k / (1 + k)])
    # without bounds nothing can be said: a zero-width interval, as Student-t's
    assert stats.summarize(np.zeros(10))["ci95"] == [0.0, 0.0]


def test_mean_intervals_rows_match_summarize():
    rng = np.random.default_rng(6)
    x = rng.beta(0.3, 3.0, (5, 12))
    pieces = np.repeat(np.arange(6), 2)
    mean, lo, hi = stats.mean_intervals(x, groups=pieces, bounds=(0, 1), n_boot=300, seed=2)
    for i in range(5):
        s = stats.summarize(x[i], groups=pieces, bounds=(0, 1), n_boot=300, seed=2)
        assert [mean[i], lo[i], hi[i]] == pytest.approx([s["mean"], *s["ci95"]])
    with pytest.raises(ValueError, match="finite"):
        stats.mean_intervals(np.array([[0.1, np.nan]]))


def test_bca_differs_from_percentile_on_skewed_data_and_brackets_the_estimate():
    x = np.random.default_rng(5).lognormal(size=30)
    bca = stats.bootstrap_ci(x, n_boot=2000, seed=0)
    pct = stats.bootstrap_ci(x, n_boot=2000, seed=0, method="percentile")
    assert bca != pct and bca[0] < x.mean() < bca[1]
    assert bca[1] > pct[1]  # right-skewed mean: BCa shifts the interval up
    with pytest.raises(ValueError, match="method"):
        stats.bootstrap_ci(x, method="normal")
    # the vectorised BCa / percentile of mean_intervals agree with bootstrap_ci's on the same resamples
    _, lo, hi = stats.mean_intervals(x[None], method="percentile", n_boot=2000, seed=0)
    assert [lo[0], hi[0]] == pytest.approx(list(pct))


def test_small_n_flag():
    assert stats.summarize(np.arange(9.0))["small_n"] is True
    assert stats.summarize(np.arange(10.0))["small_n"] is False
    # with pieces the unit count decides: 16 clips from 8 pieces are 8 units
    assert stats.summarize(np.arange(16.0), groups=np.repeat(np.arange(8), 2))["small_n"] is True


def test_sign_flip_p_is_exact_enumeration():
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.05, 0.4])
    pieces = np.array([0, 0, 1, 2, 2, 3])
    totals = np.array([0.2, 0.5, 0.25, 0.4])
    pats = np.array(list(itertools.product([1, -1], repeat=4)))
    ref = np.mean(np.abs(pats @ totals) >= abs(totals.sum()) - 1e-12)
    assert stats.sign_flip_p(d, pieces) == pytest.approx(ref)
    # clips as units: |sum| >= 1.35 only when the flipped clips' sizes add up to <= 0.1 ({}, {-0.1}, {0.05}),
    # and their mirror images: 6 of 64 patterns
    assert stats.sign_flip_p(d) == pytest.approx(6 / 64)
    assert stats.sign_flip_p(np.zeros(5)) == 1.0
    assert math.isnan(stats.sign_flip_p([]))
    # above EXACT_SIGN_FLIP_MAX units: Monte Carlo, close to the exact value
    x = np.random.default_rng(0).normal(0.3, 1.0, 18)
    pats = 1.0 - 2.0 * ((np.arange(2 ** 18)[:, None] >> np.arange(18)) & 1)
    exact = np.mean(np.abs(pats @ x) >= abs(x.sum()) - 1e-12)
    assert stats.sign_flip_p(x, n_perm=20000) == pytest.approx(exact, abs=0.01)


# ---------------------------------------------------------------------------------------------------------
# coverage by simulation (scripts/benchmarks/bench_intervals.py prints the full table)

RUNS = 4000  # coverage to +-0.007 (2 standard errors at 0.95)
SHAPES_CHECKED = ("normal", "lognormal(0,1)", "beta(0.3,3)", "80% zeros", "paired b-a")


@pytest.mark.parametrize("name", SHAPES_CHECKED)
def test_default_interval_covers_skewed_and_zero_inflated_scores(bench, name):
    shape = bench.shapes()[name]
    at10, _ = bench.coverage(shape, 10, "auto", runs=RUNS, seed=10)
    at20, _ = bench.coverage(shape, 20, "auto", runs=RUNS, seed=20)
    assert at10 >= 0.90, (name, at10)
    # lognormal(0, 1) (skewness 6) is the one shape short of 0.93 at n = 20: 0.928 with 8000 runs; no method
    # measured does better (docs/statistics.md)
    assert at20 >= (0.92 if name.startswith("lognormal") else 0.93), (name, at20)
    assert max(at10, at20) <= 0.99, (name, at10, at20)  # not bought with a useless interval


@pytest.mark.parametrize("name", ("lognormal(0,1)", "beta(0.3,3)", "80% zeros"))
def test_student_t_undercovers_these_shapes(bench, name):
    # what the default interval fixes: the Student-t interval misses far more often than 5 % at n = 10
    t10, t_width = bench.coverage(bench.shapes()[name], 10, "t", runs=RUNS, seed=10)
    assert t10 < 0.87, (name, t10)


def test_all_zero_samples_are_why_a_bound_is_needed(bench):
    # with 80 % zeros and n = 10 about 11 % of samples are all zeros: an interval that ignores the range
    # has zero width there and cannot reach 0.90; the range-aware one does
    shape = bench.shapes()["80% zeros"]
    x = shape.draw(np.random.default_rng(10), (RUNS, 10))
    all_zero = np.all(x == 0, axis=1)
    assert 0.09 < all_zero.mean() < 0.13
    _, lo, hi = stats.mean_intervals(x, method="boot-t")
    assert np.all(hi[all_zero] == 0.0)
    _, lo, hi = stats.mean_intervals(x, bounds=(0, 1))
    assert np.all(hi[all_zero] > shape.mean)


@pytest.mark.parametrize("icc", (0.25, 0.5, 0.9))
def test_piece_intervals_hold_where_clip_intervals_do_not(bench, icc):
    # 8 pieces x 2 clips with correlated clips: intervals over pieces hold, clip-level ones undercover more as
    # the correlation grows
    for link in ("normal", "Phi^4"):
        shape = bench.shapes()[f"pieces icc={icc} {link}"]
        pieces, _ = bench.coverage(shape, 16, "auto", runs=RUNS, seed=16)
        naive, _ = bench.coverage(shape, 16, "t", runs=RUNS, seed=16, grouped=False)
        assert pieces >= 0.93, (shape.name, pieces)
        assert naive < pieces - 0.02, (shape.name, naive, pieces)
        if icc == 0.9:
            assert naive < 0.90, (shape.name, naive)


def test_paired_tests_over_pieces_hold_their_level(bench):
    rows = {name: (flip, wil, naive) for name, flip, wil, naive in bench.test_levels(2000, seed=1)}
    for name in ("null, icc=0.5", "null, icc=0.9"):
        flip, wil, naive = rows[name]
        assert flip <= 0.06 and wil <= 0.06, (name, flip, wil)
        assert naive > 0.08, (name, naive)  # clip-level Wilcoxon ignores the pieces and rejects too often
    flip, wil, _ = rows["shift 1 sd, icc=0.5"]
    assert flip > 0.6 and wil > 0.6


def test_large_offsets_do_not_lose_the_spread():
    # the standard errors are computed on centred sums: 1e9 + small noise gives the noise's interval shifted
    x = np.random.default_rng(7).normal(0.0, 1e-3, 12)
    pieces = np.repeat(np.arange(6), 2)
    for method in ("t", "boot-t", "bca"):
        small = stats.summarize(x, groups=pieces, method=method)["ci95"]
        big = stats.summarize(x + 1e9, groups=pieces, method=method)["ci95"]
        assert np.subtract(big, 1e9) == pytest.approx(small, abs=1e-6), method
