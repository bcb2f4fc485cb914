"""Secret sharing: Shamir over GF(2^8) and prime fields, and SNEAK dissemination over networks.

The names below load on first use, so importing the command line (``.cli``) stays cheap; heavy
parts (numpy for Shamir, networkx and the asyncio runtime for SNEAK) load only from their modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redundancy.secret_sharing.shamir import combine, split
    from redundancy.secret_sharing.shares import Share

__all__ = ["Share", "combine", "split"]
_HOMES = {"Share": "shares", "combine": "shamir", "split": "shamir"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
