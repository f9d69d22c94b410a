"""Inference: a Pipeline protocol, the MusicGen and MIDI pipelines, and loading a trained run's models."""
