"""The boosting loop: MART as p = 0, averaging when all rounds drop, normalisation, snapshots."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.model_selection import KFold, cross_val_score

from redundancy.dart import DARTRegressor
from redundancy.dart.binning import BinMapper
from redundancy.dart.boosting import DropParams, DropSchedule, boost, normalisation
from redundancy.dart.losses import SquaredError
from redundancy.dart.tree import TreeLearner, TreeParams


@pytest.fixture(scope="module")
def data():
    X, y = make_friedman1(800, noise=0.5, random_state=0)
    bm = BinMapper().fit(X)
    return bm.transform(X), bm.n_bins, y


def _boost(data, **kw):
    xb, n_bins, y = data
    args = {
        "n_estimators": 15,
        "learning_rate": 0.3,
        "tree_params": TreeParams(max_leaves=8),
        "drop": DropParams(),
        "seed": 3,
    }
    args.update(kw)
    return boost(xb, n_bins, y, SquaredError(), **args)


def test_rate_zero_is_mart_exactly(data):
    xb, n_bins, y = data
    ens, hist = _boost(data, drop=DropParams(rate_drop=0.0))
    assert hist.n_dropped == [0] * 15
    learner = TreeLearner(xb, n_bins, TreeParams(max_leaves=8))
    F = np.full(len(y), y.mean())
    for r in range(15):
        tree, nodes = learner.fit(F - y, np.ones_like(y))
        F = F + 0.3 * tree.value[nodes]
        assert np.array_equal(tree.value, ens.trees[r][0].value)
    assert np.allclose(ens.weights, 0.3)
    assert np.allclose(ens.predict_margin(xb)[:, 0], F)


def test_dropping_everything_averages(data):
    xb, _, y = data
    ens, hist = _boost(data, learning_rate=1.0, drop=DropParams(rate_drop=1.0))
    assert hist.n_dropped == list(range(15))
    assert np.allclose(ens.weights, 1.0 / 15)
    first = ens.trees[0][0]
    margin = ens.predict_margin(xb)[:, 0]
    assert np.allclose(margin, y.mean() + first.value[first.apply(xb)])


@pytest.mark.parametrize("kind", ["tree", "forest"])
def test_cache_equals_weighted_sum_of_trees(data, kind):
    xb, _, y = data
    drop = DropParams(rate_drop=0.3, normalize_type=kind)
    ens, hist = _boost(data, drop=drop, record_train_loss=True)
    assert sum(hist.n_dropped) > 15
    recomputed = SquaredError().value(y, ens.predict_margin(xb))
    assert hist.train_loss[-1] == pytest.approx(recomputed, rel=1e-10)
    manual = np.full(len(y), y.mean())
    for w, (t,) in zip(ens.weights, ens.trees, strict=True):
        manual += w * t.value[t.apply(xb)]
    assert np.allclose(manual, ens.predict_margin(xb)[:, 0])


def test_normalisation_formulas():
    assert normalisation(0, 0.1, "tree") == (0.1, 1.0)
    w, f = normalisation(3, 1.0, "tree")
    assert (w, f) == pytest.approx((1 / 4, 3 / 4))
    w, f = normalisation(3, 0.5, "forest")
    assert (w, f) == pytest.approx((0.5 / 1.5, 1 / 1.5))


def test_binomial_plus_one_and_caps():
    rng = np.random.default_rng(0)
    plus_one = DropSchedule(DropParams(rate_drop=1e-9), rng)
    assert all(len(plus_one.choose(10)) == 1 for _ in range(50))
    capped = DropSchedule(DropParams(rate_drop=1.0, max_drop=3), rng)
    assert all(len(capped.choose(10)) == 3 for _ in range(20))
    skip = DropSchedule(DropParams(rate_drop=1.0, skip_drop=1.0), rng)
    assert len(skip.choose(10)) == 0


def test_early_stopping_restores_the_best_round_exactly():
    X, y = make_friedman1(600, noise=2.0, random_state=1)
    Xv, yv = make_friedman1(300, noise=2.0, random_state=2)
    kw = {"rate_drop": 0.2, "learning_rate": 0.5, "random_state": 5, "max_leaves": 31}
    es = DARTRegressor(n_estimators=150, early_stopping_rounds=10, **kw)
    es.fit(X, y, eval_set=(Xv, yv))
    best = es.history_.best_round
    assert best is not None and best + 1 < 150 and es.n_estimators_ == best + 1
    plain = DARTRegressor(n_estimators=best + 1, **kw).fit(X, y)
    assert np.allclose(es.predict(Xv), plain.predict(Xv), atol=1e-9)
    rmse = np.sqrt(np.mean((es.predict(Xv) - yv) ** 2))
    assert rmse == pytest.approx(min(es.history_.valid_loss))


def test_dart_beats_mart_on_diabetes_cv():
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(3, shuffle=True, random_state=0)
    kw = {"n_estimators": 100, "max_leaves": 8, "learning_rate": 0.1, "random_state": 0}
    kw["skip_drop"] = 0.0  # the paper's DART
    rmse = {
        p: -cross_val_score(
            DARTRegressor(rate_drop=p, **kw), X, y, cv=cv, scoring="neg_root_mean_squared_error"
        ).mean()
        for p in (0.0, 0.1)
    }
    assert rmse[0.1] < rmse[0.0] - 1.0
