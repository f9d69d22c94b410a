"""Distribution distances between a set of reference clips and a set of generated clips (FAD and KID).

Each clip is embedded window by window (``[W_i, D]`` per clip, see :mod:`vitmusic.metrics.fad_embeddings`),
after its integrated loudness is brought to -23 LUFS (ITU-R BS.1770): a copy at another level scores
like the copy. The clip is the statistical unit (windows of one clip are correlated), so every estimator
takes one array per clip. Three numbers, all computed from the same embeddings (docs/fad.md has the
simulations behind the choices):

- ``kid`` (headline): Kernel Inception Distance, the unbiased estimate of the squared MMD with the cubic
  polynomial kernel ``k(x, y) = (x.y / D + 1)^3`` (Binkowski et al. 2018), as a U-statistic over *clips*:
  pairs of windows from the same clip (and, for paired sets of equal size, the cross pairs of the same
  clip index) are left out, so its expectation is the population value at any number of clips (0 for
  identical distributions). Embeddings are centred and scaled by the reference set's mean and overall
  standard deviation first (one affine map shared by every system scored against that reference), so
  the kernel sees values of order 1 whatever the embedding's units. 95 % CI: Student t with the
  delete-one-clip jackknife standard error (conservative for U-statistics).
- ``fad``: the classic Fréchet distance between Gaussians fitted to the pooled windows of each side, for
  comparison with the literature. Biased upward by roughly ``c / n`` (``c`` grows with the dimension):
  comparable only between runs with the same embedding and the same numbers of clips.
- ``fad_inf``: FAD extrapolated to infinitely many clips (Chong & Forsyth 2020's FAD-infinity, linear in
  ``1/n``) with the delete-a-group-of-clips jackknife: ``G fad(n) - (G - 1) mean_g fad(n without group g)``.
  It removes the ``1/n`` term of the bias; the rest is small when the windows far outnumber ``D`` and
  large otherwise.

API in the style of mir_eval: :func:`validate_clips` raises ``ValueError``; :func:`set_scores` returns the
three estimates with their details; :func:`evaluate` embeds audio and returns the values.
"""

from __future__ import annotations

import collections
import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from vitmusic.metrics.audio_checks import validate_sample_rate
from vitmusic.metrics.fad_embeddings import (  # noqa: F401  (re-exported: the embedders of this metric)
    ALIASES,
    DEFAULT_EMBEDDING,
    Embedder,
    MelStatsEmbedder,
    TransformersAudioEmbedder,
    describe_embedder,
    load_embedder,
)
from vitmusic.metrics.loudness import TARGET_LUFS, loudness_normalize

#: ``set_scores`` names, headline first.
METRIC_NAMES: tuple[str, ...] = ("kid", "fad", "fad_inf")
#: Below this many clips per side the classic FAD is mostly bias (warned).
MIN_RELIABLE_CLIPS = 50
#: Below this many clips per side even KID's interval is too wide to rank systems (warned).
MIN_KID_CLIPS = 10
#: Kept for callers of the pooled :func:`frechet_distance`: fewer windows than this warn.
MIN_RELIABLE_N = MIN_RELIABLE_CLIPS
#: KID uses at most this many evenly spaced windows of a clip (the estimate stays unbiased; only cost drops).
KID_MAX_WINDOWS_PER_CLIP = 50
#: fad_inf deletes one of at most this many contiguous groups of clips at a time.
FAD_INF_MAX_GROUPS = 50


# ------------------------------------------------------------------------------------------- validation
def validate(emb_a: object, emb_b: object) -> tuple[np.ndarray, np.ndarray]:
    """Check two pooled embedding sets (``[N, D]`` and ``[M, D]``, finite, same D); return them as float64.

    Raises:
        ValueError: wrong rank, differing widths, empty or non-finite entries.
    """
    a, b = _as_matrix(emb_a, "emb_a"), _as_matrix(emb_b, "emb_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding widths differ: {a.shape[1]} vs {b.shape[1]}")
    return a, b


