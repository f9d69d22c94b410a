"""Evaluation: pairing and loading inputs, the runner, the metric registry, reports, comparisons, the
conditioning gap.

The registry's public names are importable from here (cheap: no metric module is imported until a metric is
computed)::

    from vitmusic.evaluation import Metric, MetricGroup, register_metric_group
"""

from vitmusic.evaluation.registry import (
    Metric,
    MetricGroup,
    metric_groups,
    register_metric_group,
    unregister_metric_group,
)

__all__ = ["Metric", "MetricGroup", "metric_groups", "register_metric_group", "unregister_metric_group"]
