"""The name under which the installed MusicGen takes and returns its key/value cache.

transformers 5.24 renamed MusicGen's ``past_key_values`` to ``cache`` (the old name is deprecated and removed in
5.40), and ``MusicgenForCausalLM.generate`` overrides the generic keyword rename, so the old name raises there.
The keyword is read from the installed model's ``prepare_inputs_for_generation`` signature, not from a version
string, so the code runs without a deprecation warning on either side of the rename.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

__all__ = ["cache_keyword", "cache_kwargs", "output_cache"]


@cache
def _keyword_for(cls: type) -> str:
    params = inspect.signature(cls.prepare_inputs_for_generation).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_keyword(model: Any) -> str:
    """``"cache"`` or ``"past_key_values"``: the keyword ``model`` (a MusicGen decoder) takes its cache under."""
    return _keyword_for(type(model))


def cache_kwargs(model: Any, cache_obj: Any) -> dict[str, Any]:
    """``{keyword: cache_obj}`` for a forward or ``generate`` call of ``model``."""
    return {cache_keyword(model): cache_obj}


def output_cache(output: Any) -> Any:
    """The cache a model output carries (``.cache`` from 5.24 on, ``.past_key_values`` before), no warning."""
    if "cache" in getattr(output, "keys", lambda: ())():
        return output["cache"]
    return output["past_key_values"] if "past_key_values" in output.keys() else None
