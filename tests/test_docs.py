"""The docs run: every ``bash`` and ``python`` block of README.md and docs/*.md is executed.

Blocks of one page run in order in one scratch folder (a page is a walkthrough: later blocks use what earlier
ones wrote), with the repository's ``configs/``, ``experiments/``, ``scripts/``, ``eval/`` and ``docs/`` linked in.
Real model names and sizes are swapped for the tiny offline presets by :data:`SUBSTITUTIONS` (the only
difference between what a page says and what runs), and the page's placeholders for the user's own data
(``URMP/``) are filled by :data:`FIXTURES`. A block marked ``<!-- file: NAME -->`` is written to ``NAME`` in the scratch folder (a module or
a config the page's commands use) instead of being run. A block that cannot run here (it installs system packages, needs a
GPU or the hub, or is a benchmark of hours) is preceded by ``<!-- docs-test: skip: <reason> -->``; a reason is
required. Unlabelled fences and other languages (yaml, json, text, output) are not executed, so a shell or
Python block must be labelled: :func:`test_shell_and_python_blocks_are_labelled` checks that unlabelled
blocks do not look like commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
RUN_LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip(?::\s*(?P<reason>.*?))?\s*-->")
RUN_BY = re.compile(r"<!--\s*docs-test:\s*run by (?P<test>tests/\S+\.py)\s*-->")  # a page whose blocks share state
FILE = re.compile(r"<!--\s*file:\s*(\S+)\s*-->")  # the block is a file the page's commands use: written, not run
LINKED = ("configs", "experiments", "scripts", "eval", "docs", "notebooks")

# (regex, replacement): real sizes -> tiny offline presets. Applied to every executed block.
TINY_TRAIN = "train.max_steps=8 train.eval_every=4 train.save_every=4 train.log_every=4"
SUBSTITUTIONS: list[tuple[str, str]] = [
    (r"accelerate launch(?: --\S+(?: [^-\s]\S*)?)* -m vitmusic\.cli", "vitmusic"),
    (r"accelerate config\b[^\n]*", "true"),
    (r"configs/(videomae-musicgen-small|vit-base|clip-vit-b32|musicgen-melody)\.yaml", "configs/tiny.yaml"),
    (r"--config configs/tiny\.yaml", f"--config configs/tiny.yaml {TINY_TRAIN}"),
    (r"--config configs/tiny-midi\.yaml", f"--config configs/tiny-midi.yaml {TINY_TRAIN}"),
    (r"--config configs/tiny-diffusion\.yaml", f"--config configs/tiny-diffusion.yaml {TINY_TRAIN}"),
    (r"experiments/(encoder|projection)\.yaml", r"experiments/tiny_\1.yaml"),
    (r"train\.mixed_precision=bf16", "train.mixed_precision=no"),
    (r"MCG-NJU/videomae-base", "tiny-videomae"),
    (r"--pieces (?:2[4-9]|[3-9]\d|\d{3,})\b", "--pieces 6"),  # benchmark sizes -> a handful of pieces
    (r"--duration (?:1[3-9]|[2-9]\d)\b", "--duration 12"),
    (r"facebook/musicgen-small", "tiny-musicgen"),
]

# Data a page names as the user's own: built once per page when a block mentions it.
FIXTURES: dict[str, str] = {
    "URMP/": "vitmusic synth-data --out URMP --pieces 16 --duration 11 --seed 0 --no-progress >/dev/null",
}


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None  # the reason, when the page marks the block as not run here
    file: str | None = None  # the file name, when the page marks the block as a file its commands use


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with its language and skip marker."""
    out: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        sk, fm = SKIP.search(prev), FILE.search(prev)
        out.append(Block(page, start + 1, lang, "\n".join(lines[start + 1 : j]), sk and (sk["reason"] or ""),
                         fm and fm.group(1)))
        i = j + 1
    return out


def substitute(code: str) -> str:
    for pat, rep in SUBSTITUTIONS:
        code = re.sub(pat, rep, code)
    return code


def _runnable(page: Path) -> list[Block]:
    if RUN_BY.search(page.read_text(encoding="utf-8")):
        return []  # its own test runs its blocks in one interpreter (test_pages_run_by_their_own_test)
    return [b for b in blocks(page) if b.lang in RUN_LANGS and b.skip is None and b.file is None]


RUN_PAGES = [p for p in PAGES if _runnable(p)]


def test_skipped_blocks_say_why():
    missing = [f"{b.page.relative_to(ROOT)}:{b.line}" for p in PAGES for b in blocks(p)
               if b.skip is not None and not b.skip.strip()]
    assert not missing, f"docs-test skip markers without a reason: {missing}"


def test_pages_run_by_their_own_test():
    """A page whose Python blocks share state names the test that runs them; that test must read the page."""
    for p in PAGES:
        m = RUN_BY.search(p.read_text(encoding="utf-8"))
        if m:
            test = ROOT / m["test"]
            assert test.is_file() and p.name in test.read_text(encoding="utf-8"), f"{p}: {m['test']}"
            assert not any(b.lang == "bash" and b.skip is None for b in blocks(p)), f"{p}: bash blocks not run"


_COMMANDY = re.compile(r"^\s*(\$ )?(vitmusic|python|pip|make|accelerate|bash|git|cd|export)(\s|$)")


def test_shell_and_python_blocks_are_labelled():
    """An unlabelled block whose lines start like commands would escape the docs test: label it."""
    bad = []
    for p in PAGES:
        for b in blocks(p):
            if b.lang == "" and any(_COMMANDY.match(ln) for ln in b.code.splitlines()):
                bad.append(f"{p.relative_to(ROOT)}:{b.line}")
    assert not bad, f"unlabelled command blocks (label them bash/python, or text for output): {bad}"


def test_substitutions_only_shrink():
    """The swap changes sizes, never the command: the same subcommands run in the same order."""
    code = ("accelerate launch --num_processes 2 -m vitmusic.cli train --config configs/videomae-musicgen-small.yaml "
            "data.manifest=prepared/ train.mixed_precision=bf16")
    assert substitute(code) == (f"vitmusic train --config configs/tiny.yaml {TINY_TRAIN} data.manifest=prepared/ "
                                "train.mixed_precision=no")


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VITMUSIC_PLUGINS", None)  # plug-ins an earlier test loaded in this process are not the page's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("VITMUSIC_CACHE", str(work / ".vitmusic-cache"))
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUN_PAGES])
def test_page_runs(page, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    env = _env(work)
    for b in blocks(page):
        if b.file is not None:
            (work / b.file).write_text(b.code + "\n", encoding="utf-8")
    built: set[str] = set()
    for b in _runnable(page):
        code = substitute(b.code)
        for key, make in FIXTURES.items():
            if key in code and key not in built:
                res = subprocess.run(["bash", "-euo", "pipefail", "-c", make], cwd=work, env=env,
                                     capture_output=True, text=True)
                assert res.returncode == 0, f"fixture {key} ({make}) failed:\n{res.stderr[-3000:]}"
                built.add(key)
        if RUN_LANGS[b.lang] == "bash":
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        else:
            cmd = [sys.executable, "-c", code]
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        where = f"{page.relative_to(ROOT)}:{b.line}"
        assert res.returncode == 0, (
            f"{where} failed (exit {res.returncode}):\n--- block as run\n{code}\n--- stdout (tail)\n"
            f"{res.stdout[-3000:]}\n--- stderr (tail)\n{res.stderr[-3000:]}"
        )
