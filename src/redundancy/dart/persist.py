"""JSON save/load of fitted DART estimators: exact, complete, and safe to read from strangers.

A saved model keeps every fitted attribute the scikit-learn contract relies on
(``n_features_in_``, ``feature_names_in_``, ``classes_`` with its dtype, ``n_estimators_``) and
``history_``, so a loaded model behaves exactly as the original on every public method, including
the errors it raises (e.g. on columns given in another order). Floats round-trip exactly (JSON
numbers via ``repr``).

A model file is untrusted input: ``load`` checks every field's type, shape and range before any
array reaches numpy or the compiled tree walker (a node pointing outside its tree, or back up it,
would make prediction crash or never end), and raises ``IntegrityError`` naming the bad field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from redundancy.dart.binning import BinMapper
from redundancy.dart.boosting import Ensemble, History
from redundancy.dart.estimators import DARTClassifier, DARTRanker, DARTRegressor, _DARTBase
from redundancy.dart.tree import Tree
from redundancy.errors import IntegrityError, ParameterError
from redundancy.storage_io import atomic_write_bytes

FORMAT = "redundancy.dart/3"
# /1 had no feature names, class dtype or history; /1 and /2 had no missing-value directions,
# no drop record (staged "as_added" predictions) and no sampling or grow-policy parameters.
_READABLE = ("redundancy.dart/1", "redundancy.dart/2", FORMAT)
_PARAMS_SINCE_3 = {"subsample": 1.0, "colsample_bytree": 1.0, "grow_policy": "lossguide"}
# How to run, not what was learned: files of any format written before it existed lack it.
_RUNTIME_PARAMS = {"n_jobs": None}
_KINDS: dict[str, type[_DARTBase]] = {
    c.__name__: c for c in (DARTRegressor, DARTClassifier, DARTRanker)
}
_TREE_FIELDS = ("feature", "threshold", "left", "right", "value", "gain", "missing_left")
_INTEGER_FIELDS = ("feature", "threshold", "left", "right", "missing_left")
_MAX_NODES = 2 * 255 - 1  # max_leaves <= 255
_CLASS_DTYPES = ("b", "i", "u", "f", "U", "O")  # numpy dtype kinds that JSON can carry exactly


def to_dict(model: _DARTBase) -> dict[str, Any]:
    """A JSON-ready description of a fitted estimator (see ``from_dict`` for the inverse).

    Parameters
    ----------
    model : DARTRegressor, DARTClassifier or DARTRanker
        A fitted estimator.

    Returns
    -------
    dict
        Only JSON types (str, int, float, bool, None, lists, dicts).
    """
    ens, hist = model.ensemble_, model.history_
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
        "drop_log": {
            "dropped": [[int(d) for d in dropped] for dropped in ens.dropped],
            "added_weight": ens.added_weight.tolist(),
            "drop_factor": ens.drop_factor.tolist(),
        }
        if ens.has_drop_log
        else None,
        "history": {
            "train_loss": [float(v) for v in hist.train_loss],
            "valid_loss": [float(v) for v in hist.valid_loss],
            "n_dropped": [int(v) for v in hist.n_dropped],
            "best_round": hist.best_round,
        },
    }
    if hasattr(model, "feature_names_in_"):
        out["feature_names_in"] = [str(n) for n in model.feature_names_in_]
    if hasattr(model, "classes_"):
        out["classes"] = model.classes_.tolist()
        out["classes_dtype"] = model.classes_.dtype.str
    return out


def _fail(field: str, what: str) -> IntegrityError:
    return IntegrityError(f"model file field {field!r} {what}")


def _get(data: dict, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    field = f"{where}{key}"
    if key not in data:
        raise _fail(field, "is missing")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise _fail(field, f"must be {_kind_name(kind)}, not {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {list: "a list", dict: "a mapping", str: "a string", int: "an integer", bool: "a bool"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _numbers(value: Any, field: str, *, integer: bool = False) -> list:
    """A flat list of finite numbers (integers if ``integer``)."""
    if not isinstance(value, list):
        raise _fail(field, f"must be a list, not {type(value).__name__}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int if integer else int | float):
            raise _fail(field, f"must hold only {'integers' if integer else 'numbers'}: {v!r}")
        if not integer and not math.isfinite(v):
            raise _fail(field, f"must hold only finite numbers: {v!r}")
        if integer and not -(2**31) <= v < 2**31:
            raise _fail(field, f"holds an integer out of range: {v}")
    return value


def _tree(raw: Any, field: str, n_features: int, n_bins: np.ndarray) -> Tree:
    """One tree, checked so that walking it from the root always ends at a leaf."""
    if not isinstance(raw, dict):
        raise _fail(field, "must be a mapping of node arrays")
    if "missing_left" not in raw:  # formats /1 and /2: missing values go right
        raw = {**raw, "missing_left": [0] * len(raw.get("left") or [])}
    cols = {f: _numbers(raw.get(f), f"{field}.{f}", integer=f in _INTEGER_FIELDS)
            for f in _TREE_FIELDS}  # fmt: skip
    n = len(cols["left"])
    if not 1 <= n <= _MAX_NODES or any(len(c) != n for c in cols.values()):
        raise _fail(field, f"must have 1..{_MAX_NODES} nodes, every array the same length")
    feature, threshold, left, right = (
        np.asarray(cols[f], dtype=np.int64) for f in _TREE_FIELDS[:4]
    )
    leaf = left == -1
    node = np.arange(n)
    inner = ~leaf
    # Children come after their parent (as the learner builds them): no cycles, every walk ends.
    if (
        np.any(leaf & (right != -1))
        or np.any(inner & ((left <= node) | (left >= n)))
        or np.any(inner & ((right <= node) | (right >= n)))
    ):
        raise _fail(field, "has a child index outside its tree or not after its parent")
    if np.any(inner & ((feature < 0) | (feature >= n_features))) or np.any(leaf & (feature != -1)):
        raise _fail(field, f"splits on a feature outside 0..{n_features - 1}")
    if np.any(inner & ((threshold < 0) | (threshold >= n_bins[np.where(inner, feature, 0)]))):
        raise _fail(field, "has a split threshold outside its feature's bins")
    missing_left = np.asarray(cols["missing_left"], dtype=np.int64)
    if np.any((missing_left != 0) & (missing_left != 1)):
        raise _fail(f"{field}.missing_left", "must hold only 0 or 1")
    return Tree(
        feature.astype(np.int32),
        threshold.astype(np.int32),
        left.astype(np.int32),
        right.astype(np.int32),
        np.asarray(cols["value"], dtype=np.float64),
        np.asarray(cols["gain"], dtype=np.float64),
        missing_left.astype(np.uint8),
    )


def _model(data: dict, kind: type[_DARTBase]) -> _DARTBase:
    """The estimator with the file's hyper-parameters, each checked like ``fit`` checks them."""
    params = _get(data, "params", dict)
    if data.get("format") != FORMAT:  # older files predate these parameters: their defaults
        params = {**_PARAMS_SINCE_3, **params}
    params = {**_RUNTIME_PARAMS, **params}
    expected = set(kind().get_params())
    if set(params) != expected:
        unknown, missing = sorted(set(params) - expected), sorted(expected - set(params))
        raise _fail(
            "params", f"do not match {kind.__name__} (unknown {unknown}, missing {missing})"
        )
    for name in ("one_drop",):
        _get(params, name, bool, "params.")
    for name in ("random_state", "early_stopping_rounds"):
        if params[name] is not None:
            _get(params, name, int, "params.")
    model = kind(**params)
    try:
        model._settings()
    except ParameterError as exc:
        raise _fail("params", f"are invalid: {exc}") from None
    return model


