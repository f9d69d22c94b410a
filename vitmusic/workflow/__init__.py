"""Experiment workflow on top of the pipeline: ablation files, baseline systems, the offline demo.

* :mod:`vitmusic.workflow.experiments` — ``experiments/*.yaml``: variants as overrides of a base config.
* :mod:`vitmusic.workflow.baselines` — shuffled video, retrieval, unconditional (and the PCA projection).
* :mod:`vitmusic.workflow.ablate` — train -> generate -> evaluate per variant, resumable; results tables.
* :mod:`vitmusic.workflow.results` — reading and plotting results (used by the report and the notebook).
* :mod:`vitmusic.workflow.demo` — ``vitmusic demo``: the whole pipeline offline on a synthetic benchmark.
"""
