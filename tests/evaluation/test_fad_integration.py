"""kid / fad / fad_inf through `vitmusic evaluate` and `vitmusic compare`: the embedding is named everywhere,
a transformers embedding is chosen by folder, and runs with different embeddings are not compared."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf
from metrics_signals import chord_progression, harmonic_tone, save_tiny_wav2vec2

from vitmusic import cli

SR = 16000


@pytest.fixture
def clips(tmp_path):
    for i, root in enumerate((60, 62, 65, 67)):
        ref = chord_progression([[root, root + 4, root + 7], [root + 2, root + 5, root + 9]], sample_rate=SR)
        for side, y in (("ref", ref), ("gen", 0.3 * harmonic_tone(110.0 * (1 + i / 4), ref.size / SR, SR))):
            (tmp_path / side).mkdir(exist_ok=True)
            sf.write(tmp_path / side / f"c{i}.wav", y, SR)
    return tmp_path


def _evaluate(root, out, *extra):
    return cli.main(["evaluate", "--ref", str(root / "ref"), "--gen", str(root / "gen"), "--out", str(root / out),
                     "--metrics", "fad", "--sample-rate", str(SR), "--quiet", *extra])


def test_default_and_transformers_embeddings_are_named_and_compare_refuses_mixing(clips, capsys):
    from transformers import Wav2Vec2Model

    assert _evaluate(clips, "mel") == 0
    printed = capsys.readouterr().out
    assert "[mel-stats]" in printed and "kid" in printed
    summary = json.loads((clips / "mel" / "summary.json").read_text())
    for name in ("kid", "fad", "fad_inf"):
        m = summary["metrics"][name]
        assert m["n"] == 4 and m["embedding"]["name"] == "mel-stats" and m["embedding"]["loudness_lufs"] == -23.0
        assert m["warnings"]  # 4 clips: every estimator says what that means
    assert summary["metrics"]["kid"]["ci95"][0] is not None and summary["metrics"]["fad"]["ci95"] == [None, None]
    assert summary["config"]["fad_embedding"] == "mel-stats"
    report = (clips / "mel" / "report.md").read_text()
    assert "embedding `mel-stats`" in report and "| kid ↓ (mel-stats) |" in report

    save_tiny_wav2vec2(clips / "tiny-w2v", Wav2Vec2Model)
    assert _evaluate(clips, "w2v", "--fad-embedding", str(clips / "tiny-w2v"), "--fad-layer", "1") == 0
    emb = json.loads((clips / "w2v" / "summary.json").read_text())["metrics"]["kid"]["embedding"]
    assert (emb["name"], emb["layer"], emb["pooling"], emb["dim"]) == ("tiny-w2v-1", 1, "frames", 16)
    capsys.readouterr()

    rc = cli.main(["compare", str(clips / "mel"), str(clips / "w2v")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "different embeddings" in err[0] and "tiny-w2v-1" in err[0]
    # the same embedding compares, and the tables name it
    assert _evaluate(clips, "mel2") == 0
    table = clips / "cmp.csv"
    assert cli.main(["compare", str(clips / "mel"), str(clips / "mel2"), "--metrics", "kid,fad",
                     "--out", str(table)]) == 0
    assert "| kid ↓ (mel-stats) |" in capsys.readouterr().out
    rows = list(csv.DictReader(open(table)))
    assert {r["embedding"] for r in rows} == {"mel-stats"} and rows[0]["mean"] == rows[2]["mean"]


def test_old_runs_without_an_embedding_are_not_compared_with_new_ones(clips, capsys):
    assert _evaluate(clips, "new") == 0
    old = clips / "old"
    old.mkdir()
    (old / "per_clip.csv").write_text((clips / "new" / "per_clip.csv").read_text())
    summary = json.loads((clips / "new" / "summary.json").read_text())
    for name in ("kid", "fad", "fad_inf"):
        summary["metrics"][name].pop("embedding")  # what a run made before embeddings were recorded holds
    (old / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    assert cli.main(["compare", str(old), str(clips / "new"), "--metrics", "fad"]) == 2
    assert "unrecorded" in capsys.readouterr().err
    assert cli.main(["compare", str(old), str(clips / "new"), "--metrics", "emotion.arousal_abs_error"]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--fad-layer", "2"], "mel-stats has no layers"), (["--fad-embedding", "/nonexistent/model"], "cannot load")],
)
def test_bad_embedding_is_one_line_exit_2(clips, capsys, extra, message):
    assert _evaluate(clips, "bad", *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "--fad-embedding" in err[0]
    assert not (clips / "bad" / "summary.json").exists()


def test_compare_warns_when_fad_comes_from_different_numbers_of_clips(clips, capsys):
    import shutil

    assert _evaluate(clips, "four") == 0
    shutil.copytree(clips / "gen", clips / "gen3")
    (clips / "gen3" / "c3.wav").unlink()
    assert cli.main(["evaluate", "--ref", str(clips / "ref"), "--gen", str(clips / "gen3"), "--out",
                     str(clips / "three"), "--metrics", "fad", "--sample-rate", str(SR), "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", str(clips / "four"), str(clips / "three"), "--metrics", "kid,fad,fad_inf"]) == 0
    out = capsys.readouterr().out
    assert "warning: fad was computed on different numbers of clips (3, 4)" in out
    assert "warning: kid" not in out
