"""Listening-test costs: building stimuli per item, and rating submissions per second against the server.

    python scripts/benchmarks/bench_listening.py [--items 3] [--systems 3] [--excerpt 10] [--submissions 1000]

Stimuli: MUSHRA with ``--systems`` systems (+ hidden reference + anchor + open reference) for 20 s, 640x360,
30 fps performance videos and 48 kHz audio; prints seconds per item and per stimulus. Server: ``--submissions``
MUSHRA trials POSTed by 32 client threads against ``vitmusic listen``'s server on 127.0.0.1; prints
throughput and latency percentiles, and checks that every row landed. Writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def make_inputs(root: Path, items: int, systems: int, duration_s: float, sample_rate: int = 48000) -> dict:
    from vitmusic.data.audio import write_audio
    from vitmusic.data.videowriter import write_video

    rng = np.random.default_rng(0)
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    for i in range(items):
        base = rng.integers(0, 255, size=(360, 640, 3), dtype=np.uint8)
        frames = (np.roll(base, 4 * k, axis=1) for k in range(int(duration_s * 30)))
        write_video(root / "videos" / f"item{i}.mp4", frames, 30)
        write_audio(root / "ref" / f"item{i}.wav", 0.2 * np.sin(2 * np.pi * 220 * (i + 1) * t), sample_rate)
        for s in range(systems):
            y = 0.05 * (s + 1) * np.sin(2 * np.pi * 330 * (s + 1) * t) + 0.01 * rng.standard_normal(t.size)
            write_audio(root / f"sys{s}" / f"item{i}.wav", y, sample_rate)
    return {"videos": root / "videos", "ref": root / "ref",
            "systems": {f"sys{s}": root / f"sys{s}" for s in range(systems)}}


def bench_stimuli(work: Path, items: int, systems: int, excerpt_s: float) -> Path:
    from vitmusic.listening.stimuli import StimuliConfig, build_stimuli

    inputs = make_inputs(work / "in", items, systems, duration_s=max(20.0, excerpt_s + 1))
    cfg = StimuliConfig(systems=inputs["systems"], videos=inputs["videos"], ref=inputs["ref"], out=work / "out",
                        excerpt_s=excerpt_s, participants=20)
    t0, c0 = time.perf_counter(), time.process_time()
    result = build_stimuli(cfg, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"stimuli: {len(result.items)} items x {result.n_stimuli // len(result.items)} stimuli, "
          f"{excerpt_s:.0f} s excerpts at 640x360/30 fps, 48 kHz: {wall:.2f} s wall ({wall / len(result.items):.2f}"
          f" s/item, {wall / result.n_stimuli:.3f} s/stimulus), {cpu:.2f} s CPU in this process; "
          f"load avg {os.getloadavg()[0]:.1f}")
    return work / "out"


def bench_server(work: Path, submissions: int) -> None:
    from vitmusic.listening.server import make_server

    root = work / "srv"
    (root / "public").mkdir(parents=True)
    participants = (submissions + 9) // 10
    rows = ["participant,trial,position,stimulus_id,file"]
    jobs = []
    for p in range(participants):
        for t in range(1, 11):
            if len(jobs) < submissions:
                jobs.append((f"P{p:04d}", t))
            rows += [f"P{p:04d},{t},{k},{p:05d}{t:03d}{k},media/x.mp4" for k in range(1, 6)]
    (root / "public" / "manifest.csv").write_text("\n".join(rows) + "\n")
    (root / "public" / "test.json").write_text(json.dumps({"design": "mushra", "scale": [0, 100]}))
    server = make_server(root, "127.0.0.1", 0).start()
    host, port = server.address

    def submit(job) -> float:
        pid, t = job
        body = json.dumps({"participant": pid, "trial": t,
                           "values": {f"{int(pid[1:]):05d}{t:03d}{k}": 50 for k in range(1, 6)}})
        start = time.perf_counter()
        con = http.client.HTTPConnection(host, port, timeout=60)
        try:
            con.request("POST", "/api/submit", body=body, headers={"Content-Type": "application/json"})
            res = con.getresponse()
            res.read()
            assert res.status == 200, res.status
        finally:
            con.close()
        return time.perf_counter() - start

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            latencies = np.array(list(pool.map(submit, jobs)))
    finally:
        server.stop()
    wall = time.perf_counter() - t0
    n_rows = sqlite3.connect(root / "ratings.sqlite").execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    p50, p95, p99 = np.percentile(latencies * 1000, [50, 95, 99])
    print(f"server: {submissions} trial submissions (5 ratings each) from 32 threads in {wall:.2f} s = "
          f"{submissions / wall:.0f}/s; latency p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms; "
          f"rows stored {n_rows}/{5 * submissions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3)
    parser.add_argument("--systems", type=int, default=3)
    parser.add_argument("--excerpt", type=float, default=10.0)
    parser.add_argument("--submissions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench_stimuli(work, args.items, args.systems, args.excerpt)
        bench_server(work, args.submissions)


if __name__ == "__main__":
    main()
