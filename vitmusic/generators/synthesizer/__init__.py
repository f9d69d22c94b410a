"""The notes -> audio diffusion synthesizer and its features (log-mel frames, piano-roll conditioning)."""
