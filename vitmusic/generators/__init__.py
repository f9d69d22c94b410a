"""Generators: MusicGen conditioning and generation; the MIDI path (video -> notes -> synthesizers)."""
