"""Export a fitted DART or MART model as an XGBoost JSON or LightGBM text model for serving.

The exported file is a plain gradient-boosted ensemble (XGBoost ``gbtree``, LightGBM ``gbdt``):
each tree's DART weight is multiplied into its leaf values and the base score (initial
prediction) is added to the leaves of each output's first tree, so the serving library's margin
is ours and its output transform (identity, sigmoid, softmax) is the one our estimator applies.
Both libraries load the file with ``Booster(model_file=...)``; no dropout happens at prediction.

Split semantics, exactly:

- ours: a node sends ``x`` left when ``x <= edge`` (``edge`` the split's bin edge, float64), or
  when the split sends every present value left, and NaN goes the learned default direction;
- LightGBM: ``x <= threshold`` in float64, so ``threshold`` is the edge itself (``DBL_MAX`` when
  every present value goes left); NaN follows ``default_left`` (missing type NaN). LightGBM
  treats ``|x| <= 1e-35`` as zero, so only a value that tiny, with an edge between it and 0,
  can go another way;
- XGBoost: ``float32(x) < split_condition`` in float32, and NaN follows ``default_left``. No
  float32 condition can stand for ``x <= edge`` on every float64 value, so the condition is the
  float32 after the edge's float32 rounding: the edge, and every value rounding like it, goes
  left (quantile edges are training values: those rows keep their side). An edge exactly halfway
  between two float32 values (a midpoint edge of float32 data) uses the upper one instead, so
  both go their own way (``inf`` when every present value goes left). So every float32 value
  takes our path at an edge that is a float32 value or halfway between two (every quantile
  edge of float32 data; every midpoint edge unless its two values straddle a power of two), and
  so does every value not within float32 rounding of an edge; ``serving_mismatches`` finds the
  rows of a data set that do not.

XGBoost stores leaf values and sums trees in float32, so its margins match ours to about 1e-7
relative per tree; LightGBM keeps float64 leaves and sums, matching to rounding (about 1e-15).
Node covers and hessians are not part of a fitted model, so the files carry zeros there:
SHAP-style contributions (``pred_contribs``, ``pred_contrib``) are not meaningful.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from redundancy.dart.estimators import DARTClassifier, DARTRanker, DARTRegressor
from redundancy.errors import ParameterError
from redundancy.storage_io import atomic_open
from redundancy.ui import check_output

FORMATS = ("xgboost-json", "lightgbm-text")
# LightGBM reads a row's |x| <= kZeroThreshold (the float 1e-35f) as zero.
LIGHTGBM_ZERO_THRESHOLD = float(np.float32(1e-35))
_XGB_NO_PARENT = 2**31 - 1
_DBL_MAX = float(np.finfo(np.float64).max)
_LGB_NAN_MISSING = 2 << 2  # decision_type bits 2-3: missing type NaN
_LGB_DEFAULT_LEFT = 2  # decision_type bit 1
_LGB_SAFE_NAME = re.compile(r"[^\s,:\[\]{}\"]+")  # LightGBM's feature-name rules


@dataclass(frozen=True)
class _FoldedTree:
    """One tree with its round's weight (and, first round, the base score) in its leaves."""

    klass: int
    feature: np.ndarray  # int64, 0 at leaves
    cut: np.ndarray  # float64 raw-value threshold (x <= cut goes left); inf: all present left
    left: np.ndarray  # int64, -1 at leaves
    right: np.ndarray
    missing_left: np.ndarray  # bool
    leaf: np.ndarray  # float64 folded leaf value (0 at internal nodes)
    gain: np.ndarray

    @property
    def internal(self) -> np.ndarray:
        return self.left != -1


def _task(model: Any) -> str:
    """The model's task, after checking it is a fitted DART estimator."""
    if not isinstance(model, DARTRegressor | DARTClassifier | DARTRanker):
        raise ParameterError(
            f"can only export DARTRegressor, DARTClassifier or DARTRanker, "
            f"not {type(model).__name__}"
        )
    if not hasattr(model, "ensemble_"):
        raise ParameterError(f"this {type(model).__name__} is not fitted yet; call fit first")
    if isinstance(model, DARTRegressor):
        return "regression"
    if isinstance(model, DARTRanker):
        return "ranking"
    return "binary" if model.ensemble_.n_outputs == 1 else "multiclass"


