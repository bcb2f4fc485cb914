"""Sample weights, missing values, sampling, depth-wise growth and staged predictions, checked
against XGBoost, LightGBM, row duplication and hand-computed values."""

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_diabetes, make_classification, make_friedman1
from sklearn.model_selection import KFold, cross_val_score

from redundancy.dart import DARTClassifier, DARTRegressor
from redundancy.dart.binning import BinMapper
from redundancy.dart.boosting import DropParams, boost
from redundancy.dart.losses import SquaredError
from redundancy.dart.tree import TreeParams
from redundancy.errors import ParameterError

STUMP = {"n_estimators": 1, "learning_rate": 1.0, "reg_lambda": 1.0, "rate_drop": 0.0}


def _xgb_one_tree(X, y, **kw):
    params = {"n_estimators": 1, "learning_rate": 1.0, "reg_lambda": 1.0, "min_child_weight": 0}
    params.update(base_score=float(np.mean(y)), tree_method="hist", max_bin=256, n_jobs=1)
    return xgb.XGBRegressor(**params, **kw).fit(X, y)


@pytest.mark.parametrize("cls", [DARTRegressor, DARTClassifier])
def test_integer_weights_fit_the_model_of_duplicated_rows(cls):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))  # > 255 distinct values: weighted quantile edges
    y = X[:, 0] + X[:, 1] ** 2 + rng.normal(size=400)
    X[rng.random(X.shape) < 0.1] = np.nan
    if cls is DARTClassifier:
        y = (y > np.median(y)).astype(int)
    w = rng.integers(0, 4, size=400)  # zeros remove rows
    params = {"n_estimators": 25, "rate_drop": 0.3, "max_leaves": 8, "random_state": 3}
    weighted = cls(**params).fit(X, y, sample_weight=w)
    repeated = cls(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    for a, b in zip(weighted.binner_.edges, repeated.binner_.edges, strict=True):
        assert np.array_equal(a, b)
    assert weighted.history_.n_dropped == repeated.history_.n_dropped
    method = "predict_proba" if cls is DARTClassifier else "predict"
    np.testing.assert_allclose(
        getattr(weighted, method)(X), getattr(repeated, method)(X), rtol=1e-9, atol=1e-12
    )


def test_weighted_fit_follows_lightgbm_on_the_same_weights():
    X, y = make_friedman1(1500, noise=0.5, random_state=0)
    w = np.where(X[:, 0] > 0.5, 20.0, 1.0)  # one half of the space counts 20x
    y = y + 3.0 * (X[:, 0] > 0.5) * X[:, 3]
    settings = {"n_estimators": 60, "learning_rate": 0.1, "reg_lambda": 1.0}
    ours = DARTRegressor(rate_drop=0.0, max_leaves=15, min_samples_leaf=5, **settings)
    ours.fit(X, y, sample_weight=w)
    theirs = lgb.LGBMRegressor(
        num_leaves=15, min_child_samples=5, min_child_weight=1e-3, verbose=-1, n_jobs=1, **settings
    ).fit(X, y, sample_weight=w)
    gap = np.sqrt(np.average((ours.predict(X) - theirs.predict(X)) ** 2, weights=w))
    assert gap < 0.1 * y.std()
    unweighted = DARTRegressor(rate_drop=0.0, max_leaves=15, min_samples_leaf=5, **settings)
    unweighted.fit(X, y)
    heavy = X[:, 0] > 0.5
    err = {m: np.mean((m.predict(X)[heavy] - y[heavy]) ** 2) for m in (ours, unweighted)}
    assert err[ours] < err[unweighted]  # the weights matter where they are large


@pytest.mark.parametrize("nan_like", ["low", "high"])
def test_missing_values_learn_the_default_direction_of_xgboost(nan_like):
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan, np.nan, np.nan])
    y = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 0.0, 0.0, 0.0])
    if nan_like == "high":
        y[6:] = 5.0
    X = x[:, None]
    ours = DARTRegressor(max_leaves=2, min_samples_leaf=1, **STUMP).fit(X, y)
    theirs = _xgb_one_tree(X, y, max_depth=1)
    Xq = np.array([[np.nan], [0.0], [3.5], [4.5], [9.0]])
    np.testing.assert_allclose(ours.predict(Xq), theirs.predict(Xq), atol=1e-5)
    # and by hand: NaN joins the side it resembles, the leaf is the regularised mean
    side = y[:3] if nan_like == "low" else y[3:6]
    expected = y.mean() + (side.sum() + y[6:].sum() - 6 * y.mean()) / 7.0
    assert ours.predict(Xq[:1])[0] == pytest.approx(expected, rel=1e-12)


def test_missing_value_unseen_in_training_follows_the_heavier_child():
    X = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0]])
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 9.0])  # split 5 | 2: the left child is heavier
    model = DARTRegressor(max_leaves=2, min_samples_leaf=1, **STUMP).fit(X, y)
    assert model.predict([[np.nan]])[0] == model.predict([[1.0]])[0]


