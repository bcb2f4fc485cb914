"""Saved DART models (JSON and pickle) behave exactly as the originals; bad files fail cleanly.

The reference is always the original fitted estimator: every public method and fitted attribute
of the loaded copy must agree with it bit for bit, errors and warnings included.
"""

import contextlib
import copy
import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification, make_friedman1

from redundancy.dart import DARTClassifier, DARTRanker, DARTRegressor, load, save
from redundancy.dart.datasets import make_ranking
from redundancy.dart.persist import from_dict, to_dict
from redundancy.errors import IntegrityError, ParameterError, RedundancyError

SMALL = {"n_estimators": 8, "max_leaves": 6, "min_samples_leaf": 5, "random_state": 0}


def frame(X: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])][::-1])


def fitted():
    """name -> (fitted model, X to call it on, y, extra score args)."""
    Xr, yr = make_friedman1(160, n_features=5, random_state=0)
    Xc, yc = make_classification(160, n_features=5, n_informative=3, n_redundant=0, random_state=0)
    Xm, ym = make_classification(
        180,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=1,
    )
    Xk, yk, gk = make_ranking(n_queries=20, seed=0)
    labels = np.array(["no", "yes!"])[yc]
    Xn = Xr.copy()
    Xn[np.random.default_rng(0).random(Xn.shape) < 0.15] = np.nan
    sampled = {"subsample": 0.7, "colsample_bytree": 0.6, "grow_policy": "depthwise"}
    return {
        "regressor-frame": (DARTRegressor(**SMALL).fit(frame(Xr), yr), frame(Xr), yr, ()),
        "regressor-numpy": (DARTRegressor(rate_drop=0.3, **SMALL).fit(Xr, yr), Xr, yr, ()),
        "binary-strings": (DARTClassifier(**SMALL).fit(frame(Xc), labels), frame(Xc), labels, ()),
        "multiclass-ints": (DARTClassifier(**SMALL).fit(Xm, ym + 7), Xm, ym + 7, ()),
        "early-stopped": (
            DARTRegressor(early_stopping_rounds=2, **{**SMALL, "n_estimators": 60}).fit(Xr, yr),
            Xr,
            yr,
            (),
        ),
        "ranker": (DARTRanker(**SMALL).fit(Xk, yk, gk), Xk, yk, (gk,)),
        "nan-weighted-sampled": (
            DARTRegressor(rate_drop=0.3, max_depth=3, **sampled, **SMALL).fit(
                Xn, yr, sample_weight=np.arange(160) % 3
            ),
            Xn,
            yr,
            (),
        ),
    }


MODELS = fitted()


def json_copy(model, tmp_path):
    save(model, tmp_path / "m.json")
    return load(tmp_path / "m.json")


def pickle_copy(model, _tmp_path):
    return pickle.loads(pickle.dumps(model))


