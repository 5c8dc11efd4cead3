"""User-facing errors.

Everything a user can get wrong (a bad path, a malformed file, a config that does not fit a
checkpoint) raises a subclass of `TRMError` with a message that names the file, field or key
and what was expected. The command line prints these without a traceback.
"""


class TRMError(Exception):
    """Base class for errors caused by user input, printed by the CLI without a traceback."""


class ConfigError(TRMError):
    """A configuration value is missing, unknown or out of range."""


class CheckpointError(TRMError):
    """A checkpoint cannot be read or does not match the model it is loaded into."""


class DataError(TRMError):
    """A dataset or puzzle file is malformed."""
