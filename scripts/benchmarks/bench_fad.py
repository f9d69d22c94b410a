"""FAD / KID: size bias and ranking by simulation, and metamorphic checks on real recordings.

Simulation (Gaussian embeddings with the clip structure of real ones): each clip draws a latent from
N(0, b S) and each of its W windows adds N(0, (1 - b) S), so windows of one clip are correlated; S has a
power-law spectrum (eigenvalue k ~ 1/k, trace D) in a random basis. A system's clips add a mean shift of
squared length ``effect`` (the "worse" system: twice the better one's). Printed per estimator (kid, fad,
fad_inf): mean and SD over repetitions for two identical distributions at 4 / 16 / 50 / 200 clips, the
coverage of KID's 95 % interval, and how often the better system ranks better: the worse one scored on
200 clips vs the better one on 16, and both on 16.

Real audio: the Bach10 dev pieces (``--bach10``, the mix and the four parts of each chorale) cut into 10 s
clips; the reference set is the mixes, each generated set one transformation of every clip: an exact copy,
-6 dB, +6 dB, one semitone up (librosa pitch_shift), the violin removed, the bassoon alone, and the same
pieces 5 s later (another moment of the same performances: a natural "same distribution" yardstick).
Each table is printed with loudness normalisation and without (the old behaviour). Usage:

    python scripts/benchmarks/bench_fad.py [--reps 100] [--dim 104] [--bach10 ../shared/real/bach10-dev]
        [--embedding mel-stats|ID_OR_DIR] [--smoke-transformers] [--plot-dir docs] [--skip-sim] [--skip-real]

Set OPENBLAS_NUM_THREADS=1 on a loaded machine: the small eigendecompositions otherwise spin in BLAS threads.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from vitmusic.metrics import fad

ESTIMATORS = ("kid", "fad", "fad_inf")


# ------------------------------------------------------------------------------------------- simulation
class World:
    """A reference distribution of clip embeddings and systems that shift it."""

    def __init__(self, dim: int, windows: int, between: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
        spectrum = 1.0 / np.arange(1, dim + 1)
        self.root = basis * np.sqrt(spectrum * dim / spectrum.sum())  # S = root @ root.T, tr S = dim
        self.direction = self.root @ rng.normal(size=dim)
        self.direction /= np.linalg.norm(self.direction)
        self.dim, self.windows, self.between = dim, windows, between

    def clips(self, rng, n: int, effect: float = 0.0) -> list[np.ndarray]:
        latent = rng.normal(size=(n, 1, self.dim)) * np.sqrt(self.between)
        noise = rng.normal(size=(n, self.windows, self.dim)) * np.sqrt(1.0 - self.between)
        return list((latent + noise) @ self.root.T + np.sqrt(effect) * self.direction)


def scores(ref, gen) -> dict[str, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the small-set warnings are the point here
        return fad.set_scores(ref, gen)


def simulate(args) -> None:
    world = World(args.dim, args.windows, args.between, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    print(f"\n## Simulation: D = {args.dim}, {args.windows} windows per clip, between-clip share {args.between}, "
          f"{args.reps} repetitions (seed {args.seed})\n")
    print("Two identical distributions (true value 0 for every estimator): mean (SD) over repetitions, and how "
          "often KID's 95 % interval holds 0\n")
    print("| clips | " + " | ".join(ESTIMATORS) + " | KID CI covers 0 |")
    print("|---|" + "---|" * (len(ESTIMATORS) + 1))
    t0 = time.perf_counter()
    null = {}
    for n in args.sizes:
        got = null[n] = {k: [] for k in ESTIMATORS}
        covered = 0
        for _ in range(args.reps):
            s = scores(world.clips(rng, n), world.clips(rng, n))
            for k in ESTIMATORS:
                got[k].append(s[k]["value"])
            lo, hi = s["kid"]["ci95"]
            covered += bool(lo <= 0.0 <= hi)
        cells = [f"{np.nanmean(got[k]):.4g} ({np.nanstd(got[k]):.3g})" for k in ESTIMATORS]
        print(f"| {n} | " + " | ".join(cells) + f" | {covered}/{args.reps} |")
    print(f"\nRanking: the better system shifts the mean by squared length {args.effect:g}, the worse by "
          f"{2 * args.effect:g} (true FAD {args.effect:g} vs {2 * args.effect:g}); times in {args.reps} the "
          "better one ranks better\n")
    print("| comparison | " + " | ".join(ESTIMATORS) + " |")
    print("|---|" + "---|" * len(ESTIMATORS))
    for n_better, n_worse in ((16, 200), (16, 16), (50, 50), (200, 200)):
        right = dict.fromkeys(ESTIMATORS, 0)
        for _ in range(args.reps):
            better = scores(world.clips(rng, n_better), world.clips(rng, n_better, args.effect))
            worse = scores(world.clips(rng, n_worse), world.clips(rng, n_worse, 2 * args.effect))
            for k in ESTIMATORS:
                right[k] += bool(better[k]["value"] < worse[k]["value"])
        print(f"| better on {n_better} clips vs worse on {n_worse} | "
              + " | ".join(f"{right[k]}/{args.reps}" for k in ESTIMATORS) + " |")
    print(f"\n(simulation: {time.perf_counter() - t0:.0f} s)")
    if args.plot_dir:
        plot_null(null, Path(args.plot_dir) / "fad_size_bias.png", args)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_null(null: dict[int, dict[str, list[float]]], path: Path, args) -> None:
    """Mean +- SD of each estimator over repetitions vs the number of clips, two identical distributions."""
    plt = _pyplot()
    sizes = sorted(null)
    fig, axes = plt.subplots(1, len(ESTIMATORS), figsize=(4 * len(ESTIMATORS), 3.2))
    for ax, k in zip(axes, ESTIMATORS):
        mean = np.array([np.nanmean(null[n][k]) for n in sizes])
        sd = np.array([np.nanstd(null[n][k]) for n in sizes])
        ax.errorbar(sizes, mean, yerr=sd, fmt="o-", capsize=3)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("clips per set")
        ax.set_title(f"{k} (true value 0)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean +- SD over repetitions")
    fig.suptitle(f"Two identical distributions: D = {args.dim}, {args.windows} windows per clip, {args.reps} repetitions",
                 fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"(figure: {path})")


# ------------------------------------------------------------------------------------------- real audio
def bach10_sets(root: Path, sample_rate: int, clip_s: float = 10.0) -> dict[str, list[np.ndarray]]:
    """Reference mixes and every transformed version, one 10 s clip per list entry."""
    import librosa

    from vitmusic.evaluation.inputs import load_mono

    sets: dict[str, list[np.ndarray]] = {}
    n = int(clip_s * sample_rate)
    for piece in sorted(p for p in root.iterdir() if p.is_dir()):
        mix = load_mono(piece / f"{piece.name}.flac", sample_rate)
        part = {inst: load_mono(piece / f"{piece.name}-{inst}.flac", sample_rate)
                for inst in ("violin", "clarinet", "saxphone", "bassoon")}
        for start in range(0, mix.size - n + 1, n):
            cut = slice(start, start + n)
            y = mix[cut]
            later = mix[start + n // 2 : start + n // 2 + n]
            versions = {
                "reference": y, "copy": y, "-6 dB": y * 10 ** (-6 / 20), "+6 dB": y * 10 ** (6 / 20),
                "+1 semitone": librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=1.0),
                "violin removed": y - part["violin"][cut], "bassoon alone": part["bassoon"][cut],
                "5 s later": later if later.size == n else None,
            }
            for k, v in versions.items():
                sets.setdefault(k, []).append(v)
    # the last clip of a piece has no full "5 s later" clip: score that condition on the clips that have one
    return sets


def metamorphic(args, embedder, title: str) -> dict[str, dict[str, dict]]:
    """Print the table of every transformation, with and without loudness normalisation; returns the scores."""
    sets = bach10_sets(Path(args.bach10), args.sample_rate)
    refs = sets.pop("reference")
    desc = fad.describe_embedder(embedder)
    t0 = time.perf_counter()
    out: dict[str, dict[str, dict]] = {}
    for level in (fad.TARGET_LUFS, None):
        ref = fad.embed_clips(refs, args.sample_rate, embedder, level)
        label = f"normalised to {level:g} LUFS" if level is not None else "NOT normalised (the old FAD)"
        print(f"\n## Real audio: Bach10 dev, {len(ref)} clips of 10 s; embedding {desc}; loudness {label}\n")
        print("| generated set | clips | kid [95% CI] | fad | fad_inf |")
        print("|---|---|---|---|---|")
        for name, clips in sets.items():
            keep = [i for i, c in enumerate(clips) if c is not None]
            gen = fad.embed_clips([clips[i] for i in keep], args.sample_rate, embedder, level)
            sc = out.setdefault(name, {})[label] = scores([ref[i] for i in keep], gen)
            lo, hi = sc["kid"]["ci95"]
            print(f"| {name} | {len(keep)} | {sc['kid']['value']:.4g} [{lo:.3g}, {hi:.3g}] | "
                  f"{sc['fad']['value']:.4g} | {sc['fad_inf']['value']:.4g} |")
        if args.smoke_only_normalised:
            break
    print(f"\n({title}: {time.perf_counter() - t0:.0f} s)")
    return out


def plot_metamorphic(got: dict[str, dict[str, dict]], path: Path, embedding: str) -> None:
    """fad and kid of every transformation, with and without loudness normalisation (symlog axes)."""
    plt = _pyplot()
    names = list(got)
    labels = list(next(iter(got.values())))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, k in zip(axes, ("fad", "kid")):
        for j, label in enumerate(labels):
            vals = np.array([got[n][label][k]["value"] for n in names])
            x = np.arange(len(names)) + (j - 0.5) * 0.38
            ax.bar(x, vals, width=0.38, label=label)
            if k == "kid":
                ci = np.array([got[n][label]["kid"]["ci95"] for n in names], dtype=float)
                ax.errorbar(x, vals, yerr=np.abs(ci.T - vals), fmt="none", color="k", capsize=2, lw=0.8)
        ax.set_yscale("symlog", linthresh=1e-1 if k == "kid" else 10.0)
        ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{k} vs the reference mixes ({embedding})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"(figure: {path})")


def tiny_transformers(folder: Path) -> dict[str, Path]:
    """Random-init tiny CLAP, EnCodec and HuBERT saved like hub checkpoints (smoke check only)."""
    import torch
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        EncodecConfig,
        EncodecFeatureExtractor,
        EncodecModel,
        HubertConfig,
        HubertModel,
        Wav2Vec2FeatureExtractor,
    )

    torch.manual_seed(0)
    out = {}
    out["hubert"] = folder / "hubert"
    HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                             conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
                             num_conv_pos_embedding_groups=2)).save_pretrained(out["hubert"])
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(out["hubert"])
    out["encodec"] = folder / "encodec"
    EncodecModel(EncodecConfig(target_bandwidths=[1.5], sampling_rate=16000, audio_channels=1, hidden_size=8,
                               num_filters=4, num_residual_layers=1, upsampling_ratios=[4, 4], codebook_size=16,
                               codebook_dim=8, num_lstm_layers=1)).save_pretrained(out["encodec"])
    EncodecFeatureExtractor(feature_size=1, sampling_rate=16000).save_pretrained(out["encodec"])
    out["clap"] = folder / "clap"
    ClapModel(ClapConfig(text_config=dict(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=16, projection_dim=16, max_position_embeddings=40),
                         audio_config=dict(spec_size=64, num_mel_bins=16, window_size=4, patch_size=2,
                                           patch_stride=(2, 2), patch_embeds_hidden_size=8, depths=[1, 1],
                                           num_attention_heads=[2, 2], hidden_size=16, projection_dim=16,
                                           projection_hidden_size=16),
                         projection_dim=16)).save_pretrained(out["clap"])
    ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=2,
                         fft_window_size=400, frequency_max=8000, truncation="rand_trunc").save_pretrained(out["clap"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--dim", type=int, default=104, help="simulated embedding width (mel-stats: 104)")
    ap.add_argument("--windows", type=int, default=19, help="windows per clip (mel-stats on 10 s: 19)")
    ap.add_argument("--between", type=float, default=0.5, help="share of the variance shared by a clip's windows")
    ap.add_argument("--effect", type=float, default=4.0, help="squared mean shift of the better system")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[4, 16, 50, 200])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bach10", default=os.environ.get("BACH10", "../shared/real/bach10-dev"))
    ap.add_argument("--sample-rate", type=int, default=22050)
    ap.add_argument("--embedding", default=None, help="fadtk name, hub id or folder (default mel-stats)")
    ap.add_argument("--plot-dir", default=None, help="write fad_size_bias.png / fad_metamorphic.png here")
    ap.add_argument("--smoke-transformers", action="store_true", help="also run tiny random-init models")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    args = ap.parse_args()
    args.smoke_only_normalised = False
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    if not args.skip_sim:
        simulate(args)
    if args.skip_real:
        return
    if not Path(args.bach10).is_dir():
        print(f"\n(real-audio table skipped: no Bach10 folder at {args.bach10})")
        return
    embedder = fad.load_embedder(args.embedding)
    got = metamorphic(args, embedder, "real audio")
    if args.plot_dir:
        plot_metamorphic(got, Path(args.plot_dir) / "fad_metamorphic.png", fad.describe_embedder(embedder)["name"])
    if args.smoke_transformers:
        args.smoke_only_normalised = True
        with tempfile.TemporaryDirectory() as tmp:
            for name, path in tiny_transformers(Path(tmp)).items():
                metamorphic(args, fad.load_embedder(str(path)), f"tiny random-init {name}, smoke check only")


if __name__ == "__main__":
    main()
