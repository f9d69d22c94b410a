"""Small inputs for the listening-test tests: videos, reference audio and system outputs paired by name."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np

from vitmusic.data.audio import write_audio
from vitmusic.data.videowriter import write_video

SR = 16000
FPS = 10


def tone(freq_hz: float, duration_s: float, sample_rate: int = SR, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise (so the 3.5 kHz anchor differs from it)."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    y = sum(amp / k * np.sin(2 * np.pi * freq_hz * k * t) for k in range(1, 8))
    y = y + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return y.astype(np.float32)


def make_inputs(root: Path, items=("piece1", "piece2"), systems=("sysA", "sysB"), duration_s: float = 3.0,
                missing: dict[str, list[str]] | None = None) -> dict:
    """Write ``root/videos/<item>.mp4`` (picture only), ``root/ref/<item>.wav`` and ``root/<system>/<item>.wav``.

    ``missing`` maps a system to items it lacks. Returns the folders: {"videos", "ref", "systems": {name: dir}}.
    """
    missing = missing or {}
    rng = np.random.default_rng(1)
    for i, item in enumerate(items):
        frames = rng.integers(0, 255, size=(int(duration_s * FPS), 48, 64, 3), dtype=np.uint8)
        write_video(root / "videos" / f"{item}.mp4", frames, FPS)
        write_audio(root / "ref" / f"{item}.wav", tone(220 * (i + 1), duration_s), SR)
        for j, name in enumerate(systems):
            if item in missing.get(name, []):
                continue
            amp = 0.05 * (j + 1)  # different levels: normalisation must equalise them
            write_audio(root / name / f"{item}.wav", tone(330 + 50 * j, duration_s + 0.5, amp=amp, seed=j), SR)
    return {"videos": root / "videos", "ref": root / "ref", "systems": {s: root / s for s in systems}}


def tokens(out: Path) -> dict[str, str]:
    """``{participant id: login token}`` of a stimuli folder (``OUT/private/participants.csv``)."""
    import csv

    with (Path(out) / "private" / "participants.csv").open(newline="") as f:
        return {row["participant"]: row["token"] for row in csv.DictReader(f)}


def http_exchange(address, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes to a server at ``address`` (host, port, ...) and return all it answers until it closes
    (a reset or a timeout ends the answer too: hostile requests may be cut off)."""
    with socket.create_connection(tuple(address[:2]), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)
