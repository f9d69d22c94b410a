"""Time `vitmusic demo` end to end and per stage (wall and process CPU seconds, machine load).

    python scripts/benchmarks/bench_demo.py [--out DIR] [--seeds 0,1,2]

The goal is under ~5 minutes on 2 CPU cores. The CPU seconds are printed next to the wall-clock ones because
on a shared machine the wall clock mostly measures the other processes (the 1-minute load average is printed
before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="demo folder (default: a fresh temp folder)")
    parser.add_argument("--seeds", default=None, help="training seeds, e.g. 0,1,2 (the demo's --seeds)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="vitmusic_demo_bench_")) / "demo"
    os.environ.setdefault("VITMUSIC_CACHE", str(out.parent / "presets"))

    import dataclasses

    from vitmusic.workflow.demo import DEFAULT_SETTINGS, run_demo

    settings = DEFAULT_SETTINGS
    if args.seeds:
        settings = dataclasses.replace(settings, seeds=tuple(int(s) for s in args.seeds.split(",")))
    load0 = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    report = run_demo(out, settings=settings, progress=False)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stages = json.loads((out / "demo.json").read_text())["stage_seconds"]
    print(f"cores: {os.cpu_count()}, load average (1 min) before {load0:.1f}, after {os.getloadavg()[0]:.1f}")
    for name, sec in stages.items():
        print(f"  {name:45s} {sec:7.1f} s")
    print(f"total wall {wall:.1f} s, CPU of this process {cpu:.1f} s (+ {children.ru_utime:.1f} s in child "
          f"processes, e.g. ffmpeg); report: {report}")


if __name__ == "__main__":
    main()
