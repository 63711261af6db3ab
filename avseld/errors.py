"""Exception types: every user-facing error names the file, line or key it is about."""

from __future__ import annotations


class AvseldError(Exception):
    """Base class of errors the command line reports as one line, without a traceback."""


class ConfigError(AvseldError, ValueError):
    """A configuration problem; the message names the offending key."""


class DataError(AvseldError, ValueError):
    """A problem with a data file; the message names the file (and line where there is one)."""


class CheckpointError(AvseldError, ValueError):
    """A checkpoint that cannot be loaded safely or does not fit the model."""
