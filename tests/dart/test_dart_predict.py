"""The packed prediction kernel against an independent walk of the fitted trees.

References: the binned-matrix walker (``Ensemble.predict_margin`` on ``BinMapper.transform``,
a separate kernel over bin indices) for whole ensembles, and a plain-Python walk of the node
arrays for hand-built trees. Every comparison is exact: the packed kernel adds the same products
in the same order.
"""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_friedman1

from redundancy.dart import DARTClassifier, DARTRanker, DARTRegressor, load, save
from redundancy.dart.datasets import make_ranking
from redundancy.dart.predict import RawPredictor
from redundancy.dart.tree import Tree
from redundancy.errors import ParameterError

SETTINGS = {"n_estimators": 12, "max_leaves": 9, "min_samples_leaf": 3, "random_state": 0}


def _with_missing(X: np.ndarray, seed: int) -> np.ndarray:
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < 0.15] = np.nan
    return X


def _fitted(task: str):
    """(model, training X, query X with NaN, infinities and values equal to split edges)."""
    rng = np.random.default_rng(1)
    if task == "regression":
        X, y = make_friedman1(300, n_features=6, random_state=0)
        model = DARTRegressor(rate_drop=0.2, **SETTINGS).fit(_with_missing(X, 0), y)
    elif task in ("binary", "multiclass"):
        X, y = make_classification(
            300, n_features=6, n_informative=4, n_redundant=0,
            n_classes=2 if task == "binary" else 3, random_state=0,
        )  # fmt: skip
        model = DARTClassifier(rate_drop=0.2, **SETTINGS).fit(_with_missing(X, 0), y)
    else:
        X, y, group = make_ranking(n_queries=30, seed=0)
        model = DARTRanker(rate_drop=0.2, **SETTINGS).fit(_with_missing(X, 0), y, group)
    query = _with_missing(rng.normal(size=(501, X.shape[1])) * X.std(axis=0), 2)
    query[rng.random(query.shape) < 0.03] = np.inf
    query[rng.random(query.shape) < 0.03] = -np.inf
    for j, edges in enumerate(model.binner_.edges):  # ties with the cuts
        on_edge = rng.random(len(query)) < 0.3
        query[on_edge, j] = rng.choice(edges, on_edge.sum())
    return model, query


def _binned_margins(model, X: np.ndarray) -> np.ndarray:
    ens = model.ensemble_
    return ens.predict_margin(model.binner_.transform(X))


def _packed_margins(model, X: np.ndarray) -> np.ndarray:
    ens = model.ensemble_
    return ens.predictor(model.binner_.edges).predict(X, ens.n_outputs) + ens.base_score


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass", "ranking"])
def test_packed_prediction_equals_the_binned_walk_before_and_after_saving(task, tmp_path):
    model, X = _fitted(task)
    want = _binned_margins(model, X)
    assert np.array_equal(_packed_margins(model, X), want)
    save(model, tmp_path / "m.json")
    loaded = load(tmp_path / "m.json")
    assert np.array_equal(_packed_margins(loaded, X), want)
    finite = np.nan_to_num(X, nan=np.nan, posinf=1e300, neginf=-1e300)  # predict refuses inf
    assert np.array_equal(loaded.predict(finite), model.predict(finite))


def _walk(tree: Tree, cuts: np.ndarray, x: np.ndarray) -> float:
    nd = 0
    while tree.left[nd] != -1:
        v = x[tree.feature[nd]]
        go_left = v <= cuts[nd] or (np.isnan(v) and tree.missing_left[nd] == 1)
        nd = tree.left[nd] if go_left else tree.right[nd]
    return float(tree.value[nd])


def test_trees_with_any_child_layout_walk_as_written():
    """Children out of sibling order and a node shared by two parents (a file may hold both)."""
    swapped = Tree(  # root's right child (1) comes before its left child (2)
        feature=np.array([0, 1, -1, -1, -1], np.int32),
        threshold=np.array([3, 5, 0, 0, 0], np.int32),
        left=np.array([2, 3, -1, -1, -1], np.int32),
        right=np.array([1, 4, -1, -1, -1], np.int32),
        value=np.array([0.0, 0.0, 1.0, 2.0, 4.0]),
        gain=np.zeros(5),
        missing_left=np.array([1, 0, 0, 0, 0], np.uint8),
    )
    shared = Tree(  # node 3 is reached from both 1 and 2
        feature=np.array([1, 0, 0, -1, -1, -1], np.int32),
        threshold=np.array([2, 6, 1, 0, 0, 0], np.int32),
        left=np.array([1, 3, 5, -1, -1, -1], np.int32),
        right=np.array([2, 4, 3, -1, -1, -1], np.int32),
        value=np.array([0.0, 0.0, 0.0, 8.0, 16.0, 32.0]),
        gain=np.zeros(6),
        missing_left=np.array([0, 1, 1, 0, 0, 0], np.uint8),
    )
    stump = Tree(*(np.array([v], dt) for v, dt in ((-1, np.int32),) * 4), np.array([64.0]),
                 np.zeros(1), np.zeros(1, np.uint8))  # fmt: skip
    edges = [np.arange(10.0), np.arange(10.0) + 0.5]
    trees = [swapped, shared, stump, shared]
    weights = np.array([1.0, 0.5, 0.25, 2.0])
    X = np.random.default_rng(0).integers(-1, 11, size=(203, 2)).astype(float)
    X[np.random.default_rng(1).random(X.shape) < 0.2] = np.nan
    got = RawPredictor(trees, weights, np.array([0, 1, 0, 1]), edges).predict(X, 2)
    want = np.zeros((len(X), 2))
    for i, x in enumerate(X):
        for k, (tree, w) in enumerate(zip(trees, weights, strict=True)):
            pairs = zip(tree.feature, tree.threshold, strict=True)
            cuts = np.array([edges[f][t] if f >= 0 else 0.0 for f, t in pairs])
            want[i, k % 2] += w * _walk(tree, cuts, x)
    assert np.array_equal(got, want)


def test_a_tree_that_unfolds_beyond_the_cap_is_refused():
    """Every node's two children are the same next node: 2**23 root-to-leaf paths."""
    depth = 23
    chain = np.arange(1, depth + 1, dtype=np.int32)
    tree = Tree(
        feature=np.r_[np.zeros(depth, np.int32), -1].astype(np.int32),
        threshold=np.zeros(depth + 1, np.int32),
        left=np.r_[chain, -1].astype(np.int32),
        right=np.r_[chain, -1].astype(np.int32),
        value=np.r_[np.zeros(depth), 1.0],
        gain=np.zeros(depth + 1),
    )
    with pytest.raises(ParameterError, match="unfolds into more than"):
        RawPredictor([tree], np.ones(1), np.zeros(1, np.int64), [np.arange(3.0)])


def test_prediction_cache_follows_weights_changed_in_place_and_is_not_pickled():
    import pickle

    X, y = make_friedman1(300, random_state=3)
    model = DARTRegressor(n_estimators=10, random_state=0).fit(X, y)
    before = model.predict(X)  # builds the cached predictor
    base = model.ensemble_.base_score[0]
    model.ensemble_.weights *= 0.5  # same array object, new values
    # Every round's contribution halves: an independent expectation from the old predictions.
    assert np.allclose(model.predict(X), base + 0.5 * (before - base), rtol=0, atol=1e-9)
    state = pickle.loads(pickle.dumps(model)).ensemble_.__dict__
    assert "_predictor" not in state
