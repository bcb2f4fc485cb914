"""The one error family users see: every bad input raises a ``RedundancyError`` subclass.

The command line turns any of these into exactly one line on stderr and the class's
``exit_code``:

====  =====================================================================
code  meaning
====  =====================================================================
0     success
1     a check found damage (``verify``) or a run did not meet what was asked
2     bad input (arguments, files, manifests, configs, shares)
3     data not recoverable (too few good shards or shares)
====  =====================================================================
"""

EXIT_OK = 0
EXIT_DAMAGE = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_RECOVERABLE = 3


class RedundancyError(ValueError):
    """Base class for every error caused by bad input or unrecoverable data.

    ``exit_code`` is what the command line exits with when this error reaches it.
    """

    exit_code: int = EXIT_BAD_INPUT


class ParameterError(RedundancyError):
    """A parameter is out of its allowed range (the message names it and the range)."""


class ConfigError(RedundancyError):
    """A configuration file does not parse or does not validate."""


class DecodeError(RedundancyError):
    """Too few good pieces to recover the data (the message says which and how many).

    Exit code 3: the input was well formed, but the data it describes cannot be recovered.
    """

    exit_code = EXIT_NOT_RECOVERABLE


class IntegrityError(RedundancyError):
    """Stored data or metadata failed validation (checksum, size or manifest mismatch)."""


class MissingExtraError(RedundancyError):
    """A command needs an optional dependency group (``pip install 'redundancy[extra]'``)."""


def check_range(name: str, value: int, low: int, high: int | None = None) -> int:
    """Return ``value`` if ``low <= value <= high``, else raise ParameterError naming ``name``."""
    if not isinstance(value, int | bool) or isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ParameterError(f"{name}={value} is out of range (allowed: {allowed})")
    return value
