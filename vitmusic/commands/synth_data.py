"""``vitmusic synth-data``: write a synthetic benchmark in the URMP layout (stems, mix, F0s, Notes, MIDI, video)."""

from __future__ import annotations

import argparse

HELP = "write synthetic URMP-style pieces (Bach chorales or melodies, rendered audio, performer video)"


def _tempo_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH in BPM, e.g. 66:112, got {text!r}") from None
    return lo, hi


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output root; piece folders NN_Name_inst1_inst2 go here")
    parser.add_argument("--pieces", type=int, default=10, metavar="N", help="number of pieces (default 10)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="base seed; same seed -> identical files (default 0)")
    parser.add_argument("--duration", type=float, default=20.0, metavar="SECONDS", help="seconds per piece (default 20)")
    parser.add_argument("--fps", default="30", metavar="FPS", help="video frame rate: 30 (default), 25, 29.97, 30000/1001, ...")
    parser.add_argument("--source", default="chorales", metavar="SOURCE", help="chorales (music21 Bach corpus, default), melodies or mixed")
    parser.add_argument("--renderer", default="builtin", metavar="NAME", help="builtin (numpy synthesizer, default) or fluidsynth (GM soundfont)")
    parser.add_argument("--sample-rate", type=int, default=48000, metavar="HZ", help="audio sample rate in Hz (default 48000)")
    parser.add_argument("--tempo", type=_tempo_range, default=(66.0, 112.0), metavar="LOW:HIGH",
                        help="BPM range each piece's tempo is drawn from (default 66:112)")
    parser.add_argument("--tempo-drift", type=float, default=0.04, metavar="X",
                        help="relative amplitude of the slow tempo drift / rubato (default 0.04, 0 = strict)")
    parser.add_argument("--width", type=int, default=160, metavar="PX", help="video width per performer in px (default 160)")
    parser.add_argument("--height", type=int, default=240, metavar="PX", help="video height in px (default 240)")
    parser.add_argument("--level", default="painted", metavar="LEVEL",
                        help="what the picture says about pitch: painted (hand height, default), fingering "
                             "(small instrument-like cues) or hidden (none; onsets, dynamics, phrasing remain)")
    parser.add_argument("--nuisance", default="none", metavar="LIST",
                        help="none (default), all, or a comma-separated list of layout, background, camera, "
                             "lighting, noise, compression, fps")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="pieces rendered in parallel processes (default 1; output is identical)")
    parser.add_argument("--no-plot", action="store_true", help="skip the piano-roll overview OUT/synth_data.png")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from vitmusic.data.synth import generate_benchmark

    folders = generate_benchmark(args.out, args.pieces, args.seed, duration_s=args.duration, fps=args.fps,
                                 source=args.source, renderer=args.renderer, sample_rate=args.sample_rate,
                                 tempo_range_bpm=args.tempo, tempo_drift=args.tempo_drift,
                                 width_per_player=args.width, height=args.height,
                                 progress=not args.no_progress, plot=not args.no_plot,
                                 workers=args.workers, level=args.level, nuisance=args.nuisance)
    print(f"wrote {len(folders)} pieces to {args.out}")
    return 0
