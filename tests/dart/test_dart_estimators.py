"""scikit-learn contract, accuracy against baselines, JSON round trips and bad input."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_friedman1
from sklearn.utils.estimator_checks import parametrize_with_checks

from redundancy.dart import DARTClassifier, DARTRanker, DARTRegressor, load, save
from redundancy.dart.datasets import make_ranking
from redundancy.dart.diagnostics import plot_contributions, round_contributions
from redundancy.dart.losses import LambdaRank, ndcg
from redundancy.errors import IntegrityError, ParameterError


@parametrize_with_checks([DARTRegressor(n_estimators=15), DARTClassifier(n_estimators=15)])
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_multiclass_string_labels_beat_majority_and_round_trip(tmp_path):
    X, y = load_digits(return_X_y=True)
    labels = np.array(list("abcdefghij"))[y]
    model = DARTClassifier(n_estimators=15, max_leaves=8, random_state=0)
    model.fit(X[:1200], labels[:1200])
    acc = model.score(X[1200:], labels[1200:])
    assert acc > 0.85  # majority class is ~0.1
    save(model, tmp_path / "m.json")
    again = load(tmp_path / "m.json")
    assert isinstance(again, DARTClassifier)
    assert np.array_equal(again.predict_proba(X[1200:]), model.predict_proba(X[1200:]))
    assert list(again.classes_) == list(model.classes_)


def test_regressor_importances_and_round_trip(tmp_path):
    X, y = make_friedman1(2000, random_state=0)
    model = DARTRegressor(n_estimators=40, random_state=0).fit(X, y)
    imp = model.feature_importances_
    assert imp.sum() == pytest.approx(1.0)
    assert imp[:5].min() > imp[5:].max()  # friedman1: only the first 5 features matter
    save(model, tmp_path / "r.json")
    assert np.array_equal(load(tmp_path / "r.json").predict(X), model.predict(X))


def test_ranker_learns_and_round_trips(tmp_path):
    X, y, group = make_ranking(n_queries=120, seed=1)
    Xt, yt, gt = make_ranking(n_queries=60, seed=2)
    model = DARTRanker(n_estimators=30, max_leaves=8, random_state=0).fit(X, y, group)
    random_ndcg = ndcg(yt, np.random.default_rng(0).normal(size=len(yt)), LambdaRank(gt).ptr)
    assert model.score(Xt, yt, gt) > random_ndcg + 0.15
    save(model, tmp_path / "k.json")
    assert np.array_equal(load(tmp_path / "k.json").predict(Xt), model.predict(Xt))


def test_ranker_early_stopping_with_groups():
    X, y, group = make_ranking(n_queries=80, seed=3)
    Xv, yv, gv = make_ranking(n_queries=40, seed=4)
    model = DARTRanker(
        n_estimators=200, early_stopping_rounds=5, learning_rate=0.5, random_state=0
    ).fit(X, y, group, eval_set=(Xv, yv, gv))
    assert model.n_estimators_ == model.history_.best_round + 1 < 200


def test_over_specialization_diagnostic(tmp_path):
    X, y = make_friedman1(600, random_state=0)
    curves = {}
    for p in (0.0, 0.2):
        m = DARTRegressor(n_estimators=40, rate_drop=p, learning_rate=1.0, random_state=0)
        curves[p] = round_contributions(m.fit(X, y), X)
    # MART's later rounds change the predictions far less than its first; DART spreads them out
    ratio = {p: c[-10:].mean() / c[:10].mean() for p, c in curves.items()}
    assert ratio[0.2] > 3 * ratio[0.0]
    plot_contributions({str(k): v for k, v in curves.items()}, tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate_drop": 1.5}, "rate_drop"),
        ({"normalize_type": "wide"}, "normalize_type"),
        ({"max_leaves": 1}, "max_leaves"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"n_estimators": "ten"}, "n_estimators"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        DARTRegressor(**kwargs).fit(np.zeros((10, 2)), np.arange(10.0))


def test_bad_data():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20.0)
    with pytest.raises(ParameterError):
        DARTRegressor().fit(X, np.where(y == 3, np.nan, y))
    with pytest.raises(ParameterError):
        DARTRegressor().fit(X, np.where(y == 3, np.inf, y))
    with pytest.raises(ParameterError, match="inconsistent"):
        DARTRegressor().fit(X, y[:-1])
    with pytest.raises(ParameterError, match="class"):
        DARTClassifier().fit(X, np.zeros(20))
    with pytest.raises(ParameterError, match="empty groups"):
        DARTRanker().fit(X, y % 3, np.array([10, 0, 10]))
    with pytest.raises(ParameterError, match="sum to"):
        DARTRanker().fit(X, y % 3, np.array([5, 5]))
    model = DARTRegressor(n_estimators=2).fit(X, y)
    with pytest.raises(ParameterError, match="features"):
        model.predict(X[:, :2])


def test_load_rejects_foreign_files(tmp_path):
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(IntegrityError, match="format"):
        load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(IntegrityError):
        load(tmp_path / "y.json")
