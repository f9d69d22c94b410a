"""``vitmusic train``: train the projection (or, ``task=transcription``, the notes head) on the feature cache."""

from __future__ import annotations

import argparse

from vitmusic.commands.extract import add_config_arguments

HELP = (
    "train the video->music projection, the video->notes head (task=transcription) or the notes->audio "
    "diffusion synthesizer (task=diffusion); one accelerate loop, resumable checkpoints in train.output_dir"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="CKPT",
        help="continue from the latest checkpoint of the run (or the given run/step_<n> folder)",
    )


def run(args: argparse.Namespace) -> int:
    from vitmusic.config import load_config
    from vitmusic.training.tasks import build_task, run_training

    overrides, resume = list(args.overrides), args.resume
    if resume is not None and "=" in resume:  # `--resume key=value`: argparse took an override as CKPT
        overrides, resume = [resume, *overrides], "latest"
    config = load_config(args.config, overrides)
    from vitmusic.training.preflight import check_before_training

    check_before_training(config, resume)  # before any model is loaded or cache built
    task = build_task(config, progress=not args.no_progress)
    final = run_training(config, task, resume=resume, progress=not args.no_progress)
    from vitmusic.training.distributed import is_main_process

    if is_main_process():
        print(final)
    return 0
