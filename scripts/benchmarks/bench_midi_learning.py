"""Does the video -> notes head learn from the video? Held-out note F1 of the trained model vs the shuffled video.

Runs the whole user path on a fresh synthetic benchmark: ``vitmusic synth-data`` -> ``vitmusic prepare``
(piece-level splits) -> feature cache -> training (the one accelerate loop, ``configs/tiny-midi.yaml`` plus
overrides) -> decoding of the test pieces, scored with ``vitmusic.metrics.notes`` against the Notes
annotations. The control feeds every test clip the video of a clip from another piece (same trained head,
same decoding): a head that reads the performers scores well with the true video and near zero without it.

    python scripts/benchmarks/bench_midi_learning.py --work /tmp/midi_bench
    python scripts/benchmarks/bench_midi_learning.py --work /tmp/midi_bench --encoder tiny-vit --steps 700
    python scripts/benchmarks/bench_midi_learning.py --work /tmp/midi_bench --seeds 0 1 2   # training seeds
    # the harder benchmark: unequal layout and camera nuisance, equal vs located part slots on the same data
    python scripts/benchmarks/bench_midi_learning.py --work /tmp/midi_hard --pieces 32 --duration 8 \
        --level painted --nuisance all --slots equal,located --steps 1200

Prints onset-only note F1 (``notes.f1_no_offset``: onset within 50 ms and pitch within 50 cents) for both,
plus precision/recall/offset-aware F1, and writes ``WORK/results.json``. Goal: >= 0.8 true, <= 0.2 shuffled.
The onset threshold of the decoding is chosen on the validation pieces (a small grid), then fixed. Scores are
the mean over the test clips of the decoded notes' score (:func:`vitmusic.metrics.parts.score_clip_parts`: the
mean over each clip's performers, notes carried over from before the clip left out); the shuffled video is
another piece's (:func:`vitmusic.data.donors.donor_map`). With ``--seeds`` the head is trained once per training
seed on the same data (``--seed``) and every figure is reported as mean ± sd [95 % t interval] across the seeds.
``--level`` / ``--nuisance`` pick the benchmark's difficulty (``vitmusic synth-data``); ``--slots`` trains one head
per part-slot layout (``transcription.slots``) on the same pieces and split, and for each prints how well its
crops cover the performers (mean IoU with the written ``Boxes_*.json`` on the test clips).

Measured (defaults: 60 melody pieces of 10 s, 41 train / 10 val / 9 test pieces, 4 s clips, ``small-vit``
encoder at 30 Hz, head 128 wide x 3 layers, 3000 steps, seed 0; 2 shared CPU cores): onset F1 on the
test pieces 0.823 with the true video vs 0.002 with the shuffled video (precision 0.771, recall 0.832,
offset-aware F1 0.791; train pieces 0.989). Synthesis 115 s, feature extraction 125 s, training 1613 s.
With the 32x32 ``tiny-vit`` preset (frames too coarse for the hand height), a narrower head and 700-1000
steps the same protocol gave onset F1 0.02-0.33 vs 0.00-0.02.

Harder benchmarks (32 pieces of 8 s, 1200 steps, seed 0, 2026-12-07; docs/benchmark.md): ``--level painted
--nuisance all``: equal slots 0.006 vs 0.005 shuffled (crops' IoU with the performers 0.497), located slots
0.016 vs 0.002 (IoU 0.613), train pieces 0.38 / 0.42; ``--level hidden``: 0.057 vs 0.004.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/vitmusic_midi_bench", help="working folder (data, cache, run)")
    parser.add_argument("--pieces", type=int, default=60)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per piece")
    parser.add_argument("--source", default="melodies", help="synth-data source: melodies, chorales, mixed")
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    parser.add_argument("--ratios", default="0.7,0.15,0.15", help="train,val,test piece ratios")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--encoder", default="small-vit", help="encoder.name (preset, hub id or folder)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (and the training seed without --seeds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, metavar="K",
                        help="training seeds: one head per seed, figures aggregated across them")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on shared cores)")
    parser.add_argument("--level", default="painted", help="synth-data --level: painted, fingering, hidden")
    parser.add_argument("--nuisance", default="none", help="synth-data --nuisance: none, all or a list")
    parser.add_argument("--slots", default="equal", help="part slots to compare: equal, located or equal,located")
    parser.add_argument("--workers", type=int, default=1, help="synth-data --workers")
    parser.add_argument("overrides", nargs="*", help="config overrides (key.sub=value) on configs/tiny-midi.yaml")
    args = parser.parse_args(argv)

    import torch

    from vitmusic.cli import main as cli
    from vitmusic.data.synth.nuisance import parse_nuisance
    from vitmusic.workflow.results import format_seed_summary

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    timings = {}
    t = time.perf_counter()
    synth, prepared = work / "synth", work / "prepared"
    wanted = {"pieces": args.pieces, "seed": args.seed, "duration_s": args.duration, "source": args.source,
              "level": args.level, "nuisance": list(parse_nuisance(args.nuisance))}
    if not _same_benchmark(synth, wanted):
        cli(["synth-data", "--out", str(synth), "--pieces", str(args.pieces), "--seed", str(args.seed),
             "--duration", str(args.duration), "--source", args.source, "--level", args.level,
             "--nuisance", args.nuisance, "--workers", str(args.workers), "--no-plot", "--no-progress"])
    timings["synth_data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cli(["prepare", "--urmp", str(synth), "--out", str(prepared), "--clip-seconds", str(args.clip_seconds),
         "--ratios", args.ratios, "--seed", str(args.seed), "--no-plot"])
    timings["prepare_s"] = time.perf_counter() - t
    results = {"benchmark": wanted, "timings": timings}
    seeds = args.seeds or [args.seed]
    for slots in args.slots.split(","):
        results[slots] = run_seeds(args, work, prepared, slots, seeds)
    (work / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nbenchmark: level {args.level}, nuisance {args.nuisance}, {args.pieces} pieces x {args.duration:g} s")
    for slots in args.slots.split(","):
        r = results[slots]
        te, tr = r["across_seeds"]["test"], r["across_seeds"]["train"]
        print(f"slots {slots}: held-out test pieces ({int(r['per_seed'][seeds[0]]['test']['true_video']['clips'])} "
              f"clips with notes), crops vs performer boxes mean IoU {r['test_box_iou']:.3f}; mean ± sd [95 % t "
              f"interval] across {len(seeds)} training seed(s):")
        for name in NAMES:
            print(f"  {name:20s} true video {format_seed_summary(te['true_video'][name])}")
            print(f"  {'':20s} shuffled   {format_seed_summary(te['shuffled_video'][name])}")
        print(f"  (train pieces: onset F1 true {format_seed_summary(tr['true_video']['notes.f1_no_offset'])}, "
              f"shuffled {format_seed_summary(tr['shuffled_video']['notes.f1_no_offset'])}; onset thresholds "
              + ", ".join(str(r["per_seed"][k]["onset_threshold"]) for k in seeds) + ")")
        print("  timings: " + ", ".join(f"seed {k}: " + ", ".join(f"{n} {v:.0f}" for n, v in
                                                                 r["per_seed"][k]["timings"].items()) for k in seeds))
    return 0


def _same_benchmark(synth: Path, wanted: dict) -> bool:
    """The synthetic benchmark in ``synth`` was written, completely, with these arguments."""
    try:
        doc = json.loads((synth / "synth_data.json").read_text())
    except (OSError, ValueError):
        return False
    have = doc.get("arguments", {})
    return doc.get("complete", False) and all(have.get(k) == v for k, v in wanted.items())


NAMES = ("notes.f1_no_offset", "notes.precision", "notes.recall", "notes.f1")


def run_seeds(args, work: Path, prepared: Path, slots: str, seeds: list[int]) -> dict:
    """One head per training seed with part slots ``slots``: per-seed results, their summary across seeds
    (:func:`vitmusic.workflow.results.seed_summary`) and the crops' IoU (the same for every seed)."""
    from vitmusic.workflow.results import seed_summary

    per_seed = {k: run_one(args, work, prepared, slots, k, several=args.seeds is not None) for k in seeds}
    summary = {split: {video: {m: seed_summary([per_seed[k][split][video][m] for k in seeds]) for m in NAMES}
                       for video in ("true_video", "shuffled_video")} for split in ("train", "test")}
    return {"seeds": seeds, "per_seed": per_seed, "across_seeds": summary,
            "test_box_iou": per_seed[seeds[0]].pop("test_box_iou")}