def _folded_trees(model: Any) -> list[_FoldedTree]:
    """Every tree, round by round and output by output, read through the fields persist.py uses."""
    ens, edges = model.ensemble_, model.binner_.edges
    out = []
    for r, (weight, trees) in enumerate(zip(ens.weights, ens.trees, strict=True)):
        for k, tree in enumerate(trees):
            left = np.asarray(tree.left, dtype=np.int64)
            internal = left != -1
            feature = np.where(internal, tree.feature, 0).astype(np.int64)
            threshold = np.asarray(tree.threshold, dtype=np.int64)
            cut = np.zeros(len(left))
            for node in np.flatnonzero(internal):
                e = edges[feature[node]]
                cut[node] = e[threshold[node]] if threshold[node] < len(e) else np.inf
            leaf = np.where(internal, 0.0, float(weight) * np.asarray(tree.value, np.float64))
            if r == 0:
                leaf = np.where(internal, 0.0, leaf + ens.base_score[k])
            out.append(
                _FoldedTree(
                    klass=k,
                    feature=feature,
                    cut=cut,
                    left=left,
                    right=np.asarray(tree.right, dtype=np.int64),
                    missing_left=internal & (np.asarray(tree.missing_left) != 0),
                    leaf=leaf,
                    gain=np.where(internal, np.asarray(tree.gain, np.float64), 0.0),
                )
            )
    return out


def _xgboost_condition(cut: np.ndarray) -> np.ndarray:
    """float32 ``s`` per float64 ``cut`` such that ``float32(x) < s`` stands for ``x <= cut``.

    Every float64 value rounding to the float32 ``r`` nearest the cut goes the cut's own way
    (left), so ``s`` is the float32 after ``r``; but when the cut lies exactly halfway between
    two float32 values (a midpoint edge of float32 data) and rounds up, ``s`` is the upper one,
    so both of those values go their own way. ``inf`` stays ``inf``.
    """
    with np.errstate(over="ignore"):
        nearest = cut.astype(np.float32)
    up = np.float32(np.inf)
    after = np.nextafter(nearest, up, dtype=np.float32)
    below = np.nextafter(nearest, -up, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        halfway_up = (nearest > cut) & ((below + nearest.astype(np.float64)) / 2 == cut)
    return np.where(halfway_up, nearest, after).astype(np.float32)


def _float32_list(values: np.ndarray) -> list[float]:
    """float32 values as Python floats (exact decimal of each float32, so parsing is exact)."""
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def _xgboost_tree(t: _FoldedTree, tree_id: int, n_features: int) -> dict[str, Any]:
    n = len(t.left)
    parents = np.full(n, _XGB_NO_PARENT, dtype=np.int64)
    inner = np.flatnonzero(t.internal)
    parents[t.left[inner]] = inner
    parents[t.right[inner]] = inner
    leaf32 = np.asarray(t.leaf, dtype=np.float32)
    conditions = np.where(t.internal, _xgboost_condition(t.cut), leaf32)
    return {
        "base_weights": _float32_list(leaf32),
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": [int(v) for v in t.missing_left],
        "id": tree_id,
        "left_children": [int(v) for v in t.left],
        "loss_changes": _float32_list(t.gain),
        "parents": [int(v) for v in parents],
        "right_children": [int(v) for v in t.right],
        "split_conditions": _float32_list(conditions),
        "split_indices": [int(v) for v in t.feature],
        "split_type": [0] * n,
        "sum_hessian": [0.0] * n,
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(n_features),
            "num_nodes": str(n),
            "size_leaf_vector": "1",
        },
    }


def _xgboost_objective(task: str, n_outputs: int) -> dict[str, Any]:
    if task == "multiclass":
        return {"name": "multi:softprob", "softmax_multiclass_param": {"num_class": str(n_outputs)}}
    if task == "ranking":
        return {
            "name": "rank:ndcg",
            "lambdarank_param": {
                "lambdarank_bias_norm": "1",
                "lambdarank_normalization": "1",
                "lambdarank_num_pair_per_sample": "4294967295",
                "lambdarank_pair_method": "topk",
                "lambdarank_score_normalization": "1",
                "lambdarank_unbiased": "0",
                "ndcg_exp_gain": "1",
            },
        }
    name = "binary:logistic" if task == "binary" else "reg:squarederror"
    return {"name": name, "reg_loss_param": {"scale_pos_weight": "1"}}