def _history(data: dict) -> History:
    raw = data.get("history")
    if raw is None:  # format /1
        return History()
    if not isinstance(raw, dict):
        raise _fail("history", "must be a mapping")
    best = raw.get("best_round")
    if best is not None and (isinstance(best, bool) or not isinstance(best, int) or best < 0):
        raise _fail("history.best_round", "must be a round number or null")
    return History(
        train_loss=[float(v) for v in _numbers(raw.get("train_loss"), "history.train_loss")],
        valid_loss=[float(v) for v in _numbers(raw.get("valid_loss"), "history.valid_loss")],
        n_dropped=[
            int(v) for v in _numbers(raw.get("n_dropped"), "history.n_dropped", integer=True)
        ],
        best_round=best,
    )


def _drop_log(data: dict, n_rounds: int) -> tuple[list[np.ndarray] | None, Any, Any]:
    """(dropped rounds, added weight, drop factor) per round, or Nones for older files."""
    raw = data.get("drop_log")
    if raw is None:
        return None, None, None
    if not isinstance(raw, dict):
        raise _fail("drop_log", "must be a mapping or null")
    dropped_raw = _get(raw, "dropped", list, "drop_log.")
    added = np.asarray(_numbers(raw.get("added_weight"), "drop_log.added_weight"), dtype=float)
    factor = np.asarray(_numbers(raw.get("drop_factor"), "drop_log.drop_factor"), dtype=float)
    if not len(dropped_raw) == len(added) == len(factor) == n_rounds:
        raise _fail("drop_log", f"must describe each of the {n_rounds} rounds")
    dropped = []
    for r, d in enumerate(dropped_raw):
        idx = np.asarray(_numbers(d, f"drop_log.dropped[{r}]", integer=True), dtype=np.int64)
        if np.any((idx < 0) | (idx >= r)) or len(np.unique(idx)) != len(idx):
            raise _fail(f"drop_log.dropped[{r}]", f"must name distinct earlier rounds 0..{r - 1}")
        dropped.append(idx)
    return dropped, added, factor


