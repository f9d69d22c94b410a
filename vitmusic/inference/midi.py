"""The MIDI path: video -> per-part notes (trained transcription head) -> MIDI -> audio (a chosen synthesizer).

A run trained with ``task: transcription`` exports its head to ``RUN/final/`` (``model.safetensors`` +
``config.json`` whose ``extra`` holds the run config and the frozen encoder's fingerprint).
:func:`load_pipeline` rebuilds encoder + head from it; :meth:`MidiPipeline.generate_video` does::

    frames at encoder.sample_fps(rate_hz), window by window       uint8 [T_w, H, W, 3]
    -> P horizontal slots, each through the frozen encoder          embeds [1, P, T, D]
    -> transcription head -> onset/frame/offset/velocity probs      [1, P, T, K]
    -> decode_notes per part -> pretty_midi (one track per part, the instrument's GM program)
    -> synthesizer: builtin | fluidsynth | diffusion                wav [N], N = round(duration_s * sample_rate)

The instruments of the parts (hence ``P``) come from ``instruments=`` (``--instruments vn,vc``, or any name
of :mod:`vitmusic.data.instruments`: ``piano,harp``) or from a URMP-style file name
(``Vid_01_Jupiter_vn_vc.mp4``). An instrument the head has no embedding row for (a head trained on URMP's 13
instruments given a harp) is transcribed as an unknown instrument, with a warning; its MIDI track still
gets the instrument's program.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitmusic.config import Config
from vitmusic.encoders.video import FramesVideo, embed_video
from vitmusic.errors import ConfigError, DataError
from vitmusic.generators.midi.slots import PartSlotEncoder
from vitmusic.generators.midi.transcription import (
    TranscriptionHead,
    decode_parts,
    instrument_index,
    load_head,
)
from vitmusic.inference.models import ENCODER_KEYS, load_run_encoder, mismatches
from vitmusic.runs import read_run

log = logging.getLogger(__name__)

__all__ = ["MidiPipeline", "Transcription", "instruments_from_name", "load_pipeline"]


def instruments_from_name(video: str | os.PathLike | FramesVideo) -> list[str] | None:
    """Canonical instrument codes from a URMP-style name (``Vid_01_Jupiter_vn_vc.mp4``, ``01_Duo_piano_vn.mp4``)."""
    from vitmusic.data.instruments import canonical_code
    from vitmusic.data.urmp import parse_piece_name

    if not isinstance(video, (str, os.PathLike)):  # frames in memory have no file name
        return None
    stem = Path(video).stem
    for name in (stem[4:] if stem.startswith("Vid_") else None, stem):
        if name:
            try:
                return [canonical_code(t) for t in parse_piece_name(name)[2]]
            except (DataError, ValueError):
                continue
    return None


@dataclass
class Transcription:
    """Notes of a video's parts. ``parts[k]``: ``[N, 3]`` (onset_s from the span start, f0_hz, duration_s)."""

    parts: list[np.ndarray]
    velocities: list[np.ndarray]
    instruments: list[str]
    duration_s: float

    def to_midi(self):
        from vitmusic.generators.midi.export import notes_to_midi

        return notes_to_midi(self.parts, self.instruments, velocities=self.velocities)


