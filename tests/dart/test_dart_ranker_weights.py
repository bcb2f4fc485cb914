"""DARTRanker's per-group ``sample_weight`` (XGBoost's ranking semantics).

The reference is the weights' meaning spelled out on the data: a group of integer weight c is that
group repeated c times as separate queries (weight 0: the group left out), fitted unweighted.

The features are rounded to fewer distinct values than ``max_bins`` (255), so the bin edges are
midpoints of distinct values and do not depend on how the rows are weighted. (On continuous
features the weighted quantile edges can differ from the repeated rows' at exact quantile
boundaries, a rounding difference inside ``np.quantile``, not a property of the ranking weights.)
"""

import numpy as np
import pytest

from redundancy.dart import DARTRanker
from redundancy.dart.datasets import make_ranking
from redundancy.errors import ParameterError

TREES = {"n_estimators": 25, "max_leaves": 15, "min_samples_leaf": 5, "colsample_bytree": 0.8}


def queries(n_queries: int, seed: int):
    X, y, group = make_ranking(n_queries=n_queries, docs_per_query=20, seed=seed)
    X = np.round(X * 20) / 20
    X[np.random.default_rng(seed).random(X.shape) < 0.05] = np.nan
    return X, y, group


def repeat_groups(X, y, group, copies):
    """Each query ``copies[q]`` times as a separate query (0: left out)."""
    starts = np.concatenate([[0], np.cumsum(group)])
    rows, sizes = [], []
    for q, c in enumerate(copies):
        for _ in range(int(c)):
            rows.append(np.arange(starts[q], starts[q + 1]))
            sizes.append(group[q])
    rows = np.concatenate(rows)
    return X[rows], y[rows], np.array(sizes)


def test_integer_group_weights_fit_the_model_of_repeated_groups():
    """MART rounds (no dropout): the next test says why DART's dropout breaks the equivalence."""
    X, y, group = queries(60, seed=5)
    copies = np.random.default_rng(1).integers(0, 4, size=len(group))
    Xt, _, _ = queries(20, seed=9)
    params = {**TREES, "rate_drop": 0.0, "random_state": 0}
    for policy in ("lossguide", "depthwise"):
        weighted = DARTRanker(grow_policy=policy, **params)
        weighted.fit(X, y, group, sample_weight=copies.astype(float))
        repeated = DARTRanker(grow_policy=policy, **params).fit(*repeat_groups(X, y, group, copies))
        np.testing.assert_allclose(weighted.predict(Xt), repeated.predict(Xt), rtol=0, atol=1e-9)
        unweighted = DARTRanker(grow_policy=policy, **params).fit(X, y, group)
        assert np.abs(weighted.predict(Xt) - unweighted.predict(Xt)).max() > 0.1


def test_integer_group_weights_with_dropout_fit_the_model_of_repeated_groups():
    """With dropout, scores tied in exact arithmetic (documents that differ only in dropped
    trees) carry rounding noise that differs between the two fits; LambdaRank ranks them as ties
    (scores snapped to a 1e-9 grid), not by that noise."""
    X, y, group = queries(60, seed=5)
    copies = np.random.default_rng(1).integers(1, 4, size=len(group))
    Xt, _, _ = queries(20, seed=9)
    params = {**TREES, "rate_drop": 0.2, "skip_drop": 0.0, "random_state": 0}
    weighted = DARTRanker(**params).fit(X, y, group, sample_weight=copies.astype(float))
    repeated = DARTRanker(**params).fit(*repeat_groups(X, y, group, copies))
    np.testing.assert_allclose(weighted.predict(Xt), repeated.predict(Xt), rtol=0, atol=1e-9)


@pytest.mark.parametrize("rate_drop", [0.0, 0.2])
def test_groups_of_weight_zero_do_not_influence_the_model(rate_drop):
    X, y, group = queries(60, seed=7)
    keep = np.random.default_rng(2).random(len(group)) < 0.6
    X_noise = np.random.default_rng(3).normal(size=X.shape)  # the left-out queries' own features
    starts = np.concatenate([[0], np.cumsum(group)])
    for q in np.flatnonzero(~keep):
        X[starts[q] : starts[q + 1]] = X_noise[starts[q] : starts[q + 1]] * 5
    Xt, _, _ = queries(20, seed=9)
    params = {**TREES, "rate_drop": rate_drop, "skip_drop": 0.0, "random_state": 0}
    weighted = DARTRanker(**params).fit(X, y, group, sample_weight=keep.astype(float))
    dropped = DARTRanker(**params).fit(*repeat_groups(X, y, group, keep))
    for got, want in zip(weighted.binner_.edges, dropped.binner_.edges, strict=True):
        assert np.array_equal(got, want)
    np.testing.assert_allclose(weighted.predict(Xt), dropped.predict(Xt), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            [1.0, 2.0],
            r"sample_weight has shape \(2,\), but .* one weight per query group: shape \(3,\)",
        ),
        ([1.0] * 60, r"sample_weight has shape \(60,\), but .* shape \(3,\)"),
        ([[1.0, 1.0, 1.0]], r"sample_weight has shape \(1, 3\)"),
        ([1.0, -0.5, 1.0], r"sample_weight\[1\]=-0.5 is not allowed \(use finite weights >= 0\)"),
        ([1.0, 1.0, np.nan], r"sample_weight\[2\]=nan is not allowed"),
        ([np.inf, 1.0, 1.0], r"sample_weight\[0\]=inf is not allowed"),
        ([0.0, 0.0, 0.0], r"sample_weight is all 0"),
        (["a", "b", "c"], r"sample_weight must be numbers, one per query group"),
    ],
)
def test_bad_group_weights_are_refused_in_one_line(weights, message):
    X, y, group = queries(3, seed=0)
    with pytest.raises(ParameterError, match=message) as info:
        DARTRanker(n_estimators=2).fit(X, y, group, sample_weight=weights)
    assert "\n" not in str(info.value)
