"""Real model sizes end to end: VideoMAE-base, ViT-B/16 and CLIP-B/32 with MusicGen-small (random-init, published
configs) through the CLI.

extract -> train 2 steps -> generate (one 2 s test clip, no guidance, for CPU time) -> evaluate. The full
matrix (and MusicGen-melody, 1.55 B, ~15 GB peak: benchmark only; guidance 3) with time and peak memory per stage is
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


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The benchmark's data and one random-init MusicGen-small, shared by the encoders' runs."""
    root = tmp_path_factory.mktemp("real_size")
    bench = _bench()
    manifest = bench.prepare_data(root, duration_s=2.0)  # one 2 s clip per piece
    gen = bench.build_musicgen(root / "models" / "musicgen-small")
    assert json.loads((gen / "config.json").read_text())["decoder"]["num_hidden_layers"] == 24
    return bench, root, manifest, gen


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["videomae-base", "vit-base", "clip-vit-base"])
def test_published_encoder_and_musicgen_small_through_the_cli(small, encoder, monkeypatch):
    bench, root, manifest, gen = small
    monkeypatch.setenv("VITMUSIC_CACHE", str(root / "vitmusic-cache"))
    enc = bench.build_encoder(encoder, root / "models" / encoder)
    work = root / f"work-{encoder}"
    stages = bench.run_stages(work, enc, gen, manifest, guidance=1.0)
    assert list(stages) == ["extract", "train", "generate", "evaluate"]

    run = work / "run"
    meta = json.loads((run / "final" / "config.json").read_text())["extra"]  # what the MusicGen task stored
    # the frozen 587 M MusicGen (the encoder is frozen too, but training reads its features from the cache)
    assert meta["step"] == 2 and meta["parameters"]["frozen"] > 587_000_000
    summary = json.loads((work / "generated" / "generate.json").read_text())
    assert len(summary["items"]) == 1 and not summary["failed"]
    for item in summary["items"]:
        y, sr = sf.read(item["output"])
        assert sr == 32000 and len(y) == pytest.approx(2.0 * sr, abs=sr * 0.05)
    assert (work / "eval" / "summary.json").is_file()
