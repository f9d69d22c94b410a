import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from vitmusic.metrics import stats


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


def test_bootstrap_is_seeded_and_seed_matters():
    x = np.arange(20.0)
    assert stats.bootstrap_ci(x, seed=1) == stats.bootstrap_ci(x, seed=1)
    assert stats.bootstrap_ci(x, seed=1) != stats.bootstrap_ci(x, seed=2)


def test_bootstrap_ci_custom_statistic():
    x = np.array([1.0, 2.0, 3.0, 100.0])
    lo, hi = stats.bootstrap_ci(x, statistic=np.median, n_boot=200, seed=0)
    assert 1.0 <= lo <= hi <= 100.0


def test_undefined_values_are_dropped_not_zero():
    s = stats.summarize([1.0, float("nan"), 3.0, float("inf")], n_boot=100)
    assert s["mean"] == 2.0
    assert s["n"] == 2
    assert s["ci95"] == pytest.approx(list(stats.t_interval([1.0, 3.0])))


def test_summarize_all_undefined_gives_nulls():
    s = stats.summarize([float("nan"), float("nan")])
    assert s == {"mean": None, "ci95": [None, None], "n": 0, "small_n": True}


def test_summarize_single_value_has_no_interval():
    s = stats.summarize([0.25])
    assert s == {"mean": 0.25, "ci95": [None, None], "n": 1, "small_n": True}


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
    assert out["n"] == 30
    assert out["ci95"] == pytest.approx([0.2, 0.2])
    assert out["p_wilcoxon"] == pytest.approx(wilcoxon(b - a).pvalue)
    d = rng.normal(size=30)
    out = stats.paired_difference(a, a + d, n_boot=300, seed=4)
    assert out["ci95"] == pytest.approx(list(stats.t_interval((a + d) - a)))


def test_paired_length_mismatch_and_bad_args():
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_ci([1.0, 2.0], n_boot=0)


def _coverage(interval, n, n_sim=2000, seed=0):
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(n_sim):
        lo, hi = interval(rng.normal(0.3, 1.0, size=n), k)
        hits += lo <= 0.3 <= hi
    return hits / n_sim


def test_summary_interval_covers_95_percent_at_n10():
    # normal data, nominal 95 %: the t interval holds at n = 10 (and n = 5) where the percentile bootstrap
    # does not (85 % at n = 5 and 91 % at n = 10 with 1000 runs; issue 12 measured 81 % and 89 %)
    def summary_ci(x, k):
        return stats.summarize(x)["ci95"]

    assert 0.93 <= _coverage(summary_ci, 10) <= 0.97
    assert 0.93 <= _coverage(summary_ci, 5) <= 0.97
    percentile = _coverage(lambda x, k: stats.bootstrap_ci(x, n_boot=200, seed=k, method="percentile"), 5, 400)
    assert percentile < 0.88


def test_t_interval_matches_scipy_and_paired_difference_uses_it():
    from scipy import stats as sst

    x = np.random.default_rng(2).normal(size=12)
    ref = sst.t.interval(0.95, df=11, loc=x.mean(), scale=sst.sem(x))
    assert stats.t_interval(x) == pytest.approx(ref)
    out = stats.paired_difference(np.zeros(12), x)
    assert out["ci95"] == pytest.approx(list(ref))


def test_bca_differs_from_percentile_on_skewed_data_and_brackets_the_estimate():
    x = np.random.default_rng(5).lognormal(size=30)
    bca = stats.bootstrap_ci(x, n_boot=2000, seed=0)
    pct = stats.bootstrap_ci(x, n_boot=2000, seed=0, method="percentile")
    assert bca != pct and bca[0] < x.mean() < bca[1]
    assert bca[1] > pct[1]  # right-skewed mean: BCa shifts the interval up
    with pytest.raises(ValueError, match="method"):
        stats.bootstrap_ci(x, method="normal")


def test_small_n_flag():
    assert stats.summarize(np.arange(9.0))["small_n"] is True
    assert stats.summarize(np.arange(10.0))["small_n"] is False