def test_accuracy_with_missing_values_matches_lightgbm_and_xgboost():
    X, y = make_friedman1(3000, noise=1.0, random_state=1)
    X[np.random.default_rng(1).random(X.shape) < 0.2] = np.nan
    tr, te = slice(0, 2000), slice(2000, None)
    common = {"n_estimators": 100, "learning_rate": 0.1, "reg_lambda": 1.0, "n_jobs": 1}
    ours = DARTRegressor(rate_drop=0.0, max_leaves=15, learning_rate=0.1, n_estimators=100)
    models = {
        "ours": ours,
        "lightgbm": lgb.LGBMRegressor(num_leaves=15, min_child_samples=10, verbose=-1, **common),
        "xgboost": xgb.XGBRegressor(max_leaves=15, grow_policy="lossguide", max_depth=0, **common),
    }
    rmse = {}
    for name, m in models.items():
        m.fit(X[tr], y[tr])
        rmse[name] = float(np.sqrt(np.mean((m.predict(X[te]) - y[te]) ** 2)))
    assert rmse["ours"] <= 1.05 * min(rmse["lightgbm"], rmse["xgboost"]), rmse


@pytest.mark.parametrize("policy", ["depthwise", "lossguide"])
def test_one_tree_equals_xgboost_tree(policy):
    rng = np.random.default_rng(2)
    X = rng.integers(0, 8, size=(300, 4)).astype(float)
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 2]) * 3 + rng.normal(size=300)
    if policy == "depthwise":
        ours = DARTRegressor(max_depth=3, max_leaves=8, grow_policy=policy, min_samples_leaf=1)
        theirs = _xgb_one_tree(X, y, max_depth=3, grow_policy=policy)
    else:
        ours = DARTRegressor(max_leaves=6, grow_policy=policy, min_samples_leaf=1)
        theirs = _xgb_one_tree(X, y, max_depth=0, max_leaves=6, grow_policy=policy)
    ours.set_params(**STUMP).fit(X, y)
    tree = ours.ensemble_.trees[0][0]
    assert tree.n_leaves == (8 if policy == "depthwise" else 6)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=1e-4)


def _leaf_depths(tree):
    depth = np.zeros(len(tree.left), dtype=int)
    for nd in range(len(tree.left)):
        if tree.left[nd] != -1:
            depth[tree.left[nd]] = depth[tree.right[nd]] = depth[nd] + 1
    return sorted(depth[tree.left == -1])


def test_depthwise_fills_levels_before_going_deeper():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(800, 3))
    x = X[:, 0]  # the gain keeps coming from the upper end: leaf-wise growth goes deep there
    y = 8.0 * (x > 0.5) + 4.0 * (x > 0.75) + 2.0 * (x > 0.875) + rng.normal(scale=0.1, size=800)
    depths = {}
    for policy in ("lossguide", "depthwise"):
        model = DARTRegressor(grow_policy=policy, max_leaves=4, max_depth=5, min_samples_leaf=5)
        model.set_params(**STUMP).set_params(reg_lambda=0.0)  # L2 would veto the noise splits
        depths[policy] = _leaf_depths(model.fit(X, y).ensemble_.trees[0][0])
    assert depths["lossguide"] == [1, 2, 3, 3]
    assert depths["depthwise"] == [2, 2, 2, 2]


def test_subsampling_is_seeded_and_bounded():
    X, y = make_friedman1(800, noise=0.5, random_state=0)
    params = {"n_estimators": 12, "subsample": 0.5, "colsample_bytree": 0.4, "max_leaves": 8}
    a = DARTRegressor(random_state=1, **params).fit(X, y)
    b = DARTRegressor(random_state=1, **params).fit(X, y)
    c = DARTRegressor(random_state=2, **params).fit(X, y)
    assert np.array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), c.predict(X))
    used = [set(t.feature[t.left != -1]) for (t,) in a.ensemble_.trees]
    assert all(len(u) <= 4 for u in used)  # 40 % of 10 features per round
    assert len(set().union(*used)) > 4  # a different sample each round
    full = DARTRegressor(random_state=1, n_estimators=12, max_leaves=8).fit(X, y)
    same = DARTRegressor(random_state=1, n_estimators=12, max_leaves=8, subsample=1.0)
    assert np.array_equal(
        full.predict(X), same.set_params(colsample_bytree=1.0).fit(X, y).predict(X)
    )


def test_subsample_trees_are_fitted_on_the_sample_only():
    X, y = make_friedman1(600, noise=0.5, random_state=0)
    model = DARTRegressor(subsample=0.3, max_leaves=2, min_samples_leaf=1, random_state=0)
    tree = model.set_params(**STUMP).fit(X, y).ensemble_.trees[0][0]
    leaf_rows = tree.apply(model.binner_.transform(X))
    # some leaf value is not the regularised mean residual of all its rows: a sample fitted it
    full_means = [
        -np.sum(y.mean() - y[leaf_rows == lf]) / (np.sum(leaf_rows == lf) + 1.0)
        for lf in np.unique(leaf_rows)
    ]
    assert not np.allclose(tree.value[np.unique(leaf_rows)], full_means)


