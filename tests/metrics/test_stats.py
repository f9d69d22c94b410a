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
    lo, hi = stats.bootstrap_ci(x, n_boot=500, seed=7)
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
    lo, hi = s["ci95"]
    assert 1.0 <= lo <= hi <= 3.0


def test_summarize_all_undefined_gives_nulls():
    s = stats.summarize([float("nan"), float("nan")])
    assert s == {"mean": None, "ci95": [None, None], "n": 0}


def test_summarize_single_value_has_no_interval():
    s = stats.summarize([0.25])
    assert s == {"mean": 0.25, "ci95": [None, None], "n": 1}


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
    ref = _numpy_percentile_ci((a + d) - a, 300, 4)
    assert out["ci95"] == pytest.approx(list(ref))


def test_paired_length_mismatch_and_bad_args():
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_ci([1.0, 2.0], n_boot=0)
