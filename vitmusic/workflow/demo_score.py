"""The demo's score-informed comparison: the score of each test clip, timed by the MIDI path's trained head.

The ``score-informed`` kind (:mod:`vitmusic.workflow.kinds.score_informed`) trains exactly the transcription
head, so the demo reuses the MIDI path's trained run: for each held-out clip it aligns the piece's score
(``Sco_*.mid``, the written notes at the written tempo) to the head's onset curves of the clip's video and
renders it, beside the score at its written tempo with no video (deadpan). Every system's written notes are
scored against the annotated notes by the MIDI path's one note scorer, with intervals over the test pieces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from vitmusic.atomic import atomic_write_text
from vitmusic.errors import DataError
from vitmusic.workflow.kinds.score_informed import REPORT_METRICS as METRICS

# label, where the notes come from
SYSTEM_LABELS = {
    "score-informed": "score notes, timed by the video (aligned to the head's onsets)",
    "deadpan": "score notes at the written tempo, no video",
    "transcription": "the head's decoded notes (the MIDI path above)",
    "shuffled": "the head on another piece's video",
}


def run_score_path(out: Path, midi: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Score-informed and deadpan renderings of the MIDI path's test clips into ``out/midi/score``; returns
    ``{"rows": {system: {metric: summary}}, "refused": {system: n}, "test_clips": n}`` (cached in
    ``score.json``: a rerun reuses it)."""
    from vitmusic.data.manifest import read_manifest
    from vitmusic.workflow.kinds import score_informed as si

    dest = out / "midi" / "score"
    done = dest / "score.json"
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    run = midi["run"]
    seed = run.seed_list()[0]
    config = run.config("model", seed)
    if "transcription.onset_threshold" in run.tuned("model", seed):
        config.transcription.onset_threshold = run.tuned("model", seed)["transcription.onset_threshold"]
    folders = {"transcription": run.variant_dir("model", seed) / "generated",
               "shuffled": run.variant_dir("shuffled", seed) / "generated"}
    failed: dict[str, str] = {}
    for name, system in (("score-informed", "model"), ("deadpan", "deadpan")):
        try:
            folders[name] = si.run_systems(config.data.manifest, config.train.output_dir, dest, systems=(system,),
                                           config=config, progress=progress,
                                           tune=si.ALIGNER_GRID if system == "model" else None)[system]
        except (DataError, ValueError) as e:  # every clip refused (e.g. no onsets found): said, not rendered deadpan
            failed[name] = str(e)
    test = read_manifest(config.data.manifest, split=config.data.test_split)
    summaries = si.summarize_systems(config, folders)
    tuned = dest / "tuned.json"
    result = {"rows": {name: {m: s[m] for m in METRICS} for name, s in summaries.items()},
              "refused": {name: s["refused"] for name, s in summaries.items()}, "failed": failed,
              "test_clips": len(test),
              "aligner": json.loads(tuned.read_text(encoding="utf-8"))["tuned"] if tuned.is_file() else {}}
    atomic_write_text(done, json.dumps(result, indent=1, allow_nan=True) + "\n")
    return result


def _cell(s: dict[str, Any]) -> str:
    if s.get("mean") is None or not math.isfinite(float(s["mean"])):
        return "—"
    lo, hi = s.get("ci95") or (None, None)
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{s['mean']:.3f}{ci}"


def score_markdown(result: dict[str, Any]) -> list[str]:
    """The report's section on score-informed generation."""
    method = next((s.get("method") for r in result["rows"].values() for s in r.values() if s.get("method")), "")
    lines = ["## Score-informed: notes from the score, timing from the video", "",
             "The piece's score gives the notes; the MIDI path's trained head gives, from the video, when each "
             "part plays (its onset curves, aligned to the score by DTW). Beside it: the score at its written "
             "tempo with no video (deadpan), the head's own decoded notes and the shuffled control. Each "
             f"system's notes against the annotated notes, {result['test_clips']} held-out clips, clip mean "
             f"[95 % interval over the test pieces, {method}]:", "",
             "| system | notes from | note F1 (onset only) | note F1 (with offsets) | clips refused |",
             "|---|---|---|---|---|"]
    for name, label in SYSTEM_LABELS.items():
        r = result["rows"].get(name)
        if r is None:
            if name in result.get("failed", {}):
                lines.append(f"| {name} | {label} | — | — | all: {result['failed'][name]} |")
            continue
        lines.append(f"| {name} | {label} | {_cell(r[METRICS[0]])} | {_cell(r[METRICS[1]])} | "
                     f"{result['refused'].get(name, 0)} |")
    if result.get("aligner"):
        chosen = ", ".join(f"`{k.split('.', 1)[1]}` {v}" for k, v in result["aligner"].items())
        lines += ["", f"The aligner's settings were chosen on the validation clips: {chosen}."]
    return [*lines, ""]
