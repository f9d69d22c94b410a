"""The one exception type for errors a user can cause (bad file, bad config, bad argument).

The CLI reports a :class:`VitmusicError` (and a :class:`DiskFullError`) as a single line on stderr with exit
code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VitmusicError(Exception):
    """A user-caused error: missing/corrupt input, malformed annotation, invalid config or argument."""


class ConfigError(VitmusicError):
    """Unknown config key, wrong type or invalid value."""


class DataError(VitmusicError):
    """Missing, empty, corrupt or malformed data file (video, audio, annotation, manifest)."""


class DiskFullError(Exception):
    """No space left on the device while writing an output (the message names the path).

    Not a :class:`VitmusicError`: a batch that skips an item whose input is bad (``except VitmusicError``) must
    stop here rather than skip every remaining item. The CLI reports it as one line with exit code 2, like a
    user error.
    """
