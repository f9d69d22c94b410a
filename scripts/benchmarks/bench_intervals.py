"""Which interval holds for the scores we get? Coverage and width of 95 % intervals of a mean, by simulation.

For each shape of per-clip scores (normal, lognormal, beta(0.3, 3), 80 % zeros, paired differences of a weak
and a better system, pieces of correlated clips) and each number of clips n, draws ``--runs`` samples with a
known mean and prints, for every interval method of :func:`vitmusic.metrics.stats.mean_intervals`, how often
the interval holds the true mean (coverage; nominal 0.95) and its mean width. Then the level and power of
the paired tests over 8 pieces, and the time of one :func:`~vitmusic.metrics.stats.summarize` call.

    python scripts/benchmarks/bench_intervals.py        # 4000 runs; n = 5, 10, 20; pieces: n = 16, 40 clips
    python scripts/benchmarks/bench_intervals.py --runs 400 --n 10

Every sample of one cell shares the bootstrap resamples (fixed seed, as in a report); the samples are drawn
from ``numpy.random.default_rng(--seed)``. The tests (tests/metrics/test_stats.py) run the same shapes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from vitmusic.metrics import stats

UNIT = (0.0, 1.0)  # range of F1-like scores


@dataclass(frozen=True)
class Shape:
    """Per-clip scores with a known mean: ``draw(rng, (runs, n))`` -> values [runs, n]."""

    name: str
    draw: Callable[[np.random.Generator, tuple[int, int]], np.ndarray]
    mean: float
    bounds: stats.Bounds  # what the caller passes (the metric's range; for differences, their range)
    groups: Callable[[int], np.ndarray] | None = None  # n -> unit label per clip


def _zeros80(rng, size):
    """80 % zeros (a weak system's note F1), else uniform(0, 1)."""
    return (rng.random(size) < 0.2) * rng.random(size)


def _paired(rng, size):
    """b - a: a weak system's skewed scores a ~ beta(0.5, 2) and a better one, b = min(1, a * e^g), g ~ N(0.3, 0.3)
    (a system that helps clips in proportion to how well they already go)."""
    a = rng.beta(0.5, 2.0, size)
    return np.minimum(1.0, a * np.exp(rng.normal(0.3, 0.3, size))) - a


def _paired_mean() -> float:
    # E[min(1, a e^g)] - E[a] by quadrature over a (beta) and g (normal): exact enough for coverage at 1e-4
    from scipy import integrate
    from scipy.stats import beta

    def inner(a):
        # E[min(1, a e^g)] for g ~ N(0.3, 0.3)
        c = (np.log(1.0 / a) - 0.3) / 0.3
        return a * np.exp(0.3 + 0.045) * norm.cdf(c - 0.3) + norm.sf(c)

    val, _ = integrate.quad(lambda a: inner(a) * beta.pdf(a, 0.5, 2.0), 0, 1, limit=200)
    return val - 0.5 / 2.5


def _pieces(n: int) -> np.ndarray:
    """Two clips per piece: n clips -> n // 2 pieces."""
    return np.repeat(np.arange((n + 1) // 2), 2)[:n]


def _clustered(icc: float, link: Callable[[np.ndarray], np.ndarray] | None = None):
    """Clips of a piece share a piece effect: latent ``u_piece + e_clip``, ``Var u = icc``, ``Var e = 1 - icc``
    (two clips per piece); ``link`` maps the latent to a score."""
    def draw(rng, size):
        runs, n = size
        u = rng.normal(0.0, np.sqrt(icc), (runs, (n + 1) // 2))[:, _pieces(n)]
        z = u + rng.normal(0.0, np.sqrt(1.0 - icc), size)
        return z if link is None else link(z)
    return draw


def _skewed_link(z):
    """A bounded, skewed score from a N(0, 1) latent: Phi(z)^4 (mean 0.2, most clips low)."""
    return norm.cdf(z) ** 4


def _skewed_link_mean() -> float:
    from scipy import integrate

    return integrate.quad(lambda z: norm.cdf(z) ** 4 * norm.pdf(z), -np.inf, np.inf)[0]


def shapes() -> dict[str, Shape]:
    """The simulated shapes, by name (the tests check the chosen interval on these)."""
    skew = _skewed_link_mean()
    out = [
        Shape("normal", lambda r, s: r.normal(0.3, 1.0, s), 0.3, None),
        Shape("lognormal(0,1)", lambda r, s: r.lognormal(0.0, 1.0, s), float(np.exp(0.5)), (0.0, None)),
        Shape("beta(0.3,3)", lambda r, s: r.beta(0.3, 3.0, s), 0.3 / 3.3, UNIT),
        Shape("80% zeros", _zeros80, 0.1, UNIT),
        Shape("paired b-a", _paired, _paired_mean(), stats.difference_bounds(UNIT)),
        Shape("beta(5,0.5)", lambda r, s: r.beta(5.0, 0.5, s), 5.0 / 5.5, UNIT),
        Shape("lognormal(0,1.5)", lambda r, s: r.lognormal(0.0, 1.5, s), float(np.exp(1.125)), (0.0, None)),
    ]
    for icc in (0.25, 0.5, 0.9):
        out.append(Shape(f"pieces icc={icc} normal", _clustered(icc), 0.0, None, _pieces))
        out.append(Shape(f"pieces icc={icc} Phi^4", _clustered(icc, _skewed_link), skew, UNIT, _pieces))
    return {s.name: s for s in out}


#: (label, method, groups used, floor_t): the intervals compared; "naive" ignores the pieces
METHOD_ROWS: tuple[tuple[str, str, bool, bool], ...] = (
    ("t", "t", True, True),
    ("percentile", "percentile", True, True),
    ("bca", "bca", True, True),
    ("boot-t (no t floor)", "boot-t", True, False),
    ("boot-t", "boot-t", True, True),
    ("wilson", "wilson", True, True),
    ("wilson-boot-t (no t floor)", "wilson-boot-t", True, False),
    ("wilson-boot-t", "wilson-boot-t", True, True),
    ("auto", "auto", True, True),
    ("naive t(clip)", "t", False, True),
    ("naive auto(clip)", "auto", False, True),
)


def coverage(shape: Shape, n: int, method: str, *, runs: int, seed: int, n_boot: int = stats.DEFAULT_N_BOOT,
             grouped: bool = True, floor_t: bool = True) -> tuple[float, float]:
    """(coverage, mean width) of ``method`` on ``runs`` samples of ``n`` clips of ``shape``."""
    rng = np.random.default_rng(seed)
    x = shape.draw(rng, (runs, n))
    groups = shape.groups(n) if (shape.groups is not None and grouped) else None
    _, lo, hi = stats.mean_intervals(x, groups=groups, bounds=shape.bounds, method=method, n_boot=n_boot,
                                     seed=seed + 1, floor_t=floor_t)
    return float(np.mean((lo <= shape.mean) & (shape.mean <= hi))), float(np.mean(hi - lo))


def applicable(shape: Shape, method: str, grouped: bool) -> bool:
    if method.startswith("wilson"):
        lo, hi = stats.check_bounds(shape.bounds)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return False
    return grouped or shape.groups is not None


def test_levels(runs: int, seed: int, pieces: int = 8) -> list[tuple[str, float, float, float]]:
    """Rejection rate at 0.05 of the paired tests over ``pieces`` pieces x 2 clips: (case, sign-flip over
    pieces, Wilcoxon over piece means, Wilcoxon over clips ignoring the pieces)."""
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(seed)
    groups = _pieces(2 * pieces)
    cases = {
        "null, icc=0.5": _clustered(0.5)(rng, (runs, 2 * pieces)),
        "null, icc=0.9": _clustered(0.9)(rng, (runs, 2 * pieces)),
        "shift 0.5 sd, icc=0.5": _clustered(0.5)(rng, (runs, 2 * pieces)) + 0.5,
        "shift 1 sd, icc=0.5": _clustered(0.5)(rng, (runs, 2 * pieces)) + 1.0,
    }
    rows = []
    for name, d in cases.items():
        flip = np.mean(stats.sign_flip_p(d, groups) < 0.05)
        wil_p = np.mean(wilcoxon(stats.unit_means(d, groups), axis=1).pvalue < 0.05)
        wil_c = np.mean(wilcoxon(d, axis=1).pvalue < 0.05)
        rows.append((name, float(flip), float(wil_p), float(wil_c)))
    return rows


def time_summarize(n: int = 200, repeats: int = 20) -> dict[str, float]:
    """Median ms of one summarize call at n clips (1000 resamples): unbounded, bounded, bounded with pieces."""
    rng = np.random.default_rng(0)
    x = rng.beta(0.3, 3.0, n)
    groups = np.repeat(np.arange(n // 2), 2)
    calls = {"boot-t(clip)": lambda: stats.summarize(x),
             "wilson-boot-t(clip)": lambda: stats.summarize(x, bounds=UNIT),
             "wilson-boot-t(piece)": lambda: stats.summarize(x, bounds=UNIT, groups=groups)}
    out = {}
    for name, call in calls.items():
        call()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        out[name] = 1000.0 * float(np.median(times))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=4000, help="samples per cell")
    p.add_argument("--n", type=int, nargs="+", default=[5, 10, 20], help="clips per sample")
    p.add_argument("--piece-n", type=int, nargs="+", default=[16, 40],
                   help="clips per sample of the piece shapes (2 clips per piece)")
    p.add_argument("--n-boot", type=int, default=stats.DEFAULT_N_BOOT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shapes", nargs="*", default=None, help="only these shapes (names as printed)")
    args = p.parse_args(argv)
    table = shapes()
    names = args.shapes or list(table)
    print(f"coverage / mean width of 95 % intervals, {args.runs} runs per cell, {args.n_boot} resamples")
    for name in names:
        shape = table[name]
        ns = args.piece_n if shape.groups is not None else args.n
        print(f"\n### {name} (true mean {shape.mean:.4g}, bounds {shape.bounds})\n")
        print("| method | " + " | ".join(f"n={n}" for n in ns) + " |")
        print("|---" * (len(ns) + 1) + "|")
        for label, method, grouped, floor_t in METHOD_ROWS:
            if not applicable(shape, method, grouped):
                continue
            cells = []
            for n in ns:
                cov, width = coverage(shape, n, method, runs=args.runs, seed=args.seed + n, n_boot=args.n_boot,
                                      grouped=grouped, floor_t=floor_t)
                cells.append(f"{cov:.3f} / {width:.3g}")
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    print("\n### paired tests, 8 pieces x 2 clips: rejection rate at p < 0.05\n")
    print("| case | sign-flip(piece) | wilcoxon(piece means) | wilcoxon(clips, naive) |\n|---|---|---|---|")
    for name, flip, wil_p, wil_c in test_levels(args.runs, args.seed):
        print(f"| {name} | {flip:.3f} | {wil_p:.3f} | {wil_c:.3f} |")
    print("\nsummarize() at n=200 clips, 1000 resamples (median ms): "
          + ", ".join(f"{k} {v:.1f}" for k, v in time_summarize().items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
