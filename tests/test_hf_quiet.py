"""Known-harmless Hugging Face noise is removed at its source, and only that; the MusicGen cache keyword."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

from vitmusic.generators.musicgen.decoder_cache import cache_keyword, cache_kwargs, output_cache
from vitmusic.hf_quiet import _MusicgenTokenIdFilter


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("transformers.configuration_utils", logging.WARNING, __file__, 1, message, None, None)


def test_filter_drops_only_musicgens_token_equal_to_vocab_size():
    f = _MusicgenTokenIdFilter()
    msg = ("Model config: {} must be `None` or an integer within the vocabulary (between 0 and {}), got {}. "
           "This may result in unexpected behavior.")
    assert not f.filter(_record(msg.format("pad_token_id", 2047, 2048)))
    assert not f.filter(_record(msg.format("decoder_start_token_id", 63, 64)))
    assert f.filter(_record(msg.format("pad_token_id", 2047, 5000)))  # a really bad id stays reported
    assert f.filter(_record(msg.format("pad_token_id", 2047, -1)))
    assert f.filter(_record(msg.format("image_token_id", 63, 64)))  # not one of MusicGen's special ids
    assert f.filter(_record("something else entirely"))


def test_tiny_model_loads_print_no_config_warning_and_no_bars_when_asked(tmp_path):
    # a fresh process: transformers' warning_once would hide a repeat inside this one
    code = textwrap.dedent("""
        import sys
        from vitmusic.encoders import load_encoder
        from vitmusic.encoders.presets import materialize_tiny_preset
        from vitmusic.generators.musicgen.model import load_generator
        from vitmusic.generators.musicgen.presets import materialize_tiny_generator
        from vitmusic.hf_quiet import hf_progress
        materialize_tiny_generator("tiny-musicgen")   # internal step: never a bar, even with progress on
        materialize_tiny_preset("tiny-vit")
        print("QUIET", file=sys.stderr, flush=True)
        with hf_progress(False):                      # what the CLI does under --no-progress
            load_generator("tiny-musicgen")
            load_encoder("tiny-vit")
        print("LOUD", file=sys.stderr, flush=True)
        load_generator("tiny-musicgen")               # progress on: the bar is there
    """)
    env = {**os.environ, "VITMUSIC_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "must be `None` or an integer within the vocabulary" not in proc.stderr
    made, rest = proc.stderr.split("QUIET", 1)
    quiet, loud = rest.split("LOUD", 1)
    assert "Writing model shards" not in made and "Loading weights" not in quiet
    assert "Loading weights" in loud


class _NewDecoder:
    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, cache=None, use_cache=True):
        pass


class _OldDecoder:
    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, past_key_values=None, use_cache=True):
        pass


class _Out(dict):
    pass


def test_cache_keyword_is_read_from_the_signature():
    assert cache_keyword(_NewDecoder()) == "cache"
    assert cache_keyword(_OldDecoder()) == "past_key_values"
    marker = object()
    assert cache_kwargs(_NewDecoder(), marker) == {"cache": marker}
    assert output_cache(_Out(cache=marker)) is marker
    assert output_cache(_Out(past_key_values=marker)) is marker
    assert output_cache(_Out(logits=1)) is None
