"""Experiment files (``experiments/*.yaml``): variants as overrides of one base config.

An experiment file names a base config, the baseline variant, optional overrides shared by every variant,
evaluation settings and the variants themselves; its file name (without ``.yaml``) is the run name::

    base: ../configs/tiny.yaml        # relative to this file (or to the working directory)
    baseline: mlp                     # the variant every other one is compared with
    description: projection kinds on the tiny preset
    overrides: [train.max_steps=40]   # applied to every variant, before its own
    seeds: [0, 1, 2]                  # optional: every variant once per seed (train.seed = generate.seed = k)
    tune:                             # optional: generation settings chosen on the validation split
      transcription.onset_threshold: [0.3, 0.5, 0.7]
    evaluate:                         # optional; defaults in EvaluateSettings
      metrics: chroma,tempo
      n_boot: 1000
    variants:
      mlp: []                                   # a trained model with the base settings
      linear: [projection.kind=linear]          # a list of key.sub=value overrides ...
      pca: {overrides: {projection.kind: pca}}  # ... or a mapping of them
      shuffled: {system: shuffled, model: mlp}  # a baseline system using variant mlp's trained model
      unconditional: {system: unconditional, model: mlp}
      retrieval: {system: retrieval}

``system`` names one of the systems of the variant's model kind (its config's ``task``; see
:mod:`vitmusic.workflow.kinds`): ``model`` (default) trains the kind's model and generates from each test clip's
own video; the controls use the trained model of the variant named by ``model`` (default: the first variant
that trains one) -- ``shuffled`` (each test clip given the video of a clip of another piece, the one donor rule
of :mod:`vitmusic.data.donors`), ``unconditional`` (MusicGen's null condition) -- or no trained model at all
(``retrieval``: the nearest training clip by video embedding; ``oracle``: the MIDI path's annotated notes).
A variant may use another kind than the base config (``task=...`` in its overrides): the results compare them
on the same test clips.

``seeds`` makes the seed a factor: every variant runs once per seed ``k`` with ``train.seed=k`` and
``generate.seed=k`` (initialisation, data order, sampling and the control's donors), and the results aggregate
across seeds (``vitmusic ablate --seeds 0,1,2`` overrides the file). ``tune`` names generation settings and their
candidates: after training, the kind picks the best on the validation split (e.g. the MIDI path's onset
threshold), and every system using that trained run generates with it, unless a variant sets the key itself.

Everything is checked when the file is read -- unknown keys, a missing base, a baseline or ``model`` that
names no variant, a system the kind does not have, and every variant's config (unknown config keys, wrong
types) -- so a bad file fails before anything trains.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vitmusic.config import Config, load_config
from vitmusic.errors import ConfigError

_TOP_KEYS = {"base", "baseline", "description", "overrides", "evaluate", "variants", "seeds", "tune"}
_VARIANT_KEYS = {"system", "model", "overrides", "description"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclasses.dataclass
class EvaluateSettings:
    """How the variants' generated test clips are scored (see :class:`vitmusic.evaluation.runner.EvalConfig`)."""

    metrics: str | None = None  # comma-separated metric groups; None = all
    sample_rate: int = 22050
    n_boot: int = 1000
    seed: int = 0
    annotations: str = "solo"
    plot_clips: int = 2
    pitch_backend: str = "swift"


@dataclasses.dataclass
class Variant:
    """One row of the results: a system and the overrides of its config."""

    name: str
    system: str = "model"
    model: str | None = None  # the trained variant a control (shuffled, unconditional, ...) uses
    overrides: list[str] = dataclasses.field(default_factory=list)
    description: str = ""
    uses: str = ""  # "own" | "model" | "none": set from the kind's system by Experiment.validate


