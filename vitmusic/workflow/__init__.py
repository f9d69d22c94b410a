"""Experiment workflow on top of the pipeline: model kinds, ablation files, the offline demo.

* :mod:`vitmusic.workflow.kinds` — the model kinds (the one plug-in unit): task, cache, pipeline, systems
  (the trained model, its controls and baselines), tuning on validation, extra scores.
* :mod:`vitmusic.workflow.experiments` — ``experiments/*.yaml``: variants as overrides of a base config, seeds.
* :mod:`vitmusic.workflow.ablate` — train -> generate -> evaluate per variant and seed, resumable.
* :mod:`vitmusic.workflow.results` — results tables per seed and across seeds, plots.
* :mod:`vitmusic.workflow.retrieval` — the retrieval baseline's nearest training clip by video embedding.
* :mod:`vitmusic.workflow.figures` — piano rolls of written notes, videos with the generated audio.
* :mod:`vitmusic.workflow.demo` — ``vitmusic demo``: both paths offline on a synthetic benchmark.
"""
