"""Melodic signatures, tune groups, group-aware splits, and prepare keeping one tune in one split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vitmusic.cli import main
from vitmusic.data.manifest import prepare_manifest
from vitmusic.data.splits import split_pieces
from vitmusic.data.tunes import NUM_INTERVALS, check_groups_disjoint, melodic_keys, tune_groups, voice_keys
from vitmusic.errors import DataError

# "Jesu, meine Freude" (bwv358 in A) as quarter-note beats: onset, MIDI pitch
TUNE = np.array([69, 69, 67, 65, 64, 62, 69, 71, 72, 69, 74, 73, 74], dtype=float)
BEATS = np.array([0, 1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 14, 16], dtype=float)
OTHER = np.array([60, 62, 64, 65, 67, 65, 64, 62, 60, 67, 69, 71, 72], dtype=float)


def test_signature_invariances():
    keys = melodic_keys(BEATS, TUNE)
    assert keys and all(len(k) == NUM_INTERVALS for k in keys)
    assert melodic_keys(BEATS * 0.61 + 3.0, TUNE + 2) == keys  # another tempo, start time and key
    folded = TUNE.copy()
    folded[4] -= 12  # one note moved an octave (an instrument's range)
    assert melodic_keys(BEATS, folded) == keys
    # a passing note between two beats (an ornamented harmonisation) keeps the main-note reading
    ornamented_on = np.insert(BEATS, 3, 2.5)
    ornamented = np.insert(TUNE, 3, 66)
    assert melodic_keys(ornamented_on, ornamented) & keys
    # a pickup note present in one version only: the keys from the second note match
    assert melodic_keys(np.r_[-1.0, BEATS], np.r_[64.0, TUNE]) & keys
    # chords in one track: the top note is the voice
    assert melodic_keys(np.r_[BEATS, BEATS], np.r_[TUNE, TUNE - 9]) == keys
    assert not melodic_keys(BEATS, OTHER) & keys
    assert melodic_keys(BEATS[:8], TUNE[:8]) == frozenset()  # too short for 10 intervals


def test_voice_keys_use_the_first_and_the_highest_part():
    bass = (BEATS, OTHER - 24)
    assert voice_keys([(BEATS, TUNE), bass]) == melodic_keys(BEATS, TUNE)  # first = highest
    assert voice_keys([bass, (BEATS, TUNE)]) == melodic_keys(BEATS, TUNE) | melodic_keys(*bass)
    # the tune an octave below another part (a voice moved to fit an instrument) is still found as part 0
    assert voice_keys([(BEATS, TUNE - 12), (BEATS, OTHER + 12)]) & melodic_keys(BEATS, TUNE)
    assert voice_keys([]) == frozenset()


def test_tune_groups_are_transitive_and_deterministic():
    keys = {"c": {1, 2}, "a": {2}, "b": {3}, "d": {1}, "e": set(), "f": {3}}
    assert tune_groups(keys) == [["a", "c", "d"], ["b", "f"]]


def test_split_keeps_groups_together_and_leaves_others_alone():
    ids = [f"{i:02d}_Piece_vn" for i in range(1, 31)]
    plain = split_pieces(ids, seed=1)
    group = [ids[0], ids[5], ids[9]]
    grouped = split_pieces(ids, seed=1, groups=[group, ["not_a_piece", ids[5]]])
    assert len({grouped[p] for p in group}) == 1 and grouped[ids[0]] == plain[ids[0]]
    assert {p: s for p, s in grouped.items() if p not in group} == {p: s for p, s in plain.items() if p not in group}
    assert split_pieces(ids, seed=1, groups=[group]) == grouped
    # 3 units for 3 splits: each split gets one, groups stay whole
    small = split_pieces(["a", "b", "c", "d", "e"], groups=[["a", "b", "c"]])
    assert len(set(small.values())) == 3 and len({small[p] for p in "abc"}) == 1


def test_check_groups_disjoint_names_the_pieces():
    check_groups_disjoint({"a": "train", "b": "train"}, [("t", ["a", "b"])])
    with pytest.raises(DataError, match=r"one tune in two splits .*bwv1 in a \(train\), b \(test\)"):
        check_groups_disjoint({"a": "train", "b": "test", "c": "val"}, [("bwv1", ["a", "b"])])


# ------------------------------------------------------------------------------- prepare, two renders


def _write_piece(root: Path, number: int, insts: list[str], parts: list, duration_s: float) -> str:
    """A URMP folder whose score is ``parts`` (per part: notes [N, 3] onset_s, f0_hz, duration_s)."""
    import soundfile as sf

    from vitmusic.data.urmp import mix_file_name, piece_folder_name, score_file_name, stem_file_name
    from vitmusic.generators.midi.export import notes_to_midi, write_midi

    folder = root / piece_folder_name(number, "Chorale", insts)
    folder.mkdir(parents=True)
    sf.write(folder / mix_file_name(folder), np.zeros(int(duration_s * 1000), np.float32), 1000)
    write_midi(notes_to_midi(parts, insts), folder / score_file_name(folder))
    for k, code in enumerate(insts, start=1):
        sf.write(folder / stem_file_name("AuSep", k, code, number, "Chorale"), np.zeros(10, np.float32), 1000)
    return folder.name


def test_two_renders_of_one_tune_under_two_names_share_a_split(tmp_path, capsys):
    """bwv358 and bwv227.7 ("Jesu, meine Freude"; two harmonisations in two keys) performed by two ensembles
    at two tempi, plus two other chorales: prepare groups the first two, whatever the names."""
    from vitmusic.data.synth.scores import chorale_paths, load_chorale, perform

    paths = {Path(p).stem: p for p in chorale_paths()}
    root = tmp_path / "urmp"
    ids = []
    for number, (title, insts, bpm) in enumerate([("bwv358", ["vn", "va", "vc", "db"], 70.0),
                                                   ("bwv254", ["fl", "ob", "cl", "bn"], 90.0),
                                                   ("bwv227.7", ["tpt", "tpt", "tbn", "tba"], 104.0),
                                                   ("bwv256", ["vn", "vn", "va", "vc"], 100.0)], start=1):
        perf = perform(load_chorale(paths[title]), insts, np.random.default_rng(number), 20.0, bpm)
        ids.append(_write_piece(root, number, insts, [p.notes for p in perf.parts], 20.0))
    out = tmp_path / "p"
    result = prepare_manifest(root, out, 5.0, plot=False)
    assert result.tune_groups == [[ids[0], ids[2]]]
    assert result.split_map[ids[0]] == result.split_map[ids[2]]
    report = json.loads((out / "prepare.json").read_text())
    assert report["tunes"]["groups"][0]["pieces"] == [ids[0], ids[2]]
    assert report["tunes"]["signature_source"] == {i: f"score Sco_{i}.mid" for i in ids}
    # a split file that separates them is refused in one line naming both; --allow-shared-scores accepts it
    split = tmp_path / "split.csv"
    split.write_text("piece,split\n" + "".join(f"{p},{s}\n" for p, s in zip(ids, ["train", "train", "test", "val"])))
    argv = ["prepare", "--urmp", str(root), "--out", str(tmp_path / "q"), "--clip-seconds", "5", "--split-file",
            str(split), "--no-plot"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "one tune in two splits" in err and f"{ids[0]} (train)" in err and f"{ids[2]} (test)" in err
    assert not (tmp_path / "q" / "manifest.jsonl").exists()
    assert main([*argv, "--allow-shared-scores"]) == 0


def test_synthetic_benchmarks_draw_distinct_tunes():
    from vitmusic.data.synth.scores import nth_chorale

    keys = [voice_keys([(p.notes[:, 0], p.notes[:, 1]) for p in nth_chorale(0, k).parts]) for k in range(1, 13)]
    assert all(not (keys[i] & keys[j]) for i in range(len(keys)) for j in range(i))
