"""Tune groups on music21's chorale corpus, and tune leakage in synthetic benchmarks before / after.

1. Melodic signatures (:mod:`vitmusic.data.tunes`) of every 4-voice chorale of the corpus: how many tune
   groups, how large, a few sanity pairs (bwv358 / bwv227.7, both "Jesu, meine Freude"), and agreement with
   the titles music21 knows (BWV 250-438): same-title pairs that the signature separates, groups that join
   several titles.
2. For ``--benchmarks`` seeds of ``--pieces``-piece ``synth-data`` benchmarks (chorales): the chorale each
   piece gets with the draw that ignored tunes (before) and the one that skips tunes already drawn (now,
   :func:`vitmusic.data.synth.scores.nth_chorale`); pairs of one tune in one benchmark, and benchmarks whose
   default split (``split_pieces`` by piece id, no groups) puts one tune in two splits.
3. Robustness: for each piece, whether the signature of its *performed* notes (tempo drift, fermatas,
   octave fitting, truncation to the duration) shares a key with its score's signature.

Run: ``PYTHONPATH=. python scripts/benchmarks/chorale_tunes.py [--benchmarks 10 --pieces 36]`` (about 2 min,
most of it parsing the corpus once).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import numpy as np

from vitmusic.data.splits import split_pieces
from vitmusic.data.synth.scores import chorale_paths, load_chorale, make_performance
from vitmusic.data.synth.writer import PIECE_NAMES
from vitmusic.data.tunes import tune_groups, voice_keys
from vitmusic.data.urmp import piece_folder_name


def score_keys(score) -> frozenset:
    return voice_keys([(p.notes[:, 0], p.notes[:, 1]) for p in score.parts])


def old_nth_chorale(seed: int, index: int):
    """The draw before tunes were considered: the index-th parsable chorale of the seeded order."""
    paths = chorale_paths()
    order = np.random.default_rng([int(seed), 0xC40]).permutation(len(paths))
    found = [s for s in (load_chorale(paths[int(i)]) for i in order) if s is not None]
    return found[index % len(found)]


def titles_by_bwv() -> dict[str, str]:
    from music21.corpus import chorales

    return {f"bwv{k}": v["title"] for k, v in chorales.ChoraleList().byBWV.items()}


def corpus_report() -> dict[str, frozenset]:
    scores = {s.title: s for s in (load_chorale(p) for p in chorale_paths()) if s is not None}
    keys = {t: score_keys(s) for t, s in scores.items()}
    groups = tune_groups(keys)
    group_of = {t: i for i, g in enumerate(groups) for t in g}
    print(f"corpus: {len(chorale_paths())} Bach files, {len(scores)} four-voice chorales, "
          f"{sum(not k for k in keys.values())} without a signature")
    sizes = Counter(len(g) for g in groups)
    print(f"tune groups: {len(groups)} groups of 2+ chorales holding {sum(map(len, groups))} chorales; "
          f"sizes {dict(sorted(sizes.items()))}")
    for a, b in (("bwv358", "bwv227.7"), ("bwv393", "bwv394"), ("bwv288", "bwv289"), ("bwv281", "bwv282")):
        same = a in group_of and group_of.get(a) == group_of.get(b)
        print(f"  {a} / {b}: {'one tune' if same else 'different tunes'}")
    titles = titles_by_bwv()
    by_title: dict[str, list[str]] = {}
    for t in scores:
        if re.fullmatch(r"bwv\d+", t) and t in titles:
            by_title.setdefault(titles[t], []).append(t)
    pairs = [(a, b) for ts in by_title.values() for i, a in enumerate(ts) for b in ts[i + 1:]]
    split = [(a, b) for a, b in pairs if group_of.get(a, a) != group_of.get(b, b)]
    print(f"titled chorales (BWV 250-438): {sum(map(len, by_title.values()))}; same-title pairs {len(pairs)}, "
          f"of which the signature separates {len(split)}: {split}")
    multi = [(g, sorted({titles[t] for t in g if t in titles})) for g in groups]
    multi = [(g, ts) for g, ts in multi if len(ts) > 1]
    print(f"groups joining 2+ different titles: {len(multi)}")
    for g, ts in multi:
        print(f"  {' '.join(g)}: {' | '.join(ts)}")
    return keys


def benchmark_report(keys: dict[str, frozenset], seeds: int, pieces: int) -> None:
    from vitmusic.data.synth import scores as scores_mod

    group_of = {t: i for i, g in enumerate(tune_groups(keys)) for t in g}
    robust = total = 0
    current = scores_mod.nth_chorale
    for label, draw in (("before (draw ignores tunes)", old_nth_chorale), ("now (nth_chorale skips tunes)", current)):
        leaky, shared_pairs = [], 0
        scores_mod.nth_chorale = draw  # make_performance draws through the module attribute
        try:
            for seed in range(seeds):
                ids, tune = [], {}
                for number in range(1, pieces + 1):  # exactly as synth-data draws piece `number`
                    perf = make_performance(np.random.default_rng([seed, number]), "chorales", 20.0,
                                            chorale=(seed, number))
                    pid = piece_folder_name(number, PIECE_NAMES["chorale"], perf.instruments)
                    ids.append(pid)
                    tune[pid] = group_of.get(perf.score.title, perf.score.title)
                    total += 1
                    played = voice_keys([(p.notes[:, 0], 69 + 12 * np.log2(p.notes[:, 1] / 440)) for p in perf.parts])
                    robust += bool(played & keys[perf.score.title])
                counts = Counter(tune.values())
                shared_pairs += sum(n * (n - 1) // 2 for n in counts.values())
                split = split_pieces(ids, seed=0)
                if any(len({split[p] for p in ids if tune[p] == t}) > 1 for t, n in counts.items() if n > 1):
                    leaky.append(seed)
        finally:
            scores_mod.nth_chorale = current
        print(f"{label}: {shared_pairs} same-tune pair(s) in {seeds} benchmarks of {pieces} pieces; default split "
              f"(no tune groups) puts one tune in two splits in {len(leaky)} of {seeds} (seeds {leaky})")
    print(f"performed vs score signature (2-4 of the 4 voices, 20 s): {robust} of {total} pieces share a key")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", type=int, default=10)
    ap.add_argument("--pieces", type=int, default=36)
    args = ap.parse_args()
    keys = corpus_report()
    benchmark_report(keys, args.benchmarks, args.pieces)


if __name__ == "__main__":
    main()
