"""The notes/MIDI path: the video -> notes transcription head and its loss, roll targets and decoding, the
part slots, MIDI export and rendering."""
