"""Embeddings for the distribution metrics (:mod:`vitmusic.metrics.fad`): one ``[W, D]`` array per clip.

Every embedder is a callable ``(audio [N], sample_rate) -> [W, D]`` with a ``describe()`` dict that results
carry, so that no FAD / KID is ever read without the embedding it was computed with. Names follow fadtk
(Gui et al. 2024, microsoft/fadtk):

- ``mel-stats`` (default, offline, no download): 1 s windows with 0.5 s hop at 16 kHz; per window the mean
  of a 64-band log-mel spectrogram (dB, 25 ms / 10 ms frames) and the mean and standard deviation of 20
  MFCCs -> D = 104. A transparent timbre / spectral-envelope descriptor, far less semantic than learned
  embeddings; its values are not comparable with published FAD numbers.
- transformers models by fadtk name, hub id or local folder (:data:`ALIASES`): CLAP (``ClapModel``'s
  normalised audio embedding per 10 s window, 1 s hop, as fadtk's ``clap-laion-*``), EnCodec (the encoder's
  continuous latents per frame, as fadtk's ``encodec-emb``), and Wav2Vec2 / HuBERT / MERT-style encoders
  (the hidden states of one layer per frame; ``MERT-v1-95M-6`` = layer 6, fadtk's suffix; unsuffixed =
  layer 12 as in fadtk). Given ``window_s``, frames are averaged per window instead.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from vitmusic.metrics.audio_checks import resample, validate_audio
from vitmusic.metrics.jit import ensure_jit_cache

DEFAULT_EMBEDDING = "mel-stats"


@runtime_checkable
class Embedder(Protocol):
    """Maps a waveform to a set of embeddings ``[W, D]`` (one per analysis window or frame)."""

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


def describe_embedder(embedder: Embedder) -> dict:
    """What results record about an embedding: its ``describe()`` or at least a name."""
    describe = getattr(embedder, "describe", None)
    if callable(describe):
        return dict(describe())
    return {"name": str(getattr(embedder, "name", type(embedder).__name__))}


def _windows(y: np.ndarray, sample_rate: int, window_s: float, hop_s: float) -> list[np.ndarray]:
    win, hop = int(round(window_s * sample_rate)), int(round(hop_s * sample_rate))
    if y.size <= win:
        return [y]
    return [y[i : i + win] for i in range(0, y.size - win + 1, hop)]


class MelStatsEmbedder:
    """Offline default embedding: log-mel means + MFCC means/stds per window (D = n_mels + 2 n_mfcc).

    Args:
        window_s, hop_s: analysis window and hop in seconds.
        sample_rate: analysis rate (audio is resampled to it).
        n_mels, n_mfcc: feature sizes.
    """

    name = DEFAULT_EMBEDDING

    def __init__(self, window_s: float = 1.0, hop_s: float = 0.5, sample_rate: int = 16000, n_mels: int = 64,
                 n_mfcc: int = 20) -> None:
        if not (0 < hop_s and 0 < window_s):
            raise ValueError("window_s and hop_s must be > 0")
        self.window_s, self.hop_s = window_s, hop_s
        self.sample_rate, self.n_mels, self.n_mfcc = sample_rate, n_mels, n_mfcc

    @property
    def dim(self) -> int:
        return self.n_mels + 2 * self.n_mfcc

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, "sample_rate": self.sample_rate, "pooling": "windows",
                "window_s": self.window_s, "hop_s": self.hop_s}

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        ensure_jit_cache()
        import librosa

        y = resample(validate_audio(audio, sample_rate, min_duration_s=0.1), sample_rate, self.sample_rate)
        n_fft, hop = int(0.025 * self.sample_rate), int(0.010 * self.sample_rate)
        mel = librosa.feature.melspectrogram(y=y, sr=self.sample_rate, n_fft=n_fft, hop_length=hop,
                                             n_mels=self.n_mels)
        log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=self.n_mfcc)
        frames_per_win = max(1, int(round(self.window_s / 0.010)))
        frames_per_hop = max(1, int(round(self.hop_s / 0.010)))
        starts = range(0, max(1, log_mel.shape[1] - frames_per_win + 1), frames_per_hop)
        rows = []
        for s in starts:
            lm, mf = log_mel[:, s : s + frames_per_win], mfcc[:, s : s + frames_per_win]
            rows.append(np.concatenate([lm.mean(axis=1), mf.mean(axis=1), mf.std(axis=1)]))
        return np.stack(rows).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class Alias:
    """A fadtk model name: where its weights are and how fadtk reads it."""

    source: str  # hub id
    layer: int | None = None  # hidden-state index of the unsuffixed name (None: last / not layered)
    trust_remote_code: bool = False  # MERT ships its own modelling code on the hub


#: fadtk names -> transformers checkpoints. Layered families accept fadtk's ``-<layer>`` suffix.
ALIASES: dict[str, Alias] = {
    "clap-laion-audio": Alias("laion/clap-htsat-unfused"),
    "clap-laion-music": Alias("laion/larger_clap_music"),
    "encodec-emb": Alias("facebook/encodec_24khz"),
    "encodec-emb-32k": Alias("facebook/encodec_32khz"),  # MusicGen's codec (not in fadtk)
    "MERT-v1-95M": Alias("m-a-p/MERT-v1-95M", layer=12, trust_remote_code=True),
    "MERT-v1-330M": Alias("m-a-p/MERT-v1-330M", layer=12, trust_remote_code=True),
    "w2v2-base": Alias("facebook/wav2vec2-base-960h", layer=12),
    "hubert-base": Alias("facebook/hubert-base-ls960", layer=12),
}


def resolve(spec: str, layer: int | None = None) -> tuple[str, str, int | None, bool]:
    """``(name, source, layer, trust_remote_code)`` of a fadtk name (``MERT-v1-95M-6``), hub id or folder.

    An explicit ``layer`` overrides the name's. A hub id or folder is named after itself (plus ``-<layer>``); an
    existing folder wins over a fadtk name.
    """
    base, suffix = spec, None
    match = re.fullmatch(r"(.+)-(\d+)", spec)
    if spec not in ALIASES and match and match.group(1) in ALIASES and ALIASES[match.group(1)].layer is not None:
        base, suffix = match.group(1), int(match.group(2))
    if base in ALIASES and not Path(spec).is_dir():  # a local folder of that name wins
        alias = ALIASES[base]
        chosen = layer if layer is not None else suffix if suffix is not None else alias.layer
        name = base if chosen == alias.layer else f"{base}-{chosen}"
        return name, alias.source, chosen, alias.trust_remote_code
    name = spec.rstrip("/\\") if not Path(spec).is_dir() else Path(spec).resolve().name
    return (name if layer is None else f"{name}-{layer}"), spec, layer, False


class TransformersAudioEmbedder:
    """Embeddings from a transformers audio model (hub id or local folder with its feature extractor).

    Args:
        name_or_path: model id or folder.
        revision: hub revision.
        layer: hidden-state index of encoder models (``hidden_states[layer]``; None = the last).
        window_s, hop_s: average frames per window of this length (None: one embedding per model frame, as
            fadtk; CLAP always embeds windows, default 10 s with 1 s hop).
        name: the name results carry (default: :func:`resolve`'s).
        trust_remote_code: let transformers run modelling code from the checkpoint (needed by MERT).
        max_chunk_s: frame models see the audio in chunks of at most this length (memory).
        batch_size: windows per forward pass.
    """

    def __init__(self, name_or_path: str | os.PathLike, *, revision: str | None = None, layer: int | None = None,
                 window_s: float | None = None, hop_s: float | None = None, name: str | None = None,
                 trust_remote_code: bool = False, max_chunk_s: float = 30.0, batch_size: int = 8) -> None:
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        self.name_or_path = str(name_or_path)
        kw = {"revision": revision, "trust_remote_code": trust_remote_code}
        config = AutoConfig.from_pretrained(self.name_or_path, **kw)
        self.model_type = str(config.model_type)
        self.kind = {"encodec": "encodec", "clap": "clap"}.get(self.model_type, "hidden")
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(self.name_or_path, **kw)
        self.model = AutoModel.from_pretrained(self.name_or_path, **kw).eval()
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        self.revision = getattr(config, "_commit_hash", None) or revision
        if self.kind == "clap" and window_s is None:
            window_s, hop_s = float(self.feature_extractor.max_length_s), 1.0
        if window_s is not None and not window_s > 0 or hop_s is not None and not hop_s > 0:
            raise ValueError("window_s and hop_s must be > 0")
        self.window_s, self.hop_s = window_s, (hop_s if hop_s is not None else window_s)
        self.layer, self.max_chunk_s, self.batch_size = layer, max_chunk_s, batch_size
        self.name = name or resolve(self.name_or_path, layer)[0]
        self.dim: int | None = None

    def describe(self) -> dict:
        return {"name": self.name, "model": self.name_or_path, "revision": self.revision,
                "model_type": self.model_type, "dim": self.dim, "sample_rate": self.sample_rate,
                "pooling": "frames" if self.window_s is None else "windows", "window_s": self.window_s,
                "hop_s": self.hop_s, "layer": self.layer}

    def _frames(self, pieces: list[np.ndarray]):
        """``[B, T', D]`` (``[B, 1, D]`` for CLAP) torch tensor for a batch of equally long pieces of audio."""
        inputs = self.feature_extractor(pieces if len(pieces) > 1 else pieces[0], sampling_rate=self.sample_rate,
                                        return_tensors="pt")
        if self.kind == "encodec":
            return self.model.encoder(inputs["input_values"]).transpose(1, 2)  # [B, D, T'] -> [B, T', D]
        if self.kind == "clap":
            out = self.model.get_audio_features(input_features=inputs["input_features"],
                                                is_longer=inputs.get("is_longer"))
            return getattr(out, "pooler_output", out)[:, None]  # one embedding per window
        out = self.model(**inputs, output_hidden_states=True)
        return out.hidden_states[-1 if self.layer is None else self.layer]

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        y = resample(validate_audio(audio, sample_rate, min_duration_s=0.1), sample_rate, self.sample_rate)
        with torch.inference_mode():
            if self.window_s is None:  # every frame of the model, the audio seen in chunks of similar length
                n_chunks = max(1, int(np.ceil(y.size / (self.max_chunk_s * self.sample_rate))))
                rows = torch.cat([self._frames([c])[0] for c in np.array_split(y, n_chunks)])
            else:  # frames averaged per window, windows of equal length batched
                wins = _windows(y, self.sample_rate, self.window_s, self.hop_s)
                rows = torch.cat([self._frames(wins[i : i + self.batch_size]).mean(dim=1)
                                  for i in range(0, len(wins), self.batch_size)])
        emb = rows.float().numpy().astype(np.float64)
        self.dim = int(emb.shape[1])
        return emb


def load_embedder(spec: str | None = None, *, layer: int | None = None,
                  revision: str | None = None) -> Embedder:
    """The embedder for ``--fad-embedding``: ``mel-stats`` (default), a fadtk name of :data:`ALIASES`
    (with fadtk's ``-<layer>`` suffix for layered families), a hub id or a local folder.

    Raises:
        ValueError: a layer for ``mel-stats``. Loading errors (unknown id, no network) propagate.
    """
    if spec in (None, "", DEFAULT_EMBEDDING):
        if layer is not None:
            raise ValueError(f"{DEFAULT_EMBEDDING} has no layers")
        return MelStatsEmbedder()
    name, source, chosen, remote = resolve(str(spec), layer)
    return TransformersAudioEmbedder(source, revision=revision, layer=chosen, name=name, trust_remote_code=remote)