@dataclasses.dataclass
class Experiment:
    """A parsed experiment file (see the module docstring)."""

    name: str
    base: Path | None
    baseline: str
    variants: dict[str, Variant]
    overrides: list[str] = dataclasses.field(default_factory=list)
    evaluate: EvaluateSettings = dataclasses.field(default_factory=EvaluateSettings)
    description: str = ""
    path: Path | None = None
    seeds: list[int] | None = None  # None: one run per variant with the seeds of its config
    tune: dict[str, list[Any]] = dataclasses.field(default_factory=dict)

    def config(self, variant: str | Variant, extra: Sequence[str] = ()) -> Config:
        """The resolved config of ``variant``: base, shared overrides, the variant's, then ``extra``."""
        v = self.variants[variant] if isinstance(variant, str) else variant
        try:
            return load_config(self.base, [*self.overrides, *v.overrides, *extra])
        except ConfigError as e:
            raise ConfigError(f"{self.where}: variant '{v.name}': {e}") from e

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else f"experiment '{self.name}'"

    def uses(self, variant: str) -> str:
        """Whose trained model the variant's system uses: ``"own"``, ``"model"`` (``model:``'s) or ``"none"``."""
        v = self.variants[variant]
        if not v.uses:
            from vitmusic.workflow.kinds import get_kind

            v.uses = get_kind(self.config(v)).system(v.system).uses
        return v.uses

    def trains(self, variant: str) -> bool:
        """Whether the variant trains a model of its own."""
        return self.uses(variant) == "own"

    def model_of(self, variant: str) -> str | None:
        """The variant whose trained model ``variant`` uses (itself when it trains one, None when none)."""
        uses = self.uses(variant)
        return variant if uses == "own" else self.variants[variant].model if uses == "model" else None

    def order(self, names: Sequence[str] | None = None) -> list[str]:
        """Variant names to run: the baseline first, then file order (optionally only ``names``)."""
        names = list(self.variants) if names is None else list(names)
        return sorted(names, key=lambda n: (n != self.baseline, list(self.variants).index(n)))

    def validate(self, extra: Sequence[str] = ()) -> None:
        """Resolve every variant's config once and check its system against its kind, fill in the trained
        variant each control uses (so a bad file fails before anything runs).

        Raises:
            ConfigError: one line naming the file, the variant and the problem.
        """
        from vitmusic.workflow.kinds import get_kind

        for v in self.variants.values():
            cfg = self.config(v, extra)
            try:
                kind = get_kind(cfg)
                v.uses = kind.system(v.system).uses
                kind.options_of(cfg)
            except ConfigError as e:
                raise ConfigError(f"{self.where}: variant '{v.name}': {e}") from e
            if v.model is not None and v.uses != "model":
                raise ConfigError(f"{self.where}: variant '{v.name}': 'model' is only for systems that use a "
                                  f"trained variant's model ({v.system} does not)")
        trained = [v.name for v in self.variants.values() if v.uses == "own"]
        for v in self.variants.values():
            if v.uses != "model":
                continue
            v.model = v.model or (trained[0] if trained else None)
            if v.model is None:
                raise ConfigError(f"{self.where}: variant '{v.name}' ({v.system}) needs a trained variant "
                                  "(system: model) to take its model from; the file has none")
            if v.model not in trained:
                raise ConfigError(f"{self.where}: variant '{v.name}': model '{v.model}' is not a trained variant "
                                  "of this file")
            if self.config(v, extra).task != self.config(v.model, extra).task:
                raise ConfigError(f"{self.where}: variant '{v.name}': its model '{v.model}' is another kind")
        for name in trained if self.tune else ():
            kind = get_kind(self.config(name, extra))
            for key, values in self.tune.items():
                if kind.tune is None or not any(key == g or key.startswith(g + ".") for g in kind.generation_keys):
                    raise ConfigError(f"{self.where}: tune: {key!r} is not a setting model kind {kind.name!r} "
                                      "chooses on the validation split")
                for value in values:  # each candidate must be a valid value of the key
                    self.config(name, [*extra, f"{key}={json.dumps(value)}"])


def _dotlist(value: Any, where: str) -> list[str]:
    """Overrides given as a list of ``key=value`` strings or a mapping ``{key: value}``."""
    if value is None:
        return []
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            text = "null" if v is None else v if isinstance(v, str) else json.dumps(v)
            out.append(f"{k}={text}")
        return out
    if isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
        bad = [x for x in value if "=" not in x or x.startswith("=")]
        if bad:
            raise ConfigError(f"{where}: override {bad[0]!r} is not of the form key.sub=value")
        return list(value)
    raise ConfigError(f"{where}: overrides must be a list of key.sub=value strings or a mapping, got {value!r}")


