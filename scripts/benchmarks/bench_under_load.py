"""Wall time with a competing CPU-bound job vs without: the demo's stages and one real-size generation, with the
CLI's thread policy (this tree, :mod:`vitmusic.threads`) and, for comparison, another checkout (e.g. main before
the policy).

    python scripts/benchmarks/bench_under_load.py --work /tmp/under_load [--before-tree /path/to/old/checkout]
        [--what demo generate steps] [--competitors 1] [--rounds 1] [--demo-pieces 16] [--demo-steps 300]

Each measurement runs in a fresh process, as the CLI does (OpenMP reads its settings when torch loads): the
generation is ``vitmusic.cli.main(["generate", ...])`` on a random-init MusicGen-small (587 M parameters,
guidance 3) trained 2 steps on VideoMAE-base features (``bench_real_size.py`` builds both); the demo is
``run_demo`` with fewer pieces and head steps than ``vitmusic demo`` (its per-stage times and the head's time
per step are what compare with the full demo), after the same policy call the CLI makes. "loaded" starts
``--competitors`` processes spinning ``while True: pass`` for the duration of the run. Conditions are
interleaved (tree A idle, A loaded, B idle, B loaded, ...) so that a change in the machine's background load
hits all of them alike; the 1-minute load average before and after each run and the CPU seconds the run used
are printed with it, and everything lands in ``WORK/results.json``.

``steps`` is the quick check (minutes where the demo takes an hour on a busy machine): the time per step of
the two torch workloads the issue names, each in a fresh process for ``--step-seconds`` at most, with the
thread policy (``policy``) and with torch's defaults (``default``: the policy's variables removed before torch
loads): ``head`` is a head-training step (a 2-layer transformer, 128 wide, batch 8 x 120 frames, forward,
backward and AdamW, as the demo's MIDI head), ``decoder`` one real-size decoding step (24 residual 1024 <->
4096 matrix-vector layers, batch 4, as MusicGen-small generating one token).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# what the CLI does at start, then the demo with smaller settings; prints the demo's stage times as JSON
DEMO_CHILD = """
import dataclasses, json, sys
from pathlib import Path
try:
    from vitmusic.threads import apply_thread_policy
except ImportError:  # a checkout from before the thread policy
    apply_thread_policy = None
if apply_thread_policy is not None:
    apply_thread_policy()
from vitmusic.workflow.demo import DemoSettings, run_demo
try:
    from vitmusic.workflow.demo import MidiSettings
except ImportError:  # a checkout from before demo.py held the MIDI path's settings
    from vitmusic.workflow.demo_midi import MidiSettings
out, pieces, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
settings = dataclasses.replace(DemoSettings(), pieces=pieces, midi=MidiSettings(steps=steps))
run_demo(out, settings=settings, progress=False)
print("RESULT " + json.dumps(json.loads((out / "demo.json").read_text())["stage_seconds"]))
"""

GENERATE_CHILD = """
import sys
from vitmusic.cli import main
sys.exit(main(sys.argv[1:]))
"""

# one torch workload timed in a fresh process, with the CLI's thread policy or with torch's defaults
STEPS_CHILD = """
import json, os, sys, time
mode, kind, budget_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
if mode == "policy":
    from vitmusic.threads import apply_thread_policy
    apply_thread_policy()
else:  # torch's defaults: none of the policy's variables (OpenMP reads them when torch loads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME"):
        os.environ.pop(var, None)
