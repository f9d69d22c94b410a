"""Feature cache: every clip of a manifest encoded once (video embeddings + target audio codes), on disk.

Training from the cache skips video decoding, the vision encoder and Encodec entirely. A cache lives at
``<cache_dir>/<key>/`` where ``key`` is the sha256 of a canonical JSON *fingerprint* of everything that
determines its content (``fingerprint.json`` next to the data says what went in):

* the encoder's own fingerprint (weights hash or hub revision, preprocessing, adapters),
* the embedding rate and the video frame rate it implies,
* the audio codec: the generator's fingerprint (model config hash, sample rate, frame rate, codebooks),
* the clips: id, split, start/end times and the video/mix paths with their size and mtime,
* :data:`CACHE_VERSION` of this code.

So changing the frame rate, the encoder, the generator or a source file gives a new key: a stale cache is
never reused, and an unchanged configuration reuses the cache without re-encoding anything.

Rows (a ``datasets`` Arrow dataset, ``save_to_disk`` layout under ``data/``): ``clip_id``, ``piece``,
``split``, ``start_s``, ``end_s``, ``embeds`` float32 ``[T, D]``, ``mask`` bool ``[T]`` and ``codes``
stored time-major as int32 ``[T_a, K]`` (Arrow allows only the first axis to vary); :class:`FeatureDataset`
returns them as ``[K, T_a]``.

**Frame cache** (``store="frames"``), for runs whose encoder trains (LoRA adapters change the embeddings at
every step, so they cannot be cached, but decoding video every step is what a cache exists to avoid): the
same layout with ``pixels`` uint8 ``[T, C, h, w]`` instead of ``embeds`` -- the frames passed through the
checkpoint's image processor up to the model's input size (:meth:`VisionEncoder.preprocess_frames
<vitmusic.encoders.VisionEncoder.preprocess_frames>`: resize / center crop only). Training then only
rescales / normalizes them (an exact table lookup) and runs the encoder with its adapters in the graph.
Its key (:func:`frame_cache_fingerprint`) covers what determines the stored pixels -- the image processor's
geometric settings, the decoding frame rate, the codec and the clips -- and not the encoder's weights or
adapters, so LoRA runs of any rank share one frame cache.

Clips are decoded and encoded by :mod:`vitmusic.encoders.video` (``read_clip_frames``, ``encode_clips``),
the code ``embed_video`` runs at generation time: a clip's cached embeddings are those of ``embed_video``
over the same span.

Extraction writes shards of ``extract.shard_size`` clips into ``<cache_dir>/.<key>.partial/``; an
interrupted run resumes by skipping finished shards (a shard that no longer loads with its rows is redone),
and the final folder appears atomically. A run that fails before finishing any shard removes the partial
folder. Under
``accelerate launch --num_processes N`` the N processes encode every N-th shard each and the main process
joins them: the cache equals the one a single process writes (same key, same rows in the same order).

A finished cache holds ``checksums.json``: the size and sha256 of every file in it. Before a cache is reused it
is checked against them (:func:`verify_cache`); a damaged one (a file cut short, overwritten, deleted, garbage
JSON) is reported in one warning line and rebuilt. A cache written before checksums existed is checked by
reading it whole and then gets its checksums.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitmusic.atomic import atomic_path, atomic_write_text, disk_full_error, exclusive_lock, is_disk_full
from vitmusic.encoders.video import encode_clips, preprocess_clips, read_clip_frames
from vitmusic.errors import DataError
from vitmusic.training.distributed import check_divisible, process_info, wait_for_everyone

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the stored content or its computation changes
FRAME_CACHE_VERSION = 1  # the same for frame caches
STORES = ("embeddings", "frames")
FINGERPRINT_NAME = "fingerprint.json"
DATA_DIR = "data"
CHECKSUMS_NAME = "checksums.json"

# (path, start_s, end_s, fps) -> uint8 [T, H, W, 3] frames decoded at fps
FrameReader = Callable[[str, float, float, float], np.ndarray]
# (path, start_s, end_s, sample_rate) -> float32 [N] mono audio
AudioReader = Callable[[str, float, float, int], np.ndarray]


def _file_stamp(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return {"path": str(path), "missing": True}
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def clip_identity(clip: dict[str, Any]) -> dict[str, Any]:
    """What of a manifest row determines its cached features (times, sources and their file stamps)."""
    return {
        "clip_id": clip["clip_id"],
        "split": clip["split"],
        "start_s": float(clip["start_s"]),
        "end_s": float(clip["end_s"]),
        "video": _file_stamp(clip.get("video")),
        "audio": _file_stamp(audio_source(clip)),
    }


def audio_source(clip: dict[str, Any]) -> str | None:
    """The target audio of a clip: the mix, else the video's own audio track."""
    return clip.get("mix") or clip.get("video")


