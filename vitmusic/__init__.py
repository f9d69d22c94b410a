"""vitmusic: turn videos of musical performances into music, and measure how well it did.

The package follows the pipeline: ``data -> encoders -> projection -> generators -> training``;
``metrics`` depends on nothing heavy and scores generated audio against the paired ground truth.
"""

__version__ = "0.1.0"
