"""Dataset layouts: one importer per way of laying out a dataset on disk, all yielding the same pieces.

An importer (a :class:`Layout`) turns a root folder into :class:`~vitmusic.data.urmp.Piece` objects: per piece
its video / mix / score paths (``None`` when absent) and one :class:`~vitmusic.data.urmp.Stem` per
performer with its instrument (a canonical code of :mod:`vitmusic.data.instruments`), its audio, and its
annotations in the URMP conventions (:meth:`Stem.load_f0`: ``(times_s, f0_hz)`` with 0 Hz = unvoiced;
:meth:`Stem.load_notes`: ``[N, 3]`` (onset_s, f0_hz, duration_s)). Everything downstream (``prepare``,
manifests, evaluation, training) works on pieces, so it does not care where they came from.

Built in: ``urmp`` (:mod:`.urmp`) and ``bach10`` (:mod:`.bach10`). A user adds one with
:func:`register_layout` (in Python), or, for the command line, as an entry point of the group
``vitmusic.layouts`` in their package (``[project.entry-points."vitmusic.layouts"] mine = "pkg.mod:MyLayout"``);
``docs/data.md`` walks through an example.

``layout="auto"`` asks every known layout whether it recognises the root (:meth:`Layout.detect`): exactly
one must; when none does, the URMP importer reads it (and explains what it expected).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from vitmusic.data.urmp import Piece
from vitmusic.errors import ConfigError, DataError

__all__ = ["DEFAULT_LAYOUT", "ENTRY_POINT_GROUP", "LAYOUTS", "Layout", "detect_layout", "discover_pieces",
           "get_layout", "layout_names", "register_layout"]

ENTRY_POINT_GROUP = "vitmusic.layouts"
DEFAULT_LAYOUT = "urmp"


@runtime_checkable
class Layout(Protocol):
    """An importer of one dataset layout.

    Attributes:
        name: what ``--layout`` calls it (lower case, no spaces).
        description: one line for ``--help`` and error messages (what a root of this layout holds).
    """

    name: str
    description: str

    def detect(self, root: Path) -> bool:
        """Whether ``root`` (an existing folder) looks like this layout; cheap (lists files, reads none)."""
        ...

    def discover(self, root: Path) -> list[Piece]:
        """The pieces under ``root`` (or ``root`` itself as one piece), sorted.

        Annotations are read lazily (through the stems' readers), so a malformed annotation file fails when
        it is used, naming the file. Missing files go to :attr:`Piece.missing`.

        Raises:
            DataError: ``root`` is not of this layout, or holds no piece.
        """
        ...


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout, *, replace: bool = False) -> Layout:
    """Make ``layout`` known to :func:`get_layout` and auto-detection; returns it.

    Raises:
        ConfigError: not a layout, a bad name, or the name taken (unless ``replace``).
    """
    if not isinstance(layout, Layout):
        raise ConfigError(f"{layout!r} is not a dataset layout (needs name, description, detect(), discover())")
    name = str(layout.name)
    if not name or name != name.strip().lower() or " " in name or name == "auto":
        raise ConfigError(f"invalid layout name {name!r} (lower case, no spaces, not 'auto')")
    if name in LAYOUTS and LAYOUTS[name] is not layout and not replace:
        raise ConfigError(f"a layout named {name!r} is already registered")
    LAYOUTS[name] = layout
    return layout


def _load_entry_points() -> None:
    """Register the layouts other installed packages declare (group :data:`ENTRY_POINT_GROUP`)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in LAYOUTS:
            continue
        try:
            obj = ep.load()
            layout = obj() if isinstance(obj, type) else obj
            if getattr(layout, "name", None) != ep.name:
                raise ConfigError(f"its name is {getattr(layout, 'name', None)!r}")
            register_layout(layout)
        except Exception as e:  # a broken plugin must not take the built-in layouts down with it
            raise ConfigError(f"dataset layout plugin {ep.name!r} ({ep.value}) does not load: "
                              f"{type(e).__name__}: {e}") from e


def _builtin() -> None:
    if "urmp" not in LAYOUTS:
        from vitmusic.data.layouts.bach10 import Bach10Layout
        from vitmusic.data.layouts.urmp import UrmpLayout

        register_layout(UrmpLayout())
        register_layout(Bach10Layout())


def layout_names() -> list[str]:
    """Names of every known layout (built-in, registered, and installed plugins)."""
    _builtin()
    _load_entry_points()
    return list(LAYOUTS)


def get_layout(name: str) -> Layout:
    """The layout called ``name``.

    Raises:
        ConfigError: no such layout (the message lists the known ones).
    """
    names = layout_names()
    if name not in LAYOUTS:
        raise ConfigError(f"unknown dataset layout {name!r}; known: auto, {', '.join(names)}")
    return LAYOUTS[name]


def detect_layout(root: str | os.PathLike) -> Layout:
    """The one layout that recognises ``root``; the URMP importer when none does.

    Raises:
        DataError: two or more layouts recognise it (then ``--layout`` must choose).
    """
    layout_names()
    root = Path(root)
    if not root.is_dir():
        return LAYOUTS[DEFAULT_LAYOUT]  # it reports a missing root / a file in its own words
    claims = [layout for layout in LAYOUTS.values() if layout.detect(root)]
    if len(claims) > 1:
        raise DataError(f"{root} looks like several dataset layouts ({', '.join(c.name for c in claims)}); "
                        "choose one with --layout")
    return claims[0] if claims else LAYOUTS[DEFAULT_LAYOUT]


def discover_pieces(root: str | os.PathLike, layout: str | Layout = "auto") -> list[Piece]:
    """The pieces under ``root`` read by ``layout`` (a name, ``"auto"``, or a :class:`Layout`).

    Every piece's :attr:`~vitmusic.data.urmp.Piece.layout` is set to the layout's name.

    Raises:
        ConfigError: unknown layout name.
        DataError: see :meth:`Layout.discover`.
    """
    if isinstance(layout, str):
        layout = detect_layout(root) if layout == "auto" else get_layout(layout)
    pieces = layout.discover(Path(root))
    for piece in pieces:
        piece.layout = layout.name
    return pieces
