"""Plug-ins: modules that register metric groups or model kinds when imported; and the model kinds by name.

A plug-in is an ordinary Python module whose import calls the registration functions, e.g.
:func:`vitmusic.evaluation.register_metric_group` or :func:`register_kind`. vitmusic imports plug-ins from, in
this order:

1. the entry points of the group ``vitmusic.plugins`` of installed packages (``[project.entry-points.
   "vitmusic.plugins"] my_metrics = "my_package.my_metrics"`` in a plug-in package's ``pyproject.toml``);
2. the ``VITMUSIC_PLUGINS`` environment variable: module names or ``.py`` file paths, separated by commas;
3. ``vitmusic --plugin MODULE_OR_FILE COMMAND ...`` (repeatable, before or after the command), which also sets
   ``VITMUSIC_PLUGINS`` so that the processes a command starts (``accelerate launch``, workers) load the same
   plug-ins.

Each module is imported once per process. A plug-in that cannot be imported is a one-line
:class:`~vitmusic.errors.ConfigError`.

**Model kinds.** A model kind (:class:`vitmusic.workflow.kinds.ModelKind`) is the one unit a new model plugs in
as: its training task and loss, its cache, how its pipeline loads from a run, its controls and its scorer. The
config's ``task:`` names one, and a run's ``config.json`` records it. The built-in kinds are registered here by
name and defined in ``vitmusic.workflow.kinds.<name>``, imported when first used (so ``import vitmusic`` and
config validation stay light); a plug-in adds one with :func:`register_kind`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vitmusic.errors import ConfigError

__all__ = ["BUILTIN_KINDS", "ENTRY_POINT_GROUP", "ENV_VAR", "get_kind", "kind_names", "load_plugins",
           "register_kind"]

ENTRY_POINT_GROUP = "vitmusic.plugins"
ENV_VAR = "VITMUSIC_PLUGINS"
_LOADED: dict[str, object] = {}

BUILTIN_KINDS: dict[str, str] = {
    "musicgen": "vitmusic.workflow.kinds.musicgen:KIND",
    "transcription": "vitmusic.workflow.kinds.transcription:KIND",
    "score-informed": "vitmusic.workflow.kinds.score_informed:KIND",
    "diffusion": "vitmusic.workflow.kinds.diffusion:KIND",
}
# name -> a ModelKind, or "module:attribute" where it is defined (imported on first use)
_KINDS: dict[str, Any] = dict(BUILTIN_KINDS)
_SCANNED: list[bool] = []  # non-empty once the entry points and the environment were loaded for the kinds


def _import(spec: str):
    if spec.endswith(".py"):
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"plug-in file does not exist: {spec}")
        name = f"vitmusic_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"cannot load plug-in file {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    return importlib.import_module(spec)


def load_plugins(specs: Sequence[str] = (), *, entry_points: bool = True, environment: bool = True) -> list[str]:
    """Import the plug-ins (entry points, ``VITMUSIC_PLUGINS``, then ``specs``); returns the ones loaded now.

    Raises:
        ConfigError: a plug-in cannot be imported or raises on import (one line, naming it).
    """
    todo: list[tuple[str, object]] = []
    if entry_points:
        from importlib.metadata import entry_points as find

        todo += [(f"entry point {ep.name} ({ep.value})", ep) for ep in find(group=ENTRY_POINT_GROUP)]
    if environment:
        todo += [(s, s) for s in (x.strip() for x in os.environ.get(ENV_VAR, "").split(",")) if s]
    todo += [(s, s) for s in specs]
    loaded = []
    for label, what in todo:
        key = label if isinstance(what, str) else f"ep:{label}"
        if key in _LOADED:
            continue
        try:
            _LOADED[key] = what.load() if not isinstance(what, str) else _import(what)
        except ConfigError:
            raise
        except ModuleNotFoundError as e:
            raise ConfigError(f"plug-in {label} is not importable ({e}); give an installed module name or a "
                              ".py file path") from e
        except Exception as e:  # a plug-in's own error, reported in one line
            raise ConfigError(f"plug-in {label} failed on import: {type(e).__name__}: {e}") from e
        loaded.append(label)
    return loaded


# ---------------------------------------------------------------------------------------------- model kinds
def register_kind(kind: Any, *, replace: bool = False) -> Any:
    """Make a :class:`~vitmusic.workflow.kinds.ModelKind` available under ``kind.name`` (``task: <name>``).

    Args:
        kind: the kind (anything with a ``name``).
        replace: allow replacing a kind of the same name (a built-in one too).

    Returns:
        ``kind`` (so a module can write ``KIND = register_kind(ModelKind(...))``).

    Raises:
        ConfigError: a kind of that name is registered already (and ``replace`` is False), or a bad name.
    """
    name = getattr(kind, "name", None)
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"a model kind needs a name of letters, digits, '_' or '-', got {name!r}")
    current = _KINDS.get(name)
    if current is not None and current is not kind and not replace:
        raise ConfigError(f"a model kind named {name!r} is already registered (pass replace=True to replace it)")
    _KINDS[name] = kind
    return kind


def kind_names() -> tuple[str, ...]:
    """The names of the registered kinds (built-in, then plug-ins); the plug-ins of the entry points and of
    ``VITMUSIC_PLUGINS`` are loaded the first time."""
    if not _SCANNED:
        _SCANNED.append(True)
        load_plugins()
    return tuple(_KINDS)


def get_kind(name: str):
    """The registered :class:`~vitmusic.workflow.kinds.ModelKind` called ``name`` (imported on first use).

    Raises:
        ConfigError: no kind of that name (one line naming the registered ones and how to load a plug-in).
    """
    if name not in kind_names():
        raise ConfigError(f"unknown model kind {name!r}; registered: {', '.join(_KINDS)} (a plug-in kind is "
                          f"loaded with --plugin MODULE or {ENV_VAR}=MODULE)")
    kind = _KINDS[name]
    if isinstance(kind, str):
        module, _, attr = kind.partition(":")
        try:
            kind = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"model kind {name!r}: cannot import {kind!r} ({type(e).__name__}: {e})") from e
        _KINDS[name] = kind
    return kind
