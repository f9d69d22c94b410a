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
requests against 127.0.0.1) are counted the same way, and so are the fault classes of
``scripts/adversarial_faults.py`` (impossible settings, retyped dotlist strings, damaged caches and
checkpoints, diverging and racing trainings, leftovers of a kill, a full disk via a small tmpfs when run as root).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however this file is loaded

from adversarial_common import (  # noqa: E402
    CONFIGS,
    REPO,
    Case,
    Outcome,
    absent,
    make_piece,
    png_bytes,
    run_case,
    tone,
    write_video,
    write_wav,
)
from adversarial_faults import (  # noqa: E402
    cache_cases,
    disk_full_cases,
    leftovers_cases,
    retyped_cases,
    settings_cases,
    training_cases,
)
from adversarial_more import generate_cases, server_cases  # noqa: E402

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
    quirks = REPO / "tests" / "data" / "fixtures" / "urmp_quirks"
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
    for extra in (["--sample-rate", "0"], ["--sample-rate", "100"], ["--n-boot", "0"],
                  ["--metrics", "fad", "--fad-embedding", "/nonexistent/model"],
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

    sys.path.insert(0, str(REPO / "tests" / "training"))
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
        makers = [argparse_cases, prepare_cases, evaluate_cases, train_cases, stimuli_cases, server_cases,
                  settings_cases, retyped_cases, cache_cases, training_cases, leftovers_cases]
        if not args.quick:
            makers.append(generate_cases)

        def diskfull_cases(group_tmp: Path) -> list[Case]:  # generation too, from generate_cases' tiny run
            return disk_full_cases(group_tmp, None if args.quick else tmp / "generate_cases" / "gen_run")

        makers.append(diskfull_cases)
        results: list[Outcome] = []
        server_err = io.StringIO()
        for make in makers:
            groups = {"train_cases": {"train", "checkpoint"}}.get(make.__name__, {make.__name__[: -len("_cases")]})
            if args.only and not groups & set(args.only.split(",")):
                continue  # not even its set-up
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
