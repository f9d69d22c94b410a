"""Adversarial faults rather than malformed files: impossible settings, dotlist values YAML would retype, damaged
feature caches and checkpoints, diverging or racing trainings, leftovers of a kill, and a full disk.

Not a command of its own: ``scripts/adversarial_inputs.py`` runs these groups (``settings``, ``retyped``,
``cache``, ``training``, ``leftovers``, ``diskfull``) with its other cases and counts them the same way. The
``diskfull`` group mounts a 20 MB tmpfs (filled up before each case) as the cache, run or output folder; it
needs root and ``mount`` (one ``skipped`` case says so otherwise). Without ``--quick`` it also generates into a
full disk from the tiny run that ``adversarial_more.generate_cases`` trains.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from adversarial_common import CONFIGS, REPO, Case, make_piece, tone, write_video, write_wav

TINY = str(CONFIGS / "tiny.yaml")
CHANGED = "its content differs from the sha256 recorded"


def _quiet(fn: Callable[[], object]) -> object:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return fn()


def _toy():
    sys.path.insert(0, str(REPO / "tests" / "training"))
    from test_training import ToyTask, toy_config

    return ToyTask, toy_config


def _no_temporaries(root: Path) -> Callable[[], str | None]:
    """A check: nothing under ``root`` that an interrupted write leaves (``.<name>.*.tmp*``, ``.*.partial``)."""
    def check():
        for p in root.rglob(".*"):
            if p.name != ".filler" and (".tmp" in p.name or p.name.endswith(".partial") or p.name.endswith(".old")):
                return f"left {p}"
        return None
    return check


# ------------------------------------------------------------------------------------ settings
SETTINGS = ["train.lr=inf", "train.lr=1e30", "train.lr=-1", "train.lr=nan", "train.weight_decay=nan",
            "train.weight_decay=inf", "train.weight_decay=-0.1", "train.max_grad_norm=nan", "train.max_grad_norm=inf",
            "train.min_lr_ratio=nan", "train.min_lr_ratio=2", "generate.guidance_scale=nan",
            "generate.guidance_scale=-inf", "generate.seed=-1", f"generate.seed={2**64}", "train.seed=-1",
            f"train.seed={2**64}", "projection.hidden_dim=1e9", "projection.hidden_dim=1000000000",
            "encoder.rate_hz=1e9", "encoder.rate_hz=inf", "encoder.rate_hz=0", "generate.window_s=0",
            "generate.window_s=nan", "generate.context_s=20", "generate.context_s=-1", "generate.top_k=-1",
            f"train.max_steps={2**63}", "train.warmup_steps=-5", "train.batch_size=0", "train.num_workers=-1",
            "encoder.lora.alpha=nan", "diffusion.segment_s=inf", "transcription.sample_rate=0",
            "transcription.min_midi=120", "diffusion.sample_steps=0", "extract.shard_size=0"]


def settings_cases(tmp: Path) -> list[Case]:
    """Non-finite and out-of-range settings: one line naming the key and its range, before any work."""
    cases = []
    for o in SETTINGS:
        for command in ("train", "extract"):
            cases.append(Case(f"{command} {o}", [command, "--no-progress", "--config", TINY, o,
                                                 f"train.output_dir={tmp / 'run'}"], group="settings",
                              says=f"'{o.split('=')[0]}'", check=lambda: None if not (
                                  tmp / "run").exists() else "left the run folder"))
    return cases


# ------------------------------------------------------------------------------------ retyped strings
RETYPED = ["0755", "run #2", "yes", "no", "1e3", "~", "null", "True", "a: b", "[x]", "{y}", "010", "0x1F", "1_000",
           ".inf", "é #ü"]


def retyped_cases(tmp: Path) -> list[Case]:
    """A string-typed key keeps the text typed (dotlist and YAML file); extract.cache_dir naming a file."""
    from vitmusic.config import load_config

    def keeps(key: str, text: str) -> Callable[[], None]:
        def fn():
            section, name = key.split(".")
            got = getattr(getattr(load_config(overrides=[f"{key}={text}"]), section), name)
            assert got == text, f"{key}={text} became {got!r}"
        return fn

    def keeps_in_yaml(text: str) -> Callable[[], None]:
        def fn():
            path = tmp / "retyped.yaml"
            path.write_text(f"train:\n  output_dir: {text}\ndata:\n  manifest: {text}\n", encoding="utf-8")
            cfg = load_config(path)  # YAML's null (~, null) for a key that cannot be None: a clean error
            # in a YAML file a '#' after a space starts a comment: the text is what stands before it
            want = text.split(" #")[0]
            assert cfg.train.output_dir == want and cfg.data.manifest == want, (cfg.train.output_dir, want)
        return fn

    cases = []
    for text in RETYPED:
        for key in ("train.output_dir", "data.manifest", "extract.cache_dir"):
            cases.append(Case(f"dotlist {key}={text}", fn=keeps(key, text), expect="ok", group="retyped"))
        if text not in ("a: b", "[x]", "{y}"):  # YAML structure, not a scalar
            cases.append(Case(f"YAML output_dir: {text}", fn=keeps_in_yaml(text), group="retyped",
                              expect="either" if text in ("~", "null") else "ok"))
    (tmp / "afile").write_text("x")
    for command in ("extract", "train"):
        cases.append(Case(f"{command} extract.cache_dir naming a file",
                          [command, "--no-progress", "--config", TINY, f"extract.cache_dir={tmp / 'afile'}",
                           "data.manifest=nowhere"], group="retyped", says="exists and is not a folder"))
    return cases


# ------------------------------------------------------------------------------------ damaged caches
def _tiny_manifest(tmp: Path) -> Path:
    media = tmp / "media"
    clips = []
    for v in range(2):
        video = write_video(media / f"v{v}.mp4", 30, fps=10, size=(48, 64))
        mix = write_wav(media / f"v{v}.wav", tone(3.0, 16000, 220 * (v + 1)))
        clips += [{"clip_id": f"v{v}_{i}", "piece": f"v{v}", "split": ["train", "train", "val"][i], "start_s": i * 1.0,
                   "end_s": i * 1.0 + 1.0, "video": str(video), "mix": str(mix)} for i in range(3)]
    prep = tmp / "prep"
    prep.mkdir(parents=True, exist_ok=True)
    (prep / "manifest.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))
    return prep


def cache_cases(tmp: Path) -> list[Case]:
    """A feature cache damaged on disk: found, named in one warning line and rebuilt by extract (and train)."""
    os.environ.setdefault("VITMUSIC_CACHE", str(tmp / "presets"))
    from vitmusic import cli
    from vitmusic.training.features import DATA_DIR, load_cache

    prep = _tiny_manifest(tmp)
    ref_dir = tmp / "cache_ref"
    base = ["extract", "--no-progress", "--config", TINY, f"data.manifest={prep}"]
    assert _quiet(lambda: cli.main([*base, f"extract.cache_dir={ref_dir}"])) == 0
    reference = next(p for p in ref_dir.iterdir() if not p.name.startswith("."))

    def rows(folder: Path):
        ds = load_cache(folder)
        return [{k: str(v) for k, v in ds[i].items()} for i in range(len(ds))]

    want = rows(reference)

    def arrow(f: Path) -> Path:
        return next((f / DATA_DIR).glob("*.arrow"))

    def overwrite(f: Path) -> None:
        data = bytearray(arrow(f).read_bytes())
        data[len(data) // 2: len(data) // 2 + 128] = b"\x55" * 128
        arrow(f).write_bytes(bytes(data))

    damages = {
        "arrow file cut in half": lambda f: arrow(f).write_bytes(arrow(f).read_bytes()[: arrow(f).stat().st_size // 2]),
        "arrow file cut at its tail": lambda f: arrow(f).write_bytes(arrow(f).read_bytes()[:-40]),
        "arrow bytes overwritten": overwrite,
        "arrow file deleted": lambda f: arrow(f).unlink(),
        "dataset state deleted": lambda f: (f / DATA_DIR / "state.json").unlink(),
        "dataset_info.json garbage": lambda f: (f / DATA_DIR / "dataset_info.json").write_text("{garbage"),
        "dataset_info.json deleted": lambda f: (f / DATA_DIR / "dataset_info.json").unlink(),
        "fingerprint.json garbage": lambda f: (f / "fingerprint.json").write_text("x"),
        "checksums.json deleted": lambda f: (f / "checksums.json").unlink(),
        "checksums.json garbage": lambda f: (f / "checksums.json").write_text("[1,"),
        "data folder deleted": lambda f: shutil.rmtree(f / DATA_DIR),
        "arrow file emptied": lambda f: arrow(f).write_bytes(b""),
    }
    cases = []
    for k, (name, damage) in enumerate(damages.items()):
        cache = tmp / f"cache_{k}"
        shutil.copytree(reference, cache / reference.name)
        damage(cache / reference.name)

        def rebuilt(folder=cache / reference.name) -> str | None:
            try:
                return None if rows(folder) == want else "the rebuilt cache differs from an undisturbed one"
            except Exception as e:  # noqa: BLE001
                return f"the cache is still damaged: {type(e).__name__}"

        cases.append(Case(f"extract over a cache with its {name}", [*base, f"extract.cache_dir={cache}"],
                          expect="ok", group="cache", check=rebuilt, timeout_s=120))
    damaged = tmp / "cache_direct"
    shutil.copytree(reference, damaged)
    (damaged / DATA_DIR / "state.json").unlink()
    cases.append(Case("load_cache on a damaged cache", fn=lambda: load_cache(damaged, "train"), group="cache",
                      says="is damaged; rebuild it"))
    return cases


# ------------------------------------------------------------------------------------ training faults
def training_cases(tmp: Path) -> list[Case]:
    """Checkpoints whose weights changed, non-finite training, two trainings into one run folder."""
    from safetensors.torch import load_file, save_file

    from vitmusic import runs
    from vitmusic.training.loop import train

    ToyTask, toy_config = _toy()

    def alter(path: Path) -> None:
        save_file({k: v + 0.25 for k, v in load_file(str(path)).items()}, str(path))

    def resume_altered(rel: str) -> Callable[[], None]:
        def fn():
            d = tmp / f"alt_{rel.replace('/', '_')}"
            cfg = toy_config(d, "train.max_steps=8", "train.save_every=4")
            _quiet(lambda: train(cfg, ToyTask(), progress=False, stop_after=4))
            alter(d / "run" / "checkpoints" / "step_4" / rel)
            train(cfg, ToyTask(), resume=True, progress=False)
        return fn

    def load_altered():
        d = tmp / "alt_final"
        import torch

        runs.save_module(torch.nn.Linear(3, 2), d, {"kind": "linear"})
        alter(d / runs.WEIGHTS_NAME)
        runs.load_weights(d)

    class NanLoss(ToyTask):
        def loss(self, model, batch):
            loss = super().loss(model, batch)
            return loss * float("nan") if len(self.losses) > 5 else loss

    def nan_loss():
        train(toy_config(tmp / "nan", "train.save_every=2"), NanLoss(), progress=False)

    def huge_lr():  # the config refuses lr=1e30; set behind its back, training still stops before saving
        cfg = toy_config(tmp / "huge", "train.save_every=1", "train.max_grad_norm=0")
        cfg.train.lr = 1e30
        train(cfg, ToyTask(), progress=False)

    def locked():
        run = tmp / "locked" / "run"
        holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom vitmusic import runs\n"
                                   "with runs.run_lock(sys.argv[1]):\n print('locked', flush=True)\n time.sleep(60)",
                                   str(run)], stdout=subprocess.PIPE, text=True)
        try:
            holder.stdout.readline()
            train(toy_config(tmp / "locked"), ToyTask(), progress=False)
        finally:
            holder.kill()
            holder.wait()

    def race():  # the issue lost a run in 2 of 3 tries
        from test_faults import race_two_trainings

        for attempt in range(3):
            race_two_trainings(tmp / f"race{attempt}")

    return [
        Case("resume from a checkpoint whose resume weights changed", fn=resume_altered("accelerate/model.safetensors"),
             group="training", says=CHANGED),
        Case("resume from a checkpoint whose exported weights changed", fn=resume_altered("model.safetensors"),
             group="training", says=CHANGED),
        Case("resume from a checkpoint whose optimizer state changed", fn=_optimizer_changed(tmp, ToyTask, toy_config),
             group="training", says=CHANGED),
        Case("load a model whose weights changed (same shapes)", fn=load_altered, group="training", says=CHANGED),
        Case("a loss that becomes NaN", fn=nan_loss, group="training", max_lines=2, says="the loss became nan",
             check=lambda: None if not (tmp / "nan" / "run" / "final").exists() else "left final/"),
        Case("lr 1e30 past the config check", fn=huge_lr, group="training", max_lines=2, says="training stopped",
             check=lambda: None if not (tmp / "huge" / "run" / "final").exists() else "left final/"),
        Case("train into a run folder another training holds", fn=locked, group="training",
             says="is in use by another training"),
        Case("two trainings started together into one run folder (3 tries)", fn=race, expect="ok", group="training",
             timeout_s=600),
    ]


def _optimizer_changed(tmp: Path, ToyTask, toy_config) -> Callable[[], None]:
    from vitmusic.training.loop import train

    def fn():
        d = tmp / "alt_opt"
        cfg = toy_config(d, "train.max_steps=8", "train.save_every=4")
        _quiet(lambda: train(cfg, ToyTask(), progress=False, stop_after=4))
        p = d / "run" / "checkpoints" / "step_4" / "accelerate" / "optimizer.bin"
        import torch

        state = torch.load(p, weights_only=True)
        next(iter(state["state"].values()))["exp_avg"] += 1.0  # a valid file with other values
        torch.save(state, p)
        train(cfg, ToyTask(), resume=True, progress=False)
    return fn


# ------------------------------------------------------------------------------------ leftovers of a kill
def leftovers_cases(tmp: Path) -> list[Case]:
    """What SIGKILL leaves (temporaries of a process that is gone) is removed by the next write; a rerun of
    evaluate over such a folder gives the undisturbed result."""
    from vitmusic import atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = f"p{dead.pid}h{atomic._host_tag()}"
    d = tmp / "leftovers"
    write_wav(d / "ref" / "a.wav", tone(2.0))
    write_wav(d / "gen" / "a.wav", tone(2.0, f=330))
    argv = ["evaluate", "--ref", str(d / "ref"), "--gen", str(d / "gen"), "--out", str(d / "out"), "--quiet",
            "--metrics", "chroma", "--n-boot", "20", "--sample-rate", "16000"]
    stale = [d / f".out.{tag}-abcdefgh.tmp", d / "out" / f".summary.{tag}-abcdefgh.tmp.json"]

    def plant():
        stale[0].mkdir(parents=True, exist_ok=True)
        (stale[0] / "summary.json").write_text("{half")
        stale[1].parent.mkdir(parents=True, exist_ok=True)
        stale[1].write_text("{half")

    plant()
    return [Case("evaluate over the leftovers of a killed evaluate", argv, expect="ok", group="leftovers",
                 check=lambda: next((f"left {p}" for p in stale if p.exists()), None)),
            Case("a file write over the leftovers of a killed writer", fn=lambda: (
                (d / f".report.{tag}-abcdefgh.tmp.md").write_text("half"),
                atomic.atomic_write_text(d / "report.md", "whole")), expect="ok", group="leftovers",
                 check=lambda: None if not (d / f".report.{tag}-abcdefgh.tmp.md").exists() else "left the temporary")]


# ------------------------------------------------------------------------------------ disk full
def _mount(folder: Path, size: str = "20m") -> bool:
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount")):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def _fill(folder: Path, leave_bytes: int = 0) -> None:
    st = os.statvfs(folder)
    with open(folder / ".filler", "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave_bytes))


def disk_full_cases(tmp: Path, run: Path | None = None) -> list[Case]:
    """Every writing command into a full 20 MB tmpfs (as the cache, run or output folder): one line, no
    temporary left, an earlier output folder unchanged. ``run``: a tiny trained run (generate cases)."""
    os.environ.setdefault("VITMUSIC_CACHE", str(tmp / "presets"))
    from vitmusic import cli

    disk = tmp / "disk"
    if not _mount(disk):
        return [Case("disk full (needs root and a tmpfs mount)", fn=lambda: None, expect="ok", group="diskfull")]
    prep = _tiny_manifest(tmp / "df")
    cache = tmp / "df_cache"
    assert _quiet(lambda: cli.main(["extract", "--no-progress", "--config", TINY, f"data.manifest={prep}",
                                    f"extract.cache_dir={cache}"])) == 0
    write_wav(tmp / "df_eval" / "ref" / "a.wav", tone(3.0))
    write_wav(tmp / "df_eval" / "gen" / "a.wav", tone(3.0, f=330))
    urmp = tmp / "df_urmp"
    make_piece(urmp, 1, "Jupiter", ["vn"], 4.0, video=write_video(tmp / "df_v.mp4", 40, 10, (48, 64)).read_bytes())

    def full(then: Callable[[], object] | None = None, leave_bytes: int = 0) -> Callable[[], None]:
        """Before a case: the earlier cases' files removed (an earlier evaluation kept), the disk filled up to
        ``leave_bytes`` free."""
        def setup():
            for p in disk.iterdir():
                if p.name != "eval_old":
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            if then is not None:
                then()
            _fill(disk, leave_bytes)
        return setup

    def freed():  # before a rerun: the filler removed, what the failed run left kept
        (disk / ".filler").unlink(missing_ok=True)

    cases: list[Case] = []

    def case(name: str, argv: list[str], check_of=None, setup=None, log_lines: int = 0, leave_bytes: int = 0,
             temporaries_check: bool = True):
        def check():
            return (_no_temporaries(disk)() if temporaries_check else None) or (check_of() if check_of else None)

        # log_lines: the command's own progress lines before the error ("feature cache ... is up to date")
        cases.append(Case(f"disk full: {name}", argv, group="diskfull", check=check, timeout_s=300,
                          setup=full(setup, leave_bytes), says="no space left on device", max_lines=1 + log_lines))

    def rerun(name: str, argv: list[str], check_of: Callable[[], str | None]):
        cases.append(Case(f"after freeing space: {name}", argv, expect="ok", group="diskfull", timeout_s=300,
                          setup=freed, check=lambda: _no_temporaries(disk)() or check_of()))

    tiny = ["--no-progress", "--config", TINY, f"data.manifest={prep}"]
    d = disk / "out"
    case("extract, the cache on it", ["extract", *tiny, f"extract.cache_dir={d}"])
    train = ["train", *tiny, f"extract.cache_dir={cache}", f"train.output_dir={d / 'run'}", "train.max_steps=2",
             "train.batch_size=2"]
    case("train, the run folder on it", [*train, "train.log_with=none"], log_lines=2,
         check_of=lambda: "left final/" if (d / "run" / "final").exists() else None)
    case("train with tensorboard, the run folder on it", train, log_lines=2)
    # the disk fills up midway; after space is freed, the rerun (train: --resume) gives an undisturbed run's result
    ref_cache = next(p for p in cache.iterdir() if not p.name.startswith("."))
    cache_bytes = sum(p.stat().st_size for p in ref_cache.rglob("*") if p.is_file())
    partial = d / f".{ref_cache.name}.partial"

    def resumable_or_nothing() -> str | None:
        """No temporary; a partial folder only with finished shards in it (what the rerun resumes from)."""
        left = next((p for p in disk.rglob(".*") if ".tmp" in p.name), None)
        if left is not None:
            return f"left {left}"
        return "left an empty partial folder" if partial.is_dir() and not any(partial.glob("shard_*")) else None

    def same_cache() -> str | None:  # the same rows (shards of 1 clip store them in other Arrow batches)
        from vitmusic.training.features import load_cache

        if partial.exists():
            return "left the partial folder"

        def rows(folder):
            ds = load_cache(folder)
            return [{k: str(v) for k, v in ds[i].items()} for i in range(len(ds))]

        same = (d / ref_cache.name).is_dir() and rows(d / ref_cache.name) == rows(ref_cache)
        return None if same else "the cache differs from an undisturbed extraction"

    extract = ["extract", *tiny, f"extract.cache_dir={d}", "extract.shard_size=1"]
    case("extract, 1-clip shards, the disk fills midway", extract, leave_bytes=int(cache_bytes * 0.6),
         temporaries_check=False, check_of=resumable_or_nothing)
    rerun("extract", extract, same_cache)
    steps = ["train", *tiny, f"extract.cache_dir={cache}", "train.batch_size=2", "train.log_with=none",
             "train.max_steps=4", "train.save_every=1"]
    ref_run = tmp / "df_ref_run"
    assert _quiet(lambda: cli.main([*steps, f"train.output_dir={ref_run}"])) == 0
    step_bytes = sum(p.stat().st_size for p in (ref_run / "checkpoints" / "step_1").rglob("*") if p.is_file())

    def same_model() -> str | None:
        from safetensors.torch import load_file

        final = d / "run" / "final" / "model.safetensors"
        if not final.is_file():
            return "no final/ model"
        got, want = load_file(str(final)), load_file(str(ref_run / "final" / "model.safetensors"))
        diff = max(float((got[k] - want[k]).abs().max()) for k in want)
        return None if diff == 0 else f"the resumed run's model differs from an undisturbed run's (max |diff| {diff:.3g})"

    case("train, checkpoints fill the disk midway", [*steps, f"train.output_dir={d / 'run'}"], log_lines=2,
         leave_bytes=int(step_bytes * 2.5),
         check_of=lambda: None if (d / "run" / "checkpoints" / "step_1").is_dir() else "no checkpoint kept")
    rerun("train --resume", ["train", "--resume", *steps[1:], f"train.output_dir={d / 'run'}"], same_model)
    case("prepare, the output on it", ["prepare", "--urmp", str(urmp), "--out", str(d), "--clip-seconds", "1"])
    case("synth-data, the output on it", ["synth-data", "--no-progress", "--out", str(d), "--pieces", "2",
                                          "--duration", "3", "--workers", "1"])
    ev = ["evaluate", "--ref", str(tmp / "df_eval" / "ref"), "--gen", str(tmp / "df_eval" / "gen"), "--quiet",
          "--metrics", "chroma", "--n-boot", "20", "--sample-rate", "16000", "--plot-clips", "1"]
    case("evaluate, the output on it", [*ev, "--out", str(d)])
    old, snapshot = disk / "eval_old", {}

    def earlier_evaluation():
        shutil.rmtree(old, ignore_errors=True)
        assert cli.main([*ev, "--out", str(old)]) == 0
        snapshot.update({p.name: p.read_bytes() for p in old.iterdir()})

    case("evaluate over an earlier evaluation folder", [*ev, "--out", str(old)],
         check_of=lambda: None if {p.name: p.read_bytes() for p in old.iterdir()} == snapshot
         else "the earlier evaluation folder changed", setup=earlier_evaluation)
    case("demo, the output on it", ["demo", "--out", str(d), "--no-progress"])
    if run is not None:
        video, batch = tmp / "df_v.mp4", tmp / "df_batch"
        batch.mkdir(exist_ok=True)
        for i in range(3):
            shutil.copy(video, batch / f"{i}.mp4")
        gen = ["generate", "--checkpoint", str(run), "--no-progress"]
        case("generate, --out on it", [*gen, "--video", str(video), "--out", str(d / "o.wav")])
        case("generate --mux, on it", [*gen, "--video", str(video), "--out", str(tmp / "df_o.wav"), "--mux",
                                       str(d / "o.mp4")])
        case("generate a batch, --out-dir on it", [*gen, "--videos", str(batch), "--out-dir", str(d)])
    # last: the model presets cache (VITMUSIC_CACHE) on the full disk, then put back
    case("extract, the model presets cache on it", ["extract", *tiny, f"extract.cache_dir={tmp / 'c2'}"],
         setup=lambda: os.environ.__setitem__("VITMUSIC_CACHE", str(disk / "presets")))

    def clean_up():
        os.environ["VITMUSIC_CACHE"] = str(tmp / "presets")
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=True)

    cases.append(Case("(the presets cache put back, the disk unmounted)", fn=clean_up, expect="ok", group="diskfull"))
    return cases
