"""``n_jobs``: the thread count numba runs fit and prediction on, restored afterwards."""

import numba
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_friedman1

from redundancy.dart import DARTClassifier, DARTRanker, DARTRegressor, estimators
from redundancy.dart.binning import BinMapper
from redundancy.dart.boosting import Ensemble
from redundancy.dart.datasets import make_ranking
from redundancy.dart.predict import RawPredictor
from redundancy.errors import ParameterError

ALL_THREADS = numba.config.NUMBA_NUM_THREADS
DART = {"rate_drop": 0.2, "skip_drop": 0.0, "max_leaves": 15, "random_state": 0}
SAMPLED = {"subsample": 0.7, "colsample_bytree": 0.6}


@pytest.fixture(autouse=True)
def keep_numba_threads():
    """Each test may change numba's thread count; give the next test the one it had."""
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


def with_missing(X: np.ndarray, seed: int) -> np.ndarray:
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < 0.1] = np.nan
    return X


def regression():
    # 30k rows (21k sampled): the root and its large children take the parallel partition path.
    X, y = make_friedman1(30_000, n_features=6, random_state=0)
    return DARTRegressor(n_estimators=8, **DART, **SAMPLED), with_missing(X, 1), (y,)


def binary():
    X, y = make_classification(3000, n_features=8, random_state=0)
    return DARTClassifier(n_estimators=15, **DART, **SAMPLED), with_missing(X, 2), (y,)


def ranking():
    X, y, group = make_ranking(n_queries=150, docs_per_query=20, seed=0)
    return DARTRanker(n_estimators=15, **DART, **SAMPLED), with_missing(X, 3), (y, group)


def outputs(model, X) -> list[np.ndarray]:
    """Everything a fitted model computes with compiled code, in one list."""
    out = [model.predict(X), *model.staged_predict(X)]
    if hasattr(model, "predict_proba"):
        out.append(model.predict_proba(X))
    return out


@pytest.mark.parametrize("task", [regression, binary, ranking])
def test_thread_count_does_not_change_the_model(task):
    template, X, targets = task()
    reference = outputs(clone(template).fit(X, *targets), X)
    for n_jobs in (1, 2):
        model = clone(template).set_params(n_jobs=n_jobs).fit(X, *targets)
        got = outputs(model, X)
        assert len(got) == len(reference)
        for want, have in zip(reference, got, strict=True):
            assert np.array_equal(have, want), f"n_jobs={n_jobs}"


@pytest.fixture
def observed_threads(monkeypatch):
    """Record numba's thread count inside binning, boosting and both prediction kernels."""
    seen: dict[str, set[int]] = {}

    def probe(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            seen.setdefault(label, set()).add(numba.get_num_threads())
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    probe(estimators, "boost", "boost")
    probe(BinMapper, "fit", "bin")
    probe(RawPredictor, "predict", "predict")
    probe(Ensemble, "raw_round_outputs", "staged")
    return seen


@pytest.mark.parametrize(
    ("n_jobs", "outside", "inside"),
    [
        (1, ALL_THREADS, 1),
        (-1, 1, ALL_THREADS),
        (10**6, 1, ALL_THREADS),  # capped at NUMBA_NUM_THREADS
        (None, 1, 1),  # numba's current count
        (None, ALL_THREADS, ALL_THREADS),
    ],
)
def test_fit_and_predict_run_on_the_asked_threads(observed_threads, n_jobs, outside, inside):
    X, y = make_friedman1(300, random_state=0)
    numba.set_num_threads(outside)
    model = DARTRegressor(n_estimators=3, n_jobs=n_jobs, random_state=0).fit(X, y)
    assert numba.get_num_threads() == outside
    model.predict(X)
    assert numba.get_num_threads() == outside
    stages = model.staged_predict(X)
    next(stages)
    assert numba.get_num_threads() == outside  # not left changed between stages
    list(stages)
    assert numba.get_num_threads() == outside
    assert observed_threads == {
        "bin": {inside},
        "boost": {inside},
        "predict": {inside},
        "staged": {inside},
    }


def test_thread_count_is_restored_when_fit_raises(monkeypatch):
    def failing_boost(*args, **kwargs):
        assert numba.get_num_threads() == 1
        raise RuntimeError("boom")

    monkeypatch.setattr(estimators, "boost", failing_boost)
    numba.set_num_threads(ALL_THREADS)
    X, y = make_friedman1(100, random_state=0)
    with pytest.raises(RuntimeError, match="boom"):
        DARTRegressor(n_estimators=2, n_jobs=1).fit(X, y)
    assert numba.get_num_threads() == ALL_THREADS


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, np.float64(2.0)])
@pytest.mark.parametrize("kind", [DARTRegressor, DARTClassifier, DARTRanker])
def test_bad_n_jobs_is_refused_by_fit_and_predict(kind, bad):
    X, y = make_classification(60, n_features=4, random_state=0)
    fit_args = (X, y, [20, 20, 20]) if kind is DARTRanker else (X, y)
    with pytest.raises(ParameterError, match=r"n_jobs=.*use None, -1 or an integer >= 1"):
        kind(n_estimators=2, n_jobs=bad).fit(*fit_args)
    model = kind(n_estimators=2).fit(*fit_args).set_params(n_jobs=bad)
    with pytest.raises(ParameterError, match=r"n_jobs="):
        model.predict(X)


@pytest.mark.parametrize("kind", [DARTRegressor, DARTClassifier, DARTRanker])
def test_n_jobs_is_an_ordinary_parameter(kind):
    model = kind(n_jobs=2)
    assert model.get_params()["n_jobs"] == 2
    assert kind().get_params()["n_jobs"] is None
    assert clone(model).n_jobs == 2
    assert model.set_params(n_jobs=np.int64(1)).n_jobs == 1
