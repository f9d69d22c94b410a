"""``vitmusic prepare``: cut a dataset root (URMP, Bach10 or a user layout) into a clip manifest with
piece-level splits that keep each tune in one split."""

from __future__ import annotations

import argparse

HELP = "cut a dataset (URMP, Bach10, ...) into fixed-length clips: OUT/manifest.jsonl, prepare.json, prepare.png"


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", "--urmp", dest="root", required=True, metavar="ROOT",
                        help="dataset root (or one piece folder); --urmp is the same option")
    parser.add_argument("--layout", default="auto", metavar="NAME",
                        help="how ROOT is laid out: auto (detect; the default), urmp (folders NN_Piece_vn_vc with "
                        "Vid_/AuMix_/AuSep_/F0s_/Notes_/Sco_ files), bach10 (folders NN-Title with .flac, "
                        "-GTF0s.mat, -GTNotes.mat, .mid), or one an installed package adds (docs/data.md)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--clip-seconds", required=True, type=float, metavar="S",
                        help="clip window length in seconds")
    parser.add_argument("--hop-seconds", type=float, default=None, metavar="H",
                        help="hop between window starts in seconds (default: the window length)")
    parser.add_argument("--split-file", default=None, metavar="F",
                        help="CSV 'piece,split' or JSON split file overriding the hash-based split; it must "
                        "list every piece (pieces it lists that are not in the data only warn)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hash-based split (default 0)")
    parser.add_argument("--ratios", type=_csv_list, default=["0.8", "0.1", "0.1"], metavar="TR,VA,TE",
                        help="train,val,test proportions of the hash-based split (default 0.8,0.1,0.1)")
    parser.add_argument("--require", type=_csv_list, default=[], metavar="LIST",
                        help="comma-separated files every piece must have: video,mix,score,stems,f0,notes")
    parser.add_argument("--skip-incomplete", action="store_true",
                        help="skip (and report in prepare.json) pieces lacking a --require'd file or with a broken "
                        "video/audio file instead of failing")
    parser.add_argument("--no-plot", action="store_true", help="do not save the OUT/prepare.png overview")
    parser.add_argument("--allow-shared-scores", action="store_true",
                        help="accept a --split-file that puts pieces performing one tune (same melodic signature of "
                        "the top voice, or one chorale of a synthetic benchmark) in two splits")


def run(args: argparse.Namespace) -> int:
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.errors import VitmusicError

    try:
        ratios = [float(r) for r in args.ratios]
    except ValueError:
        raise VitmusicError(f"--ratios must be three numbers, got {','.join(args.ratios)!r}") from None
    result = prepare_manifest(
        args.root,
        args.out,
        args.clip_seconds,
        args.hop_seconds,
        layout=args.layout,
        split_file=args.split_file,
        seed=args.seed,
        ratios=ratios,
        require=args.require,
        skip_incomplete=args.skip_incomplete,
        allow_shared_scores=args.allow_shared_scores,
        plot=not args.no_plot,
    )
    print(result.summary())
    return 0
