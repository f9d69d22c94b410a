"""Generators: musicgen/ (video-conditioned MusicGen), midi/ (video -> notes -> MIDI), synth/ (notes -> audio)."""
