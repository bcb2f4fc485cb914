"""DART: gradient-boosted trees with dropout (Rashmi & Gilad-Bachrach, AISTATS 2015).

Our own numba histogram tree learner, MART/DART boosting with a per-tree prediction cache,
squared/logistic/softmax/LambdaRank losses, scikit-learn estimators and JSON persistence.

The public API is imported lazily (scikit-learn and numba load when a name is first used), so
mounting the ``redundancy dart`` command stays cheap::

    from redundancy.dart import DARTRegressor, save, load
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_EXPORTS = {
    "DARTClassifier": "estimators",
    "DARTRanker": "estimators",
    "DARTRegressor": "estimators",
    "load": "persist",
    "save": "persist",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
