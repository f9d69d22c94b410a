"""``vitmusic generate``: music for one video, a folder of videos or a manifest split, from a trained run.

Single video::

    vitmusic generate --video in.mp4 --checkpoint RUN --out out.wav [--mux out.mp4] [--guidance G] [--seed S]

Batch (one ``<name>.wav`` per video, or ``<clip_id>.wav`` per manifest clip for its ``[start_s, end_s)``)::

    vitmusic generate --videos DIR --checkpoint RUN --out-dir OUT
    vitmusic generate --manifest M --split test --checkpoint RUN --out-dir OUT

In batch mode a bad input is skipped with one stderr line and listed in ``OUT/failures.json``; the others are
produced, and ``OUT/generate.json`` records the settings and each item's seed (derived from ``--seed`` and the
item's name, so an item sounds the same whatever else is in the batch). Exit code 0 when at least one item
succeeded, 2 when all failed.

The run folder records its model kind (``task`` in its ``config.json``), and the kind says how its pipeline
loads (:mod:`vitmusic.workflow.kinds`; a plug-in kind needs ``--plugin``): an object with ``sample_rate``,
``default_seed``, ``describe() -> dict`` and ``generate_video(video, *, t0_s, t1_s, guidance_scale, seed,
progress) -> float wav [N]`` (exactly the span's length; :class:`vitmusic.inference.base.Pipeline`).

The MIDI path (a run trained with ``task=transcription``) also writes the transcribed MIDI: ``--midi OUT.mid``
(default: ``--out`` with a ``.mid`` suffix; in batch mode ``<name>.mid`` next to each ``.wav``) and renders it
with ``--synth builtin|fluidsynth|diffusion`` (``--soundfont`` for fluidsynth, ``--synth-checkpoint DIR`` for
diffusion); ``--instruments vn,vc`` names the performers left to right when the file names do not::

    vitmusic generate --video in.mp4 --checkpoint MIDI_RUN --out out.wav [--midi out.mid] [--synth S]

``--path musicgen|midi`` (deprecated) is still accepted when it agrees with the run's kind.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from vitmusic.data.media import VIDEO_EXTS
from vitmusic.errors import ConfigError, DataError, VitmusicError

HELP = "generate music for videos with a trained run (any length; single video, folder or manifest split)"
LOG_LEVEL = logging.WARNING  # progress bars carry the news

# the former --path values and the model kinds they name
PATHS = {"musicgen": "musicgen", "midi": "transcription"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="IN", help="one video file")
    src.add_argument("--videos", metavar="DIR", help="every video file in a folder (batch mode)")
    src.add_argument("--manifest", metavar="M", help="manifest.jsonl (or its folder) from 'vitmusic prepare'")
    parser.add_argument("--split", default="test", help="manifest split to generate for (default: test)")
    parser.add_argument("--checkpoint", required=True, metavar="RUN",
                        help="run folder (uses RUN/final) or RUN/checkpoints/step_<n>")
    parser.add_argument("--out", metavar="OUT.wav", help="output audio of --video")
    parser.add_argument("--out-dir", metavar="OUT", help="output folder of --videos / --manifest")
    parser.add_argument("--mux", metavar="OUT.mp4", help="also write the input video with the generated audio")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale (default: generate.guidance_scale of the run)")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: generate.seed of the run); in batch mode each item's seed is "
                        "derived from it and the item's name")
    parser.add_argument("--path", choices=tuple(PATHS), default=None,
                        help="deprecated: the run folder records its kind; if given, it must agree")
    midi = parser.add_argument_group("MIDI path (a run of the transcription kind)")
    midi.add_argument("--midi", metavar="OUT.mid", help="transcribed MIDI of --video (default: --out as .mid)")
    midi.add_argument("--synth", choices=("builtin", "fluidsynth", "diffusion"), default=None,
                      help="synthesizer of the MIDI (default: transcription.synth of the run)")
    midi.add_argument("--synth-checkpoint", metavar="DIR", help="trained diffusion synthesizer (--synth diffusion)")
    midi.add_argument("--soundfont", metavar="SF2", help="soundfont for --synth fluidsynth (default: pretty_midi's)")
    midi.add_argument("--score", metavar="SCORE.mid", help="the piece's score, for a run of the score-informed "
                      "kind (default: the Sco_ file next to a URMP-style video)")
    midi.add_argument("--instruments", metavar="CODES",
                      help="URMP codes of the performers left to right, e.g. vn,vc (default: from the file names)")
    parser.add_argument("--accept-changed-weights", action="store_true",
                        help="use a run whose weights changed since training (their sha256 differs from the one "
                        "in its config.json); refused otherwise")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


@dataclass
class Item:
    """One thing to generate: a video's ``[t0_s, t1_s)`` (None = to the end) into ``out``."""

    name: str
    video: str | None
    t0_s: float
    t1_s: float | None
    out: Path
    midi: Path | None = None  # the MIDI path's transcription


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name) or "item"


