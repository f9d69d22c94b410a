"""vitmusic: turn videos of musical performances into music, and measure how well it did.

The package follows the pipeline: ``data -> encoders -> projection -> generators -> training``;
``metrics`` depends on nothing heavy and scores generated audio against the paired ground truth.

The Python API (``docs/api.md``), loaded on first use so that ``import vitmusic`` stays light::

    import vitmusic
    pipe = vitmusic.load_pipeline("runs/tiny-midi")   # a run folder of any model kind
    audio = pipe.generate_video("clip.mp4")           # float32 [N] at pipe.sample_rate

``load_pipeline``, ``frames`` (frames in memory as a video), ``load_encoder``, ``embed_video``, ``evaluate``
(the summary as a dict), and for new model kinds ``ModelKind``, ``System``, ``SystemContext``,
``register_kind`` and ``load_plugins`` (``docs/extending.md``).
"""

from __future__ import annotations

from typing import Any

from vitmusic.metrics import jit as _jit

__version__ = "0.1.0"

# numba binds each compiled function to a cache folder when librosa defines it, so vitmusic's folder is set
# now, before anything imports numba (vitmusic.metrics.jit explains why the default one is unsafe)
_jit.configure()

# public name -> "module:attribute", imported when first used (module __getattr__, PEP 562)
_API = {
    "load_pipeline": "vitmusic.api:load_pipeline",
    "frames": "vitmusic.api:frames",
    "load_encoder": "vitmusic.api:load_encoder",
    "embed_video": "vitmusic.api:embed_video",
    "evaluate": "vitmusic.api:evaluate",
    "ModelKind": "vitmusic.workflow.kinds:ModelKind",
    "System": "vitmusic.workflow.kinds:System",
    "SystemContext": "vitmusic.workflow.kinds:SystemContext",
    "register_kind": "vitmusic.plugins:register_kind",
    "load_plugins": "vitmusic.plugins:load_plugins",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'vitmusic' has no attribute {name!r}")
    import importlib

    module, _, attr = _API[name].partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
