"""Weighted validation loss: ``eval_sample_weight`` and the held-out rows of early stopping.

References: scikit-learn's weighted metrics on the model's own staged predictions (regression,
classification), and the weights' meaning spelled out on the data for ranking (a query group of
integer weight c is that group repeated c times; weight 0 leaves it out).
"""

import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_squared_error

from redundancy.dart import DARTClassifier, DARTRanker, DARTRegressor
from redundancy.dart.datasets import make_ranking
from redundancy.errors import ParameterError

SMALL = {"n_estimators": 15, "max_leaves": 7, "random_state": 0}


def regression(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, X[:, 0] - 0.5 * X[:, 1] ** 2 + rng.normal(scale=0.3, size=n)


@pytest.mark.parametrize("rate_drop", [0.0, 0.2])
def test_regressor_validation_loss_is_the_weighted_rmse(rate_drop):
    X, y = regression(400, 0)
    Xv, yv = regression(150, 1)
    wv = np.random.default_rng(2).uniform(0.0, 3.0, len(yv))
    model = DARTRegressor(rate_drop=rate_drop, **SMALL)
    model.fit(X, y, eval_set=(Xv, yv), eval_sample_weight=wv)
    stages = list(model.staged_predict(Xv, round_weights="as_added"))
    expected = [np.sqrt(mean_squared_error(yv, p, sample_weight=wv)) for p in stages]
    np.testing.assert_allclose(model.history_.valid_loss, expected, rtol=1e-12)
    unweighted = [np.sqrt(mean_squared_error(yv, p)) for p in stages]
    assert not np.allclose(model.history_.valid_loss, unweighted)


def test_classifier_validation_loss_is_the_weighted_log_loss():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 4))
    y = (X[:, 0] + rng.normal(scale=0.7, size=500) > 0).astype(int)
    Xv, yv = X[350:], y[350:]
    wv = rng.uniform(0.0, 2.0, len(yv))
    model = DARTClassifier(**SMALL).fit(X[:350], y[:350], eval_set=(Xv, yv), eval_sample_weight=wv)
    expected = [log_loss(yv, p, sample_weight=wv) for p in model.staged_predict_proba(Xv)]
    np.testing.assert_allclose(model.history_.valid_loss, expected, rtol=1e-10)


def test_zero_weights_leave_validation_rows_out_and_early_stopping_follows():
    X, y = regression(400, 4)
    Xv, yv = regression(200, 5)
    keep = np.random.default_rng(6).random(len(yv)) < 0.5
    settings = {**SMALL, "n_estimators": 60, "early_stopping_rounds": 3, "learning_rate": 0.5}
    weighted = DARTRegressor(**settings).fit(
        X, y, eval_set=(Xv, yv), eval_sample_weight=keep.astype(float)
    )
    subset = DARTRegressor(**settings).fit(X, y, eval_set=(Xv[keep], yv[keep]))
    np.testing.assert_allclose(weighted.history_.valid_loss, subset.history_.valid_loss, rtol=1e-12)
    assert weighted.history_.best_round == subset.history_.best_round
    assert weighted.n_estimators_ == subset.n_estimators_


def test_ranker_group_weights_equal_repeated_validation_groups():
    X, y, group = make_ranking(n_queries=30, docs_per_query=10, seed=7)
    Xv, yv, gv = make_ranking(n_queries=8, docs_per_query=10, seed=8)
    copies = np.array([0, 1, 2, 3, 1, 0, 2, 1])
    starts = np.concatenate([[0], np.cumsum(gv)])
    rows = np.concatenate(
        [np.arange(starts[q], starts[q + 1]) for q, c in enumerate(copies) for _ in range(c)]
    )
    sizes = np.array([gv[q] for q, c in enumerate(copies) for _ in range(c)])
    weighted = DARTRanker(**SMALL).fit(
        X, y, group, eval_set=(Xv, yv, gv), eval_sample_weight=copies.astype(float)
    )
    repeated = DARTRanker(**SMALL).fit(X, y, group, eval_set=(Xv[rows], yv[rows], sizes))
    np.testing.assert_allclose(
        weighted.history_.valid_loss, repeated.history_.valid_loss, rtol=1e-12
    )


def test_held_out_rows_keep_their_weights():
    """Early stopping without eval_set: the rows held out carry their sample weights into the
    validation loss (all-ones weights change nothing; heavy weights on the hardest rows raise
    it)."""
    X, y = regression(300, 9)
    settings = {**SMALL, "early_stopping_rounds": 50, "validation_fraction": 0.2}
    rounds = DARTRegressor(**settings).fit(X, y).history_.valid_loss
    ones = DARTRegressor(**settings).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.history_.valid_loss, rounds, rtol=1e-12)
    skewed = np.ones(len(y))
    skewed[np.argsort(np.abs(y - y.mean()))[-30:]] = 1e4  # the 30 hardest rows dominate
    heavy = DARTRegressor(**settings).fit(X, y, sample_weight=skewed)
    assert heavy.history_.valid_loss[0] > 1.3 * rounds[0]  # 1.49 measured; unweighted: 0.97


@pytest.mark.parametrize(
    ("fit", "message"),
    [
        (lambda m, X, y: m.fit(X, y, eval_sample_weight=np.ones(10)), "without eval_set"),
        (
            lambda m, X, y: m.fit(X, y, eval_set=(X[:10], y[:10]), eval_sample_weight=np.ones(9)),
            "eval_sample_weight",
        ),
        (
            lambda m, X, y: m.fit(
                X, y, eval_set=(X[:10], y[:10]), eval_sample_weight=np.full(10, -1.0)
            ),
            "eval_sample_weight",
        ),
    ],
)
def test_bad_eval_weights_are_refused(fit, message):
    X, y = regression(50, 10)
    with pytest.raises(ParameterError, match=message):
        fit(DARTRegressor(n_estimators=2), X, y)


def test_ranker_eval_weights_need_one_per_group():
    X, y, group = make_ranking(n_queries=5, docs_per_query=6, seed=11)
    with pytest.raises(ParameterError, match=r"eval_sample_weight has shape \(4,\)"):
        DARTRanker(n_estimators=2).fit(
            X, y, group, eval_set=(X, y, group), eval_sample_weight=np.ones(4)
        )
