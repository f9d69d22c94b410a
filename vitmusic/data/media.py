"""The one list of media file extensions vitmusic reads (generate, evaluate, stimuli)."""

from __future__ import annotations

__all__ = ["AUDIO_EXTS", "VIDEO_EXTS"]

# Order matters where two files share a name: the extension listed first wins (see evaluation.inputs.list_media).
AUDIO_EXTS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
