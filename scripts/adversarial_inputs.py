"""Malformed and odd inputs over every command, run in-process; counts how each one behaves.

Usage::

    python scripts/adversarial_inputs.py [--quick] [--json OUT.json] [--show-failures]

Every case names what a user gave and what is promised: ``error`` (exit 2, exactly one stderr line, no
traceback, no complete-looking output left behind), ``ok`` (exit 0, no traceback) or ``either`` (exit 0, or a
clean error). ``--quick`` leaves out the cases that need a trained tiny run (``generate``; ~1 min on 2 cores).
Outcomes: ``pass``, ``traceback`` (an exception escaped, or a traceback on stderr), ``silent`` (exit 0
where an error was due), ``noise`` (more stderr lines than promised), ``leftover`` (an output that looks
complete after a failure), ``timeout`` (over the case's time limit), ``wrong`` (another exit code, or a
wrong HTTP status). Exit status: 0 when every case passes, 1 otherwise.

Cases that probe library functions (damaged checkpoints on a toy task) and the listening server (hostile HTTP
requests against 127.0.0.1) are counted the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@dataclass
class Case:
    name: str
    argv: list[str] | None = None  # a CLI case: vitmusic ARGV
    expect: str = "error"  # error | ok | either
    fn: Callable[[], object] | None = None  # a library case: must raise VitmusicError (expect=error)
    check: Callable[[], str | None] | None = None  # after the run: a problem, or None
    max_lines: int = 1
    timeout_s: int = 60
    group: str = ""


@dataclass
class Outcome:
    name: str
    group: str
    outcome: str
    detail: str = ""


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def run_case(case: Case) -> Outcome:
    from vitmusic import cli
    from vitmusic.errors import VitmusicError

    out, err = io.StringIO(), io.StringIO()
    rc, escaped = None, None
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(case.timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if case.argv is not None:
                try:
                    rc = cli.main(case.argv)
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 2
            else:
                try:
                    case.fn()
                    rc = 0
                except VitmusicError as e:
                    rc = 2
                    print(str(e), file=sys.stderr)
    except _Timeout:
        return Outcome(case.name, case.group, "timeout", f"over {case.timeout_s} s")
    except AssertionError as e:  # a probe's own check failed (wrong status, server gone)
        return Outcome(case.name, case.group, "wrong", str(e)[:300])
    except BaseException as e:  # noqa: BLE001 - anything escaping is what this script counts
        escaped = "".join(traceback.format_exception_only(type(e), e)).strip()
    finally:
        signal.alarm(0)
    text = err.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    if escaped is not None or "Traceback (most recent call last)" in text:
        return Outcome(case.name, case.group, "traceback", (escaped or (lines[-1] if lines else ""))[:300])
    if case.check is not None:
        problem = case.check()
        if problem:
            return Outcome(case.name, case.group, "leftover" if "left" in problem else "wrong", problem)
    if case.expect == "ok" and rc != 0:
        return Outcome(case.name, case.group, "wrong", f"exit {rc}: {lines[-1] if lines else ''}"[:300])
    if case.expect == "error" and rc == 0:
        return Outcome(case.name, case.group, "silent", out.getvalue().strip()[-200:])
    if case.expect in ("error", "either") and rc not in (0, 2):
        return Outcome(case.name, case.group, "wrong", f"exit {rc}")
    if rc == 2 and len(lines) > case.max_lines:
        return Outcome(case.name, case.group, "noise", " | ".join(lines)[:300])
    return Outcome(case.name, case.group, "pass", lines[0][:200] if lines else "")


# ------------------------------------------------------------------------------------------ inputs
def write_wav(path: Path, y: np.ndarray, sr: int = 16000, subtype: str | None = None) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def tone(seconds: float, sr: int = 16000, f: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def write_video(path: Path, num_frames: int, fps=10, size=(32, 48)) -> Path:
    from vitmusic.data.videowriter import write_video as wv

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(num_frames).integers(0, 255, (num_frames, *size, 3), dtype=np.uint8)
    return wv(path, frames, fps)


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def absent(*paths: Path) -> Callable[[], str | None]:
    def check():
        for p in paths:
            if p.exists():
                return f"left {p}"
        return None
    return check


def make_piece(root: Path, number: int, name: str, insts: list[str], seconds: float, video: bytes | None = None,
               mix: bytes | None = None) -> Path:
    from vitmusic.data.urmp import mix_file_name, piece_folder_name, stem_file_name, video_file_name

    folder = root / piece_folder_name(number, name, insts)
    folder.mkdir(parents=True, exist_ok=True)
    y = tone(seconds, 8000)
    if mix is None:
        write_wav(folder / mix_file_name(folder), y, 8000)
    else:
        (folder / mix_file_name(folder)).write_bytes(mix)
    for k, code in enumerate(insts, start=1):
        write_wav(folder / stem_file_name("AuSep", k, code, number, name), y, 8000)
    if video is not None:
        (folder / video_file_name(folder)).write_bytes(video)
    return folder


# ------------------------------------------------------------------------------------------ cases
COMMANDS = ["synth-data", "prepare", "extract", "train", "generate", "evaluate", "compare", "ablate", "demo",
            "stimuli", "listen", "listen-results"]


def argparse_cases(tmp: Path) -> list[Case]:
    cases = [Case(f"{c} (no arguments)" if c not in ("train", "extract", "demo") else f"{c} --bogus",
                  [c] if c not in ("train", "extract", "demo") else [c, "--bogus"], group="argparse")
             for c in COMMANDS]
    cases += [Case(f"{c} --definitely-not-a-flag", [c, "--definitely-not-a-flag"], group="argparse")
              for c in COMMANDS]
    cases += [Case("unknown command", ["frobnicate"], group="argparse"),
              Case("no command", [], group="argparse", max_lines=40)]  # prints the help, exit 2
    for flag, value in [("--pieces", "many"), ("--pieces", "1e3"), ("--duration", "long"), ("--sample-rate", "x"),
                        ("--width", "-"), ("--tempo", "fast"), ("--workers", "two")]:
        cases.append(Case(f"synth-data {flag} {value}", ["synth-data", "--out", str(tmp / "sd"), flag, value],
                          group="argparse", check=absent(tmp / "sd")))
    for flag, value in [("--clip-seconds", "ten"), ("--hop-seconds", "fast"), ("--seed", "1.5")]:
        cases.append(Case(f"prepare {flag} {value}", ["prepare", "--urmp", str(tmp), "--out", str(tmp / "p"),
                                                      "--clip-seconds", "1", flag, value], group="argparse"))
    for flag, value in [("--sample-rate", "fast"), ("--n-boot", "x"), ("--annotations", "sometimes"),
                        ("--plot-clips", "1.5")]:
        cases.append(Case(f"evaluate {flag} {value}", ["evaluate", "--gen", str(tmp), "--out", str(tmp / "e"),
                                                       flag, value], group="argparse"))
    for flag, value in [("--guidance", "strong"), ("--seed", "x"), ("--path", "telepathy"), ("--synth", "moog")]:
        cases.append(Case(f"generate {flag} {value}", ["generate", "--video", "v.mp4", "--checkpoint", "c",
                                                       "--out", "o.wav", flag, value], group="argparse"))
    seeded = {"prepare": ["--urmp", str(tmp / "nope"), "--out", str(tmp / "s"), "--clip-seconds", "1"],
              "evaluate": ["--gen", str(tmp / "nope"), "--out", str(tmp / "s")],
              "stimuli": ["--system", f"a={tmp}", "--videos", str(tmp), "--out", str(tmp / "s")],
              "synth-data": ["--out", str(tmp / "s")], "compare": [str(tmp / "nope")],
              "listen-results": [str(tmp / "nope")]}
    for command, rest in seeded.items():
        for seed in ("-1", str(2**80)):
            cases.append(Case(f"{command} --seed {seed}", [command, *rest, "--seed", seed], group="argparse",
                              check=absent(tmp / "s")))
    cases.append(Case("listen --port http", ["listen", str(tmp), "--port", "http"], group="argparse"))
    cases.append(Case("generate --video and --videos", ["generate", "--video", "a", "--videos", "b",
                                                        "--checkpoint", "c"], group="argparse"))
    return cases


def prepare_cases(tmp: Path) -> list[Case]:
    from vitmusic.data.urmp import mix_file_name, stem_file_name

    good_video = write_video(tmp / "media" / "good.mp4", 30).read_bytes()
    one_frame = write_video(tmp / "media" / "one.mp4", 1).read_bytes()
    cases: list[Case] = []
    k = 0

    def case(name, root: Path, *extra, expect="error", max_lines=1, clip="2"):
        nonlocal k
        k += 1
        out = tmp / f"prep_out{k}"
        cases.append(Case(f"prepare: {name}", ["prepare", "--urmp", str(root), "--out", str(out), "--clip-seconds",
                                                clip, "--no-plot", *extra], expect=expect, max_lines=max_lines,
                          check=None if expect != "error" else absent(out / "manifest.jsonl"), group="prepare"))

    def root(name: str) -> Path:
        return tmp / "roots" / name

    case("root missing", tmp / "nope")
    (tmp / "afile.txt").write_text("x")
    case("root is a file", tmp / "afile.txt")
    root("empty").mkdir(parents=True)
    case("empty root", root("empty"))
    (root("junkdirs") / "not_a_piece").mkdir(parents=True)
    case("only non-piece folders", root("junkdirs"))
    (root("badcode") / "01_Jupiter_vn_xyz").mkdir(parents=True)
    case("unknown instrument code", root("badcode"))
    make_piece(root("good"), 1, "Jupiter", ["vn", "vc"], 6.0, video=good_video)
    make_piece(root("good"), 2, "Sonata", ["fl"], 6.0, video=good_video)
    case("a good root", root("good"), expect="ok")
    case("clip 0", root("good"), clip="0")
    case("clip -3", root("good"), clip="-3")
    case("clip nan", root("good"), clip="nan")
    case("clip inf", root("good"), clip="inf")
    case("clip 1e-9 (absurd window count)", root("good"), clip="1e-9")
    case("hop 1e-9 (absurd window count)", root("good"), "--hop-seconds", "1e-9")
    case("hop 1e-5", root("good"), "--hop-seconds", "1e-5")
    case("hop 0", root("good"), "--hop-seconds", "0")
    case("hop nan", root("good"), "--hop-seconds", "nan")
    case("hop inf", root("good"), "--hop-seconds", "inf")
    case("clip longer than every piece", root("good"), clip="600")
    case("ratios one number", root("good"), "--ratios", "1")
    case("ratios letters", root("good"), "--ratios", "a,b,c")
    case("ratios negative", root("good"), "--ratios", "-1,1,1")
    case("ratios all zero", root("good"), "--ratios", "0,0,0")
    case("ratios nan", root("good"), "--ratios", "nan,1,1")
    case("require unknown", root("good"), "--require", "lyrics")
    case("require notes (absent)", root("good"), "--require", "notes")
    case("require notes + skip-incomplete (all skipped)", root("good"), "--require", "notes", "--skip-incomplete")
    case("split file missing", root("good"), "--split-file", str(tmp / "nosplit.csv"))
    (tmp / "split_garbage.json").write_text("{not json")
    case("split file garbage JSON", root("good"), "--split-file", str(tmp / "split_garbage.json"))
    (tmp / "split_list.json").write_text("[1, 2, 3]")
    case("split file a JSON list", root("good"), "--split-file", str(tmp / "split_list.json"))
    (tmp / "split_bad.csv").write_text("piece,split\n01_Jupiter_vn_vc,holiday\n02_Sonata_fl,train\n")
    case("split file unknown split name", root("good"), "--split-file", str(tmp / "split_bad.csv"))
    (tmp / "split_bin.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    case("split file binary", root("good"), "--split-file", str(tmp / "split_bin.csv"))
    case("--out is a file", root("good"))
    cases[-1].argv[cases[-1].argv.index("--out") + 1] = str(tmp / "afile.txt")
    cases[-1].check = None
    case("--out under a file", root("good"))
    cases[-1].argv[cases[-1].argv.index("--out") + 1] = str(tmp / "afile.txt" / "sub")
    cases[-1].check = None
    for name, data in [("0-byte video", b""), ("PNG renamed .mp4", png_bytes()),
                       ("100 KB random bytes video", np.random.default_rng(7).bytes(100_000)),
                       ("truncated video", good_video[: len(good_video) // 3]),
                       ("text as video", b"hello, I am a video\n" * 50)]:
        make_piece(root(name), 1, "Jupiter", ["vn"], 6.0, video=data)
        case(f"{name} (--require video)", root(name), "--require", "video")
        case(f"{name}, mix fine", root(name))
    make_piece(root("one frame"), 1, "Jupiter", ["vn"], 6.0, video=one_frame)
    case("1-frame video with a 6 s mix", root("one frame"), expect="either")
    for name, data in [("corrupt mix", b"RIFF\x00\x00garbage"), ("0-byte mix", b""),
                       ("header-only wav", b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00"
                        b"\x80>\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00")]:
        make_piece(root(name), 1, "Jupiter", ["vn"], 6.0, mix=data)
        case(name, root(name))
        case(f"{name} + skip-incomplete", root(name), "--skip-incomplete")
    folder = make_piece(root("nan stem"), 1, "Jupiter", ["vn"], 6.0)
    write_wav(folder / stem_file_name("AuSep", 1, "vn", 1, "Jupiter"), np.array([], np.float32), 8000)
    case("stem audio without samples", root("nan stem"))
    quirks = REPO / "tests" / "fixtures" / "urmp_quirks"
    for f in sorted(quirks.glob("*.txt")):
        kind = f.name.split("_", 1)[0]
        folder = make_piece(root(f.stem), 1, "Jupiter", ["vn"], 6.0)
        shutil.copy(f, folder / stem_file_name(kind, 1, "vn", 1, "Jupiter"))
        case(f"annotation quirk {f.name}", root(f.stem), expect="either")
    folder = make_piece(root("no mix"), 1, "Jupiter", ["vn"], 6.0)
    (folder / mix_file_name(folder)).unlink()
    case("no mix, no video", root("no mix"))
    return cases


def evaluate_cases(tmp: Path) -> list[Case]:
    cases: list[Case] = []
    k = 0
    y = tone(2.0)

    def case(name, setup: dict[str, object], *extra, expect="error", max_lines=1):
        nonlocal k
        k += 1
        d = tmp / f"eval{k}"
        for rel, content in setup.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            elif isinstance(content, np.ndarray):
                write_wav(p, content)
            elif isinstance(content, tuple):  # ("float", samples): 32-bit float WAV keeps NaN/inf
                write_wav(p, content[1], subtype="FLOAT")
            elif content == "dir":
                p.mkdir(parents=True, exist_ok=True)
        out = d / "out"
        argv = ["evaluate", "--ref", str(d / "ref"), "--gen", str(d / "gen"), "--out", str(out), "--quiet",
                "--metrics", "chroma", "--n-boot", "20", "--sample-rate", "16000", *extra]
        cases.append(Case(f"evaluate: {name}", argv, expect=expect, max_lines=max_lines, group="evaluate",
                          check=absent(out / "summary.json") if expect == "error" else None))
        return d

    case("gen folder missing", {"ref/a.wav": y})
    case("ref folder missing", {"gen/a.wav": y})
    case("gen folder empty", {"ref/a.wav": y, "gen": "dir"})
    case("no pairs", {"ref/a.wav": y, "gen/b.wav": y})
    case("1-sample generated file", {"ref/a.wav": y, "gen/a.wav": y[:1]})
    case("1-sample file among good ones", {"ref/a.wav": y, "gen/a.wav": y[:1], "ref/b.wav": y, "gen/b.wav": y},
         expect="ok")
    case("0-byte generated file", {"ref/a.wav": y, "gen/a.wav": b""})
    case("junk generated file", {"ref/a.wav": y, "gen/a.wav": b"RIFFjunkjunk"})
    case("NaN generated file", {"ref/a.wav": y, "gen/a.wav": ("float", np.full(16000, np.nan, np.float32))})
    case("inf generated file", {"ref/a.wav": y, "gen/a.wav": ("float", np.full(16000, np.inf, np.float32))})
    case("PNG as generated .wav", {"ref/a.wav": y, "gen/a.wav": png_bytes()})
    case("silent generated file", {"ref/a.wav": y, "gen/a.wav": np.zeros(32000, np.float32)}, expect="either")
    case("stereo and 8 kHz", {"ref/a.wav": y, "gen/a.wav": np.stack([y[::2], y[::2]], 1)}, expect="ok")
    case("clipping generated file", {"ref/a.wav": y, "gen/a.wav": 10 * y}, expect="ok")
    d = case("--out is an existing file", {"ref/a.wav": y, "gen/a.wav": y, "outfile": b"x"})
    cases[-1].argv[cases[-1].argv.index("--out") + 1] = str(d / "outfile")
    cases[-1].check = None
    d = case("--out under a file", {"ref/a.wav": y, "gen/a.wav": y, "outfile": b"x"})
    cases[-1].argv[cases[-1].argv.index("--out") + 1] = str(d / "outfile" / "sub")
    cases[-1].check = None
    good = {"ref/a.wav": y, "gen/a.wav": y}
    for extra in (["--sample-rate", "0"], ["--sample-rate", "100"], ["--n-boot", "0"], ["--fad-boot", "-1"],
                  ["--metrics", "bogus"], ["--metrics", ","], ["--videos", "/nonexistent"],
                  ["--manifest", "/nonexistent/m.jsonl"], ["--urmp", "/nonexistent"],
                  ["--metrics", "pitch", "--pitch-backend", "nope"]):
        case(" ".join(extra), dict(good), *extra)
    d = case("manifest garbage", dict(good, **{"m.jsonl": b"{not json\n"}))
    cases[-1].argv += ["--manifest", str(d / "m.jsonl")]
    d = case("manifest of non-records", dict(good, **{"m.jsonl": b"[1,2]\n"}))
    cases[-1].argv += ["--manifest", str(d / "m.jsonl")]
    case("--plot-clips -5", dict(good), "--plot-clips", "-5", expect="ok")
    return cases


def train_cases(tmp: Path) -> list[Case]:
    cases: list[Case] = []
    tiny = str(CONFIGS / "tiny.yaml")
    prep = tmp / "train_prep"
    prep.mkdir()
    clip = {"clip_id": "a_0000", "piece": "a", "split": "train", "start_s": 0.0, "end_s": 1.0,
            "video": str(tmp / "gone.mp4"), "mix": None}
    (prep / "manifest.jsonl").write_text(json.dumps(clip) + "\n")
    (tmp / "bad.yaml").write_text("train: [unclosed\n")
    (tmp / "unknown.yaml").write_text("train:\n  lrr: 1\n")
    (tmp / "list.yaml").write_text("- 1\n- 2\n")
    (tmp / "afile.txt").write_text("x") if not (tmp / "afile.txt").exists() else None
    base = ["train", "--config", tiny, "--no-progress"]
    for name, extra in [
        ("config missing", ["--config", str(tmp / "nope.yaml")]),
        ("config not YAML", ["--config", str(tmp / "bad.yaml")]),
        ("config unknown key", ["--config", str(tmp / "unknown.yaml")]),
        ("config a list", ["--config", str(tmp / "list.yaml")]),
        ("dotlist unknown key", ["train.nope=1"]),
        ("dotlist wrong type", ["train.lr=fast"]),
        ("dotlist mixed_precision fp8", ["train.mixed_precision=fp8"]),
        ("dotlist max_steps -1", ["train.max_steps=-1", f"data.manifest={prep}"]),
        ("no manifest", []),
        ("manifest missing", [f"data.manifest={tmp / 'nowhere'}"]),
        ("manifest whose videos are gone", [f"data.manifest={prep}", f"train.output_dir={tmp / 'r1'}"]),
        ("--resume missing path", [f"data.manifest={prep}", "--resume", str(tmp / "nowhere")]),
        ("output_dir under a file", [f"data.manifest={prep}", f"train.output_dir={tmp / 'afile.txt' / 'run'}"]),
        ("not a dotlist", ["lr"]),
    ]:
        argv = list(base)
        if "--config" in extra:
            i = extra.index("--config")
            argv[argv.index("--config") + 1] = extra[i + 1]
            extra = extra[:i] + extra[i + 2:]
        cases.append(Case(f"train: {name}", argv + extra, group="train", timeout_s=60))
    for name, extra in [("manifest whose videos are gone", [f"data.manifest={prep}"]), ("no manifest", []),
                        ("cache_dir under a file", [f"data.manifest={prep}",
                                                    f"extract.cache_dir={tmp / 'afile.txt' / 'c'}"])]:
        cases.append(Case(f"extract: {name}", ["extract", "--config", tiny, "--no-progress", *extra],
                          group="train", timeout_s=60))
    cases += checkpoint_cases(tmp)
    return cases


def checkpoint_cases(tmp: Path) -> list[Case]:
    """Damaged checkpoints of a toy run, resumed through vitmusic.training.loop.train (library cases)."""
    import pickle
    import zipfile

    sys.path.insert(0, str(REPO / "tests"))
    from test_training import ToyTask, toy_config

    from vitmusic.training.loop import train

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = pickle.dumps(Evil(), protocol=2)

    def damaged(name: str, damage: Callable[[Path], None]) -> Case:
        d = tmp / "ckpt" / name.replace(" ", "_")
        cfg = toy_config(d, "train.max_steps=8", "train.save_every=4")

        def fn():
            with contextlib.redirect_stderr(io.StringIO()):
                train(cfg, ToyTask(), progress=False, stop_after=4)
            damage(d / "run" / "checkpoints" / "step_4")
            train(cfg, ToyTask(), resume=True, progress=False)

        return Case(f"resume: {name}", fn=fn, group="checkpoint", check=absent(d / "run" / "final"))

    def rewrite_pickle(path: Path) -> None:
        with zipfile.ZipFile(path) as z:
            items = {n: z.read(n) for n in z.namelist()}
        items[next(n for n in items if n.endswith("data.pkl"))] = evil
        with zipfile.ZipFile(path, "w") as z:
            for n, data in items.items():
                z.writestr(n, data)

    acc = "accelerate"
    return [
        damaged("no accelerate folder", lambda c: shutil.rmtree(c / acc)),
        damaged("optimizer.bin garbage", lambda c: (c / acc / "optimizer.bin").write_bytes(b"\x00" * 100)),
        damaged("optimizer.bin empty", lambda c: (c / acc / "optimizer.bin").write_bytes(b"")),
        damaged("optimizer.bin evil pickle", lambda c: rewrite_pickle(c / acc / "optimizer.bin")),
        damaged("scheduler.bin truncated", lambda c: (c / acc / "scheduler.bin").write_bytes(
            (c / acc / "scheduler.bin").read_bytes()[:100])),
        damaged("scheduler.bin evil pickle", lambda c: rewrite_pickle(c / acc / "scheduler.bin")),
        damaged("scheduler.bin missing", lambda c: (c / acc / "scheduler.bin").unlink()),
        damaged("random_states evil pickle", lambda c: (c / acc / "random_states_0.pkl").write_bytes(evil)),
        damaged("random_states garbage", lambda c: (c / acc / "random_states_0.pkl").write_bytes(b"junk")),
        damaged("random_states missing", lambda c: (c / acc / "random_states_0.pkl").unlink()),
        damaged("random_states a plain dict", lambda c: (c / acc / "random_states_0.pkl").write_bytes(
            pickle.dumps({"a": 1}, protocol=2))),
        damaged("trainer_state garbage", lambda c: (c / "trainer_state.json").write_text("{nope")),
        damaged("trainer_state step string", lambda c: (c / "trainer_state.json").write_text('{"step": "4"}')),
        damaged("trainer_state a list", lambda c: (c / "trainer_state.json").write_text("[4]")),
        damaged("accelerate model weights garbage", lambda c: (c / acc / "model.safetensors").write_bytes(b"x" * 64)),
    ]


def stimuli_cases(tmp: Path) -> list[Case]:
    v = tmp / "stim" / "videos"
    write_video(v / "a.mp4", 30)
    write_wav(tmp / "stim" / "ref" / "a.wav", tone(3.0))
    write_wav(tmp / "stim" / "sys" / "a.wav", tone(3.0, f=330))
    base = ["stimuli", "--videos", str(v), "--ref", str(tmp / "stim" / "ref"), "--system",
            f"sysA={tmp / 'stim' / 'sys'}", "--quiet", "--excerpt-seconds", "2", "--sample-rate", "16000"]
    cases = []
    for k, (name, extra) in enumerate([
        ("participants 0", ["--participants", "0"]), ("participants -3", ["--participants", "-3"]),
        ("excerpt 0.5 s", ["--excerpt-seconds", "0.5"]), ("excerpt nan", ["--excerpt-seconds", "nan"]),
        ("sample rate 100", ["--sample-rate", "100"]), ("excerpt longer than the media", ["--excerpt-seconds", "60"]),
        ("baseline with mushra", ["--baseline", "sysA"]), ("system without =", ["--system", "broken"]),
        ("system folder missing", ["--system", f"sysB={tmp / 'nope'}"]),
        ("reserved system name", ["--system", f"hidden_reference={tmp / 'stim' / 'sys'}"]),
        ("system name with a slash", ["--system", f"a/b={tmp / 'stim' / 'sys'}"]),
        ("system given twice", ["--system", f"sysA={tmp / 'stim' / 'sys'}"]),
        ("design ab, baseline unknown", ["--design", "ab", "--baseline", "nope"]),
    ]):
        out = tmp / f"stim_out{k}"
        # a batch command: one line per skipped item, then the error
        cases.append(Case(f"stimuli: {name}", base + ["--out", str(out)] + extra, group="stimuli", max_lines=2,
                          check=absent(out / "public")))
    (tmp / "stim_busy").mkdir()
    (tmp / "stim_busy" / "x").write_text("keep me")
    cases.append(Case("stimuli: non-empty --out", base + ["--out", str(tmp / "stim_busy")], group="stimuli"))
    cases.append(Case("listen-results: not a stimuli folder", ["listen-results", str(tmp)], group="stimuli"))
    cases.append(Case("listen: not a stimuli folder", ["listen", str(tmp / "nope"), "--port", "0"], group="stimuli"))
    cases.append(Case("listen: port 70000", ["listen", str(tmp), "--port", "70000"], group="stimuli"))
    cases.append(Case("compare: missing runs", ["compare", str(tmp / "r1"), str(tmp / "r2")], group="stimuli"))
    cases.append(Case("ablate: missing experiment", ["ablate", str(tmp / "nope.yaml")], group="stimuli"))
    cases.append(Case("synth-data: 0 pieces", ["synth-data", "--out", str(tmp / "sd0"), "--pieces", "0"],
                      group="stimuli", check=absent(tmp / "sd0")))
    cases.append(Case("synth-data: negative duration", ["synth-data", "--out", str(tmp / "sd1"), "--pieces", "1",
                                                        "--duration", "-5"], group="stimuli", check=absent(tmp / "sd1")))
    cases.append(Case("synth-data: fps 0", ["synth-data", "--out", str(tmp / "sd2"), "--pieces", "1", "--fps", "0"],
                      group="stimuli", check=absent(tmp / "sd2")))
    cases.append(Case("synth-data: unknown source", ["synth-data", "--out", str(tmp / "sd3"), "--source", "jazz"],
                      group="stimuli", check=absent(tmp / "sd3")))
    return cases


# ------------------------------------------------------------------------------------ the server
def server_cases(tmp: Path) -> list[Case]:
    """Hostile HTTP against a listening test on 127.0.0.1 (a manifest-only test folder with tokens)."""
    root = tmp / "listen"
    (root / "public" / "media").mkdir(parents=True)
    (root / "private").mkdir()
    rows = ["participant,trial,position,stimulus_id,file"]
    for p in (1, 2):
        for k in (1, 2):
            rows.append(f"P0{p},1,{k},{p}{k}0000000000,media/{p}{k}0000000000.mp4")
    (root / "public" / "manifest.csv").write_text("\n".join(rows) + "\n")
    (root / "public" / "test.json").write_text(json.dumps({"design": "mushra", "scale": [0, 100]}))
    (root / "private" / "participants.csv").write_text("participant,token,path\nP01,tokA1234567890abcdefgh,/\n"
                                                       "P02,tokB1234567890abcdefgh,/\n")
    (root / "private" / "answer_key.csv").write_text("stimulus_id,item,system\nSECRET,x,y\n")
    (root / "public" / "media" / "110000000000.mp4").write_bytes(b"\x00" * 100_000)
    os.symlink(root / "private" / "answer_key.csv", root / "public" / "media" / "escape.mp4")
    from vitmusic.listening.server import make_server

    state: dict = {}

    def start():
        srv = make_server(root, "127.0.0.1", 0)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        state.update(srv=srv, thread=thread, addr=srv.server_address[:2])

    def raw(data: bytes, timeout: float = 15.0) -> bytes:
        with socket.create_connection(state["addr"], timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while chunk := s.recv(65536):
                    chunks.append(chunk)
            except (TimeoutError, ConnectionResetError):
                pass
        return b"".join(chunks)

    def post(body: bytes, headers: str = "") -> bytes:
        return (f"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}"
                "Connection: close\r\n\r\n").encode() + body

    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()

    def expect_status(name: str, request: bytes, statuses: tuple[int, ...], forbid: bytes = b"SECRET") -> Case:
        def fn():
            answer = raw(request)
            status = int(answer[9:12]) if answer.startswith(b"HTTP/1.") else None
            if status not in statuses:
                raise AssertionError(f"status {status}, expected {statuses}: {answer[:80]!r}")
            if forbid in answer:
                raise AssertionError("the answer leaks the answer key")
            if not raw(get("/")).startswith(b"HTTP/1.1 200"):
                raise AssertionError("server no longer answers")
        return Case(f"listen: {name}", fn=fn, group="server", expect="ok", timeout_s=40)

    tok = b"tokA1234567890abcdefgh"
    good_values = b'{"110000000000":50,"120000000000":50}'
    cases = [Case("listen: start the server", fn=start, group="server", expect="ok")]
    bodies = [
        ("100k-deep JSON array", b"[" * 100_000 + b"]" * 100_000),
        ("50k-deep JSON object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ("400-digit rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":' + b"9" * 400
         + b',"120000000000":1}}'),
        ("5000-digit trial", b'{"participant":"' + tok + b'","trial":' + b"1" * 5000 + b',"values":{}}'),
        ("-400-digit rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":-' + b"9" * 400
         + b',"120000000000":1}}'),
        ("1e400 rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":1e400,'
         b'"120000000000":1}}'),
        ("NaN rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":NaN,"120000000000":1}}'),
        ("Infinity rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":Infinity,'
         b'"120000000000":1}}'),
        ("rating as string", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":"50",'
         b'"120000000000":1}}'),
        ("rating true", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":true,'
         b'"120000000000":1}}'),
        ("rating 101", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":101,"120000000000":1}}'),
        ("rating -0.001", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":-0.001,'
         b'"120000000000":1}}'),
        ("participant a list", b'{"participant":["' + tok + b'"],"trial":1,"values":' + good_values + b"}"),
        ("participant an object", b'{"participant":{"a":1},"trial":1,"values":' + good_values + b"}"),
        ("participant null", b'{"participant":null,"trial":1,"values":' + good_values + b"}"),
        ("sequential id P01 instead of token", b'{"participant":"P01","trial":1,"values":' + good_values + b"}"),
        ("lower-case token", b'{"participant":"' + tok.lower() + b'","trial":1,"values":' + good_values + b"}"),
        ("trial 1.0", b'{"participant":"' + tok + b'","trial":1.0,"values":' + good_values + b"}"),
        ("trial true", b'{"participant":"' + tok + b'","trial":true,"values":' + good_values + b"}"),
        ("trial -1", b'{"participant":"' + tok + b'","trial":-1,"values":' + good_values + b"}"),
        ("values a list", b'{"participant":"' + tok + b'","trial":1,"values":[50,50]}'),
        ("values missing a stimulus", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":5}}'),
        ("values of another participant", b'{"participant":"' + tok + b'","trial":1,"values":'
         b'{"210000000000":5,"220000000000":5}}'),
        ("body a JSON string", b'"hello"'), ("body a number", b"12"), ("body null", b"null"),
        ("body invalid UTF-8", b"\xff\xfe\xfd"), ("body truncated JSON", b'{"participant":'),
        ("body with a NUL", b'{"participant":"\x00"}'),

        ("10k keys object", b"{" + b",".join(b'"k%d":1' % i for i in range(10_000)) + b"}"),
    ]
    for name, body in bodies:
        cases.append(expect_status(name, post(body), (400, 404)))
    cases.append(expect_status("body over 1 MiB", post(b" " * ((1 << 20) + 10)), (400,)))
    cases.append(expect_status("Content-Length -5", b"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
                               b"Connection: close\r\n\r\n", (400,)))
    cases.append(expect_status("Content-Length abc", b"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: abc"
                               b"\r\nConnection: close\r\n\r\n", (400,)))
    cases.append(expect_status("no Content-Length", b"POST /api/submit HTTP/1.1\r\nHost: x\r\nConnection: close"
                               b"\r\n\r\n", (400,)))
    cases.append(expect_status("a good submission", post(b'{"participant":"' + tok + b'","trial":1,"values":'
                                                         + good_values + b"}"), (200,)))
    for path in ["/media/../private/answer_key.csv", "/media/%2e%2e/private/answer_key.csv",
                 "/media/..%2fprivate%2fanswer_key.csv", "/media/escape.mp4", "/media/%00.mp4",
                 "/media//etc/passwd", "/private/answer_key.csv", "/public/manifest.csv",
                 "/api/session?participant=P01", "/api/session?participant=p02",
                 "/api/session?participant=../private", "/api/session", "/static/../private/answer_key.csv",
                 "/api/session?participant=" + "A" * 5000]:
        cases.append(expect_status(f"GET {path[:60]}", get(path), (403, 404)))
    cases.append(expect_status("GET with a 70000-byte header line", b"GET / HTTP/1.1\r\nX: " + b"a" * 70000
                               + b"\r\n\r\n", (400, 431)))
    # stdlib answers a request line it cannot parse HTTP/0.9-style (an error page without a status line)
    cases.append(expect_status("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                               (400, None)))
    cases.append(expect_status("duplicate keys (the last wins, as in JSON parsers generally)",
                               post(b'{"participant":"x","participant":"' + tok + b'","trial":1,"values":'
                                    + good_values + b"}"), (200,)))
    cases.append(expect_status("Range 5-2", b"GET /media/110000000000.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=5-2"
                               b"\r\nConnection: close\r\n\r\n", (416,)))
    cases.append(expect_status("Range of 400 digits", b"GET /media/110000000000.mp4 HTTP/1.1\r\nHost: x\r\n"
                               b"Range: bytes=" + b"9" * 400 + b"-\r\nConnection: close\r\n\r\n", (416,)))

    def slow_loris():
        socks = []
        for _ in range(150):
            s = socket.create_connection(state["addr"], timeout=5)
            s.sendall(b"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            socks.append(s)
        time.sleep(0.5)
        held = threading.active_count()
        if held > 140:
            raise AssertionError(f"{held} threads for 150 silent clients")
        t = time.perf_counter()
        ok = False
        while time.perf_counter() - t < 30 and not ok:  # the timeout frees the slots
            try:
                ok = raw(get("/"), timeout=3).startswith(b"HTTP/1.1 200")
            except OSError:
                time.sleep(0.5)
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        if not ok:
            raise AssertionError("server did not recover from the silent clients")

    cases.append(Case("listen: 150 clients promise a body and never send it", fn=slow_loris, group="server",
                      expect="ok", timeout_s=60))

    def dropped_downloads():
        for _ in range(20):
            s = socket.create_connection(state["addr"], timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.sendall(get("/media/110000000000.mp4"))
            s.recv(10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        time.sleep(0.5)
        if not raw(get("/")).startswith(b"HTTP/1.1 200"):
            raise AssertionError("server no longer answers")

    cases.append(Case("listen: 20 media downloads dropped halfway (BrokenPipe)", fn=dropped_downloads,
                      group="server", expect="ok", timeout_s=60))

    def stop():
        state["srv"].shutdown()
        state["srv"].server_close()
        state["thread"].join(timeout=10)

    cases.append(Case("listen: stop the server", fn=stop, group="server", expect="ok"))
    return cases


# ------------------------------------------------------------------------------------ generation
def generate_cases(tmp: Path) -> list[Case]:
    """Needs a tiny trained run (built here, ~30-60 s on 2 cores)."""
    os.environ.setdefault("VITMUSIC_CACHE", str(tmp / "presets"))
    from vitmusic import cli

    media = tmp / "gen_media"
    good = write_video(media / "good.mp4", 20, fps=10, size=(48, 64))
    urmp, prep = tmp / "gen_urmp", tmp / "gen_prep"
    make_piece(urmp, 1, "Jupiter", ["vn"], 6.0, video=write_video(media / "p1.mp4", 60, 10, (48, 64)).read_bytes())
    make_piece(urmp, 2, "Sonata", ["vc"], 6.0, video=write_video(media / "p2.mp4", 60, 10, (48, 64)).read_bytes())
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["prepare", "--urmp", str(urmp), "--out", str(prep), "--clip-seconds", "1.5", "--no-plot",
                         "--ratios", "0.5,0.5,0"]) == 0
        run = tmp / "gen_run"
        assert cli.main(["train", "--config", str(CONFIGS / "tiny.yaml"), f"data.manifest={prep}",
                         f"extract.cache_dir={tmp / 'gen_cache'}", f"train.output_dir={run}", "train.max_steps=2",
                         "train.batch_size=2", "train.log_with=none", "--no-progress"]) == 0
    files = {
        "empty.mp4": b"", "png.mp4": png_bytes(), "random.mp4": np.random.default_rng(3).bytes(100_000),
        "text.mp4": b"not a video\n", "truncated.mp4": good.read_bytes()[:2000],
    }
    for name, data in files.items():
        (media / name).write_bytes(data)
    write_video(media / "one_frame.mp4", 1)
    write_video(media / "tenth.mp4", 3, fps=30)
    write_wav(media / "audio_only.wav", tone(2.0))
    (media / "audio_only.wav").rename(media / "audio_only.mp4")  # a WAV named .mp4: no video stream
    (tmp / "afile.txt").write_text("x") if not (tmp / "afile.txt").exists() else None
    base = ["generate", "--checkpoint", str(run), "--no-progress"]
    cases = []
    k = 0

    def case(name, *extra, expect="error", max_lines=1, out=True):
        nonlocal k
        k += 1
        o = tmp / f"gen_out{k}.wav"
        argv = base + (["--out", str(o)] if out else []) + list(extra)
        cases.append(Case(f"generate: {name}", argv, expect=expect, max_lines=max_lines, group="generate",
                          check=absent(o) if expect == "error" and out else None, timeout_s=120))

    case("a good video", "--video", str(good), expect="ok")
    for name in ["empty.mp4", "png.mp4", "random.mp4", "text.mp4", "truncated.mp4", "one_frame.mp4", "tenth.mp4",
                 "audio_only.mp4"]:
        case(f"--video {name}", "--video", str(media / name))
    case("--video missing", "--video", str(media / "nope.mp4"))
    case("--video a folder", "--video", str(media))
    case("--out under a file", "--video", str(good), "--out", str(tmp / "afile.txt" / "o.wav"), out=False)
    case("--out a folder", "--video", str(good), "--out", str(media), out=False)
    case("--mux under a file", "--video", str(good), "--mux", str(tmp / "afile.txt" / "o.mp4"))
    case("--midi with the musicgen path", "--video", str(good), "--midi", str(tmp / "o.mid"))
    for g in ("0.5", "nan", "-inf"):
        case(f"--guidance {g}", "--video", str(good), "--guidance", g)
    case("--seed 2**80", "--video", str(good), "--seed", str(2**80))
    case("--seed -1", "--video", str(good), "--seed", "-1")
    case("--device nonsense", "--video", str(good), "--device", "quantum")
    case("--checkpoint missing", "--video", str(good), "--checkpoint", str(tmp / "nope"))
    empty_ckpt = tmp / "empty_ckpt"
    empty_ckpt.mkdir()
    case("--checkpoint an empty folder", "--video", str(good), "--checkpoint", str(empty_ckpt))
    for name, edit in [
        ("hidden_dim 'sixty-four'", lambda c: c["hparams"].__setitem__("hidden_dim", "sixty-four")),
        ("hidden_dim -5", lambda c: c["hparams"].__setitem__("hidden_dim", -5)),
        ("hparams a list", lambda c: c.__setitem__("hparams", [1, 2])),
        ("in_dim a string", lambda c: c.__setitem__("in_dim", "wide")),
        ("kind unknown", lambda c: c.__setitem__("kind", "quantum")),
        ("run config removed", lambda c: c.get("extra", {}).pop("config", None)),
        ("format version 99", lambda c: c.__setitem__("format_version", 99)),
    ]:
        bad = tmp / f"ckpt_{k}"
        shutil.copytree(run / "final", bad)
        cfg = json.loads((bad / "config.json").read_text())
        edit(cfg)
        (bad / "config.json").write_text(json.dumps(cfg))
        case(f"checkpoint config.json {name}", "--video", str(good), "--checkpoint", str(bad))
    for name, action in [("config.json not JSON", lambda b: (b / "config.json").write_text("{")),
                         ("weights truncated", lambda b: (b / "model.safetensors").write_bytes(
                             (b / "model.safetensors").read_bytes()[:50])),
                         ("weights missing", lambda b: (b / "model.safetensors").unlink())]:
        bad = tmp / f"ckpt_{k}_x"
        shutil.copytree(run / "final", bad)
        action(bad)
        case(f"checkpoint {name}", "--video", str(good), "--checkpoint", str(bad))
    batch = tmp / "batch"
    batch.mkdir()
    shutil.copy(good, batch / "good.mp4")
    (batch / "dangling.mp4").symlink_to(tmp / "gone.mp4")
    shutil.copy(media / "png.mp4", batch / "png.mp4")
    cases.append(Case("generate: batch with a dangling symlink and a PNG", base + ["--videos", str(batch), "--out-dir",
                                                                                 str(tmp / "batch_out")],
                      expect="ok", group="generate", timeout_s=120, check=lambda: None if len(json.loads(
                          (tmp / "batch_out" / "failures.json").read_text())) == 2 else "failures.json lacks an item"))
    bad_only = tmp / "batch_bad"
    bad_only.mkdir()
    (bad_only / "dangling.mp4").symlink_to(tmp / "gone.mp4")
    cases.append(Case("generate: batch of only a dangling symlink", base + ["--videos", str(bad_only), "--out-dir",
                                                                          str(tmp / "batch_bad_out")],
                      group="generate", max_lines=2, timeout_s=120))
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="leave out the cases that need a trained tiny run")
    ap.add_argument("--json", type=Path, default=None, help="write every outcome here")
    ap.add_argument("--show-failures", action="store_true", help="print each case that did not pass")
    ap.add_argument("--only", default=None, help="comma-separated groups to run")
    ap.add_argument("--skip", action="append", default=[], metavar="TEXT",
                    help="leave out the cases whose name contains TEXT (e.g. to measure an older version, where "
                    "'absurd window count' cases grow memory without end)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vitmusic-adversarial-") as d:
        tmp = Path(d)
        makers = [argparse_cases, prepare_cases, evaluate_cases, train_cases, stimuli_cases, server_cases]
        if not args.quick:
            makers.append(generate_cases)
        results: list[Outcome] = []
        server_err = io.StringIO()
        for make in makers:
            group_tmp = tmp / make.__name__
            group_tmp.mkdir()
            with contextlib.redirect_stderr(server_err if make is server_cases else sys.stderr):
                cases = make(group_tmp)
            if args.only and not any(c.group in args.only.split(",") for c in cases):
                continue
            for case in cases:
                if any(text in case.name for text in args.skip):
                    continue
                results.append(run_case(case))
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    by_group: dict[str, dict[str, int]] = {}
    for r in results:
        g = by_group.setdefault(r.group, {})
        g[r.outcome] = g.get(r.outcome, 0) + 1
    print(f"{len(results)} adversarial inputs in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for g, c in by_group.items():
        print(f"  {g:12s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    if args.show_failures:
        for r in results:
            if r.outcome != "pass":
                print(f"  [{r.outcome}] {r.group}: {r.name}: {r.detail}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1) + "\n")
    return 0 if all(r.outcome == "pass" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
