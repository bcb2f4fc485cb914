"""JSON save/load of fitted DART estimators (exact: floats round-trip through ``repr``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from redundancy.dart.binning import BinMapper
from redundancy.dart.boosting import Ensemble, History
from redundancy.dart.estimators import DARTClassifier, DARTRanker, DARTRegressor, _DARTBase
from redundancy.dart.tree import Tree
from redundancy.errors import IntegrityError
from redundancy.storage_io import atomic_write_bytes

FORMAT = "redundancy.dart/1"
_KINDS: dict[str, type[_DARTBase]] = {
    c.__name__: c for c in (DARTRegressor, DARTClassifier, DARTRanker)
}
_TREE_FIELDS = ("feature", "threshold", "left", "right", "value", "gain")


def to_dict(model: _DARTBase) -> dict[str, Any]:
    """A JSON-ready description of a fitted estimator."""
    ens = model.ensemble_
    out: dict[str, Any] = {
        "format": FORMAT,
        "estimator": type(model).__name__,
        "params": model.get_params(),
        "n_features_in": int(model.n_features_in_),
        "max_bins": model.binner_.max_bins,
        "bin_edges": [e.tolist() for e in model.binner_.edges],
        "base_score": ens.base_score.tolist(),
        "weights": ens.weights.tolist(),
        "trees": [
            [{f: getattr(t, f).tolist() for f in _TREE_FIELDS} for t in r] for r in ens.trees
        ],
    }
    if hasattr(model, "classes_"):
        out["classes"] = model.classes_.tolist()
    return out


def from_dict(data: dict[str, Any]) -> _DARTBase:
    """Rebuild a fitted estimator from ``to_dict`` output."""
    try:
        if data.get("format") != FORMAT:
            raise IntegrityError(f"not a {FORMAT} model (format={data.get('format')!r})")
        model = _KINDS[data["estimator"]](**data["params"])
        binner = BinMapper(data["max_bins"])
        binner.edges = [np.asarray(e, dtype=np.float64) for e in data["bin_edges"]]
        dtypes = (np.int32, np.int32, np.int32, np.int32, np.float64, np.float64)
        trees = [
            [
                Tree(
                    *(np.asarray(t[f], dtype=d) for f, d in zip(_TREE_FIELDS, dtypes, strict=True))
                )
                for t in r
            ]
            for r in data["trees"]
        ]
        ens = Ensemble(np.asarray(data["base_score"]), trees, np.asarray(data["weights"]))
        if len(ens.weights) != len(trees):
            raise IntegrityError("model has a different number of weights and rounds")
        model.binner_, model.ensemble_, model.history_ = binner, ens, History()
        model.n_features_in_ = int(data["n_features_in"])
        model.n_estimators_ = len(trees)
        if "classes" in data:
            model.classes_ = np.asarray(data["classes"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise IntegrityError(f"model file is malformed: {exc!r}") from exc
    return model


def save(model: _DARTBase, path: Path) -> None:
    """Write the fitted ``model`` to ``path`` as JSON (atomically)."""
    atomic_write_bytes(Path(path), json.dumps(to_dict(model)).encode())


def load(path: Path) -> _DARTBase:
    """Read a model written by ``save``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"cannot read model {path}: {exc}") from exc
    return from_dict(data)