def _classes(data: dict, n_outputs: int) -> np.ndarray:
    raw = _get(data, "classes", list)
    kind = data.get("classes_dtype")
    try:
        dtype = np.dtype(kind) if kind is not None else None
    except (TypeError, ValueError):
        raise _fail("classes_dtype", f"is not a numpy dtype: {kind!r}") from None
    if dtype is not None and dtype.kind not in _CLASS_DTYPES:
        raise _fail("classes_dtype", f"must be a bool, number or string dtype, not {kind!r}")
    if not all(isinstance(c, str | int | float | bool) for c in raw):
        raise _fail("classes", "must hold only strings, numbers or bools")
    try:
        classes = np.asarray(raw, dtype=dtype)
    except (ValueError, TypeError, OverflowError):
        raise _fail("classes", f"do not fit dtype {kind!r}") from None
    if classes.tolist() != raw:  # e.g. strings longer than the dtype, floats cast to int
        raise _fail("classes", f"do not fit dtype {kind!r} exactly")
    if classes.ndim != 1 or len(classes) < 2 or len(np.unique(classes)) != len(classes):
        raise _fail("classes", "must be at least 2 distinct labels")
    if (2 if n_outputs == 1 else n_outputs) != len(classes):
        raise _fail("classes", f"must number {n_outputs if n_outputs > 1 else 2} for this model")
    return classes


