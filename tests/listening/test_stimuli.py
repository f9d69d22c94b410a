"""vitmusic stimuli: equal-length, loudness-matched, blinded MUSHRA / A/B stimuli with a private answer key."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pyloudnorm
import pytest
from listening_helpers import SR, make_inputs, tone

from vitmusic import cli
from vitmusic.data.audio import load_audio, write_audio
from vitmusic.data.video import probe_video
from vitmusic.listening import design as dz
from vitmusic.listening.results import read_answer_key

EXCERPT_S = 2.0
SYSTEMS = ("sysA", "sysB")


def run_stimuli(inputs: dict, out: Path, *extra: str) -> int:
    argv = ["stimuli", "--videos", str(inputs["videos"]), "--ref", str(inputs["ref"]), "--out", str(out),
            "--excerpt-seconds", str(EXCERPT_S), "--sample-rate", str(SR), "--quiet"]
    for name, folder in inputs["systems"].items():
        argv += ["--system", f"{name}={folder}"]
    return cli.main(argv + list(extra))


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def sequences(out: Path) -> dict[str, list[tuple[str, str, str]]]:
    """participant -> [(trial, item, system)] in presentation order (positions in order too)."""
    key = read_answer_key(out / "private" / "answer_key.csv")
    seq: dict[str, list] = {}
    for r in read_csv(out / "public" / "manifest.csv"):
        seq.setdefault(r["participant"], []).append((r["trial"], r["position"], *key[r["stimulus_id"]]))
    return seq


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("stimuli")
    inputs = make_inputs(root / "in", items=("piece1", "piece2", "piece3"), systems=SYSTEMS,
                         missing={"sysB": ["piece2"]})
    out = root / "out"
    assert run_stimuli(inputs, out, "--participants", "4", "--seed", "7") == 0
    return inputs, out


def test_layout_and_missing_partner_report(built, capsys):
    _, out = built
    info = json.loads((out / "private" / "stimuli.json").read_text())
    assert sorted(info["items"]) == ["piece1", "piece3"]
    assert info["missing"] == {"piece2": ["sysB"]}
    # answer key is outside the served folder; public holds only media + manifest + test.json
    assert (out / "private" / "answer_key.csv").is_file()
    public = sorted(p.relative_to(out / "public").as_posix() for p in (out / "public").rglob("*") if p.is_file())
    assert [p for p in public if not p.startswith("media/")] == ["manifest.csv", "test.json"]
    assert len(public) - 2 == 2 * (len(SYSTEMS) + 3)  # per item: systems + hidden ref + anchor + open ref


def test_equal_lengths(built):
    _, out = built
    key = read_answer_key(out / "private" / "answer_key.csv")
    n = int(round(EXCERPT_S * SR))
    for sid in key:
        wav, sr = load_audio(out / "private" / "audio" / f"{sid}.wav")
        assert sr == SR and wav.size == n
        mp4 = out / "public" / "media" / f"{sid}.mp4"
        assert probe_video(mp4).duration_s == pytest.approx(EXCERPT_S, abs=1e-6)
        y, _ = load_audio(mp4, sample_rate=SR)
        assert y.size == n


def test_loudness_matched_and_no_clipping(built):
    _, out = built
    meter = pyloudnorm.Meter(SR)
    info = json.loads((out / "private" / "stimuli.json").read_text())
    assert info["lowered_items"] == {}
    for sid in read_answer_key(out / "private" / "answer_key.csv"):
        wav, _ = load_audio(out / "private" / "audio" / f"{sid}.wav")
        assert meter.integrated_loudness(wav.astype(np.float64)) == pytest.approx(-23.0, abs=0.5)
        assert np.max(np.abs(wav)) <= 10 ** (-1 / 20) + 1e-3
        y, _ = load_audio(out / "public" / "media" / f"{sid}.mp4", sample_rate=SR)
        assert meter.integrated_loudness(y.astype(np.float64)) == pytest.approx(-23.0, abs=0.5)
        assert np.max(np.abs(y)) <= 1.0


def test_ids_blinded(built):
    inputs, out = built
    key = read_answer_key(out / "private" / "answer_key.csv")
    # "reference" itself is public: the labelled reference of a MUSHRA trial is the manifest's "reference" position
    names = [*SYSTEMS, "piece1", "piece3", dz.HIDDEN_REFERENCE, dz.ANCHOR, dz.OPEN_REFERENCE, "anchor", "hidden"]
    assert all(re.fullmatch(r"[0-9a-f]{12}", sid) for sid in key)
    for path in (out / "public").rglob("*"):
        assert not any(n.lower() in path.name.lower() for n in names), path
        if path.is_file():
            data = path.read_bytes().lower()
            assert not any(n.lower().encode() in data for n in names), path
    for mp4 in (out / "public" / "media").iterdir():
        with av.open(str(mp4)) as c:
            tags = [*c.metadata.values(), *(v for s in c.streams for v in s.metadata.values())]
        assert not any(n.lower() in str(t).lower() for n in names for t in tags), (mp4, tags)


def test_mushra_trials_have_hidden_reference_and_anchor(built):
    _, out = built
    for seq in sequences(out).values():
        trials: dict[str, list] = {}
        for trial, position, item, system in seq:
            trials.setdefault(trial, []).append((position, item, system))
        assert len(trials) == 2
        for rows in trials.values():
            assert len({item for _, item, _ in rows}) == 1
            by_pos = {p: s for p, _, s in rows}
            assert by_pos.pop("reference") == dz.OPEN_REFERENCE
            assert sorted(by_pos) == ["1", "2", "3", "4"]
            assert sorted(by_pos.values()) == sorted([*SYSTEMS, dz.HIDDEN_REFERENCE, dz.ANCHOR])


def test_anchor_is_low_passed_reference(built):
    _, out = built
    key = read_answer_key(out / "private" / "answer_key.csv")
    by = {(item, system): sid for sid, (item, system) in key.items()}

    def high_band_fraction(sid: str) -> float:
        y, _ = load_audio(out / "private" / "audio" / f"{sid}.wav")
        spec = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(y.size, 1 / SR)
        return spec[freqs > 4000].sum() / spec.sum()

    ref = high_band_fraction(by[("piece1", dz.HIDDEN_REFERENCE)])
    anchor = high_band_fraction(by[("piece1", dz.ANCHOR)])
    assert ref > 1e-4 and anchor < ref / 50, (ref, anchor)


def test_order_differs_per_participant_and_is_reproducible(built, tmp_path):
    inputs, out = built
    seq = sequences(out)
    assert len(seq) == 4 and len({tuple(s) for s in seq.values()}) > 1
    again = tmp_path / "again"
    assert run_stimuli(inputs, again, "--participants", "4", "--seed", "7") == 0
    assert sequences(again) == seq
    # fresh random ids each time: the order is seeded, the ids are not
    assert set(read_answer_key(again / "private" / "answer_key.csv")).isdisjoint(
        read_answer_key(out / "private" / "answer_key.csv"))


def test_build_slots_seeded_orders():
    items, systems = [f"i{k}" for k in range(6)], ["a", "b", "c"]
    ids = dz.assign_ids(items, dz.conditions("mushra", systems))

    def orders(seed):
        slots = dz.build_slots("mushra", items, systems, ids, participants=5, seed=seed)
        return [[(s.trial, s.position, s.stimulus_id) for s in slots if s.participant == p]
                for p in dz.participant_ids(5)]

    first = orders(1)
    assert orders(1) == first and orders(2) != first
    assert len({tuple(o) for o in first}) == 5
    # every participant sees every item exactly once, each with all 5 rated conditions + the open reference
    for o in first:
        assert Counter(t for t, _, _ in o) == {t: 6 for t in range(1, 7)}


def test_ab_design_pairs(tmp_path):
    inputs = make_inputs(tmp_path / "in", items=("x",), systems=("s1", "s2", "s3"))
    out = tmp_path / "all"
    assert run_stimuli(inputs, out, "--design", "ab", "--participants", "3") == 0
    key = read_answer_key(out / "private" / "answer_key.csv")
    assert sorted(s for _, s in key.values()) == ["s1", "s2", "s3"]  # no reference / anchor in A/B
    for seq in sequences(out).values():
        pairs = {}
        for trial, position, _, system in seq:
            pairs.setdefault(trial, {})[position] = system
        assert all(sorted(p) == ["A", "B"] for p in pairs.values())
        assert sorted(tuple(sorted(p.values())) for p in pairs.values()) == [("s1", "s2"), ("s1", "s3"),
                                                                             ("s2", "s3")]
    assert dz.ab_pairs(["s1", "s2", "s3"], baseline="s2") == [("s2", "s1"), ("s2", "s3")]


def test_item_that_would_clip_is_lowered_as_a_whole(tmp_path):
    inputs = make_inputs(tmp_path / "in", items=("loud",), systems=("sysA",))
    # a click train: very high crest factor, so -10 LUFS would need peaks far above full scale
    clicks = np.zeros(int(3.5 * SR), np.float32)
    clicks[:: SR // 4] = 0.9
    write_audio(inputs["systems"]["sysA"] / "loud.wav", clicks, SR)
    out = tmp_path / "out"
    assert run_stimuli(inputs, out, "--lufs", "-10") == 0
    info = json.loads((out / "private" / "stimuli.json").read_text())
    level = info["lowered_items"]["loud"]
    assert level < -10.5
    meter = pyloudnorm.Meter(SR)
    for sid, rec in info["stimuli"].items():
        assert rec["lowered"] and rec["target_lufs"] == pytest.approx(level)
        wav, _ = load_audio(out / "private" / "audio" / f"{sid}.wav")
        assert meter.integrated_loudness(wav.astype(np.float64)) == pytest.approx(level, abs=0.5)
        assert np.max(np.abs(wav)) <= 10 ** (-1 / 20) + 1e-3
        y, _ = load_audio(out / "public" / "media" / f"{sid}.mp4", sample_rate=SR)
        assert np.max(np.abs(y)) <= 1.0


def test_short_item_skipped_and_reported(tmp_path, capsys):
    inputs = make_inputs(tmp_path / "in", items=("ok", "short"), systems=("sysA",))
    write_audio(inputs["systems"]["sysA"] / "short.wav", tone(300, 1.0), SR)
    out = tmp_path / "out"
    assert run_stimuli(inputs, out) == 0
    assert "skipped short" in capsys.readouterr().err
    info = json.loads((out / "private" / "stimuli.json").read_text())
    assert list(info["items"]) == ["ok"] and "short" in info["skipped"]


@pytest.mark.parametrize("extra, message", [
    (["--system", "hidden_reference=/x"], "reserved"),
    (["--system", "nodir"], "NAME=DIR"),
    (["--design", "ab"], "at least 2 systems"),
    (["--system", "sysB=/nonexistent", "--design", "ab", "--baseline", "nope"], "--baseline"),
    (["--system", "sysB=/nonexistent"], "--system sysB folder does not exist"),
    (["--excerpt-seconds", "0.5"], "--excerpt-seconds"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, extra, message):
    inputs = make_inputs(tmp_path / "in", items=("x",), systems=("sysA",))
    assert run_stimuli(inputs, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vitmusic stimuli: error:") and message in err and "\n" not in err


def test_existing_output_needs_overwrite(built, capsys):
    inputs, out = built
    assert run_stimuli(inputs, out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "private" / "answer_key.csv").is_file()


def test_reference_defaults_to_the_videos_soundtrack(tmp_path):
    from vitmusic.data.videowriter import write_video

    inputs = make_inputs(tmp_path / "in", items=("solo",), systems=("sysA",))
    frames = np.random.default_rng(0).integers(0, 255, size=(30, 48, 64, 3), dtype=np.uint8)
    soundtrack = tone(440, 3.0)
    write_video(inputs["videos"] / "solo.mp4", frames, 10, audio=soundtrack, sample_rate=SR)
    out = tmp_path / "out"
    argv = ["stimuli", "--videos", str(inputs["videos"]), "--system", f"sysA={inputs['systems']['sysA']}",
            "--out", str(out), "--excerpt-seconds", "2", "--sample-rate", str(SR), "--quiet"]
    assert cli.main(argv) == 0
    info = json.loads((out / "private" / "stimuli.json").read_text())
    assert info["items"]["solo"]["sources"]["reference"].endswith("solo.mp4")
    key = {system: sid for sid, (_, system) in read_answer_key(out / "private" / "answer_key.csv").items()}
    hidden, _ = load_audio(out / "private" / "audio" / f"{key[dz.HIDDEN_REFERENCE]}.wav")
    # the hidden reference is the soundtrack's 440 Hz tone (its spectrum peaks there), not a system's audio
    peak_hz = np.argmax(np.abs(np.fft.rfft(hidden))) * SR / hidden.size
    assert abs(peak_hz - 440) < 2
