"""The one error family users see: every bad input raises a ``RedundancyError`` subclass.

The CLI turns any of these into a one-line message and exit code 2.
"""


class RedundancyError(ValueError):
    """Base class for every error caused by bad input or unrecoverable data."""


class ParameterError(RedundancyError):
    """A parameter is out of its allowed range (the message names it and the range)."""


class ConfigError(RedundancyError):
    """A configuration file does not parse or does not validate."""


class DecodeError(RedundancyError):
    """Too few good pieces to recover the data (the message says which and how many)."""


class IntegrityError(RedundancyError):
    """Stored data or metadata failed validation (checksum, size or manifest mismatch)."""


def check_range(name: str, value: int, low: int, high: int | None = None) -> int:
    """Return ``value`` if ``low <= value <= high``, else raise ParameterError naming ``name``."""
    if not isinstance(value, int | bool) or isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ParameterError(f"{name}={value} is out of range (allowed: {allowed})")
    return value