def folder_items(folder: Path, out_dir: Path) -> list[Item]:
    """Video files of ``folder`` (by suffix, sorted; broken symlinks included), each to ``out_dir/<stem>.wav``."""
    if not folder.is_dir():
        raise ConfigError(f"--videos: not a folder: {folder}")
    # a broken symlink (is_file() False) is listed too, so it fails as an item instead of vanishing
    videos = sorted(p for p in folder.iterdir()
                    if (p.is_file() or p.is_symlink()) and p.suffix.lower() in VIDEO_EXTS)
    if not videos:
        raise DataError(f"{folder}: no video files ({', '.join(VIDEO_EXTS)})")
    stems = [p.stem for p in videos]
    # a.mp4 and a.mov would both become a.wav: keep the suffix for those
    names = [p.stem if stems.count(p.stem) == 1 else p.name for p in videos]
    return [Item(n, str(p), 0.0, None, out_dir / f"{_safe_name(n)}.wav") for n, p in zip(names, videos)]


def manifest_items(manifest: str, split: str, out_dir: Path) -> list[Item]:
    """The clips of one manifest split, each to ``out_dir/<clip_id>.wav`` for its ``[start_s, end_s)``."""
    from vitmusic.data.manifest import read_manifest

    clips = read_manifest(manifest, split=split)
    if not clips:
        raise DataError(f"{manifest}: no clips in split '{split}'")
    if not any(c.get("video") for c in clips):
        raise DataError(f"{manifest}: no clip of split '{split}' has a video (an audio-only layout such as "
                        "Bach10): nothing to generate from")
    return [Item(str(c["clip_id"]), c.get("video"), float(c["start_s"]), float(c["end_s"]),
                 out_dir / f"{_safe_name(str(c['clip_id']))}.wav") for c in clips]


def run_kind(args: argparse.Namespace):
    """The model kind of ``--checkpoint`` (from its ``config.json``), checked against the options given.

    Raises:
        ConfigError: no run there, a ``--path`` that disagrees with it, an option its kind does not take.
    """
    from vitmusic.workflow.kinds import kind_of_run

    kind = kind_of_run(args.checkpoint)
    if args.path is not None and PATHS[args.path] != kind.name:
        raise ConfigError(f"--path {args.path} (deprecated) disagrees with {args.checkpoint}: a run of the "
                          f"{kind.name!r} kind; leave --path out, the run folder records its kind")
    for flag, value in _pipeline_options(args).items():
        if value is not None and flag not in kind.pipeline_options:
            raise ConfigError(f"--{flag.replace('_', '-')} is not an option of the {kind.name!r} kind's pipeline"
                              + (" (it is for runs of the transcription kind)" if kind.name == "musicgen" else ""))
    if args.midi and not kind.writes_midi:
        raise ConfigError(f"--midi: a run of the {kind.name!r} kind writes no notes")
    return kind


def load_kind_pipeline(kind, args: argparse.Namespace, device: str | None):
    """The kind's pipeline of ``--checkpoint`` with the options given on the command line."""
    options = {k: v for k, v in _pipeline_options(args).items() if v is not None}
    return kind.load_pipeline(args.checkpoint, device=device, **options)