def to_xgboost_json(model: Any) -> dict[str, Any]:
    """The fitted ``model`` as an XGBoost JSON model document (a ``gbtree`` booster).

    Parameters
    ----------
    model : DARTRegressor, DARTClassifier or DARTRanker
        A fitted estimator. Regression exports as ``reg:squarederror``, two classes as
        ``binary:logistic`` (probability of ``classes_[1]``), more as ``multi:softprob`` (columns
        in the order of ``classes_``), ranking as ``rank:ndcg`` (scores).

    Returns
    -------
    dict
        The document ``xgboost.Booster(model_file=...)`` reads once written with ``json.dump``
        (``Infinity`` appears where a split sends every present value left, as XGBoost writes it).
        Its base score is neutral (margin 0): the model's base score is in the first trees.

    Raises
    ------
    ParameterError
        ``model`` is not a fitted DART estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.dart import DARTRegressor
    >>> X = np.arange(40.0).reshape(20, 2); y = X[:, 0]
    >>> doc = to_xgboost_json(DARTRegressor(n_estimators=3, min_samples_leaf=2).fit(X, y))
    >>> learner = doc["learner"]
    >>> learner["objective"]["name"], len(learner["gradient_booster"]["model"]["trees"])
    ('reg:squarederror', 3)
    """
    task = _task(model)
    trees = _folded_trees(model)
    n_outputs = model.ensemble_.n_outputs
    n_features = int(model.n_features_in_)
    names = [str(n) for n in getattr(model, "feature_names_in_", [])]
    return {
        "learner": {
            "attributes": {},
            "feature_names": names,
            "feature_types": ["float"] * len(names),
            "gradient_booster": {
                "model": {
                    "gbtree_model_param": {
                        "num_parallel_tree": "1",
                        "num_trees": str(len(trees)),
                    },
                    "iteration_indptr": list(range(0, len(trees) + 1, n_outputs)),
                    "tree_info": [t.klass for t in trees],
                    "trees": [_xgboost_tree(t, i, n_features) for i, t in enumerate(trees)],
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                # The margin a base score adds: 0 (sigmoid's inverse of 0.5 is 0).
                "base_score": "5E-1" if task == "binary" else "0E0",
                "boost_from_average": "0",
                "num_class": str(n_outputs if task == "multiclass" else 0),
                "num_feature": str(n_features),
                "num_target": "1",
            },
            "objective": _xgboost_objective(task, n_outputs),
        },
        "version": [2, 1, 0],
    }


def _numbers(values: Any) -> str:
    """Space-separated float64 values, each printed to round-trip exactly."""
    return " ".join(repr(float(v)) for v in values)


def _lightgbm_tree(t: _FoldedTree, index: int) -> str:
    inner = np.flatnonzero(t.internal)
    leaves = np.flatnonzero(~t.internal)
    if len(inner) == 0:  # a single leaf
        return f"Tree={index}\nnum_leaves=1\nnum_cat=0\nleaf_value={_numbers(t.leaf[leaves])}\n"
    inner_index = np.zeros(len(t.left), dtype=np.int64)
    inner_index[inner] = np.arange(len(inner))
    inner_index[leaves] = ~np.arange(len(leaves))  # LightGBM's child -1 - leaf for a leaf

    def ints(values: np.ndarray) -> str:
        return " ".join(str(int(v)) for v in values)

    decision = _LGB_NAN_MISSING | np.where(t.missing_left[inner], _LGB_DEFAULT_LEFT, 0)
    zeros_inner, zeros_leaf = ints(np.zeros(len(inner))), ints(np.zeros(len(leaves)))
    lines = [
        f"Tree={index}",
        f"num_leaves={len(leaves)}",
        "num_cat=0",
        f"split_feature={ints(t.feature[inner])}",
        f"split_gain={_numbers(t.gain[inner])}",
        f"threshold={_numbers(np.minimum(t.cut[inner], _DBL_MAX))}",
        f"decision_type={ints(decision)}",
        f"left_child={ints(inner_index[t.left[inner]])}",
        f"right_child={ints(inner_index[t.right[inner]])}",
        f"leaf_value={_numbers(t.leaf[leaves])}",
        f"leaf_weight={zeros_leaf}",
        f"leaf_count={zeros_leaf}",
        f"internal_value={zeros_inner}",
        f"internal_weight={zeros_inner}",
        f"internal_count={zeros_inner}",
        "is_linear=0",
        "shrinkage=1",
    ]
    return "\n".join(lines) + "\n"


def _lightgbm_names(model: Any) -> list[str]:
    n_features = int(model.n_features_in_)
    names = [str(n) for n in getattr(model, "feature_names_in_", [])]
    if names and all(_LGB_SAFE_NAME.fullmatch(n) for n in names):
        return names
    if names:
        warnings.warn(
            'feature names with spaces or any of ,:[]{}" cannot go in a LightGBM model: '
            "exported as Column_0, Column_1, ...",
            UserWarning,
            stacklevel=3,
        )
    return [f"Column_{j}" for j in range(n_features)]


def to_lightgbm_text(model: Any) -> str:
    """The fitted ``model`` as a LightGBM text model (a ``gbdt`` booster).

    Parameters
    ----------
    model : DARTRegressor, DARTClassifier or DARTRanker
        A fitted estimator. Regression exports as ``regression``, two classes as ``binary``
        (probability of ``classes_[1]``), more as ``multiclass`` (columns in the order of
        ``classes_``), ranking as ``lambdarank`` (scores).

    Returns
    -------
    str
        The text ``lightgbm.Booster(model_file=...)`` or ``Booster(model_str=...)`` reads.
        Feature names are the model's (``Column_j`` when it has none, or when one holds a
        character LightGBM forbids in names: a ``UserWarning`` says so).

    Raises
    ------
    ParameterError
        ``model`` is not a fitted DART estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.dart import DARTRegressor
    >>> X = np.arange(40.0).reshape(20, 2); y = X[:, 0]
    >>> text = to_lightgbm_text(DARTRegressor(n_estimators=3, min_samples_leaf=2).fit(X, y))
    >>> text.splitlines()[6], text.count("Tree=")
    ('objective=regression', 3)
    """
    task = _task(model)
    trees = _folded_trees(model)
    n_outputs = model.ensemble_.n_outputs
    objective = {
        "regression": "regression",
        "binary": "binary sigmoid:1",
        "multiclass": f"multiclass num_class:{n_outputs}",
        "ranking": "lambdarank",
    }[task]
    names = _lightgbm_names(model)
    header = [
        "tree",
        "version=v4",
        f"num_class={n_outputs}",
        f"num_tree_per_iteration={n_outputs}",
        "label_index=0",
        f"max_feature_idx={len(names) - 1}",
        f"objective={objective}",
        f"feature_names={' '.join(names)}",
        f"feature_infos={' '.join(['none'] * len(names))}",
    ]
    blocks = [_lightgbm_tree(t, i) for i, t in enumerate(trees)]
    return "\n".join(header) + "\n\n" + "\n\n".join(blocks) + "\n\nend of trees\n"


def export_model(
    model: Any, path: str | Path, *, format: str = "xgboost-json", force: bool = False
) -> None:
    """Write the fitted ``model`` as a file XGBoost or LightGBM loads and predicts with.

    DART's per-round weights and the base score are folded into the leaf values, so the file is
    a plain boosted ensemble whose raw margins and transformed outputs equal ``model``'s (see
    the module notes for the exact split comparisons, and the float32 caveat of XGBoost).

    Parameters
    ----------
    model : DARTRegressor, DARTClassifier or DARTRanker
        A fitted estimator.
    path : str or Path
        Output file, written atomically (a temporary name beside it, then renamed).
    format : {"xgboost-json", "lightgbm-text"}, default "xgboost-json"
        ``xgboost.Booster(model_file=path)`` reads the first, ``lightgbm.Booster(model_file=path)``
        the second.
    force : bool, default False
        Replace ``path`` if it exists.

    Raises
    ------
    ParameterError
        Unknown ``format``, ``path`` exists without ``force`` (or is a folder), or ``model`` is
        not a fitted DART estimator.

    Examples
    --------
    >>> import tempfile, numpy as np, lightgbm, xgboost
    >>> from redundancy.dart import DARTClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); X[::5, 1] = np.nan
    >>> y = (X[:, 0] + np.nan_to_num(X[:, 1]) > 0).astype(int)
    >>> model = DARTClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> folder = Path(tempfile.mkdtemp())
    >>> export_model(model, folder / "m.json", format="xgboost-json")
    >>> export_model(model, folder / "m.txt", format="lightgbm-text")
    >>> ours = model.predict_proba(X)[:, 1]
    >>> xgb = xgboost.Booster(model_file=folder / "m.json").predict(xgboost.DMatrix(X))
    >>> lgb = lightgbm.Booster(model_file=folder / "m.txt").predict(X)
    >>> bool(np.allclose(xgb, ours, atol=1e-6)), bool(np.allclose(lgb, ours, rtol=1e-12))
    (True, True)
    """
    if format not in FORMATS:
        raise ParameterError(f"format={format!r} is not supported (use one of {FORMATS})")
    check_output(path, force=force)
    if format == "xgboost-json":
        text = json.dumps(to_xgboost_json(model), separators=(",", ":"))
    else:
        text = to_lightgbm_text(model)
    with atomic_open(Path(path)) as handle:
        handle.write(text.encode("utf-8"))


def _leaf_of(t: _FoldedTree, X: np.ndarray, *, xgboost: bool = False) -> np.ndarray:
    """The node each row of ``X`` ends in: ours (``x <= cut``) or XGBoost's comparison."""
    if xgboost:
        with np.errstate(over="ignore"):
            X = X.astype(np.float32)
        cut = _xgboost_condition(t.cut)
    else:
        cut = t.cut
    node = np.zeros(len(X), dtype=np.int64)
    active = np.flatnonzero(t.left[node] != -1)
    while len(active):
        at = node[active]
        x = X[active, t.feature[at]]
        go_left = np.where(
            np.isnan(x), t.missing_left[at], x < cut[at] if xgboost else x <= cut[at]
        )
        node[active] = np.where(go_left, t.left[at], t.right[at])
        active = active[t.left[node[active]] != -1]
    return node


def serving_mismatches(model: Any, X: Any, format: str = "xgboost-json") -> np.ndarray:
    """Which rows of ``X`` an exported model sends through some tree unlike ``model`` does.

    XGBoost rounds each value to float32 before comparing it: a value within float32 rounding of
    a split edge can land on the other side (see the module notes). LightGBM reads a nonzero
    ``|x| <= 1e-35`` as 0: such a value with a split edge between it and 0 can too. Every other
    row reaches the same leaves, so gets the same prediction up to the library's arithmetic.

    Parameters
    ----------
    model : DARTRegressor, DARTClassifier or DARTRanker
        A fitted estimator.
    X : array-like of shape (n_samples, n_features)
        Rows to check (as for ``model.predict``, NaN allowed).
    format : {"xgboost-json", "lightgbm-text"}, default "xgboost-json"
        The export format the rows will be served with.

    Returns
    -------
    ndarray of bool, shape (n_samples,)
        True where at least one tree sends the row to another leaf in the serving library.

    Raises
    ------
    ParameterError
        Unknown ``format``, ``model`` not a fitted DART estimator, or ``X`` not valid for it.

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.dart import DARTRegressor
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]] * 5); y = X[:, 0]
    >>> model = DARTRegressor(n_estimators=2, min_samples_leaf=1).fit(X, y)
    >>> model.binner_.edges[0].tolist()  # each split is at one of these edges
    [0.5, 1.5, 2.5]
    >>> near = np.array([[0.5], [0.5 + 1e-12], [0.9]])  # 0.5 + 1e-12 rounds to 0.5 in float32
    >>> serving_mismatches(model, near, "xgboost-json").tolist()
    [False, True, False]
    >>> serving_mismatches(model, near, "lightgbm-text").tolist()
    [False, False, False]
    """
    if format not in FORMATS:
        raise ParameterError(f"format={format!r} is not supported (use one of {FORMATS})")
    _task(model)
    X = model._validate(X, reset=False)
    xgboost = format == "xgboost-json"
    served = X if xgboost else np.where(np.abs(X) <= LIGHTGBM_ZERO_THRESHOLD, 0.0, X)
    differs = np.zeros(len(X), dtype=bool)
    for t in _folded_trees(model):
        differs |= _leaf_of(t, X) != _leaf_of(t, served, xgboost=xgboost)
    return differs
