"""Intervals of a mean over units (clips, or groups of clips such as pieces), many samples at once.

The engine of :func:`vitmusic.metrics.stats.summarize` and :func:`~vitmusic.metrics.stats.paired_difference`,
vectorised over rows so that simulations of coverage (tests, ``scripts/benchmarks/bench_intervals.py``) run the
very code a report runs. Values [R, N] of N clips; ``groups`` [N] name each clip's unit. The point estimate is
the clip mean ``sum(T_g) / sum(N_g)`` (``T_g`` the sum and ``N_g`` the number of clips of unit g); its
standard error is the cluster-robust one, ``G / (G - 1) * sum (T_g - mean N_g)^2 / (sum N_g)^2``, which is
``s^2 / n`` without groups and the variance of the piece means / G with equally many clips per piece. The
bootstrap resamples whole units.

Methods (:data:`METHODS`; which to use and why: docs/statistics.md):

* ``"t"``: Student-t, ``mean -+ t_{G-1} se``.
* ``"boot-t"``: studentized bootstrap ``(mean* - mean) / se*``; its critical values never below Student-t's
  (``floor_t``); resamples with no spread have no studentized value and are left out.
* ``"wilson"``: on the range ``[lo, hi]`` scaled to [0, 1], the score interval
  ``{mu: |mean - mu| <= t_{G-1} sqrt(phi mu (1 - mu))}`` with ``phi = se^2 / (mean (1 - mean))``: the
  variance shrinks toward a bound as it does for bounded scores, so the interval is asymmetric there. When
  every unit sits on one bound ``phi`` is the worst case (units all-or-nothing), so the interval keeps a width.
* ``"wilson-boot-t"``: the same score statistic with bootstrap critical values (floored at Student-t's).
* ``"percentile"``, ``"bca"``: for comparison (they undercover at small n).
* ``"auto"``: ``"wilson-boot-t"`` when both bounds are finite, else ``"boot-t"``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

DEFAULT_N_BOOT = 1000
DEFAULT_CONFIDENCE = 0.95
#: interval methods of :func:`mean_intervals` (and summarize / paired_difference)
METHODS: tuple[str, ...] = ("auto", "t", "wilson", "boot-t", "wilson-boot-t", "percentile", "bca")
DEFAULT_METHOD = "auto"

Bounds = tuple[float | None, float | None] | None


def bootstrap_indices(n: int, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> np.ndarray:
    """Resampling indices for a bootstrap over ``n`` items: int array [n_boot, n]."""
    if n < 1:
        raise ValueError(f"bootstrap needs at least one item, got n={n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def bootstrap_counts(n: int, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> np.ndarray:
    """How often each of ``n`` items is drawn in each resample of :func:`bootstrap_indices`: float [n_boot, n]."""
    idx = bootstrap_indices(n, n_boot, seed)
    flat = idx + n * np.arange(n_boot)[:, None]
    return np.bincount(flat.reshape(-1), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def check_confidence(confidence: float) -> None:
    """ValueError unless ``0 < confidence < 1``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def student_q(confidence: float, df: int | np.ndarray) -> np.ndarray:
    """Two-sided Student-t critical value at ``confidence`` with ``df`` degrees of freedom."""
    from scipy.stats import t as student_t

    return student_t.ppf(0.5 + confidence / 2.0, df)


def check_bounds(bounds: Bounds) -> tuple[float, float]:
    """``bounds`` -> ``(lo, hi)`` with ``-inf`` / ``inf`` for an open side; ValueError when not ``lo < hi``."""
    if bounds is None:
        return -np.inf, np.inf
    if len(bounds) != 2:
        raise ValueError(f"bounds must be (lo, hi) with None for an open side, got {bounds!r}")
    lo = -np.inf if bounds[0] is None else float(bounds[0])
    hi = np.inf if bounds[1] is None else float(bounds[1])
    if np.isnan(lo) or np.isnan(hi) or not lo < hi:
        raise ValueError(f"bounds must satisfy lo < hi, got {bounds!r}")
    return lo, hi