def test_staged_predictions_by_hand():
    # x splits the rows perfectly; every round drops all earlier ones (rate 1), lr 0.5, lambda 0
    X = np.array([[0.0], [0.0], [1.0], [1.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    model = DARTRegressor(
        n_estimators=3, learning_rate=0.5, reg_lambda=0.0, rate_drop=1.0, max_leaves=2,
        min_samples_leaf=1, min_child_weight=0.0, skip_drop=0.0,
    ).fit(X, y)  # fmt: skip
    # every tree is -0.5 / +0.5. Round weights: [.5]; k=1: [.5*2/3, 1/3]; k=2: [x*.8, x*.8, .2]
    as_added = [0.5 * 0.5, 0.5 * (1 / 3 + 1 / 3), 0.5 * (0.8 / 3 + 0.8 / 3 + 0.2)]
    current = [0.5 * 0.8 / 3, 0.5 * 1.6 / 3, 0.5 * (1.6 / 3 + 0.2)]
    for weights, expected in (("as_added", as_added), ("current", current)):
        stages = list(model.staged_predict(X, round_weights=weights))
        got = [s[2] - 0.5 for s in stages]  # the upper rows, minus the base score
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        np.testing.assert_allclose(stages[-1], model.predict(X), rtol=1e-12)
    np.testing.assert_allclose(model.ensemble_.weights, [0.8 / 3, 0.8 / 3, 0.2], rtol=1e-12)


def test_staged_classifier_ends_at_predict_and_as_added_replays_training():
    X, y = make_classification(300, n_features=6, n_classes=3, n_informative=4, random_state=0)
    model = DARTClassifier(n_estimators=10, rate_drop=0.3, max_leaves=6, random_state=0)
    model.fit(X, y)
    for weights in ("as_added", "current"):
        proba = list(model.staged_predict_proba(X, round_weights=weights))
        assert len(proba) == 10
        np.testing.assert_allclose(proba[-1], model.predict_proba(X), rtol=1e-10)
        assert np.array_equal(list(model.staged_predict(X, weights))[-1], model.predict(X))
    # as_added stage r is the model refitted for r + 1 rounds (same seed, same drops)
    short = DARTClassifier(n_estimators=4, rate_drop=0.3, max_leaves=6, random_state=0).fit(X, y)
    stage = list(model.staged_predict_proba(X))[3]
    np.testing.assert_allclose(stage, short.predict_proba(X), rtol=1e-10)
    with pytest.raises(ParameterError, match="round_weights"):
        next(model.staged_predict(X, round_weights="final"))


def test_bounded_cache_fits_the_same_model():
    X, y = make_friedman1(500, noise=0.5, random_state=0)
    bm = BinMapper().fit(X)
    args = {
        "n_estimators": 20, "learning_rate": 0.2, "tree_params": TreeParams(max_leaves=8),
        "drop": DropParams(rate_drop=0.3), "seed": 0,
    }  # fmt: skip
    full, _ = boost(bm.transform(X), bm.n_bins, y, SquaredError(), **args)
    tight, _ = boost(bm.transform(X), bm.n_bins, y, SquaredError(), cache_budget_bytes=0, **args)
    assert np.array_equal(full.weights, tight.weights)
    xb = bm.transform(X)
    assert np.array_equal(full.predict_margin(xb), tight.predict_margin(xb))


@pytest.mark.parametrize(
    ("param", "value"),
    [("subsample", 0.0), ("colsample_bytree", 1.5), ("grow_policy", "levelwise")],
)
def test_bad_new_parameters_are_refused(param, value):
    X, y = make_friedman1(50, random_state=0)
    with pytest.raises(ParameterError, match=param):
        DARTRegressor(**{param: value}).fit(X, y)


def test_bad_sample_weight_is_refused():
    X, y = make_friedman1(50, random_state=0)
    for bad in (-np.ones(50), np.zeros(50), np.ones(49)):
        with pytest.raises(ParameterError, match="sample_weight"):
            DARTRegressor(n_estimators=2).fit(X, y, sample_weight=bad)


def test_default_dart_beats_the_same_model_without_dropout_on_diabetes():
    """The defaults (lr 0.3, p 0.1, skip 0.5) were chosen so DART helps; the old ones (lr 0.1,
    no skipping) made it lag MART on most sets (benchmarks/dart_defaults.py)."""
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(3, shuffle=True, random_state=0)
    rmse = {
        p: -cross_val_score(
            DARTRegressor(rate_drop=p, min_samples_leaf=20, random_state=0), X, y, cv=cv,
            scoring="neg_root_mean_squared_error",
        ).mean()
        for p in (0.0, 0.1)
    }  # fmt: skip
    assert rmse[0.1] < rmse[0.0]
