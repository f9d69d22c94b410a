"""Statistics over clips: means with confidence intervals, paired differences, Wilcoxon tests.

Plain numpy in, plain floats out. Undefined values (NaN / inf) are never counted as 0: every function
here drops them first (paired functions drop a clip when either system's value is undefined) and returns
``float("nan")`` when nothing is left to compute on.

Intervals of a **mean** (:func:`summarize`, :func:`paired_difference`) are Student-t intervals
(:func:`t_interval`): exact for normal data at any n, where the percentile bootstrap is too narrow at small
n (measured by simulation, normal data, nominal 95 %: 85 % coverage at n = 5, 91 % at n = 10, BCa 84 % and
92 %; the t interval 95.8 % and 95.1 %).
:func:`bootstrap_ci` (any statistic) offers the percentile and the BCa bootstrap, seeded with
``numpy.random.default_rng``: the same inputs and seed always give the same interval. Fewer than
:data:`SMALL_N` clips are flagged (``small_n``) in every table: an interval from so few clips rests on the
normality assumption.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_N_BOOT = 1000
DEFAULT_CONFIDENCE = 0.95
#: below this many defined clips a table flags the value (``n<10``)
SMALL_N = 10
CI_METHOD = "t"


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


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Student-t confidence interval of the mean: ``mean -+ t_{n-1} * sd / sqrt(n)``.

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` with fewer than 2 defined values; a zero-width interval when every
        value is equal.
    """
    from scipy.stats import t as student_t

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = finite(values)
    if x.size < 2:
        return float("nan"), float("nan")
    half = float(student_t.ppf(0.5 + confidence / 2.0, x.size - 1)) * float(x.std(ddof=1)) / np.sqrt(x.size)
    m = float(x.mean())
    return m - half, m + half


def _bca_interval(x: np.ndarray, stats: np.ndarray, statistic: Callable[[np.ndarray], float],
                  confidence: float) -> tuple[float, float]:
    from scipy.stats import norm

    stats = stats[np.isfinite(stats)]
    theta = float(statistic(x))
    prop = (np.sum(stats < theta) + 0.5 * np.sum(stats == theta)) / stats.size
    if stats.size == 0 or prop <= 0.0 or prop >= 1.0:
        return _percentile_interval(stats, confidence) if stats.size else (float("nan"), float("nan"))
    z0 = norm.ppf(prop)
    jack = np.array([statistic(np.delete(x, i)) for i in range(x.size)], dtype=np.float64)
    d = jack.mean() - jack
    denom = 6.0 * np.sum(d ** 2) ** 1.5
    a = float(np.sum(d ** 3) / denom) if denom > 0 else 0.0
    z = norm.ppf([(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    q = norm.cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
    lo, hi = np.percentile(stats, 100.0 * q)
    return float(lo), float(hi)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    statistic: Callable[[np.ndarray], float] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    method: str = "bca",
) -> tuple[float, float]:
    """Bootstrap confidence interval of a statistic (default: the mean) over clips.

    Args:
        values: per-clip values [N]; non-finite entries are dropped first.
        statistic: function of a 1-D array -> float; ``np.mean`` when None.
        n_boot: number of bootstrap resamples.
        confidence: two-sided coverage, e.g. 0.95.
        seed: seed of ``numpy.random.default_rng``.
        method: ``"bca"`` (bias-corrected and accelerated, Efron 1987; default) or ``"percentile"``.
            Both are too narrow for a mean at small n (BCa 92 % at n = 10): use :func:`t_interval` there.

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` when fewer than 2 defined values (a single clip has no spread to
        resample).
    """
    if method not in ("bca", "percentile"):
        raise ValueError(f"method must be 'bca' or 'percentile', got {method!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = finite(values)
    if x.size < 2:
        return float("nan"), float("nan")
    idx = bootstrap_indices(x.size, n_boot, seed)
    fn = statistic or (lambda a: float(np.mean(a)))
    if statistic is None:
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([statistic(x[i]) for i in idx], dtype=np.float64)
    if method == "bca":
        return _bca_interval(x, stats, fn, confidence)
    return _percentile_interval(stats, confidence)


def summarize(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict:
    """Mean, t-based CI and count of the defined values: ``{"mean", "ci95": [lo, hi], "n", "small_n"}``.

    ``small_n`` is True below :data:`SMALL_N` defined values. ``n_boot`` / ``seed`` are kept for callers
    of the former bootstrap interval and do not change the result. Undefined results are ``None`` (JSON
    null), so the dict can be dumped as is.
    """
    x = finite(values)
    mean = float(x.mean()) if x.size else None
    lo, hi = t_interval(x, confidence)
    return {"mean": mean, "ci95": [_none_if_nan(lo), _none_if_nan(hi)], "n": int(x.size),
            "small_n": bool(x.size < SMALL_N)}


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
    """Mean paired difference ``b - a`` over shared defined clips, its t-based CI and Wilcoxon p.

    Args:
        a: baseline per-clip values [N].
        b: other system's per-clip values [N], same clip order.

    Returns:
        ``{"mean_diff", "ci95": [lo, hi], "p_wilcoxon", "n"}`` with NaN where undefined.
    """
    a, b = paired_values(a, b)
    d = b - a
    mean = float(d.mean()) if d.size else float("nan")
    lo, hi = t_interval(d, confidence)
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