def codec_fingerprint(generator_fp: dict[str, Any]) -> dict[str, Any]:
    """The part of a generator fingerprint that determines its audio codes (not the conditioning entry)."""
    keys = ("id", "kind", "revision", "config_sha256", "sample_rate", "frame_rate", "num_codebooks")
    return {k: generator_fp.get(k) for k in keys}


def cache_fingerprint(
    clips: Sequence[dict[str, Any]],
    encoder_fp: dict[str, Any],
    generator_fp: dict[str, Any],
    rate_hz: float,
    sample_fps: float,
) -> dict[str, Any]:
    """The JSON-able fingerprint whose hash is the cache key (see the module docstring)."""
    return {
        "version": CACHE_VERSION,
        "encoder": encoder_fp,
        "rate_hz": float(rate_hz),
        "sample_fps": float(sample_fps),
        "codec": codec_fingerprint(generator_fp),
        "clips": [clip_identity(c) for c in clips],
    }


def frame_cache_fingerprint(
    clips: Sequence[dict[str, Any]],
    preprocess_fp: dict[str, Any],
    generator_fp: dict[str, Any],
    sample_fps: float,
) -> dict[str, Any]:
    """The fingerprint whose hash is a frame cache's key: what determines the stored pixels and codes.

    Args:
        clips: manifest rows.
        preprocess_fp: the encoder's ``preprocess_fingerprint()`` (image processor settings, not weights).
        generator_fp: the generator's fingerprint (only its codec part is used).
        sample_fps: video decoding rate in frames/s.
    """
    return {
        "version": FRAME_CACHE_VERSION,
        "content": "preprocessed_frames",
        "preprocess": preprocess_fp,
        "sample_fps": float(sample_fps),
        "codec": codec_fingerprint(generator_fp),
        "clips": [clip_identity(c) for c in clips],
    }


def cache_key(fingerprint: dict[str, Any]) -> str:
    """sha256 (first 24 hex digits) of the canonical JSON of ``fingerprint``."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def read_clip_audio(path: str, start_s: float, end_s: float, sample_rate: int) -> np.ndarray:
    """Mono float32 ``[N]`` audio of ``[start_s, end_s)``, exactly ``round(duration * sample_rate)`` long."""
    from vitmusic.data.audio import load_audio

    y, _ = load_audio(path, sample_rate=sample_rate, t0=start_s, t1=end_s)
    n = int(round((end_s - start_s) * sample_rate))
    # exact length: the codes of equal-length clips then line up, whatever the resampler's rounding
    return np.pad(y[:n], (0, max(0, n - len(y))))


def encode_audio_batch(generator, audio: list[np.ndarray]) -> list[np.ndarray]:
    """Encodec codes ``[T_a, K]`` per clip; equal-length clips go through in one batch."""
    out: list[np.ndarray | None] = [None] * len(audio)
    groups: dict[int, list[int]] = {}
    for i, y in enumerate(audio):
        groups.setdefault(len(y), []).append(i)
    for idx in groups.values():
        codes = generator.encode_audio(torch.from_numpy(np.stack([audio[i] for i in idx])))  # [b, K, T_a]
        for j, i in enumerate(idx):
            out[i] = codes[j].T.cpu().numpy().astype(np.int32)
    return out  # type: ignore[return-value]


def embed_features(row: dict[str, Any]) -> dict[str, Any]:
    """Arrow types of the video columns of a feature cache (``embeds`` float32 ``[T, D]``, ``mask``)."""
    from datasets import Array2D, Sequence, Value

    return {
        "embeds": Array2D(shape=(None, row["embeds"].shape[1]), dtype="float32"),
        "mask": Sequence(Value("bool")),
    }


def pixel_features(row: dict[str, Any]) -> dict[str, Any]:
    """Arrow types of the video columns of a frame cache (``pixels`` uint8 ``[T, C, h, w]``, ``mask``)."""
    from datasets import Array4D, Sequence, Value

    return {
        "pixels": Array4D(shape=(None, *row["pixels"].shape[1:]), dtype="uint8"),
        "mask": Sequence(Value("bool")),
    }


def _features(video: dict[str, Any], num_codebooks: int):
    from datasets import Array2D, Features, Value

    return Features(
        {
            "clip_id": Value("string"),
            "piece": Value("string"),
            "split": Value("string"),
            "start_s": Value("float64"),
            "end_s": Value("float64"),
            **video,
            "codes": Array2D(shape=(None, num_codebooks), dtype="int32"),
        }
    )


@contextlib.contextmanager
def _quiet_datasets():
    """Hide datasets' per-shard "Saving the dataset" bars under our own bar (restored afterwards)."""
    from datasets.utils import logging as ds_logging

    was = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            ds_logging.enable_progress_bar()


