"""Statistics over clips and pieces: means with confidence intervals that hold at small n, paired differences.

Plain numpy in, plain floats out. Undefined values (NaN / inf) are never counted as 0: every function here
drops them first (paired functions drop a clip when either system's value is undefined) and returns
``float("nan")`` (``None`` in the summary dicts) when nothing is left to compute on.

**The unit.** Without ``groups`` the clips are the independent units. With ``groups`` (e.g. the piece each clip
comes from) the *groups* are: clips of one piece are correlated, so the interval resamples and studentizes
whole pieces (a cluster bootstrap with a cluster-robust standard error) and rests on the number of pieces,
not clips. The point estimate stays the clip mean (sum over clips / number of clips); its estimand is the
mean score per clip over the population of pieces the test pieces stand for. With equally many clips per
piece it equals the mean of the piece means.

**The interval** (``method="auto"``, measured by ``scripts/benchmarks/bench_intervals.py``, docs/statistics.md):

* ``bounds=(lo, hi)`` both finite (F1, accuracies, win rates ...): ``"wilson-boot-t"``, a Wilson-type
  score interval whose variance follows the range, ``Var(mean) = phi * (mu - lo) * (hi - mu)``, with critical
  values from the studentized bootstrap of that score statistic, never below Student-t's. Near a bound the
  interval is asymmetric, and when every value sits on the bound (a weak system scoring 0 on every clip) it
  still has width (the binomial worst case ``phi``) instead of collapsing to a point.
* otherwise: ``"boot-t"``, the studentized (bootstrap-t) interval, again never narrower than Student-t; a
  single finite bound clips it.

Every interval is clipped to ``bounds``. Every summary names its method with the unit, e.g.
``"wilson-boot-t(piece)"`` or ``"boot-t(clip)"``. ``method="t"`` gives the former Student-t interval (exact for
normal data; it undercovers skewed and zero-inflated scores). Bootstraps are seeded with
``numpy.random.default_rng(seed)``: the same inputs and seed give the same interval. Fewer than
:data:`SMALL_N` units (clips, or pieces with ``groups``) are flagged ``small_n``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from vitmusic.metrics.intervals import (
    DEFAULT_CONFIDENCE,
    DEFAULT_METHOD,
    DEFAULT_N_BOOT,
    METHODS,
    Bounds,
    bootstrap_counts,
    bootstrap_indices,
    check_bounds,
    check_confidence,
    difference_bounds,
    mean_intervals,
    membership,
    method_name,
    resolve_method,
    student_q,
    unit_codes,
    unit_means,
)

__all__ = [  # the intervals engine's public names are reachable from here too
    "CI_METHOD", "DEFAULT_CONFIDENCE", "DEFAULT_METHOD", "DEFAULT_N_BOOT", "EXACT_SIGN_FLIP_MAX", "METHODS",
    "SMALL_N", "TESTS", "Bounds", "bootstrap_ci", "bootstrap_counts", "bootstrap_indices", "check_bounds",
    "difference_bounds", "finite", "mean_intervals", "method_name", "paired_difference", "paired_values",
    "resolve_method", "sign_flip_p", "summarize", "t_interval", "unit_means", "wilcoxon_p",
]

#: below this many defined units (clips, or groups when given) a table flags the value (``n<10``)
SMALL_N = 10
CI_METHOD = DEFAULT_METHOD  # former name of the default
#: paired tests of :func:`paired_difference`
TESTS: tuple[str, ...] = ("sign-flip", "wilcoxon")
#: up to this many units the sign-flip test enumerates every sign pattern (exact p); above, Monte Carlo
EXACT_SIGN_FLIP_MAX = 16


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return the finite entries of ``values`` as a float64 array [N'] (NaN / inf dropped)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return x[np.isfinite(x)]


def _percentile_interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    check_confidence(confidence)
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
    check_confidence(confidence)
    x = finite(values)
    if x.size < 2:
        return float("nan"), float("nan")
    half = float(student_q(confidence, x.size - 1)) * float(x.std(ddof=1)) / np.sqrt(x.size)
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
    """Bootstrap confidence interval of any statistic (default: the mean) over clips.

    For the mean prefer :func:`summarize` (its intervals are measured to hold at small n; the percentile and
    BCa bootstraps undercover there: docs/statistics.md).

    Args:
        values: per-clip values [N]; non-finite entries are dropped first.
        statistic: function of a 1-D array -> float; ``np.mean`` when None.
        n_boot: number of bootstrap resamples.
        confidence: two-sided coverage, e.g. 0.95.
        seed: seed of ``numpy.random.default_rng``.
        method: ``"bca"`` (bias-corrected and accelerated, Efron 1987; default) or ``"percentile"``.

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` when fewer than 2 defined values (a single clip has no spread to
        resample).
    """
    if method not in ("bca", "percentile"):
        raise ValueError(f"method must be 'bca' or 'percentile', got {method!r}")
    check_confidence(confidence)
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


def _labels(groups: Sequence[Hashable] | np.ndarray | None, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    g = np.asarray(groups, dtype=object).reshape(-1)
    if g.size != n:
        raise ValueError(f"groups need one label per value, got {g.size} labels for {n} values")
    return g


def _defined(values: Sequence[float] | np.ndarray, groups) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    keep = np.isfinite(x)
    g = _labels(groups, x.size)
    return x[keep], None if g is None else g[keep]


def summarize(
    values: Sequence[float] | np.ndarray,
    *,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    bounds: Bounds = None,
    method: str = DEFAULT_METHOD,
    unit: str = "piece",
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict:
    """Clip mean of the defined values with its interval over units (clips, or ``groups``).

    Args:
        values: per-clip values [N]; NaN / inf are dropped (never counted as 0).
        groups: the unit (e.g. piece) of each clip [N]; None: clips are independent.
        bounds: the metric's range ``(lo, hi)``, None for an open side; the interval is clipped to it.
        method: one of :data:`METHODS`; ``"auto"`` picks by ``bounds`` (module docstring).
        unit: what a group is called in the method name.
        n_boot, confidence, seed: bootstrap resamples, two-sided coverage, seed.

    Returns:
        ``{"mean", "ci95": [lo, hi], "n", "n_groups", "method", "small_n"}``: ``n`` defined clips,
        ``n_groups`` groups among them (None without ``groups``), ``method`` e.g. ``"boot-t(clip)"``,
        ``small_n`` True below :data:`SMALL_N` units. Undefined results are ``None`` (JSON null).
    """
    x, g = _defined(values, groups)
    n_groups = None if g is None else len(set(g.astype(str).tolist()))
    name = method_name(method, bounds, g is not None, unit)
    mean, lo, hi = mean_intervals(x[None, :], groups=g, bounds=bounds, method=method, n_boot=n_boot,
                                  confidence=confidence, seed=seed)
    units = x.size if n_groups is None else n_groups
    return {"mean": _none_if_nan(float(mean[0])) if x.size else None,
            "ci95": [_none_if_nan(lo[0]), _none_if_nan(hi[0])], "n": int(x.size), "n_groups": n_groups,
            "method": name, "small_n": bool(units < SMALL_N)}


def paired_values(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the clips where both ``a`` [N] and ``b`` [N] are finite; returns the two filtered arrays."""
    a, b, _ = _paired(a, b, None)
    return a, b


def _paired(a, b, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    g = _labels(groups, a.size)
    return a[keep], b[keep], None if g is None else g[keep]


def sign_flip_p(
    diffs: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    *,
    n_perm: int = 10000,
    seed: int = 0,
) -> float | np.ndarray:
    """Two-sided sign-flip (paired permutation) test of ``mean(diffs) = 0``, flipping whole units.

    Under the null that the two systems are exchangeable within each unit (clip, or group of clips) every
    unit's difference is as likely negated, so the p-value is the share of sign patterns whose clip mean
    difference is at least as far from 0 as the observed. Exact (every pattern) up to
    :data:`EXACT_SIGN_FLIP_MAX` units, else ``n_perm`` random patterns (``(1 + hits) / (1 + n_perm)``).

    Args:
        diffs: finite per-clip differences [N], or [R, N] for R tests at once (simulations).
        groups: unit label per clip [N]; None: each clip is a unit.

    Returns:
        p in (0, 1] (an array [R] for 2-D ``diffs``); 1.0 when every difference is 0; NaN without any.
    """
    d = np.asarray(diffs, dtype=np.float64)
    rows = np.atleast_2d(d)
    if rows.shape[1] == 0:
        return np.full(rows.shape[0], np.nan) if d.ndim == 2 else float("nan")
    totals = rows @ membership(*unit_codes(groups, rows.shape[1]))  # [R, G]
    n_units = totals.shape[1]
    if n_units <= EXACT_SIGN_FLIP_MAX:  # every pattern: the bits of 0 .. 2^G - 1
        signs = 1.0 - 2.0 * ((np.arange(2 ** n_units)[:, None] >> np.arange(n_units)) & 1)
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_perm, n_units))
    observed = np.abs(totals.sum(axis=1, keepdims=True))
    tol = 1e-12 * np.maximum(np.abs(totals).sum(axis=1, keepdims=True), 1e-300)  # float ties count as ties
    hits = np.sum(np.abs(totals @ signs.T) >= observed - tol, axis=1)
    p = hits / signs.shape[0] if n_units <= EXACT_SIGN_FLIP_MAX else (1.0 + hits) / (1.0 + n_perm)
    return p if d.ndim == 2 else float(p[0])


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    bounds: Bounds = None,
    method: str = DEFAULT_METHOD,
    test: str = "sign-flip",
    unit: str = "piece",
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict:
    """Mean paired difference ``b - a`` over shared defined clips, its interval and a paired test over units.

    Args:
        a: baseline per-clip values [N].
        b: other system's per-clip values [N], same clip order.
        groups: unit (piece) of each clip [N]; None: clips are independent.
        bounds: the *metric's* range ``(lo, hi)``; the difference lies in ``(lo - hi, hi - lo)``.
        method: interval method (:data:`METHODS`), as in :func:`summarize`.
        test: ``"sign-flip"`` (:func:`sign_flip_p`, of the mean difference; default) or ``"wilcoxon"``
            (signed-rank test of the units' mean differences). Both flip whole units.
        unit: what a group is called in the method names.
        n_boot, confidence, seed: bootstrap resamples, two-sided coverage, seed.

    Returns:
        ``{"mean_diff", "ci95": [lo, hi], "p", "test", "p_wilcoxon", "n", "n_groups", "method", "small_n"}``
        with NaN where undefined; ``p`` is the chosen test's p, ``test`` its name with the unit
        (e.g. ``"sign-flip(piece)"``), ``p_wilcoxon`` the signed-rank p over the same units.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}; got {test!r}")
    a, b, g = _paired(a, b, groups)
    lo_b, hi_b = check_bounds(bounds)
    if np.any(np.r_[a, b] < lo_b) or np.any(np.r_[a, b] > hi_b):
        raise ValueError(f"values outside the bounds {bounds!r}")
    d = b - a
    dbounds = difference_bounds(bounds)
    mean, lo, hi = mean_intervals(d[None, :], groups=g, bounds=dbounds, method=method, n_boot=n_boot,
                                  confidence=confidence, seed=seed)
    per_unit = unit_means(d, g)
    p_wil = _wilcoxon_of_differences(per_unit)
    p = p_wil if test == "wilcoxon" else sign_flip_p(d, g, seed=seed)
    label = unit if g is not None else "clip"
    n_groups = None if g is None else int(per_unit.size)
    return {"mean_diff": float(mean[0]) if d.size else float("nan"), "ci95": [float(lo[0]), float(hi[0])],
            "p": p, "test": f"{test}({label})", "p_wilcoxon": p_wil, "n": int(d.size), "n_groups": n_groups,
            "method": method_name(method, dbounds, g is not None, unit),
            "small_n": bool((d.size if n_groups is None else n_groups) < SMALL_N)}


def _wilcoxon_of_differences(d: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if d.size == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    return float(wilcoxon(d).pvalue)


def wilcoxon_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired differences ``b - a`` (scipy).

    Clips where either value is undefined are dropped. Returns NaN with no shared clip, and 1.0 when every
    difference is exactly zero (identical systems: no evidence of a difference; scipy would divide by 0).
    """
    a, b = paired_values(a, b)
    return _wilcoxon_of_differences(b - a)


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
