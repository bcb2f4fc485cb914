"""Package namespaces whose names load on first use.

A system's command line imports its package (``redundancy.erasure.cli`` imports
``redundancy.erasure``), so a package must not import numpy, torch or its own heavy modules at
import time. Each package lists where its public names live and gets ``__all__``, a module
``__getattr__`` that imports the home module on first access, and a ``__dir__`` that lists them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, homes: Mapping[str, str]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for a package whose names load on first use.

    Parameters
    ----------
    package
        The package's ``__name__``.
    homes
        Public name -> the submodule (relative to ``package``) that defines it.

    Returns
    -------
    tuple
        The sorted public names, the module ``__getattr__`` and the module ``__dir__``.

    Examples
    --------
    >>> names, getattr_, dir_ = lazy_exports("redundancy.erasure", {"parse_code": "codes"})
    >>> names, getattr_("parse_code")("rs:4,2").n
    (['parse_code'], 6)
    >>> getattr_("nope")
    Traceback (most recent call last):
    AttributeError: module 'redundancy.erasure' has no attribute 'nope'
    """
    names = sorted(homes)

    def module_getattr(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{homes[name]}"), name)

    def module_dir() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return names, module_getattr, module_dir