def resolve_method(method: str, bounds: Bounds) -> str:
    """The interval method ``method`` stands for with these bounds (``"auto"`` resolved); ValueError if unknown."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    lo, hi = check_bounds(bounds)
    two_sided = np.isfinite(lo) and np.isfinite(hi)
    if method == "auto":
        return "wilson-boot-t" if two_sided else "boot-t"
    if method.startswith("wilson") and not two_sided:
        raise ValueError(f"method {method!r} needs finite bounds=(lo, hi), got {bounds!r}")
    return method


def method_name(method: str, bounds: Bounds = None, grouped: bool = False, unit: str = "piece") -> str:
    """The stable name of an interval for tables, e.g. ``"wilson-boot-t(piece)"`` or ``"t(clip)"``."""
    return f"{resolve_method(method, bounds)}({unit if grouped else 'clip'})"


def unit_codes(groups: Sequence[Hashable] | np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Unit index of each of ``n`` values [n] (labels compared as text, in sorted order) and the unit count;
    each value its own unit without ``groups``."""
    if groups is None:
        return np.arange(n), n
    g = np.asarray(groups, dtype=object).reshape(-1)
    if g.size != n:
        raise ValueError(f"groups need one label per value, got {g.size} labels for {n} values")
    _, codes = np.unique(g.astype(str), return_inverse=True)
    return codes.reshape(-1), int(codes.max()) + 1 if n else 0


def _order_stats(a: np.ndarray, levels: Sequence[float]) -> list[np.ndarray]:
    """Order statistics at ``levels`` along the last axis among the non-NaN entries (no interpolation, so
    +-inf entries are fine); NaN where a row has none."""
    s = np.sort(a, axis=-1)  # NaN last
    valid = np.sum(~np.isnan(a), axis=-1)
    out = []
    for q in levels:
        k = np.clip(np.ceil(q * (valid + 1)).astype(int) - 1, 0, np.maximum(valid - 1, 0))
        out.append(np.where(valid > 0, np.take_along_axis(s, k[..., None], axis=-1)[..., 0], np.nan))
    return out


def _robust_se2(s2: np.ndarray, s3: np.ndarray, n1: np.ndarray, n2: np.ndarray, mean: np.ndarray,
                n_units: int) -> np.ndarray:
    """Cluster-robust variance of a ratio mean from unit sums: ``G/(G-1) * sum (T - m N)^2 / (sum N)^2``.

    ``s2 = sum T^2``, ``s3 = sum T*N``, ``n1 = sum N``, ``n2 = sum N^2`` (over units, with bootstrap weights
    where resampled), ``m`` the mean. Without groups (N = 1) this is ``s^2 / n``. Callers pass centred sums
    (values minus their mean), which keeps the expansion free of cancellation.
    """
    ss = s2 - 2.0 * mean * s3 + mean ** 2 * n2
    return np.maximum(ss, 0.0) * (n_units / (n_units - 1.0)) / n1 ** 2


