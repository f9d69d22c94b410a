"""Exactly-scoped handling of Hugging Face's process-wide state: its output, and its model building.

Three things, all narrow on purpose (nothing here silences warnings globally):

- :func:`hf_progress`: turn transformers' (and so huggingface_hub's) progress bars off for a block — the
  "Loading weights" / "Writing model shards" bars — and restore the previous state afterwards. The CLI uses it
  under ``--no-progress``; the tiny presets use it while materialising themselves (an internal step).
- :func:`filter_known_config_warnings`: drop the one known-harmless config message of MusicGen checkpoints.
  MusicGen embeds ``vocab_size + 1`` codes (its pad/start token is ``vocab_size``, 2048 for
  facebook/musicgen-small), which MusicGen's decoder config accepts but the generic check of the composite
  config reports as "pad_token_id must be `None` or an integer within the vocabulary (between 0 and V-1), got
  V". Only that message, with the value equal to ``V``, is dropped; any other token id stays reported.
- :func:`hf_model_build`: one thread at a time builds or loads a transformers model. transformers swaps
  ``torch.nn.init``'s functions process-wide while it builds one (``no_init_weights``,
  ``guard_torch_init_functions``) and puts back what it found on exit; two threads inside at once can leave the
  swapped ones in place for good, after which every ``nn.Linear`` of the process starts uninitialised (seen:
  three threads materialising one tiny preset, then a seeded projection whose weights differed run to run).
  The block also holds the global RNG still for the presets' seeded construction.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator

__all__ = ["filter_known_config_warnings", "hf_model_build", "hf_progress"]

_BUILD_LOCK = threading.RLock()

_CONFIG_LOGGER = "transformers.configuration_utils"
_TOKEN_ID_MESSAGE = re.compile(
    r"Model config: (?:pad|bos|decoder_start)_token_id must be `None` or an integer within the vocabulary "
    r"\(between 0 and (\d+)\), got (\d+)\."
)


class _MusicgenTokenIdFilter(logging.Filter):
    """Rejects MusicGen's "special token id == vocab_size" message (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        match = _TOKEN_ID_MESSAGE.match(record.getMessage())
        return not (match and int(match.group(2)) == int(match.group(1)) + 1)


def filter_known_config_warnings() -> None:
    """Install the MusicGen token-id filter on transformers' config logger (idempotent)."""
    logger = logging.getLogger(_CONFIG_LOGGER)
    if not any(isinstance(f, _MusicgenTokenIdFilter) for f in logger.filters):
        logger.addFilter(_MusicgenTokenIdFilter())


@contextlib.contextmanager
def hf_progress(enabled: bool) -> Iterator[None]:
    """Within the block, transformers' progress bars are shown only if ``enabled`` (state restored after)."""
    if enabled:
        yield
        return
    from transformers.utils import logging as tf_logging

    was = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tf_logging.enable_progress_bar()


@contextlib.contextmanager
def hf_model_build() -> Iterator[None]:
    """Hold while a transformers model is built or loaded (re-entrant; see the module docstring)."""
    with _BUILD_LOCK:
        yield