def find_cache(cache_dir: str | os.PathLike, key: str) -> Path | None:
    """The finished cache folder for ``key``, or None (not checked: see :func:`verify_cache`)."""
    folder = Path(cache_dir) / key
    return folder if (folder / FINGERPRINT_NAME).is_file() and (folder / DATA_DIR).is_dir() else None


def _checksums(folder: Path) -> dict[str, dict[str, Any]]:
    from vitmusic.runs import file_sha256

    files = [folder / FINGERPRINT_NAME, *sorted(p for p in (folder / DATA_DIR).rglob("*") if p.is_file())]
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)} for p in files}


def _read_whole(dataset_dir: Path, num_rows: int | None) -> str | None:
    """A problem found by loading a saved dataset and reading every column of every row, else None."""
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(dataset_dir))
        if num_rows is not None and len(ds) != num_rows:
            return f"{len(ds)} rows where {num_rows} clips were encoded"
        for batch in ds.with_format("arrow").iter(batch_size=256):
            batch.validate(full=True)
    except Exception as e:  # whatever datasets / pyarrow raise on a damaged file: OSError, IndexError, ...
        return f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
    return None


def verify_cache(folder: str | os.PathLike, num_rows: int | None = None) -> str | None:
    """Check a finished cache folder against its ``checksums.json``; returns the first problem, or None.

    A folder without ``checksums.json`` (written by an older vitmusic, or the file lost) is read whole
    instead (every row of every column, and ``num_rows`` when given); if that succeeds its checksums are
    written, so the next check is the fast one.
    """
    folder = Path(folder)
    if not (folder / DATA_DIR).is_dir():
        return f"{DATA_DIR}/ is missing"
    if not (folder / FINGERPRINT_NAME).is_file():
        return f"{FINGERPRINT_NAME} is missing"
    sums_path = folder / CHECKSUMS_NAME
    if not sums_path.is_file():
        problem = _read_whole(folder / DATA_DIR, num_rows)
        if problem is None:
            atomic_write_text(sums_path, json.dumps(_checksums(folder), indent=1, sort_keys=True) + "\n")
        return problem
    try:
        sums = json.loads(sums_path.read_text(encoding="utf-8"))
        items = [(str(rel), int(v["size"]), str(v["sha256"])) for rel, v in sums.items()]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        return f"{CHECKSUMS_NAME} is unreadable ({type(e).__name__})"
    from vitmusic.runs import file_sha256

    for rel, size, digest in items:
        path = folder / rel
        if ".." in Path(rel).parts or not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != size:
            return f"{rel} is {path.stat().st_size} bytes, {size} were written"
        if file_sha256(path) != digest:
            return f"{rel} changed since it was written (sha256)"
    return None


def _damaged_hint(folder: Path) -> str:
    return (f"the cache {folder} is damaged; rebuild it by running 'vitmusic extract' with the same config "
            "(it checks and rebuilds a damaged cache), or delete the folder")