def from_dict(data: Any) -> _DARTBase:
    """Rebuild a fitted estimator from ``to_dict`` output, checking every field first.

    Parameters
    ----------
    data : Any
        Parsed JSON (untrusted).

    Returns
    -------
    DARTRegressor, DARTClassifier or DARTRanker
        Fitted, equal in behaviour to the estimator that was saved.

    Raises
    ------
    IntegrityError
        The document is not a DART model or a field is malformed (the message names it).
    """
    if not isinstance(data, dict) or data.get("format") not in _READABLE:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise IntegrityError(f"not a {FORMAT} model (format={found!r})")
    name = _get(data, "estimator", str)
    if name not in _KINDS:
        raise _fail("estimator", f"must be one of {sorted(_KINDS)}, not {name!r}")
    kind = _KINDS[name]
    model = _model(data, kind)
    n_features = _get(data, "n_features_in", int)
    if not 1 <= n_features <= 1_000_000:
        raise _fail("n_features_in", f"must be 1..1000000, not {n_features}")
    max_bins = _get(data, "max_bins", int)
    if not 2 <= max_bins <= 255:
        raise _fail("max_bins", f"must be 2..255, not {max_bins}")
    edges = _get(data, "bin_edges", list)
    if len(edges) != n_features:
        raise _fail("bin_edges", f"must hold one list per feature ({n_features})")
    binner = BinMapper(max_bins)
    for j, raw in enumerate(edges):
        e = np.asarray(_numbers(raw, f"bin_edges[{j}]"), dtype=np.float64)
        if len(e) > max_bins - 1 or np.any(np.diff(e) <= 0):
            raise _fail(f"bin_edges[{j}]", f"must be increasing, at most {max_bins - 1} edges")
        binner.edges.append(e)
    base = np.asarray(_numbers(_get(data, "base_score", list), "base_score"), dtype=np.float64)
    n_outputs = len(base)
    if n_outputs < 1 or (n_outputs > 1 and kind is not DARTClassifier) or n_outputs > 10_000:
        raise _fail("base_score", f"has {n_outputs} outputs, impossible for {name}")
    weights = np.asarray(_numbers(_get(data, "weights", list), "weights"), dtype=np.float64)
    rounds = _get(data, "trees", list)
    if len(weights) != len(rounds) or not rounds:
        raise _fail("weights", f"must hold one weight per round ({len(rounds)}), rounds >= 1")
    trees = []
    for r, trees_of_round in enumerate(rounds):
        if not isinstance(trees_of_round, list) or len(trees_of_round) != n_outputs:
            raise _fail(f"trees[{r}]", f"must hold {n_outputs} tree(s), one per output")
        trees.append(
            [_tree(t, f"trees[{r}][{c}]", n_features, binner.n_bins)
             for c, t in enumerate(trees_of_round)]
        )  # fmt: skip
    model.binner_ = binner
    model.ensemble_ = Ensemble(base, trees, weights, *_drop_log(data, len(trees)))
    model.history_ = _history(data)
    model.n_features_in_ = n_features
    model.n_estimators_ = len(trees)
    if "feature_names_in" in data:
        names = _get(data, "feature_names_in", list)
        if len(names) != n_features or not all(isinstance(n, str) for n in names):
            raise _fail("feature_names_in", f"must be {n_features} column names (strings)")
        if len(set(names)) != len(names):
            raise _fail("feature_names_in", "must not repeat a column name")
        model.feature_names_in_ = np.asarray(names, dtype=object)
    if kind is DARTClassifier:
        model.classes_ = _classes(data, n_outputs)
    return model


def save(model: _DARTBase, path: Path) -> None:
    """Write the fitted ``model`` to ``path`` as JSON, atomically.

    Parameters
    ----------
    model : DARTRegressor, DARTClassifier or DARTRanker
        A fitted estimator.
    path : Path
        Target file (replaced atomically if it exists).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from redundancy.dart import DARTRegressor, load, save
    >>> X = np.arange(40.0).reshape(20, 2); y = X[:, 0]
    >>> m = DARTRegressor(n_estimators=3, min_samples_leaf=2).fit(X, y)
    >>> path = Path(tempfile.mkdtemp()) / "m.json"
    >>> save(m, path)
    >>> bool((load(path).predict(X) == m.predict(X)).all())
    True
    """
    atomic_write_bytes(Path(path), json.dumps(to_dict(model), allow_nan=False).encode())


def load(path: Path) -> _DARTBase:
    """Read a model written by ``save`` (untrusted input: every field is checked).

    Parameters
    ----------
    path : Path
        A JSON model file.

    Returns
    -------
    DARTRegressor, DARTClassifier or DARTRanker

    Raises
    ------
    IntegrityError
        The file cannot be read, is not JSON, or is not a well-formed DART model.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from redundancy.dart import DARTClassifier
    >>> X = np.arange(40.0).reshape(20, 2); y = X[:, 0] > 15
    >>> path = Path(tempfile.mkdtemp()) / "m.json"
    >>> save(DARTClassifier(n_estimators=3, min_samples_leaf=2).fit(X, y), path)
    >>> model = load(path)
    >>> type(model).__name__, model.classes_.tolist(), model.predict(X[[0, -1]]).tolist()
    ('DARTClassifier', [False, True], [False, True])
    >>> _ = path.write_text('{"format": "something else"}')
    >>> load(path)
    Traceback (most recent call last):
    redundancy.errors.IntegrityError: ...
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a UTF-8 text file"
        raise IntegrityError(f"cannot read model {path}: {reason}") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise IntegrityError(f"model {path} is not JSON: {exc}") from None
    return from_dict(data)