import torch
torch.manual_seed(0)
if kind == "head":
    body = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(128, 4, 256, batch_first=True), 2)
    out = torch.nn.Linear(128, 88)
    opt = torch.optim.AdamW([*body.parameters(), *out.parameters()], 1e-3)
    x = torch.randn(8, 120, 128)
    def step():
        loss = out(body(x)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
else:
    ups = [torch.nn.Linear(1024, 4096) for _ in range(12)]
    downs = [torch.nn.Linear(4096, 1024) for _ in range(12)]
    x = torch.randn(4, 1024)
    @torch.no_grad()
    def step():
        h = x
        for up, down in zip(ups, downs):
            h = h + down(torch.relu(up(h)))
step()
times = []
t_end = time.perf_counter() + budget_s
while time.perf_counter() < t_end and len(times) < 200:
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
print("RESULT " + json.dumps({"steps": len(times), "median_ms": 1000 * times[len(times) // 2],
                              "threads": torch.get_num_threads()}))
"""

SETUP_CHILD = """
import sys
from pathlib import Path
from vitmusic.threads import apply_thread_policy
apply_thread_policy()  # as the CLI does, before torch loads: the setup is not timed, but it should not crawl
sys.path.insert(0, sys.argv[2])
import bench_real_size as b
from vitmusic.metrics.jit import ensure_jit_cache
work = Path(sys.argv[1])
ensure_jit_cache()  # the librosa cache is compiled once here, not inside a timed run
manifest = b.prepare_data(work)
gen = b.build_musicgen(work / "models" / "musicgen-small")
enc = b.build_encoder("videomae-base", work / "models" / "videomae-base")
b.run_stages(work / "stages", enc, gen, manifest)
(work / "setup.done").write_text("ok")
"""


def load_average() -> float:
    return os.getloadavg()[0]


def run_child(tree: Path, code: str, args: list[str], competitors: int, env: dict[str, str],
              timeout_s: float) -> dict:
    """``python -c code args`` with ``PYTHONPATH=tree``, next to ``competitors`` spinning processes; its wall and
    CPU seconds, the load average around it, and the JSON it printed after ``RESULT`` (if any). A run stopped
    at ``timeout_s`` reports that wall time as a lower bound (``"stopped": true``)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(competitors)]
    try:
        time.sleep(2.0 if competitors else 0.0)  # let the spinners reach the scheduler's steady state
        load0, cpu0 = load_average(), resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, capture_output=True, text=True,
                                  env={**os.environ, **env, "PYTHONPATH": str(tree)}, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc = None
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # before the spinners are reaped and counted
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    common = {"wall_s": wall, "cpu_s": cpu, "load_before": load0, "load_after": load_average()}
    if proc is None:  # subprocess.run killed and reaped it: its CPU seconds are counted
        return {**common, "result": None, "stopped": True}
    if proc.returncode != 0:
        raise RuntimeError(f"child in {tree} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    result = next((json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
    return {**common, "result": result, "stopped": False}


def setup_generate(work: Path, tree: Path, env: dict[str, str]) -> list[str]:
    """Build the real-size models, extract and train once (this tree); the ``generate`` argv to time."""
    stages = work / "stages"
    if not (work / "setup.done").is_file():
        print("setting up the real-size generation (build, extract, train 2 steps; once) ...", flush=True)
        subprocess.run([sys.executable, "-c", SETUP_CHILD, str(work), str(ROOT / "scripts" / "benchmarks")],
                       cwd=tree, check=True, env={**os.environ, **env, "PYTHONPATH": str(tree)})
    manifest = work / "prepared"
    return ["generate", "--manifest", str(manifest), "--split", "test", "--checkpoint", str(stages / "run"),
            "--guidance", "3", "--no-progress"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vitmusic_under_load")
    ap.add_argument("--before-tree", type=Path, default=None,
                    help="a vitmusic checkout to compare with (e.g. one from before the thread policy)")
    ap.add_argument("--what", nargs="+", choices=("demo", "generate", "steps"), default=["demo", "generate"])
    ap.add_argument("--competitors", type=int, default=1, help="CPU-bound processes in the loaded condition")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--demo-pieces", type=int, default=16)
    ap.add_argument("--demo-steps", type=int, default=300)
    ap.add_argument("--step-seconds", type=float, default=30.0, help="time spent on each 'steps' measurement")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds after which a run is stopped and reported as a lower bound")
    args = ap.parse_args(argv)

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    trees = {"this tree": ROOT} | ({"before": args.before_tree.resolve()} if args.before_tree else {})
    # one numba cache for all (compiled in the setup) and one preset cache: nothing is compiled inside a run
    env = {"NUMBA_CACHE_DIR": str(work / "numba"), "VITMUSIC_CACHE": str(work / "vitmusic-cache")}
    print(f"{os.cpu_count()} cores, affinity {len(os.sched_getaffinity(0))}, load average "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    generate_argv = setup_generate(work, ROOT, env) if "generate" in args.what else []
    if "demo" in args.what and "generate" not in args.what:
        subprocess.run([sys.executable, "-c", "from vitmusic.metrics.jit import ensure_jit_cache; "
                        "ensure_jit_cache()"], cwd=ROOT, check=True, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})

    def conditions(what: str) -> dict[str, Path]:
        """name -> tree of each condition measured for ``what`` ('steps': this tree, with and without its policy)."""
        if what == "steps":
            return {f"{kind}/{mode}": ROOT for kind in ("head", "decoder") for mode in ("policy", "default")}
        return trees

    def child(what: str, name: str, tag: str) -> list[str]:
        """The child's code and arguments; ``tag`` names the run's own output folder."""
        if what == "steps":
            kind, mode = name.split("/")
            return [STEPS_CHILD, mode, kind, str(args.step_seconds)]
        if what == "demo":
            return [DEMO_CHILD, str(work / "demo" / tag), str(args.demo_pieces), str(args.demo_steps)]
        return [GENERATE_CHILD, *generate_argv, "--out-dir", str(work / "gen" / tag)]

    results: list[dict] = []
    for r in range(args.rounds):
        for what in args.what:
            for name, tree in conditions(what).items():
                for competitors in (0, args.competitors):
                    tag = f"{what}-{name.replace(' ', '_').replace('/', '_')}-{competitors}-{r}"
                    code, *child_args = child(what, name, tag)
                    res = run_child(tree, code, child_args, competitors, env, args.timeout)
                    res.update(what=what, tree=name, competitors=competitors, round=r)
                    results.append(res)
                    more = ">" if res["stopped"] else " "
                    print(f"{what:8s} {name:15s} competitors={competitors} {more}{res['wall_s']:7.1f} s wall, "
                          f"{res['cpu_s']:7.1f} s CPU (load {res['load_before']:.1f} -> {res['load_after']:.1f})",
                          flush=True)
                    for key, value in (res["result"] or {}).items():
                        print(f"    {key:50s} {value:9.1f}", flush=True)
                    (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")

    print("\nloaded / idle (same condition, same round; wall time, or the median step for 'steps'):")
    for what in args.what:
        for name in conditions(what):
            for r in range(args.rounds):
                pair = {x["competitors"]: x for x in results
                        if x["what"] == what and x["tree"] == name and x["round"] == r}
                idle, loaded = pair[0], pair[args.competitors]
                key, unit = ("median_ms", "ms/step") if what == "steps" else ("wall_s", "s")
                if idle["stopped"] or loaded["stopped"]:
                    print(f"  {what:8s} {name:15s} round {r}: a run was stopped at --timeout: no ratio")
                    continue
                a, b = (loaded["result"][key], idle["result"][key]) if what == "steps" else (loaded[key], idle[key])
                line = f"  {what:8s} {name:15s} round {r}: {a:.1f} / {b:.1f} {unit} = {a / b:.2f}x"
                if what == "demo":
                    stage_ratios = {k: loaded["result"][k] / v for k, v in idle["result"].items() if v > 0}
                    worst = max(stage_ratios, key=stage_ratios.get)
                    line += f" (worst stage {worst}: {stage_ratios[worst]:.2f}x)"
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
