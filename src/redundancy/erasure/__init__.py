"""Linear erasure codes on byte shards and an erasure-coded file store with per-shard checksums.

The names below load on first use, so ``redundancy ec`` can build its command line without
importing numpy (``redundancy.erasure.cli`` imports the library inside its commands).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LRC", "LinearCode", "ReedSolomon", "RepairPlan", "parse_code"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("redundancy.erasure.codes"), name)
    raise AttributeError(f"module 'redundancy.erasure' has no attribute {name!r}")