class MidiPipeline:
    """A trained video -> notes head with its frozen encoder and a synthesizer, ready to generate.

    Args:
        config: the run's resolved config (encoder rate, decoding thresholds, synth defaults).
        encoder: the frozen :class:`~vitmusic.encoders.VisionEncoder`.
        head: the trained :class:`~vitmusic.generators.midi.transcription.TranscriptionHead`.
        synth: ``"builtin"``, ``"fluidsynth"`` or ``"diffusion"`` (default ``transcription.synth``).
        soundfont: ``.sf2`` for fluidsynth (default ``transcription.soundfont`` or pretty_midi's bundled one).
        diffusion: a loaded diffusion synthesizer (``.sample_rate``,
            ``.synthesize(pm, duration_s, *, seed, instruments) -> wav``),
            required for ``synth="diffusion"``.
        instruments: the parts' URMP codes for every video (default: from each video's file name).
        checkpoint: where the head was loaded from (for :meth:`describe`).
    """

    def __init__(self, config: Config, encoder, head: TranscriptionHead, *, synth: str | None = None,
                 soundfont: str | None = None, diffusion=None, instruments: list[str] | None = None,
                 checkpoint: Path | None = None) -> None:
        from vitmusic.generators.midi.export import SYNTHS, check_fluidsynth

        if head.in_dim != encoder.embed_dim:
            raise ConfigError(f"the head expects {head.in_dim}-dim embeddings, the encoder gives {encoder.embed_dim}")
        self.config, self.encoder, self.head = config, encoder, head.eval()
        self.synth = synth or config.transcription.synth
        if self.synth not in (*SYNTHS, "diffusion"):
            raise ConfigError(f"unknown synth {self.synth!r}; choose from {', '.join((*SYNTHS, 'diffusion'))}")
        if self.synth == "diffusion" and diffusion is None:
            raise ConfigError("--synth diffusion needs --synth-checkpoint DIR (a trained diffusion synthesizer)")
        self.soundfont = soundfont or config.transcription.soundfont
        if self.synth == "fluidsynth":
            self.soundfont = check_fluidsynth(self.soundfont)  # fail before any video is read
        self.diffusion = diffusion
        from vitmusic.data.instruments import canonical_code

        self.instruments = [canonical_code(c, ConfigError) for c in instruments] if instruments else None
        self.checkpoint = checkpoint
        self.last_midi = None  # the MIDI of the latest generate_video call
        self._warned: list[str] = []  # instruments outside the head's table, warned about once

    @property
    def sample_rate(self) -> int:
        if self.synth == "diffusion":
            return int(self.diffusion.sample_rate)
        return int(self.config.transcription.sample_rate)

    @property
    def default_seed(self) -> int:
        return int(self.config.generate.seed)

    @property
    def rate_hz(self) -> float:
        return float(self.config.encoder.rate_hz)

    def describe(self) -> dict[str, Any]:
        return {"path": "midi", "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
                "encoder": self.config.encoder.name, "rate_hz": self.rate_hz, "synth": self.synth,
                "soundfont": self.soundfont if self.synth == "fluidsynth" else None,
                "sample_rate": self.sample_rate}

    def parts_of(self, video: str | os.PathLike | FramesVideo) -> list[str]:
        """The instrument codes of a video's parts (given, else from its URMP-style file name)."""
        codes = self.instruments or instruments_from_name(video)
        if not codes:
            raise ConfigError(f"cannot tell the instruments of {video} from its name: give them, e.g. "
                              "--instruments vn,vc (one instrument per performer, left to right: URMP codes or names "
                              "such as piano, harp, drum-kit)")
        return codes

    # ------------------------------------------------------------------ video -> notes
    @torch.no_grad()
    def embed_parts(self, video: str | os.PathLike | FramesVideo, num_parts: int, *, t0_s: float = 0.0,
                    t1_s: float | None = None, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Per-part embeddings ``[1, P, T, D]``, mask ``[1, P, T]`` and the span's duration in seconds.

        Raises:
            DataError: missing, empty or corrupt video, or a range outside it.
        """
        slots = PartSlotEncoder(self.encoder, num_parts, slots=self.config.transcription.slots)
        emb = embed_video(slots, video, rate_hz=self.rate_hz, t0_s=t0_s,
                          t1_s=t1_s, clip_to_video=True, progress=progress)  # embeds [1, T, P * D]
        T = emb.embeds.shape[1]
        e = emb.embeds.reshape(1, T, num_parts, -1).permute(0, 2, 1, 3)  # [1, P, T, D]
        m = emb.mask[:, None].expand(1, num_parts, T).clone()
        return e, m, emb.duration_s

    @torch.no_grad()
    def transcribe_video(self, video: str | os.PathLike | FramesVideo, *, t0_s: float = 0.0, t1_s: float | None = None,
                         progress: bool = False) -> Transcription:
        """Notes per part of a video's ``[t0_s, t1_s)`` (times relative to ``t0_s``)."""
        probs, mask, codes, duration_s = self.predict_video(video, t0_s=t0_s, t1_s=t1_s, progress=progress)
        t = self.config.transcription
        decoded = decode_parts(probs, mask, rate_hz=self.rate_hz, min_midi=self.head.min_midi,
                               onset_threshold=t.onset_threshold, frame_threshold=t.frame_threshold,
                               offset_threshold=t.offset_threshold, frame_onsets=t.frame_onsets)
        parts = []
        for notes, _ in decoded:  # a note may not outlast the span
            notes = notes[notes[:, 0] < duration_s].copy()
            notes[:, 2] = np.minimum(notes[:, 2], duration_s - notes[:, 0])
            parts.append(notes)
        # URMP notes carry no velocity, so the head's velocity output is untrained: a constant velocity
        velocities = [np.full(len(p), 0.8) for p in parts]
        return Transcription(parts, velocities, codes, duration_s)

    @torch.no_grad()
    def predict_video(self, video: str | os.PathLike | FramesVideo, *, t0_s: float = 0.0, t1_s: float | None = None,
                      progress: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, list[str], float]:
        """The head's outputs on a video's ``[t0_s, t1_s)``: ``({"onset", "frame", "offset", "velocity"}:
        [P, T, K] probabilities, mask [P, T], the parts' instrument codes, the span's duration in seconds)``."""
        codes = self.parts_of(video)
        embeds, mask, duration_s = self.embed_parts(video, len(codes), t0_s=t0_s, t1_s=t1_s, progress=progress)
        device = next(self.head.parameters()).device
        rows = [instrument_index(c, self.head.num_codes) for c in codes]
        unknown = sorted({c for c, r in zip(codes, rows) if r == self.head.num_codes})
        if unknown and unknown != self._warned:
            self._warned = unknown
            log.warning("the transcription head has no embedding for %s (its table: %s): transcribed as an unknown "
                        "instrument", ", ".join(unknown), " ".join(self.head.instrument_codes))
        instruments = torch.tensor([rows], dtype=torch.long)
        probs = self.head.predict(embeds.to(device), mask.to(device), instruments.to(device))
        return {k: v[0] for k, v in probs.items()}, mask[0].numpy(), codes, duration_s

    # ------------------------------------------------------------------ notes -> audio
    def render(self, pm, instruments: list[str], duration_s: float, *, seed: int = 0) -> np.ndarray:
        """Audio ``[round(duration_s * sample_rate)]`` of a MIDI performance with the pipeline's synthesizer."""
        from vitmusic.generators.midi.export import render_midi

        n = int(round(duration_s * self.sample_rate))
        if self.synth == "diffusion":
            wav = np.asarray(self.diffusion.synthesize(pm, duration_s, seed=seed, instruments=instruments),
                             dtype=np.float32).reshape(-1)
            return wav[:n] if len(wav) >= n else np.pad(wav, (0, n - len(wav)))
        return render_midi(pm, self.sample_rate, duration_s, synth=self.synth, soundfont=self.soundfont,
                           instruments=instruments, seed=seed)

    def generate_video(self, video: str | os.PathLike | FramesVideo, *, t0_s: float = 0.0, t1_s: float | None = None,
                       guidance_scale: float | None = None, seed: int | None = None, progress: bool = False,
                       midi_path: str | os.PathLike | None = None) -> np.ndarray:
        """Audio for a video's ``[t0_s, t1_s)``, exactly as long as the span; also writes ``midi_path``.

        ``guidance_scale`` is accepted for the common ``generate`` interface and ignored (nothing is sampled
        by guidance on this path). The MIDI is kept in :attr:`last_midi`.
        """
        from vitmusic.generators.midi.export import write_midi

        tr = self.transcribe_video(video, t0_s=t0_s, t1_s=t1_s, progress=progress)
        pm = tr.to_midi()
        self.last_midi = pm
        if midi_path is not None:
            write_midi(pm, midi_path)
        return self.render(pm, tr.instruments, tr.duration_s, seed=self.default_seed if seed is None else int(seed))


def load_pipeline(checkpoint: str | os.PathLike, *, device: str | torch.device | None = None,
                  synth: str | None = None, synth_checkpoint: str | os.PathLike | None = None,
                  soundfont: str | None = None, instruments: list[str] | None = None,
                  strict: bool = True, tasks: tuple[str, ...] = ("transcription",)) -> MidiPipeline:
    """Load a run trained with ``task: transcription`` for generation.

    Args:
        checkpoint: ``RUN`` (uses ``RUN/final``), ``RUN/checkpoints/step_<n>`` or an exported head folder.
        device: where to run (default: CUDA when available, else CPU).
        synth: ``builtin`` / ``fluidsynth`` / ``diffusion`` (default: the run's ``transcription.synth``).
        synth_checkpoint: folder of a trained diffusion synthesizer (``synth="diffusion"``).
        soundfont: ``.sf2`` for fluidsynth.
        instruments: instruments of the parts, left to right: URMP codes or other names of
            :mod:`vitmusic.data.instruments` (default: from each video's file name).
        strict: refuse an encoder that differs from the one the head was trained with.
        tasks: the model kinds whose runs hold a transcription head (a kind that trains the same head, e.g.
            ``score-informed``, loads it through here).

    Raises:
        ConfigError: no checkpoint, not a transcription run, a mismatching encoder, an unavailable synth.
    """
    from vitmusic.data.instruments import canonical_code

    if instruments:
        instruments = [canonical_code(c, ConfigError) for c in instruments]
    if synth_checkpoint is not None and synth not in (None, "diffusion"):
        raise ConfigError(f"--synth-checkpoint is for --synth diffusion, not {synth}")
    synth = "diffusion" if synth is None and synth_checkpoint is not None else synth
    folder, config, stored = read_run(checkpoint)
    if config.task not in tasks:
        raise ConfigError(f"{folder}: trained with task={config.task}, not a video -> notes run (load it "
                          "through its kind: vitmusic.load_pipeline / vitmusic generate)")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        head = load_head(folder, device=device)
    except DataError as e:
        raise ConfigError(str(e)) from e
    diffusion = None
    if (synth or config.transcription.synth) == "diffusion":
        if synth_checkpoint is None:
            raise ConfigError("--synth diffusion needs --synth-checkpoint DIR (a trained diffusion synthesizer)")
        from vitmusic.generators.synthesizer.diffusion import load_diffusion_synth

        diffusion = load_diffusion_synth(synth_checkpoint, device=device)
    encoder = load_run_encoder(config, device, adapters=False)
    diffs = mismatches(stored.get("encoder", {}), encoder.fingerprint(), ENCODER_KEYS)
    if diffs:
        msg = f"{folder}: the encoder differs from the one the head was trained with ({'; '.join(diffs)})"
        if strict:
            raise ConfigError(msg)
        log.warning(msg)
    return MidiPipeline(config, encoder, head, synth=synth, soundfont=soundfont, diffusion=diffusion,
                        instruments=instruments, checkpoint=folder)
