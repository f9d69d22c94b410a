"""Real model sizes end to end: VideoMAE-base + MusicGen-small (random-init, published configs) through the CLI.

extract -> train 2 steps -> generate (one 2 s test clip, no guidance, for CPU time) -> evaluate. The full
matrix (ViT-base, CLIP-B/32, MusicGen-melody, guidance 3) with time and peak memory per stage is
scripts/benchmarks/bench_real_size.py, which this test imports its builders from. A few GB of memory and
minutes on 2 CPU cores.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_real_size",
                                                  ROOT / "scripts" / "benchmarks" / "bench_real_size.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_videomae_base_and_musicgen_small_through_the_cli(tmp_path, monkeypatch):
    bench = _bench()
    monkeypatch.setenv("VITMUSIC_CACHE", str(tmp_path / "vitmusic-cache"))
    manifest = bench.prepare_data(tmp_path, duration_s=2.0)  # one 2 s clip per piece
    enc = bench.build_encoder("videomae-base", tmp_path / "models" / "videomae-base")
    gen = bench.build_musicgen(tmp_path / "models" / "musicgen-small")
    assert json.loads((gen / "config.json").read_text())["decoder"]["num_hidden_layers"] == 24
    stages = bench.run_stages(tmp_path / "work", enc, gen, manifest, guidance=1.0)
    assert list(stages) == ["extract", "train", "generate", "evaluate"]

    run = tmp_path / "work" / "run"
    meta = json.loads((run / "final" / "config.json").read_text())["extra"]  # what the MusicGen task stored
    assert meta["step"] == 2 and meta["parameters"]["frozen"] > 500_000_000  # the 587 M MusicGen + 86 M encoder
    summary = json.loads((tmp_path / "work" / "generated" / "generate.json").read_text())
    assert len(summary["items"]) == 1 and not summary["failed"]
    for item in summary["items"]:
        y, sr = sf.read(item["output"])
        assert sr == 32000 and len(y) == pytest.approx(2.0 * sr, abs=sr * 0.05)
    assert (tmp_path / "work" / "eval" / "summary.json").is_file()