def _video_store(store: str, clips: list[dict[str, Any]], encoder, generator, rate_hz: float, fps: float):
    """(fingerprint, clips -> video columns, video columns -> Arrow types) of a cache kind."""
    if store == "embeddings":
        fingerprint = cache_fingerprint(clips, encoder.fingerprint(), generator.fingerprint(), rate_hz, fps)

        def embed_rows(frames: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
            return [{"embeds": e, "mask": m} for e, m in encode_clips(encoder, frames)]

        return fingerprint, embed_rows, embed_features
    if store != "frames":
        raise ValueError(f"store must be one of {STORES}, got {store!r}")
    fingerprint = frame_cache_fingerprint(clips, encoder.preprocess_fingerprint(), generator.fingerprint(), fps)
    sizes: set[tuple[int, ...]] = set()

    def frame_rows(frames: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        pixels = preprocess_clips(encoder, frames)
        sizes.update(p.shape[1:] for p in pixels)
        if len(sizes) > 1:
            raise DataError(f"encoder {encoder.name_or_path!r}: its image processor gives frames of several "
                            f"sizes {sorted(sizes)}; a frame cache needs one model input size (a center crop)")
        return [{"pixels": p, "mask": np.ones(len(p), bool)} for p in pixels]

    return fingerprint, frame_rows, pixel_features


def extract_features(
    clips: Sequence[dict[str, Any]],
    encoder,
    generator,
    cache_dir: str | os.PathLike,
    *,
    rate_hz: float,
    store: str = "embeddings",
    batch_size: int = 4,
    shard_size: int = 64,
    progress: bool = True,
    read_frames: FrameReader | None = None,
    read_audio: AudioReader | None = None,
) -> Path:
    """Encode (or preprocess) every clip once into the cache; reuse a finished cache with the same key.

    Args:
        clips: manifest rows (see :func:`vitmusic.data.manifest.read_manifest`); rows without a video are
            skipped with a warning.
        encoder: a :class:`~vitmusic.encoders.VisionEncoder` (``sample_fps``, ``encode_frames``,
            ``fingerprint``; for frames ``preprocess_frames``, ``preprocess_fingerprint``).
        generator: a :class:`~vitmusic.generators.musicgen.model.MusicGenGenerator` (``encode_audio``,
            ``sample_rate``, ``fingerprint``).
        cache_dir: root folder of caches.
        rate_hz: embedding rate; frames are decoded at ``encoder.sample_fps(rate_hz)``.
        store: ``"embeddings"`` (a feature cache) or ``"frames"`` (a frame cache, see the module doc).
        batch_size: clips encoded together.
        shard_size: clips per shard (the unit of resumption).
        progress: tqdm bar on stderr.
        read_frames, read_audio: replace the default decoders
            (:func:`~vitmusic.encoders.video.read_clip_frames` / :func:`read_clip_audio`).

    Returns:
        The cache folder ``<cache_dir>/<key>``.

    Raises:
        DataError: no clip with a video, an unreadable video/audio file, or (frames) an image processor
            whose output size depends on the video.
    """
    from vitmusic.outputs import check_output_dir

    check_output_dir(cache_dir, "extract.cache_dir")
    usable = [c for c in clips if c.get("video")]
    if len(usable) < len(clips):
        log.warning("skipping %d clip(s) without a video", len(clips) - len(usable))
    if not usable:
        raise DataError("no clip with a video to extract features from")
    fps = encoder.sample_fps(rate_hz)
    fingerprint, video_rows, video_features = _video_store(store, usable, encoder, generator, rate_hz, fps)
    what = "feature cache" if store == "embeddings" else "frame cache"
    key = cache_key(fingerprint)
    final = Path(cache_dir) / key
    if _up_to_date(final, len(usable), what, warn=False):
        return final
    # one job at a time builds a key (two would share its .partial folder): the main process of each holds the
    # lock, and its other processes wait for it at the barrier; a job that waited finds the cache built
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with exclusive_lock(Path(cache_dir) / f".{key}.lock", f"{what} {final}", take=process_info()[0] == 0):
        wait_for_everyone()
        if not _up_to_date(final, len(usable), what, warn=True):
            _build(usable, generator, final, fingerprint, video_rows, video_features, what,
                   fps, batch_size, shard_size, progress, read_frames or read_clip_frames,
                   read_audio or read_clip_audio)
    return final


def _up_to_date(final: Path, n_clips: int, what: str, warn: bool) -> bool:
    """Whether a finished cache of ``n_clips`` rows is at ``final`` and passes :func:`verify_cache`."""
    if not final.exists():
        return False
    problem = verify_cache(final, n_clips)
    if problem is None:
        log.info("%s %s is up to date", what, final)
        return True
    if warn and process_info()[0] == 0:
        log.warning("%s %s is damaged (%s): rebuilding it", what, final, problem)
    return False


def _build(usable, generator, final: Path, fingerprint, video_rows, video_features, what: str,
           fps: float, batch_size: int, shard_size: int, progress: bool, read_frames: FrameReader,
           read_audio: AudioReader) -> None:
    """Encode the clips shard by shard into ``.<key>.partial`` and publish the cache at ``final`` (the module
    docstring's protocol)."""
    from datasets import concatenate_datasets, load_from_disk
    from tqdm.auto import tqdm

    key = final.name
    cache_dir = final.parent
    partial = Path(cache_dir) / f".{key}.partial"
    # Under `accelerate launch` every process encodes every N-th shard (smaller shards when there are fewer
    # than N); the rows, hence the cache, are those of one process: shards only cut the work into pieces.
    rank, world = process_info()
    check_divisible(len(usable), "clips to extract", num_processes=world)
    size = min(shard_size, -(-len(usable) // world))
    shards = [usable[i : i + size] for i in range(0, len(usable), size)]
    names = [f"shard_{s:05d}" if size == shard_size else f"shard_{s:05d}_of{size}" for s in range(len(shards))]
    mine = range(rank, len(shards), world)
    bar = tqdm(total=sum(len(shards[s]) for s in mine), desc=f"extract ({what})", unit="clip",
               disable=not progress or rank != 0)
    features = None
    try:
        partial.mkdir(parents=True, exist_ok=True)
        atomic_write_text(partial / FINGERPRINT_NAME, json.dumps(fingerprint, indent=1, sort_keys=True))
        for s in mine:
            features = _write_shard(shards[s], partial / names[s], features, read_frames, read_audio, video_rows,
                                    video_features, generator, fps, batch_size, bar)
    except BaseException as e:
        if not any(partial.glob("shard_*")):  # nothing finished to resume from
            shutil.rmtree(partial, ignore_errors=True)
        if isinstance(e, Exception) and is_disk_full(e):
            raise disk_full_error(final) from e
        raise
    bar.close()
    wait_for_everyone()
    if rank == 0:
        parts = [load_from_disk(str(partial / name)) for name in names]
        with atomic_path(final, is_dir=True) as tmp, _quiet_datasets():
            concatenate_datasets(parts).save_to_disk(str(tmp / DATA_DIR))
            (tmp / FINGERPRINT_NAME).write_text(
                json.dumps(fingerprint, indent=1, sort_keys=True), encoding="utf-8"
            )
            (tmp / CHECKSUMS_NAME).write_text(json.dumps(_checksums(tmp), indent=1, sort_keys=True) + "\n",
                                              encoding="utf-8")
        shutil.rmtree(partial, ignore_errors=True)
    wait_for_everyone()
    log.info("%s written to %s", what, final)


def _write_shard(shard: list[dict[str, Any]], shard_dir: Path, features, read_frames: FrameReader,
                 read_audio: AudioReader, video_rows, video_features, generator, fps: float, batch_size: int, bar):
    """Encode one shard of clips into ``shard_dir`` (atomically) unless a finished copy that still loads with all
    its rows is there; returns the Arrow features (those of the first shard written, for the next ones)."""
    from datasets import Dataset

    if shard_dir.is_dir():
        problem = _read_whole(shard_dir, len(shard))
        if problem is None:
            bar.update(len(shard))
            return features
        log.warning("shard %s of an earlier run is damaged (%s): encoding it again", shard_dir, problem)
    rows: dict[str, list] = {k: [] for k in ("clip_id", "piece", "split", "start_s", "end_s")}
    for b in range(0, len(shard), batch_size):
        batch = shard[b : b + batch_size]
        frames = []
        for c in batch:
            f = read_frames(c["video"], c["start_s"], c["end_s"], fps)
            if len(f) == 0:
                raise DataError(f"{c['video']}: no frames in {c['start_s']:.2f}-{c['end_s']:.2f} s")
            frames.append(f)
        audio = [read_audio(audio_source(c), c["start_s"], c["end_s"], generator.sample_rate) for c in batch]
        video_out = video_rows(frames)
        codes = encode_audio_batch(generator, audio)
        for c, video, code in zip(batch, video_out, codes):
            rows["clip_id"].append(c["clip_id"])
            rows["piece"].append(c.get("piece", ""))
            rows["split"].append(c["split"])
            rows["start_s"].append(float(c["start_s"]))
            rows["end_s"].append(float(c["end_s"]))
            for k, v in video.items():
                rows.setdefault(k, []).append(v.tolist() if k == "mask" else v)
            rows.setdefault("codes", []).append(code)
        bar.update(len(batch))
    if features is None:
        features = _features(video_features({k: v[0] for k, v in rows.items()}), rows["codes"][0].shape[1])
    with atomic_path(shard_dir, is_dir=True) as tmp, _quiet_datasets():
        Dataset.from_dict(rows, features=features).save_to_disk(str(tmp))
    return features


def load_cache(folder: str | os.PathLike, split: str | None = None):
    """The cached ``datasets.Dataset`` (numpy format), optionally only the rows of ``split``.

    Raises:
        DataError: not a cache, or one that cannot be read (one line saying how to rebuild it).
    """
    from datasets import load_from_disk

    folder = Path(folder)
    if not (folder / DATA_DIR).is_dir():
        raise DataError(f"not a feature cache: {folder}")
    try:
        ds = load_from_disk(str(folder / DATA_DIR))
        if split is not None:
            keep = [i for i, s in enumerate(ds["split"]) if s == split]
            ds = ds.select(keep)
    except Exception as e:  # a file damaged after it was checked: OSError, IndexError, JSONDecodeError, ...
        raise DataError(f"{_damaged_hint(folder)} ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from e
    return ds.with_format("numpy")


def load_train_val(folder: str | os.PathLike, train_split: str, val_split: str):
    """The train and val splits of a cache, and the one to read shapes from (train, else val).

    Raises:
        DataError: neither split holds a clip.
    """
    train, val = load_cache(folder, train_split), load_cache(folder, val_split)
    ref = train if len(train) else val
    if len(ref) == 0:
        raise DataError(f"cache {folder} holds no clip of split '{train_split}'")
    return train, val, ref


class FeatureDataset(torch.utils.data.Dataset):
    """Torch view of a cached split: items ``{"embeds" [T, D], "mask" [T], "codes" [K, T_a], "clip_id"}``.

    Items of a frame cache (``store="frames"``) hold ``"pixels"`` uint8 ``[T, C, h, w]``
    instead of ``"embeds"``.
    """

    def __init__(self, dataset, max_items: int | None = None) -> None:
        self.ds = dataset if max_items is None else dataset.select(range(min(max_items, len(dataset))))
        self.video_key = "pixels" if "pixels" in self.ds.column_names else "embeds"
        dtype = np.uint8 if self.video_key == "pixels" else np.float32
        # datasets' numpy format widens integers to int64 (8x the bytes of uint8 frames, 14x slower to read for
        # 40 frames at 224 px): read the video column through a view that keeps its dtype, the rest apart
        self._video = self.ds.select_columns([self.video_key]).with_format("numpy", dtype=dtype)
        self._rest = self.ds.with_format("numpy", columns=["clip_id", "mask", "codes"])

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self._rest[int(i)]
        return {
            "clip_id": str(row["clip_id"]),
            self.video_key: torch.from_numpy(self._video[int(i)][self.video_key]),
            "mask": torch.from_numpy(np.asarray(row["mask"], bool)),
            "codes": torch.from_numpy(np.asarray(row["codes"], np.int64).T.copy()),
        }


def collate_features(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad the video column in time (masked) and crop codes to the shortest clip of the batch.

    Returns:
        ``{"embeds" [B, T, D], "mask" [B, T] bool, "codes" [B, K, T_a] long, "clip_id" list[str]}``; for
        frame-cache items ``"pixels"`` uint8 ``[B, T, C, h, w]`` instead of ``"embeds"``.
    """
    key = "pixels" if "pixels" in items[0] else "embeds"
    t = max(it[key].shape[0] for it in items)
    video = torch.zeros(len(items), t, *items[0][key].shape[1:], dtype=items[0][key].dtype)
    mask = torch.zeros(len(items), t, dtype=torch.bool)
    for i, it in enumerate(items):
        n = it[key].shape[0]
        video[i, :n], mask[i, :n] = it[key], it["mask"]
    t_a = min(it["codes"].shape[1] for it in items)
    codes = torch.stack([it["codes"][:, :t_a] for it in items])
    return {key: video, "mask": mask, "codes": codes, "clip_id": [it["clip_id"] for it in items]}