def run_one(args, work: Path, prepared: Path, slots: str, seed: int, several: bool = False) -> dict:
    """Train and score one head with part slots ``slots`` at training seed ``seed`` (its own run folder)."""
    from vitmusic.config import load_config
    from vitmusic.training.loop import train
    from vitmusic.training.tasks.transcription import build_task, evaluate_split

    timings = {}
    run = work / (f"run_{slots}_seed{seed}" if several else f"run_{slots}")
    overrides = [f"data.manifest={prepared}", f"extract.cache_dir={work / 'cache'}",
                 f"train.output_dir={run}", f"train.max_steps={args.steps}", "train.log_with=none",
                 f"train.eval_every={max(1, args.steps // 5)}", f"train.save_every={args.steps}",
                 f"train.warmup_steps={max(1, args.steps // 20)}", f"train.seed={seed}",
                 f"encoder.name={args.encoder}", f"transcription.slots={slots}", *args.overrides]
    config = load_config(ROOT / "configs" / "tiny-midi.yaml", overrides)
    t = time.perf_counter()
    task = build_task(config, progress=True)
    timings["extract_s"] = time.perf_counter() - t
    shutil.rmtree(run, ignore_errors=True)  # the benchmark's own run folder: always a fresh run
    t = time.perf_counter()
    train(config, task, progress=True)
    timings["train_s"] = time.perf_counter() - t

    # the decoding's onset threshold is picked on the validation pieces, never on the test pieces
    tc = config.transcription
    val_f1 = {}
    for thr in (0.2, 0.3, 0.5, 0.7, 0.9):
        tc.onset_threshold = thr
        val_f1[thr] = evaluate_split(task, config.data.val_split)["notes.f1_no_offset"]
    tc.onset_threshold = max(val_f1, key=lambda k: -1.0 if val_f1[k] != val_f1[k] else val_f1[k])
    print(f"[{slots}, seed {seed}] validation onset F1 by onset threshold: "
          + ", ".join(f"{k}: {v:.3f}" for k, v in val_f1.items()) + f" -> {tc.onset_threshold}")
    results = {"config": overrides, "timings": timings, "onset_threshold": tc.onset_threshold,
               "val_f1_by_threshold": val_f1}
    for split in ("train", "test"):
        results[split] = {"true_video": evaluate_split(task, split),
                          "shuffled_video": evaluate_split(task, split, shuffled=True, seed=seed)}
    t = time.perf_counter()
    results["test_box_iou"] = math.nan if seed != (args.seeds or [args.seed])[0] else crop_iou([c for c in task.clips.values() if c.get("split") == "test"],
                                       slots, task.encoder_fingerprint, config)
    timings["iou_s"] = time.perf_counter() - t
    return results


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return float(ix * iy / union) if union > 0 else 0.0


