"""``vitmusic extract``: encode every clip of a manifest once into the training cache of the config's model kind.

For the MusicGen kind, a frozen encoder gives a feature cache (video embeddings + audio codes); ``encoder.lora.rank > 0`` gives a
frame cache (the processor-preprocessed uint8 frames + audio codes), since adapters that train need the frames.
"""

from __future__ import annotations

import argparse

HELP = (
    "encode every clip of a manifest once into the training cache: video embeddings + audio codes, or "
    "preprocessed frames + audio codes when encoder.lora.rank > 0"
)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` plus trailing ``key.sub=value`` overrides (shared with ``vitmusic train``)."""
    parser.add_argument(
        "--config", default=None, metavar="YAML", help="preset file of overrides (configs/*.yaml)"
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="config overrides, applied last"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from vitmusic.config import load_config
    from vitmusic.errors import ConfigError
    from vitmusic.workflow.kinds import get_kind

    config = load_config(args.config, args.overrides)
    kind = get_kind(config)
    if kind.build_cache is None:
        raise ConfigError(f"model kind {kind.name!r} has no cache to extract: 'vitmusic train' reads its data directly")
    from vitmusic.training.preflight import check_cache_dir, check_manifest_media

    check_cache_dir(config)
    check_manifest_media(config, kind.inputs)  # missing clip videos fail in one line before any model is loaded
    folder = kind.build_cache(config, progress=not args.no_progress)
    from vitmusic.training.distributed import is_main_process

    if is_main_process():  # under accelerate launch: one cache, one line
        print(folder)
    return 0