def outcome(call):
    """What a call did: its value, or the error it raised; plus the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = ("ok", call())
        except Exception as exc:  # the error itself is what we compare
            value = ("raised", type(exc), str(exc))
    return value, [(w.category, str(w.message)) for w in caught]


def same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def calls(model, X, y, extra):
    """Every public method, on the fitting data, on reordered/missing columns, on bare numpy."""
    names = list(X.columns) if isinstance(X, pd.DataFrame) else None
    variants = {"as fitted": X}
    if names:
        variants["reordered"] = X[names[::-1]]
        variants["renamed"] = X.set_axis([f"z{i}" for i in range(len(names))], axis=1)
        variants["numpy"] = X.to_numpy()
    else:
        variants["frame"] = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    variants["one column short"] = X.iloc[:, :-1] if names else X[:, :-1]
    out = {}
    for label, data in variants.items():
        out[f"predict {label}"] = lambda d=data: model.predict(d)
        out[f"score {label}"] = lambda d=data: model.score(d, y, *extra)
        if hasattr(model, "predict_proba"):
            out[f"predict_proba {label}"] = lambda d=data: model.predict_proba(d)
    out["get_params"] = lambda: model.get_params()
    for weights in ("as_added", "current"):
        out[f"staged {weights}"] = lambda w=weights: list(model.staged_predict(X, w))
    out["feature_importances_"] = lambda: model.feature_importances_
    out["round margins"] = lambda: [
        model.ensemble_.predict_margin(model.binner_.transform(np.asarray(X)), r)
        for r in range(1, model.n_estimators_ + 1)
    ]
    return out


@pytest.mark.parametrize("copier", [json_copy, pickle_copy], ids=["json", "pickle"])
@pytest.mark.parametrize("name", list(MODELS))
def test_loaded_model_behaves_exactly_as_the_original(name, copier, tmp_path):
    model, X, y, extra = MODELS[name]
    loaded = copier(model, tmp_path)
    assert type(loaded) is type(model)
    fitted_names = {a for a in vars(model) if a.endswith("_") and not a.startswith("_")}
    assert fitted_names == {a for a in vars(loaded) if a.endswith("_") and not a.startswith("_")}
    for attr in ("n_features_in_", "n_estimators_", "feature_names_in_", "classes_"):
        assert hasattr(loaded, attr) == hasattr(model, attr), attr
        if hasattr(model, attr):
            assert same(getattr(loaded, attr), getattr(model, attr)), attr
    assert vars(loaded.history_) == vars(model.history_)
    original, again = calls(model, X, y, extra), calls(loaded, X, y, extra)
    for label in original:
        want, got = outcome(original[label]), outcome(again[label])
        assert same(got[0], want[0]) and got[1] == want[1], label


def test_format_2_files_still_load_and_predict_the_same():
    model, X, _, _ = MODELS["multiclass-ints"]
    doc = to_dict(model)
    doc["format"] = "redundancy.dart/2"
    for name in ("subsample", "colsample_bytree", "grow_policy"):
        del doc["params"][name]
    del doc["drop_log"]
    for trees in doc["trees"]:
        for tree in trees:
            del tree["missing_left"]
    old = from_dict(json.loads(json.dumps(doc)))
    assert np.array_equal(old.predict_proba(X), model.predict_proba(X))
    last = list(old.staged_predict_proba(X, round_weights="current"))[-1]
    np.testing.assert_allclose(last, model.predict_proba(X), rtol=1e-12)
    with pytest.raises(ParameterError, match="no record of its drops"):
        next(old.staged_predict(X))


def test_files_written_before_n_jobs_load_and_run_on_numba_threads():
    """n_jobs (how to run, not what was learned) joined format /3 later: files without it load."""
    model, X, _, _ = MODELS["multiclass-ints"]
    doc = to_dict(model)
    del doc["params"]["n_jobs"]
    old = from_dict(json.loads(json.dumps(doc)))
    assert old.n_jobs is None
    assert np.array_equal(old.predict_proba(X), model.predict_proba(X))
    doc["params"]["n_jobs"] = 0
    with pytest.raises(IntegrityError, match="n_jobs=0"):
        from_dict(json.loads(json.dumps(doc)))


def test_reordered_columns_raise_after_a_json_round_trip(tmp_path):
    """The issue's reproduction: the loaded model used to score reordered columns with a warning."""
    X, y = make_friedman1(120, n_features=5, random_state=0)
    df = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    model = DARTRegressor(n_estimators=5, random_state=0).fit(df, y)
    save(model, tmp_path / "f.json")
    for m in (model, load(tmp_path / "f.json")):
        with pytest.raises(ParameterError, match="feature names"):
            m.score(df[["c", "b", "a"]], y)


# ----------------------------------------------------------------- untrusted files

BASE = {name: to_dict(MODELS[name][0]) for name in ("binary-strings", "multiclass-ints", "ranker")}


def paths(node, prefix=()):
    """Every location in a JSON document (for mutation)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:6]):  # enough of each list to hit every kind of field
            yield from paths(value, (*prefix, i))


PATHS = {name: list(paths(doc))[1:] for name, doc in BASE.items()}
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from([-1, 0, 1, 2, 255, 256, 2**31, -(2**63), 10**30]),
        st.integers(-1000, 1000),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5),
        st.sampled_from(["<U1", "|O", "<f8", "V8", "bogus", "redundancy.dart/2"]),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def mutate(doc, path, value, delete):
    node = doc
    for part in path[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    elif delete and isinstance(node, list):
        node.pop(path[-1])
    else:
        node[path[-1]] = value


@settings(max_examples=300)
@given(data=st.data())
def test_mutated_model_files_load_cleanly_or_raise_a_project_error(data):
    name = data.draw(st.sampled_from(sorted(BASE)))
    doc = copy.deepcopy(BASE[name])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(PATHS[name]))
        try:
            mutate(doc, path, data.draw(JSON_VALUES), data.draw(st.booleans()))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this location
    try:
        model = from_dict(json.loads(json.dumps(doc)))
    except RedundancyError as exc:
        assert "\n" not in str(exc)
        return
    _, X, _, _ = MODELS[name]
    try:  # a model that loaded must predict (or refuse the input) without crashing
        model.predict(X)
        if hasattr(model, "predict_proba"):
            model.predict_proba(X)
    except RedundancyError:
        pass


@given(cut=st.integers(0, 10_000), junk=st.binary(max_size=8))
def test_damaged_bytes_are_an_integrity_error(tmp_path_factory, cut, junk):
    path = tmp_path_factory.mktemp("m") / "m.json"
    good = json.dumps(BASE["binary-strings"]).encode()
    path.write_bytes(good[: cut % len(good)] + junk)
    with contextlib.suppress(IntegrityError):
        load(path)


def test_folder_and_missing_files_are_integrity_errors(tmp_path):
    with pytest.raises(IntegrityError, match="cannot read model"):
        load(tmp_path)
    with pytest.raises(IntegrityError, match="No such file"):
        load(tmp_path / "absent.json")
