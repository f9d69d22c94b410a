"""``vitmusic train``: train the model kind a config names (``task``: the projection for MusicGen, the notes head,
the diffusion synthesizer, or a plug-in kind), from its cache when it has one."""

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
    parser.add_argument("--accept-changed-weights", action="store_true",
                        help="resume from a checkpoint whose files changed since it was written (their sha256 "
                        "differs from the recorded one); refused otherwise")


def run(args: argparse.Namespace) -> int:
    from vitmusic.config import load_config
    from vitmusic.workflow.kinds import get_kind, train_run

    overrides, resume = list(args.overrides), args.resume
    if resume is not None and "=" in resume:  # `--resume key=value`: argparse took an override as CKPT
        overrides, resume = [resume, *overrides], "latest"
    config = load_config(args.config, overrides)
    from vitmusic.runs import accept_changed_weights
    from vitmusic.training.preflight import check_before_training

    with accept_changed_weights(args.accept_changed_weights):
        check_before_training(config, resume, media=get_kind(config).inputs)  # before any model or cache loads
        final, _ = train_run(config, resume=resume, progress=not args.no_progress)
    from vitmusic.training.distributed import is_main_process

    if is_main_process():
        print(final)
    return 0