def _as_matrix(e: object, name: str) -> np.ndarray:
    arr = np.asarray(e, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be [N, D], got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf")
    return arr


def validate_clips(ref_clips: object, gen_clips: object) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Check two sets of per-clip embeddings (a sequence of ``[W_i, D]`` arrays per side, ``W_i >= 1``).

    Raises:
        ValueError: an empty set, a clip that is not ``[W, D]``, non-finite values, differing widths.
    """
    out = []
    for name, clips in (("ref_clips", ref_clips), ("gen_clips", gen_clips)):
        if isinstance(clips, np.ndarray) and clips.ndim == 2:
            raise ValueError(f"{name} must be a sequence of [W, D] arrays (one per clip), not one pooled array")
        arrs = [_as_matrix(c, f"{name}[{i}]") for i, c in enumerate(clips)]
        if not arrs:
            raise ValueError(f"{name} holds no clip")
        widths = {a.shape[1] for a in arrs}
        if len(widths) > 1:
            raise ValueError(f"{name}: clips have different embedding widths {sorted(widths)}")
        out.append(arrs)
    if out[0][0].shape[1] != out[1][0].shape[1]:
        raise ValueError(f"embedding widths differ: {out[0][0].shape[1]} vs {out[1][0].shape[1]}")
    return out[0], out[1]


# ------------------------------------------------------------------------------------ Fréchet distance
def gaussian_stats(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and (unbiased) covariance ``[D, D]`` of ``[N, D]`` embeddings (N >= 2)."""
    return emb.mean(axis=0), np.atleast_2d(np.cov(emb, rowvar=False))


def frechet_distance_from_stats(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """Fréchet distance ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` between two Gaussians.

    ``tr((S_a S_b)^(1/2))`` is the sum of the square roots of the eigenvalues of the symmetric PSD matrix
    ``S_a^(1/2) S_b S_a^(1/2)`` (same spectrum as ``S_a S_b``): two symmetric eigendecompositions, exact for
    singular covariances, no complex round-off as with ``sqrtm`` of the non-symmetric product.
    """
    mu_a, mu_b = np.atleast_1d(mu_a), np.atleast_1d(mu_b)
    sigma_a, sigma_b = np.atleast_2d(sigma_a), np.atleast_2d(sigma_b)
    w, v = np.linalg.eigh(sigma_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root_a @ sigma_b @ root_a
    ev = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.sqrt(np.clip(ev, 0.0, None)).sum())
    # round-off can leave a tiny negative number for identical distributions
    return max(value, 0.0)


def frechet_distance(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Fréchet distance between two pooled embedding sets ``[N, D]`` and ``[M, D]``.

    Returns:
        FAD (>= 0); nan when either set has fewer than 2 embeddings. Warns about small-sample bias when
        ``min(N, M) < 50`` or ``< D`` (the clip-aware :func:`set_scores` warns per clip instead).
    """
    a, b = validate(emb_a, emb_b)
    n, d = min(a.shape[0], b.shape[0]), a.shape[1]
    if n < 2:
        return math.nan
    if n < MIN_RELIABLE_N or n < d:
        warnings.warn(f"FAD from {n} embeddings of dimension {d} is strongly biased upward (want N >= "
                      f"{max(MIN_RELIABLE_N, d)}); compare only runs with equal N, or use kid",
                      UserWarning, stacklevel=2)
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def _pooled_mean(clips: Sequence[np.ndarray]) -> np.ndarray:
    return sum(c.sum(axis=0) for c in clips) / sum(c.shape[0] for c in clips)


class _Moments:
    """Sufficient statistics of one side's clips (centred at ``center``) for the covariance of any subset.

    Only the totals are stored (``O(D^2)`` memory, no copy of the windows); the scatter of a deleted group is
    recomputed from its windows, so a full jackknife costs one extra pass over the data.
    """

    def __init__(self, clips: Sequence[np.ndarray], center: np.ndarray) -> None:
        self.clips, self.center = clips, center
        self.count = np.array([c.shape[0] for c in clips], dtype=np.float64)
        self.sums = np.stack([c.sum(axis=0) - c.shape[0] * center for c in clips])
        self.scatter = sum(self._scatter(i) for i in range(len(clips)))

    def _scatter(self, i: int) -> np.ndarray:
        c = self.clips[i] - self.center
        return c.T @ c

    def stats(self, drop: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and covariance of the windows of every clip but ``drop`` (None when < 2 windows remain)."""
        count, total, scatter = self.count.sum(), self.sums.sum(axis=0), self.scatter
        if drop is not None and drop.size:
            count -= self.count[drop].sum()
            total = total - self.sums[drop].sum(axis=0)
            scatter = scatter - sum(self._scatter(i) for i in drop)
        if count < 2:
            return None
        mean = total / count
        return mean, (scatter - count * np.outer(mean, mean)) / (count - 1.0)


def _fad_of(a: _Moments, b: _Moments, drop_a: np.ndarray | None, drop_b: np.ndarray | None) -> float:
    sa, sb = a.stats(drop_a), b.stats(drop_b)
    return math.nan if sa is None or sb is None else frechet_distance_from_stats(*sa, *sb)


def _groups(n: int, max_groups: int) -> list[np.ndarray]:
    return [g for g in np.array_split(np.arange(n), min(n, max_groups)) if g.size]


def fad_inf(ref_clips: Sequence[np.ndarray], gen_clips: Sequence[np.ndarray],
            max_groups: int = FAD_INF_MAX_GROUPS) -> collections.OrderedDict[str, float]:
    """FAD extrapolated to infinitely many clips by the delete-a-group jackknife (see the module docstring).

    Sets of equal size are treated as paired: group ``g`` is deleted from both sides at once. Otherwise the
    two-sample jackknife deletes from each side in turn and subtracts both bias estimates.

    Returns:
        ``{"fad_inf", "fad", "n_groups"}``; ``fad_inf`` is nan below 3 clips per side (and may be < 0:
        an unbiased-in-the-limit estimate of a distance near 0 scatters around it).
    """
    return _fad_inf(*validate_clips(ref_clips, gen_clips), max_groups)


def _fad_inf(ref: list[np.ndarray], gen: list[np.ndarray], max_groups: int) -> collections.OrderedDict[str, float]:
    center = _pooled_mean(ref)  # FAD is translation invariant; centring keeps the sums accurate
    a, b = _Moments(ref, center), _Moments(gen, center)
    full = _fad_of(a, b, None, None)
    out = collections.OrderedDict(fad_inf=math.nan, fad=full, n_groups=0.0)
    if min(len(ref), len(gen)) < 3 or not math.isfinite(full):
        return out
    if len(ref) == len(gen):
        groups = _groups(len(ref), max_groups)
        loo = np.array([_fad_of(a, b, g, g) for g in groups])
        corrected = len(groups) * full - (len(groups) - 1) * loo.mean()
    else:
        ga, gb = _groups(len(ref), max_groups), _groups(len(gen), max_groups)
        loo_a = np.array([_fad_of(a, b, g, None) for g in ga])
        loo_b = np.array([_fad_of(a, b, None, g) for g in gb])
        loo = np.concatenate([loo_a, loo_b])
        corrected = full - (len(ga) - 1) * (loo_a.mean() - full) - (len(gb) - 1) * (loo_b.mean() - full)
        groups = ga + gb
    if np.all(np.isfinite(loo)):
        out.update(fad_inf=float(corrected), n_groups=float(len(groups)))
    return out


# ------------------------------------------------------------------------------------------------- KID
def _thin(clip: np.ndarray, max_windows: int) -> np.ndarray:
    if clip.shape[0] <= max_windows:
        return clip
    return clip[np.unique(np.linspace(0, clip.shape[0] - 1, max_windows).round().astype(int))]


def _block_kernel_means(p: list[np.ndarray], q: list[np.ndarray], dim: int, max_cells: int = 1 << 22) -> np.ndarray:
    """``[len(p), len(q)]``: mean cubic-kernel value over all window pairs of clip ``p_i`` and clip ``q_j``.

    The kernel matrix is built for runs of whole ``p`` clips of at most ``max_cells`` entries (memory) and
    summed per clip block at once.
    """
    stacked = np.concatenate(q)
    q_sizes = np.array([c.shape[0] for c in q])
    q_starts = np.r_[0, np.cumsum(q_sizes)[:-1]]
    p_sizes = np.array([c.shape[0] for c in p])
    out = np.empty((len(p), len(q)))
    i = 0
    while i < len(p):
        j, rows = i + 1, p_sizes[i]
        while j < len(p) and (rows + p_sizes[j]) * stacked.shape[0] <= max_cells:
            rows, j = rows + p_sizes[j], j + 1
        base = np.concatenate(p[i:j]) @ stacked.T  # [rows, sum W_q]
        base /= dim
        base += 1.0
        k = base * base
        k *= base  # (x.y / D + 1)^3, without pow
        by_col = np.add.reduceat(k, q_starts, axis=1)
        out[i:j] = np.add.reduceat(by_col, np.r_[0, np.cumsum(p_sizes[i:j])[:-1]], axis=0)
        i = j
    return out / np.outer(p_sizes, q_sizes)


def kid(ref_clips: Sequence[np.ndarray], gen_clips: Sequence[np.ndarray],
        max_windows_per_clip: int = KID_MAX_WINDOWS_PER_CLIP) -> collections.OrderedDict[str, object]:
    """Unbiased KID over clips with its jackknife standard error and 95 % Student-t interval.

    Returns:
        ``{"kid", "se", "ci95": [lo, hi], "scale"}``: ``scale`` is the reference's overall standard
        deviation the embeddings were divided by. ``kid`` is nan below 2 clips per side; the interval needs
        3. The value can be < 0 (an unbiased estimate of a squared distance near 0).
    """
    return _kid(*validate_clips(ref_clips, gen_clips), max_windows_per_clip)


def _kid(ref: list[np.ndarray], gen: list[np.ndarray], max_windows_per_clip: int) -> collections.OrderedDict:
    from scipy import stats as st

    center = _pooled_mean(ref)
    dim = center.size
    scale = float(np.sqrt(sum(np.sum((c - center) ** 2) for c in ref) / (sum(c.shape[0] for c in ref) * dim)))
    scale = scale if scale > 0 else 1.0
    x = [(_thin(c, max_windows_per_clip) - center) / scale for c in ref]
    y = [(_thin(c, max_windows_per_clip) - center) / scale for c in gen]
    n, m = len(x), len(y)
    out = collections.OrderedDict(kid=math.nan, se=math.nan, ci95=[math.nan, math.nan], scale=scale)
    if min(n, m) < 2:
        return out
    kxx, kyy, kxy = _block_kernel_means(x, x, dim), _block_kernel_means(y, y, dim), _block_kernel_means(x, y, dim)
    if n == m:  # paired U-statistic over clip pairs (Gretton et al. 2012, MMD^2_u)
        h = kxx + kyy - kxy - kxy.T
        np.fill_diagonal(h, 0.0)
        total, rows = h.sum(), h.sum(axis=1)
        value = total / (n * (n - 1))
        if n >= 3:
            loo = (total - 2.0 * rows) / ((n - 1) * (n - 2))
            var = (n - 1) / n * np.sum((loo - loo.mean()) ** 2)
        df = n - 1
    else:  # two independent samples
        np.fill_diagonal(kxx, 0.0)
        np.fill_diagonal(kyy, 0.0)
        sxx, syy, sxy = kxx.sum(), kyy.sum(), kxy.sum()
        value = sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)
        if min(n, m) >= 3:
            loo_x = ((sxx - 2 * kxx.sum(1)) / ((n - 1) * (n - 2)) + syy / (m * (m - 1))
                     - 2.0 * (sxy - kxy.sum(1)) / ((n - 1) * m))
            loo_y = (sxx / (n * (n - 1)) + (syy - 2 * kyy.sum(1)) / ((m - 1) * (m - 2))
                     - 2.0 * (sxy - kxy.sum(0)) / (n * (m - 1)))
            var = ((n - 1) / n * np.sum((loo_x - loo_x.mean()) ** 2)
                   + (m - 1) / m * np.sum((loo_y - loo_y.mean()) ** 2))
        df = min(n, m) - 1
    out["kid"] = float(value)
    if min(n, m) >= 3:
        se = float(np.sqrt(var))
        half = float(st.t.ppf(0.975, df)) * se
        out.update(se=se, ci95=[float(value) - half, float(value) + half])
    return out


# ----------------------------------------------------------------------------------------------- scores
def size_warnings(n_ref: int, n_gen: int) -> dict[str, list[str]]:
    """Per metric name, the warnings :func:`set_scores` issues for these numbers of clips."""
    out: dict[str, list[str]] = {name: [] for name in METRIC_NAMES}
    n = min(n_ref, n_gen)
    if n_ref != n_gen:
        out["fad"].append(f"the two sets differ in size ({n_ref} reference vs {n_gen} generated clips): the "
                          "bias of fad depends on both sizes; kid is unbiased at any sizes")
    if n < MIN_RELIABLE_CLIPS:
        out["fad"].append(f"fad from {n} clips is strongly biased upward (the bias shrinks roughly as 1/n): "
                          "compare fad only at equal numbers of clips; kid (headline) is unbiased")
        out["fad_inf"].append(f"fad_inf from {n} clips: the jackknife removes the 1/n part of fad's bias, not "
                              "all of it when the windows do not far outnumber the embedding's dimension")
    if n < MIN_KID_CLIPS:
        out["kid"].append(f"kid from {n} clips: its interval is wide; rank systems on >= {MIN_KID_CLIPS} clips")
    return out


def set_scores(ref_clips: Sequence[np.ndarray], gen_clips: Sequence[np.ndarray],
               warn: bool = True) -> collections.OrderedDict[str, dict]:
    """All three estimates between a reference and a generated set of per-clip embeddings.

    Args:
        ref_clips: one ``[W_i, D]`` array per reference clip.
        gen_clips: one ``[V_j, D]`` array per generated clip (same clip order when the sets are paired).
        warn: also issue the entries' ``warnings`` as ``UserWarning``.

    Returns:
        ``{"kid": {"value", "se", "ci95", "method"}, "fad": {"value"}, "fad_inf": {"value"}}``, each also with
        ``n_ref``, ``n_gen`` (clips), ``n_windows`` ``[ref, gen]`` and ``warnings`` (:func:`size_warnings`);
        nan where undefined.
    """
    ref, gen = validate_clips(ref_clips, gen_clips)
    notes = size_warnings(len(ref), len(gen))
    if warn:
        for w in dict.fromkeys(w for ws in notes.values() for w in ws):
            warnings.warn(w, UserWarning, stacklevel=2)
    sizes = {"n_ref": len(ref), "n_gen": len(gen), "n_windows": [sum(len(c) for c in ref), sum(len(c) for c in gen)]}
    k, f = _kid(ref, gen, KID_MAX_WINDOWS_PER_CLIP), _fad_inf(ref, gen, FAD_INF_MAX_GROUPS)
    return collections.OrderedDict(
        kid={"value": k["kid"], "se": k["se"], "ci95": k["ci95"], "method": "t, delete-one-clip jackknife SE",
             **sizes, "warnings": notes["kid"]},
        fad={"value": f["fad"], **sizes, "warnings": notes["fad"]},
        fad_inf={"value": f["fad_inf"], **sizes, "warnings": notes["fad_inf"]},
    )


# -------------------------------------------------------------------------------------------- embedding
def embed(audio: np.ndarray, sample_rate: int, embedder: Embedder | None = None,
          loudness_lufs: float | None = TARGET_LUFS) -> np.ndarray:
    """Embed one waveform: ``[W, D]`` (default :class:`MelStatsEmbedder`), after BS.1770 loudness
    normalisation to ``loudness_lufs`` (None: as it is; a silent clip is left as it is)."""
    from vitmusic.metrics.audio_checks import validate_audio

    validate_sample_rate(sample_rate)
    embedder = MelStatsEmbedder() if embedder is None else embedder
    if loudness_lufs is not None:
        audio, _ = loudness_normalize(validate_audio(audio, sample_rate, min_duration_s=0.1), sample_rate,
                                      loudness_lufs)
    emb = np.asarray(embedder(audio, sample_rate), dtype=np.float64)
    return emb[None] if emb.ndim == 1 else emb


def embed_clips(audios: Iterable[np.ndarray], sample_rate: int, embedder: Embedder | None = None,
                loudness_lufs: float | None = TARGET_LUFS) -> list[np.ndarray]:
    """Embed several waveforms: one ``[W_i, D]`` array per clip."""
    embedder = MelStatsEmbedder() if embedder is None else embedder
    return [embed(a, sample_rate, embedder, loudness_lufs) for a in audios]


def embed_many(audios: Iterable[np.ndarray], sample_rate: int, embedder: Embedder | None = None,
               loudness_lufs: float | None = TARGET_LUFS) -> np.ndarray:
    """Embed several waveforms and stack the windows: ``[sum W_i, D]``."""
    parts = embed_clips(audios, sample_rate, embedder, loudness_lufs)
    if not parts:
        raise ValueError("no audio to embed")
    return np.concatenate(parts, axis=0)


def evaluate(
    ref_audios: Iterable[np.ndarray],
    est_audios: Iterable[np.ndarray],
    sample_rate: int,
    embedder: Embedder | None = None,
    loudness_lufs: float | None = TARGET_LUFS,
) -> collections.OrderedDict[str, float]:
    """KID, FAD and FAD-inf between a set of reference clips and a set of generated clips.

    Returns:
        ``{"kid", "fad", "fad_inf"}`` (nan where undefined; see :func:`set_scores` for intervals).
    """
    embedder = MelStatsEmbedder() if embedder is None else embedder
    ref = embed_clips(ref_audios, sample_rate, embedder, loudness_lufs)
    est = embed_clips(est_audios, sample_rate, embedder, loudness_lufs)
    if not ref or not est:
        raise ValueError("no audio to embed")
    scores = set_scores(ref, est)
    return collections.OrderedDict((k, float(v["value"])) for k, v in scores.items())