def _wilson_roots(mean: np.ndarray, phi: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``mu`` in [0, 1] with ``(mean - mu) / sqrt(phi * mu * (1 - mu)) = q`` (below ``mean`` when q > 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        k = q ** 2 * phi
        disc = np.sqrt(np.maximum(k * k + 4.0 * k * mean * (1.0 - mean), 0.0))
        root = (2.0 * mean + k - np.sign(q) * disc) / (2.0 * (1.0 + k))
    root = np.where(np.isinf(k), np.where(q > 0, 0.0, 1.0), root)
    return np.clip(np.where(q == 0, mean, root), 0.0, 1.0)


def _pivot_interval(centre: np.ndarray, y: np.ndarray, sizes: np.ndarray, weights: np.ndarray | None,
                    confidence: float, pivot: str, floor_t: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Interval of the ratio mean from the row centres [R] and centred unit sums ``y`` [R, G] (values minus
    the centre, scaled to [0, 1] first when ``pivot == "wilson"``) and unit sizes [G]. Critical values: the
    bootstrap's (``weights`` [B, G]; never below Student-t's when ``floor_t``) or Student-t's (``weights``
    None)."""
    n_units = y.shape[1]
    alpha = 1.0 - confidence
    n_tot = sizes.sum()
    dev = y.sum(axis=1) / n_tot  # mean - centre (0 up to rounding)
    mean = centre + dev
    se2 = _robust_se2((y ** 2).sum(1), y @ sizes, n_tot, np.sum(sizes ** 2), dev, n_units)
    t_q = float(student_q(confidence, n_units - 1))
    if pivot == "wilson":
        v = mean * (1.0 - mean)
        phi_max = (n_units / (n_units - 1.0)) * np.sum(sizes ** 2) / n_tot ** 2  # all-or-nothing units
        with np.errstate(invalid="ignore", divide="ignore"):
            phi = np.where(v > 0, se2 / v, phi_max)
    q_lo = np.full(mean.shape, -t_q)
    q_hi = np.full(mean.shape, t_q)
    if weights is not None:
        wn = weights @ sizes
        devb = (y @ weights.T) / wn
        se2b = _robust_se2((y ** 2) @ weights.T, (y * sizes) @ weights.T, wn, weights @ sizes ** 2, devb, n_units)
        if pivot == "wilson":
            vb = (centre[:, None] + devb) * (1.0 - centre[:, None] - devb)
            phib_max = (n_units / (n_units - 1.0)) * (weights @ sizes ** 2) / wn ** 2
            with np.errstate(invalid="ignore", divide="ignore"):
                phib = np.where(vb > 0, se2b / vb, phib_max)
            scale = np.sqrt(phib * v[:, None])
        else:
            scale = np.sqrt(se2b)
        # a resample with no spread (every unit drawn alike) has no studentized value: it is left out, the
        # interval is conditional on resamples that have one (n <= 3 clips would otherwise give +-inf)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(scale > 0, (devb - dev[:, None]) / scale, np.nan)
        q_lo, q_hi = _order_stats(s, (alpha / 2.0, 1.0 - alpha / 2.0))
        degenerate = (se2 <= 0) | np.isnan(q_lo)  # the bootstrap says nothing: Student-t's critical values
        q_lo = np.where(degenerate, -t_q, q_lo)
        q_hi = np.where(degenerate, t_q, q_hi)
        if floor_t:
            q_lo, q_hi = np.minimum(q_lo, -t_q), np.maximum(q_hi, t_q)
    if pivot == "wilson":
        return _wilson_roots(mean, phi, q_hi), _wilson_roots(mean, phi, q_lo)
    se = np.sqrt(se2)
    with np.errstate(invalid="ignore"):
        lo, hi = mean - q_hi * se, mean - q_lo * se
    return np.where(se > 0, lo, mean), np.where(se > 0, hi, mean)


def _resample_interval(centre: np.ndarray, y: np.ndarray, sizes: np.ndarray, weights: np.ndarray,
                       confidence: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Percentile or BCa interval of the ratio mean over resampled units (for comparison; they undercover);
    arguments as :func:`_pivot_interval`'s."""
    from scipy.stats import norm

    n_tot = sizes.sum()
    dev = y.sum(axis=1) / n_tot
    devb = np.sort((y @ weights.T) / (weights @ sizes), axis=1)
    levels = np.array([(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    levels = np.broadcast_to(levels, (y.shape[0], 2))
    if method == "bca":
        b = devb.shape[1]
        prop = (np.sum(devb < dev[:, None], 1) + 0.5 * np.sum(devb == dev[:, None], 1)) / b
        z0 = norm.ppf(np.clip(prop, 0.5 / b, 1.0 - 0.5 / b))
        jack = (y.sum(1, keepdims=True) - y) / (n_tot - sizes)  # leave one unit out
        d = jack.mean(1, keepdims=True) - jack
        den = 6.0 * np.sum(d ** 2, 1) ** 1.5
        acc = np.where(den > 0, np.sum(d ** 3, 1) / np.where(den > 0, den, 1.0), 0.0)
        z = norm.ppf(levels)
        levels = norm.cdf(z0[:, None] + (z0[:, None] + z) / (1.0 - acc[:, None] * (z0[:, None] + z)))
    pos = levels * (devb.shape[1] - 1)
    below = np.floor(pos).astype(int)
    above = np.minimum(below + 1, devb.shape[1] - 1)
    frac = pos - below
    ends = (np.take_along_axis(devb, below, 1) * (1 - frac) + np.take_along_axis(devb, above, 1) * frac)
    return centre + ends[:, 0], centre + ends[:, 1]


def mean_intervals(
    samples: np.ndarray,
    *,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    bounds: Bounds = None,
    method: str = DEFAULT_METHOD,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    floor_t: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip means and their intervals for many samples at once (the engine of :func:`summarize`; simulations).

    Args:
        samples: finite values [R, N]: R samples of the same N clips (one row for one system).
        groups: unit label of each clip [N] (e.g. its piece), shared by every row; None: each clip is a unit.
        bounds: the metric's range ``(lo, hi)`` (None for an open side) or None.
        method: one of :data:`METHODS` (see the module docstring).
        n_boot: bootstrap resamples of the units (the same resamples for every row).
        confidence: two-sided coverage, e.g. 0.95.
        seed: seed of the resampling.
        floor_t: bootstrap-t critical values never below Student-t's (the measured choice; False to compare).

    Returns:
        ``(mean [R], lo [R], hi [R])``; NaN intervals with fewer than 2 units.
    """
    check_confidence(confidence)
    method = resolve_method(method, bounds)
    lo_b, hi_b = check_bounds(bounds)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"samples must be [R, N], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite (drop undefined values first)")
    if np.any(x < lo_b) or np.any(x > hi_b):
        raise ValueError(f"values outside the bounds {bounds!r}: [{x.min():g}, {x.max():g}]")
    codes, n_units = unit_codes(groups, x.shape[1])
    nan = np.full(x.shape[0], np.nan)
    mean = x.mean(axis=1) if x.shape[1] else nan
    if n_units < 2:
        return mean, nan, nan.copy()
    onehot = membership(codes, n_units)
    sizes = onehot.sum(axis=0)
    pivot = "wilson" if method.startswith("wilson") else "t"
    if pivot == "wilson":  # work on [0, 1]
        x = (x - lo_b) / (hi_b - lo_b)
    centre = x.mean(axis=1)
    y = (x - centre[:, None]) @ onehot  # centred unit sums [R, G]
    weights = None
    if method in ("boot-t", "wilson-boot-t", "percentile", "bca"):
        weights = bootstrap_counts(n_units, n_boot, seed)
    if method in ("percentile", "bca"):
        lo, hi = _resample_interval(centre, y, sizes, weights, confidence, method)
    else:
        lo, hi = _pivot_interval(centre, y, sizes, weights, confidence, pivot, floor_t)
    if pivot == "wilson":
        lo, hi = lo_b + (hi_b - lo_b) * lo, lo_b + (hi_b - lo_b) * hi
    return mean, np.clip(lo, lo_b, hi_b), np.clip(hi, lo_b, hi_b)


def difference_bounds(bounds: Bounds) -> Bounds:
    """Range of ``b - a`` for two values in ``bounds``: ``(lo - hi, hi - lo)``; None when either side is open."""
    lo, hi = check_bounds(bounds)
    return (lo - hi, hi - lo) if np.isfinite(lo) and np.isfinite(hi) else None


def membership(codes: np.ndarray, n_units: int) -> np.ndarray:
    """Clip -> unit membership matrix [N, G]."""
    m = np.zeros((codes.size, n_units))
    m[np.arange(codes.size), codes] = 1.0
    return m


def unit_means(values: np.ndarray, groups: Sequence[Hashable] | np.ndarray | None) -> np.ndarray:
    """Mean of ``values`` [..., N] per unit (group labels in sorted order) -> [..., G]; the values themselves
    without groups."""
    x = np.asarray(values, dtype=np.float64)
    if groups is None:
        return x
    onehot = membership(*unit_codes(groups, x.shape[-1]))
    return (x @ onehot) / onehot.sum(axis=0)
