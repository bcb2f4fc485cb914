"""DART: gradient-boosted trees with dropout (Rashmi & Gilad-Bachrach, AISTATS 2015).

Our own numba histogram tree learner, MART/DART boosting with a per-tree prediction cache,
squared/logistic/softmax/LambdaRank losses, scikit-learn estimators and JSON persistence.

The public API is imported lazily (scikit-learn and numba load when a name is first used), so
mounting the ``redundancy dart`` command stays cheap::

    from redundancy.dart import DARTRegressor, save, load
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DARTClassifier": "estimators",
    "DARTRanker": "estimators",
    "DARTRegressor": "estimators",
    "load": "persist",
    "save": "persist",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