def _resolve_base(base: Any, folder: Path | None, where: str) -> Path:
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{where}: 'base' must name a config file (e.g. ../configs/tiny.yaml)")
    p = Path(base)
    candidates = [p] if p.is_absolute() else [*([folder / p] if folder is not None else []), Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigError(f"{where}: base config not found: {base}")


def _evaluate_settings(value: Any, where: str) -> EvaluateSettings:
    if value is None:
        return EvaluateSettings()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'evaluate' must be a mapping, got {value!r}")
    fields = {f.name: f for f in dataclasses.fields(EvaluateSettings)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key 'evaluate.{unknown[0]}'; known: {', '.join(fields)}")
    s = EvaluateSettings(**value)
    for key in ("sample_rate", "n_boot", "seed", "plot_clips"):
        if not isinstance(getattr(s, key), int) or isinstance(getattr(s, key), bool):
            raise ConfigError(f"{where}: evaluate.{key} must be an integer, got {getattr(s, key)!r}")
    if s.sample_rate < 4000 or s.n_boot < 1:
        raise ConfigError(f"{where}: evaluate.sample_rate must be >= 4000 and evaluate.n_boot >= 1")
    if s.metrics is not None:
        from vitmusic.evaluation.runner import resolve_metrics

        try:
            s.metrics = ",".join(resolve_metrics(str(s.metrics)))
        except ConfigError as e:
            raise ConfigError(f"{where}: evaluate.metrics: {e}") from e
    return s


def _variant(name: Any, value: Any, where: str) -> Variant:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}: variant name {name!r} must be letters, digits, '_', '-', '.' or '+'")
    w = f"{where}: variant '{name}'"
    if value is None or isinstance(value, list):
        return Variant(name, overrides=_dotlist(value, w))
    if not isinstance(value, dict):
        raise ConfigError(f"{w} must be a list of overrides or a mapping, got {value!r}")
    unknown = sorted(set(value) - _VARIANT_KEYS)
    if unknown:
        raise ConfigError(f"{w}: unknown key '{unknown[0]}'; known: {', '.join(sorted(_VARIANT_KEYS))}")
    system = value.get("system", "model")
    if not isinstance(system, str) or not system:
        raise ConfigError(f"{w}: system must be a name, got {system!r}")
    model = value.get("model")
    return Variant(name, system, None if model is None else str(model), _dotlist(value.get("overrides"), w),
                   str(value.get("description") or ""))


def parse_seeds(value: Any, where: str) -> list[int] | None:
    """Seeds from a list or ``"0,1,2"`` (None stays None).

    Raises:
        ConfigError: not distinct integers in 0..2**32 - 1.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = [s for s in value.split(",") if s.strip()]
    try:
        seeds = [int(s) for s in value]
    except (TypeError, ValueError):
        seeds = []
    if not seeds or any(not 0 <= s < 2**32 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds must be distinct integers in 0..{2**32 - 1}, got {value!r}")
    return seeds


def _tune(value: Any, where: str) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, list) and v for v in value.values()):
        raise ConfigError(f"{where}: 'tune' must map config keys to non-empty lists of candidates, got {value!r}")
    return {str(k): list(v) for k, v in value.items()}


def parse_experiment(data: Any, *, name: str, path: Path | None = None) -> Experiment:
    """Check and build an :class:`Experiment` from the mapping read from a file (see the module docstring).

    Raises:
        ConfigError: one line naming the file and the problem.
    """
    where = str(path) if path is not None else f"experiment '{name}'"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: an experiment file must be a mapping (base:, baseline:, variants:)")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; known: {', '.join(sorted(_TOP_KEYS))}")
    if "base" not in data:
        raise ConfigError(f"{where}: missing 'base' (the config file the variants override)")
    base = _resolve_base(data["base"], path.parent if path is not None else None, where)
    raw = data.get("variants")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: 'variants' must be a non-empty mapping of name -> overrides")
    variants = {str(k): _variant(k, v, where) for k, v in raw.items()}
    for v in variants.values():
        if v.model is not None and v.model not in variants:
            raise ConfigError(f"{where}: variant '{v.name}': model '{v.model}' is not a variant of this file")
    baseline = data.get("baseline")
    if baseline is None:
        raise ConfigError(f"{where}: missing 'baseline' (the variant the others are compared with)")
    if str(baseline) not in variants:
        raise ConfigError(f"{where}: baseline '{baseline}' is not one of the variants ({', '.join(variants)})")
    return Experiment(
        name=name,
        base=base,
        baseline=str(baseline),
        variants=variants,
        overrides=_dotlist(data.get("overrides"), f"{where}: overrides"),
        evaluate=_evaluate_settings(data.get("evaluate"), where),
        description=str(data.get("description") or ""),
        path=path,
        seeds=parse_seeds(data.get("seeds"), f"{where}: seeds"),
        tune=_tune(data.get("tune"), where),
    )


def load_experiment(path: str | os.PathLike, extra: Sequence[str] = ()) -> Experiment:
    """Read, check and validate an experiment file.

    ``extra`` overrides apply to every variant's config (``key.sub=value``), except ``evaluate.<key>=value``,
    which replace the file's evaluation settings (e.g. ``evaluate.metrics=chroma``).

    Raises:
        ConfigError: missing/unparsable file or any problem listed in the module docstring.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"experiment file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot parse experiment file {p}: {str(e).splitlines()[0]}") from e
    exp = parse_experiment(data, name=p.stem, path=p.resolve())
    evaluate, config = split_overrides(extra)
    if evaluate:
        merged = {**dataclasses.asdict(exp.evaluate), **evaluate}
        exp.evaluate = _evaluate_settings(merged, f"{p}: command-line overrides")
    exp.validate(config)
    return exp


def split_overrides(extra: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Separate ``evaluate.<key>=value`` overrides (of :class:`EvaluateSettings`) from config overrides."""
    import yaml

    evaluate: dict[str, Any] = {}
    config = []
    for o in extra:
        key, _, value = o.partition("=")
        if key.strip().startswith("evaluate."):
            evaluate[key.strip()[len("evaluate."):]] = yaml.safe_load(value) if value else None
        else:
            config.append(o)
    return evaluate, config


def select_variants(exp: Experiment, only: str | Sequence[str] | None) -> list[str]:
    """Variant names from ``--only v1,v2`` (all when None), in run order; unknown names are a ConfigError."""
    if only is None:
        return exp.order()
    names = [s.strip() for s in (only.split(",") if isinstance(only, str) else only) if s.strip()]
    if not names:
        raise ConfigError("--only is empty")
    unknown = [n for n in names if n not in exp.variants]
    if unknown:
        raise ConfigError(f"--only: unknown variant '{unknown[0]}'; {exp.name} has {', '.join(exp.variants)}")
    return exp.order(dict.fromkeys(names))
