"""Statistics over clips: means with bootstrap confidence intervals, paired differences, Wilcoxon tests.

Plain numpy in, plain floats out. Undefined values (NaN / inf) are never counted as 0: every function
here drops them first (paired functions drop a clip when either system's value is undefined) and returns
``float("nan")`` when nothing is left to compute on.

The bootstrap is the percentile bootstrap over clips with a seeded ``numpy.random.default_rng``: the
same inputs and seed always give the same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_N_BOOT = 1000
DEFAULT_CONFIDENCE = 0.95


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return the finite entries of ``values`` as a float64 array [N'] (NaN / inf dropped)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return x[np.isfinite(x)]


def bootstrap_indices(n: int, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> np.ndarray:
    """Resampling indices for a bootstrap over ``n`` items: int array [n_boot, n]."""
    if n < 1:
        raise ValueError(f"bootstrap needs at least one item, got n={n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def _percentile_interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(stats, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    statistic: Callable[[np.ndarray], float] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of a statistic (default: the mean) over clips.

    Args:
        values: per-clip values [N]; non-finite entries are dropped first.
        statistic: function of a 1-D array -> float; ``np.mean`` when None.
        n_boot: number of bootstrap resamples.
        confidence: two-sided coverage, e.g. 0.95.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` when fewer than 2 defined values (a single clip has no spread to
        resample).
    """
    x = finite(values)
    if x.size < 2:
        return float("nan"), float("nan")
    idx = bootstrap_indices(x.size, n_boot, seed)
    if statistic is None:
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([statistic(x[i]) for i in idx], dtype=np.float64)
    return _percentile_interval(stats, confidence)


def summarize(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict:
    """Mean, bootstrap CI and count of the defined values: ``{"mean", "ci95": [lo, hi], "n"}``.

    Undefined results are ``None`` (JSON null), so the dict can be dumped as is.
    """
    x = finite(values)
    mean = float(x.mean()) if x.size else None
    lo, hi = bootstrap_ci(x, n_boot=n_boot, confidence=confidence, seed=seed)
    return {"mean": mean, "ci95": [_none_if_nan(lo), _none_if_nan(hi)], "n": int(x.size)}


def paired_values(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the clips where both ``a`` [N] and ``b`` [N] are finite; returns the two filtered arrays."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict:
    """Mean paired difference ``b - a`` over shared defined clips, its bootstrap CI and Wilcoxon p.

    Args:
        a: baseline per-clip values [N].
        b: other system's per-clip values [N], same clip order.

    Returns:
        ``{"mean_diff", "ci95": [lo, hi], "p_wilcoxon", "n"}`` with NaN where undefined.
    """
    a, b = paired_values(a, b)
    d = b - a
    mean = float(d.mean()) if d.size else float("nan")
    lo, hi = bootstrap_ci(d, n_boot=n_boot, confidence=confidence, seed=seed)
    return {"mean_diff": mean, "ci95": [lo, hi], "p_wilcoxon": wilcoxon_p(a, b), "n": int(d.size)}


def wilcoxon_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired differences ``b - a`` (scipy).

    Clips where either value is undefined are dropped. Returns NaN with no shared clip, and 1.0 when every
    difference is exactly zero (identical systems: no evidence of a difference; scipy would divide by 0).
    """
    from scipy.stats import wilcoxon

    a, b = paired_values(a, b)
    d = b - a
    if d.size == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    return float(wilcoxon(d).pvalue)


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
