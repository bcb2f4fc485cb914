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

    The message names the bad value and what would be accepted.

    Attributes
    ----------
    exit_code : int
        What the command line exits with when this error reaches it (2 unless a subclass says
        otherwise).

    Examples
    --------
    >>> try:
    ...     check_range("k", 0, 1, 255)
    ... except RedundancyError as error:
    ...     print(type(error).__name__, error.exit_code, error)
    ParameterError 2 k=0 is out of range (allowed: 1..255)
    """

    exit_code: int = EXIT_BAD_INPUT


class ParameterError(RedundancyError):
    """A parameter is out of its allowed range (the message names it and the range).

    Examples
    --------
    >>> ParameterError("n=0 is out of range (allowed: >= 1)").exit_code
    2
    """


class ConfigError(RedundancyError):
    """A configuration file does not parse or does not validate.

    Examples
    --------
    >>> ConfigError("run.yaml: unknown field 'kk'").exit_code
    2
    """


class DecodeError(RedundancyError):
    """Too few good pieces to recover the data (the message says which and how many).

    Exit code 3: the input was well formed, but the data it describes cannot be recovered.

    Examples
    --------
    >>> DecodeError("need k=3 shards, got 2").exit_code
    3
    """

    exit_code = EXIT_NOT_RECOVERABLE


class IntegrityError(RedundancyError):
    """Stored data or metadata failed validation (checksum, size or manifest mismatch).

    Examples
    --------
    >>> IntegrityError("shard 2: checksum mismatch").exit_code
    2
    """


class MissingExtraError(RedundancyError):
    """A command needs an optional dependency group (``pip install 'redundancy[extra]'``).

    Examples
    --------
    >>> isinstance(MissingExtraError("needs torch: pip install 'redundancy[ml]'"), RedundancyError)
    True
    """


def check_range(name: str, value: int, low: int, high: int | None = None) -> int:
    """Check that an integer parameter lies in its allowed range.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : int
        The value to check (bools are refused).
    low : int
        Smallest allowed value.
    high : int, optional
        Largest allowed value (default: no upper bound).

    Returns
    -------
    int
        ``value`` itself.

    Raises
    ------
    ParameterError
        If ``value`` is not an integer or lies outside ``low..high``.

    Examples
    --------
    >>> check_range("k", 3, 1, 255)
    3
    >>> check_range("n", 0, 1)
    Traceback (most recent call last):
    ...
    redundancy.errors.ParameterError: n=0 is out of range (allowed: >= 1)
    """
    if not isinstance(value, int | bool) or isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ParameterError(f"{name}={value} is out of range (allowed: {allowed})")
    return value
