"""Synthetic URMP-style benchmark: real chorales (or generated melodies) rendered to stems, mix, annotations
and a performer video whose motion follows the notes. Entry point: :func:`generate_benchmark`."""

from vitmusic.data.synth.instruments import render_notes, render_part
from vitmusic.data.synth.writer import generate_benchmark

__all__ = ["generate_benchmark", "render_notes", "render_part"]
