"""Training tasks, one per built-in model kind (each implements :class:`vitmusic.training.loop.Task`).

=============================================  ============================================================
module                                         trains
=============================================  ============================================================
:mod:`vitmusic.training.tasks.musicgen`        the projection (and encoder LoRA adapters) for MusicGen
:mod:`vitmusic.training.tasks.transcription`   the video -> notes head
:mod:`vitmusic.training.tasks.diffusion`       the notes -> audio diffusion synthesizer
=============================================  ============================================================

A task computes its own loss (visible in its ``loss``; a dict return logs named terms next to it). Which task a
config trains is decided by its model kind (``task:``, :mod:`vitmusic.workflow.kinds`), the one registry.
"""