def _check_args(args: argparse.Namespace) -> None:
    if args.video is not None:
        if not args.out:
            raise ConfigError("--video needs --out OUT.wav")
        if args.out_dir:
            raise ConfigError("--out-dir is for --videos / --manifest; use --out with --video")
    else:
        if not args.out_dir:
            raise ConfigError("--videos / --manifest need --out-dir OUT")
        if args.out or args.mux:
            raise ConfigError("--out and --mux are for a single --video")
    if args.midi and args.video is None:
        raise ConfigError("--midi is for a single --video (batch mode writes <name>.mid next to each .wav)")
    if args.guidance is not None and not args.guidance >= 1.0:
        raise ConfigError(f"--guidance must be >= 1, got {args.guidance}")
    _check_outputs(args)


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output path must be writable before a model is loaded or a second is generated."""
    from vitmusic.outputs import check_output_dir, check_output_file

    for flag in ("out", "mux", "midi"):
        if getattr(args, flag):
            check_output_file(getattr(args, flag), f"--{flag}")
    if args.out_dir:
        check_output_dir(args.out_dir, "--out-dir")


def _generate(pipe, item: Item, seed: int, guidance: float | None, progress: bool):
    """Generate one item into ``item.out``; returns the wav ``[N]``."""
    from vitmusic.data.audio import write_audio

    if not item.video:
        raise DataError(f"clip {item.name} has no video")
    extra = {"midi_path": item.midi} if item.midi is not None else {}
    wav = pipe.generate_video(item.video, t0_s=item.t0_s, t1_s=item.t1_s, guidance_scale=guidance, seed=seed,
                              progress=progress, **extra)
    write_audio(item.out, wav, pipe.sample_rate)
    return wav


def run_single(args: argparse.Namespace, pipe, writes_midi: bool = False) -> int:
    from vitmusic.data.videowriter import mux_audio

    seed = pipe.default_seed if args.seed is None else args.seed
    midi = (Path(args.midi) if args.midi else Path(args.out).with_suffix(".mid")) if writes_midi else None
    item = Item(Path(args.video).stem, args.video, 0.0, None, Path(args.out), midi)
    wav = _generate(pipe, item, seed, args.guidance, progress=not args.no_progress)
    print(item.out)
    if item.midi is not None:
        print(item.midi)
    if args.mux:
        print(mux_audio(args.video, wav, pipe.sample_rate, args.mux))
    return 0


def run_batch(args: argparse.Namespace, pipe, items: list[Item], out_dir: Path, writes_midi: bool = False) -> int:
    from tqdm.auto import tqdm

    from vitmusic.atomic import atomic_write_text
    from vitmusic.inference.base import item_seed
    from vitmusic.training.distributed import gather_objects, is_main_process, split_for_process

    base_seed = pipe.default_seed if args.seed is None else args.seed
    if writes_midi:
        for item in items:
            item.midi = item.out.with_suffix(".mid")
    done, failures = [], []
    # under `accelerate launch` each process generates every N-th item (seeds depend on the item, not the process)
    mine = split_for_process(items, "items to generate")
    for item in tqdm(mine, desc="generate", unit="item", disable=args.no_progress or not is_main_process()):
        seed = item_seed(base_seed, item.name)
        try:
            wav = _generate(pipe, item, seed, args.guidance, progress=False)
        except VitmusicError as e:
            failures.append({"name": item.name, "input": item.video, "error": str(e)})
            tqdm.write(f"vitmusic generate: skipped {item.name}: {e}", file=sys.stderr)
            continue
        done.append({"name": item.name, "input": item.video, "start_s": item.t0_s, "end_s": item.t1_s,
                     "seed": seed, "duration_s": len(wav) / pipe.sample_rate, "output": str(item.out)})
    order = {item.name: i for i, item in enumerate(items)}
    done = sorted(gather_objects(done), key=lambda d: order[d["name"]])
    failures = sorted(gather_objects(failures), key=lambda d: order[d["name"]])
    report = out_dir / "failures.json"
    if not is_main_process():
        return 0 if done else 2
    atomic_write_text(report, json.dumps(failures, indent=1) + "\n")
    summary = {"generator": pipe.describe(), "guidance": args.guidance, "seed": base_seed,
               "source": args.videos or args.manifest, "split": args.split if args.manifest else None,
               "items": done, "failed": [f["name"] for f in failures]}
    atomic_write_text(out_dir / "generate.json", json.dumps(summary, indent=1) + "\n")
    if not done:
        raise DataError(f"all {len(items)} inputs failed (see {report})")
    print(f"generated {len(done)} of {len(items)} into {out_dir}" + (f"; failures in {report}" if failures else ""))
    return 0


def _pipeline_options(args: argparse.Namespace) -> dict:
    """The pipeline options named on the command line (None where not given)."""
    codes = [c.strip() for c in args.instruments.split(",") if c.strip()] if args.instruments else None
    return {"synth": args.synth, "synth_checkpoint": args.synth_checkpoint, "soundfont": args.soundfont,
            "instruments": codes, "score": getattr(args, "score", None)}


def run(args: argparse.Namespace) -> int:
    from vitmusic.runs import accept_changed_weights

    with accept_changed_weights(args.accept_changed_weights):  # the weights' sha256 is checked where they load
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    _check_args(args)
    kind = run_kind(args)  # a bad checkpoint fails before the inputs are listed or models loaded
    if args.video is not None:
        from vitmusic.data.video import probe_video

        probe_video(args.video)  # a missing or corrupt video fails in one line before any model is loaded
        pipe = load_kind_pipeline(kind, args, args.device)
        return run_single(args, pipe, kind.writes_midi)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out-dir exists and is not a folder: {out_dir}")
    if args.videos is not None:
        items = folder_items(Path(args.videos), out_dir)
    else:
        items = manifest_items(args.manifest, args.split, out_dir)
    from vitmusic.training.distributed import check_divisible, process_device

    check_divisible(len(items), "items to generate")  # before any model is loaded
    pipe = load_kind_pipeline(kind, args, args.device or process_device())
    out_dir.mkdir(parents=True, exist_ok=True)
    return run_batch(args, pipe, items, out_dir, kind.writes_midi)
