"""The metric registry: every metric group ``vitmusic evaluate`` can compute, with what each metric means.

A metric group is one ``--metrics`` name (``tempo``, ``notes``, ...). It declares its metrics
(:class:`Metric`: name, bounds, unit, which direction is better, a one-line definition, whether a referee
ceiling comes with it) and how to compute them (a per-clip ``score`` function, or ``embed`` + ``aggregate``
for a set-level metric such as FAD). Everything downstream derives from this registry: the columns of
``per_clip.csv``, the metrics of ``summary.json`` (with their definitions), the report's tables, plots and
definitions, ``vitmusic compare``, the ablation tables and the ``--metrics`` help. A registered group
therefore cannot be dropped silently.

Adding a metric is one module and one registration::

    # my_metrics.py
    import numpy as np
    from vitmusic.evaluation import Metric, MetricGroup, register_metric_group

    def score(clip, options, artifacts):
        return {"loudness.rms_ratio": float(np.std(clip.gen_audio) / max(np.std(clip.ref_audio), 1e-9))}

    register_metric_group(MetricGroup(
        "loudness", (Metric("loudness.rms_ratio", "RMS of the generated over the reference audio",
                            bounds=(0.0, None), higher_is_better=None),), score=score))

and ``vitmusic --plugin my_metrics evaluate ...`` (or ``VITMUSIC_PLUGINS=my_metrics``, or an entry point in
the group ``vitmusic.plugins``; see :mod:`vitmusic.plugins`). The built-in groups are registered by
:mod:`vitmusic.evaluation.groups` the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vitmusic.errors import ConfigError

__all__ = [
    "REFEREE_PREFIX",
    "Metric",
    "MetricGroup",
    "get_group",
    "get_metric",
    "metric_definitions",
    "metric_groups",
    "per_clip_metrics",
    "referee_metrics",
    "register_metric_group",
    "set_level_metrics",
    "summary_metrics",
    "unregister_metric_group",
]

#: the referee ceiling of metric ``m`` is reported as ``referee.<m>``
REFEREE_PREFIX = "referee."


@dataclasses.dataclass(frozen=True)
class Metric:
    """One reported number.

    Attributes:
        name: ``<group>.<metric>`` (or the group name alone for a single-number group such as ``fad``), the
            key in ``summary.json`` and the column in ``per_clip.csv``.
        doc: one-line definition (shown in the report and in ``summary.json``).
        bounds: ``(low, high)`` of a per-clip value; ``None`` for an open end. Means and intervals are
            clipped to the bounds.
        unit: ``""`` for dimensionless values, else e.g. ``"bpm"``, ``"s"``.
        higher_is_better: True / False, or None where neither direction is better (a signed offset).
        referee: a referee ceiling ``referee.<name>`` is computed with it (the referee on the reference audio
            against the annotations).
        set_level: computed once over all clips (FAD): no per-clip value, no per-clip interval.
    """

    name: str
    doc: str
    bounds: tuple[float | None, float | None] = (None, None)
    unit: str = ""
    higher_is_better: bool | None = True
    referee: bool = False
    set_level: bool = False

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c in ',"' for c in self.name):
            raise ConfigError(f"metric name must be non-empty without spaces, commas or quotes: {self.name!r}")
        lo, hi = self.bounds
        if lo is not None and hi is not None and not lo < hi:
            raise ConfigError(f"metric {self.name}: bounds must satisfy low < high, got {self.bounds}")

    @property
    def is_unit_interval(self) -> bool:
        """Values lie in [0, 1] (scores, accuracies, F-measures)."""
        return self.bounds == (0.0, 1.0)

    @property
    def direction(self) -> str:
        """``"higher"``, ``"lower"`` or ``"none"`` (which values are better)."""
        return {True: "higher", False: "lower", None: "none"}[self.higher_is_better]

    def clip(self, value: float | None) -> float | None:
        """``value`` clipped to the bounds (None stays None)."""
        if value is None or not math.isfinite(value):
            return value
        lo, hi = self.bounds
        if lo is not None:
            value = max(value, lo)
        if hi is not None:
            value = min(value, hi)
        return value

    def definition(self) -> dict[str, Any]:
        """What ``summary.json`` records about the metric (so readers need no registry)."""
        return {"doc": self.doc, "bounds": list(self.bounds), "unit": self.unit,
                "higher_is_better": self.higher_is_better, "set_level": self.set_level}


# A per-clip scorer: (clip, options, artifacts or None) -> {metric name: value}; may also return
# ``referee.<name>`` values. When ``artifacts`` is a dict the scorer may store plot material in it.
ClipScorer = Callable[[Any, Mapping[str, Any], "dict | None"], Mapping[str, float]]


@dataclasses.dataclass(frozen=True)
class MetricGroup:
    """One ``--metrics`` name: the metrics it produces and how to compute them.

    Either ``score`` (per clip) or, for a set-level metric, ``embed`` (per clip -> ``(ref_emb [Nr, D],
    gen_emb [Ng, D])``) plus ``aggregate`` (lists of per-clip embeddings -> ``{metric name: value}`` or one
    value for a single-metric group).

    Attributes:
        name: the group's ``--metrics`` name.
        metrics: its :class:`Metric` s (``str`` names are accepted for brevity and get an empty definition).
        needs_video: only computed when the clip has a video (sync).
        doc: one line for the ``--metrics`` help.
    """

    name: str
    metrics: tuple[Metric, ...]
    score: ClipScorer | None = None
    embed: Callable[[Any, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]] | None = None
    aggregate: Callable[[list[np.ndarray], list[np.ndarray]], Any] | None = None
    needs_video: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        metrics = tuple(m if isinstance(m, Metric) else Metric(str(m), "") for m in self.metrics)
        object.__setattr__(self, "metrics", metrics)
        if not metrics:
            raise ConfigError(f"metric group {self.name!r} declares no metrics")
        if (self.score is None) == (self.embed is None):
            raise ConfigError(f"metric group {self.name!r} needs either score or embed (+ aggregate)")
        if self.embed is not None and self.aggregate is None:
            raise ConfigError(f"metric group {self.name!r}: embed needs aggregate")
        if self.embed is not None and not all(m.set_level for m in metrics):
            raise ConfigError(f"metric group {self.name!r}: the metrics of an embed group must be set_level")
        if self.score is not None and any(m.set_level for m in metrics):
            raise ConfigError(f"metric group {self.name!r}: a per-clip group cannot declare set_level metrics")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)


_GROUPS: dict[str, MetricGroup] = {}


def register_metric_group(group: MetricGroup, *, replace: bool = False) -> MetricGroup:
    """Add ``group`` to the registry (after the groups registered before it).

    Raises:
        ConfigError: the group name, or one of its metric names, is taken (unless ``replace`` replaces the
            group of that name).
    """
    if group.name in _GROUPS and not replace:
        raise ConfigError(f"metric group {group.name!r} is already registered (replace=True replaces it)")
    taken = {m: g.name for g in _GROUPS.values() if g.name != group.name for m in g.names}
    clash = [m for m in group.names if m in taken or m in _GROUPS and m != group.name]
    if clash:
        raise ConfigError(f"metric {clash[0]!r} of group {group.name!r} is already declared by group "
                          f"{taken.get(clash[0], clash[0])!r}")
    if len(set(group.names)) < len(group.names):
        raise ConfigError(f"metric group {group.name!r} declares a metric twice")
    _GROUPS[group.name] = group
    return group


def unregister_metric_group(name: str) -> None:
    """Remove a group (tests, experiments); unknown names are ignored."""
    _GROUPS.pop(name, None)


#: the module whose import registers the built-in groups (loaded like a plug-in, on first use of the registry)
BUILTIN_GROUPS = "vitmusic.evaluation.groups"


def _builtins() -> None:
    import importlib

    importlib.import_module(BUILTIN_GROUPS)


def metric_groups() -> dict[str, MetricGroup]:
    """The registered groups in registration order (a copy)."""
    _builtins()
    return dict(_GROUPS)


def get_group(name: str) -> MetricGroup:
    groups = metric_groups()
    if name not in groups:
        raise ConfigError(f"unknown metric group {name!r}; known: {', '.join(groups)}")
    return groups[name]


def _metrics() -> dict[str, Metric]:
    return {m.name: m for g in metric_groups().values() for m in g.metrics}


def get_metric(name: str) -> Metric | None:
    """The :class:`Metric` called ``name`` (also for ``referee.<name>``), or None."""
    return _metrics().get(name.removeprefix(REFEREE_PREFIX))


def summary_metrics() -> tuple[str, ...]:
    """Every registered metric name, in registration order (the metrics of ``summary.json``)."""
    return tuple(_metrics())


def set_level_metrics() -> tuple[str, ...]:
    return tuple(n for n, m in _metrics().items() if m.set_level)


def per_clip_metrics() -> tuple[str, ...]:
    """The metric columns of ``per_clip.csv``."""
    return tuple(n for n, m in _metrics().items() if not m.set_level)


def referee_metrics() -> tuple[str, ...]:
    """The referee-ceiling columns of ``per_clip.csv`` (``referee.<name>``)."""
    return tuple(REFEREE_PREFIX + n for n, m in _metrics().items() if m.referee)


def metric_definitions(names: list[str] | tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
    """``{name: Metric.definition()}`` of the given (default: all) registered metrics."""
    metrics = _metrics()
    return {n: metrics[n].definition() for n in (names or metrics) if n in metrics}
