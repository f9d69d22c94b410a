"""MusicGen / MusicGen-melody conditioned on video tokens: the model wrapper, windowed continuation, melody
conditioning, the decoder-cache keyword and the tiny random-init presets."""