def crop_iou(clips: list[dict], slots: str, fingerprint, config) -> float:
    """Mean IoU of each part's crop with the performer's box (the clip's mean written box) over ``clips``."""
    import numpy as np

    from vitmusic.data.videowriter import parse_fps
    from vitmusic.encoders.video import read_clip_frames
    from vitmusic.generators.midi.slots import equal_boxes, locate_parts

    scores = []
    for clip in clips:
        video = Path(clip["video"])
        doc = json.loads((video.parent / f"Boxes_{video.parent.name}.json").read_text())
        frames = read_clip_frames(video, float(clip["start_s"]), float(clip["end_s"]), config.encoder.rate_hz)
        P = len(clip["instruments"])
        crops = (equal_boxes(frames.shape[1], frames.shape[2], P) if slots == "equal"
                 else locate_parts(frames, P))
        fps = float(parse_fps(doc["fps"]))
        first = int(round(float(clip["start_s"]) * fps))
        last = min(int(round(float(clip["end_s"]) * fps)), len(doc["boxes"]))
        truth = np.asarray(doc["boxes"][first:last], dtype=np.float64).mean(axis=0)
        scores += [box_iou(crops[k], truth[k]) for k in range(P)]
    return float(np.mean(scores)) if scores else float("nan")


if __name__ == "__main__":
    sys.exit(main())
