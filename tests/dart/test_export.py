"""Exported DART/MART models load in XGBoost and LightGBM and predict what ours predicts.

The reference is the serving library itself: each file is loaded with ``xgboost.Booster`` or
``lightgbm.Booster`` and its raw margins and transformed outputs are compared with our model's.
LightGBM keeps float64 leaves and thresholds (equal to rounding); XGBoost stores leaves and sums
trees in float32 (equal to about 1e-7 relative per tree) and rounds inputs to float32.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from redundancy.dart import DARTClassifier, DARTRanker, DARTRegressor, load, save
from redundancy.dart.cli import app
from redundancy.dart.datasets import make_ranking
from redundancy.dart.export import export_model, serving_mismatches
from redundancy.errors import ParameterError

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

FORMATS = ("xgboost-json", "lightgbm-text")
SUFFIX = {"xgboost-json": ".json", "lightgbm-text": ".txt"}  # what each library expects
SMALL = {"n_estimators": 25, "max_leaves": 8, "min_samples_leaf": 5, "random_state": 0}


def with_nans(X: np.ndarray, rate: float, seed: int) -> np.ndarray:
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return X


def data(n: int, seed: int) -> np.ndarray:
    """Features with NaN in columns 0-2 and none in column 3 (its default direction is chosen
    by the heavier child, which the unseen data then exercises with NaN)."""
    X = np.random.default_rng(seed).normal(size=(n, 4))
    X[:, :3] = with_nans(X[:, :3], 0.15, seed + 1)
    return X


def signal(X: np.ndarray) -> np.ndarray:
    Z = np.nan_to_num(X, nan=-1.0)
    return Z[:, 0] + np.sin(2 * Z[:, 1]) + 0.5 * Z[:, 2] * Z[:, 3]


X_TRAIN = data(400, 0)
X_UNSEEN = np.vstack([with_nans(data(300, 10), 0.2, 11), np.full((3, 4), np.nan)])
WEIGHTS = np.random.default_rng(5).integers(0, 4, len(X_TRAIN)).astype(float)


def fit(task: str, rate_drop: float, **params):
    """A fitted model of ``task``, the X to check it on, and the library objective's name."""
    params = {**SMALL, "rate_drop": rate_drop, "skip_drop": 0.0, **params}
    s = signal(X_TRAIN)
    if task == "regression":
        model = DARTRegressor(**params).fit(X_TRAIN, 10 * s + 100, sample_weight=WEIGHTS)
    elif task == "binary":
        labels = np.where(s > 0.3, "yes", "no")
        model = DARTClassifier(**params).fit(X_TRAIN, labels, sample_weight=WEIGHTS)
    elif task == "multiclass":
        model = DARTClassifier(**params).fit(X_TRAIN, np.digitize(s, [-0.5, 0.5, 1.5]))
    else:
        Xr, yr, group = make_ranking(30, 12, n_features=5, seed=0)
        Xr = with_nans(Xr, 0.1, 3)
        return DARTRanker(**params).fit(Xr, yr, group), [Xr, with_nans(Xr[::-1], 0.3, 4)]
    return model, [X_TRAIN, X_UNSEEN]


def ours(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(raw margin, transformed output) in the libraries' shapes."""
    margin = model._margin(X)
    if isinstance(model, DARTClassifier):
        proba = model.predict_proba(X)
        output = proba[:, 1] if margin.shape[1] == 1 else proba
    else:
        output = margin[:, 0]
    return (margin[:, 0] if margin.shape[1] == 1 else margin), output


def served(path, fmt: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(raw margin, transformed output) of the exported file, loaded by its library."""
    if fmt == "xgboost-json":
        booster = xgboost.Booster(model_file=str(path))
        matrix = xgboost.DMatrix(X)
        return booster.predict(matrix, output_margin=True), booster.predict(matrix)
    booster = lightgbm.Booster(model_file=str(path))
    return booster.predict(X, raw_score=True), booster.predict(X)


def assert_served_equal(fmt: str, got: np.ndarray, want: np.ndarray) -> None:
    if fmt == "lightgbm-text":  # float64 throughout: equal up to summation order
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    else:  # float32 leaves and sums: ~1e-7 relative per tree
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass", "ranking"])
@pytest.mark.parametrize("rate_drop", [0.3, 0.0], ids=["dart", "mart"])
def test_exported_model_predicts_like_ours(tmp_path, task, rate_drop):
    model, checks = fit(task, rate_drop)
    if rate_drop:  # DART really reweighted rounds: folding the weights is exercised
        assert len(np.unique(model.ensemble_.weights)) > 2
    for fmt in FORMATS:
        path = tmp_path / f"model{SUFFIX[fmt]}"
        export_model(model, path, format=fmt)
        for X in checks:
            assert not serving_mismatches(model, X, fmt).any()
            (margin, output), (want_margin, want_output) = served(path, fmt, X), ours(model, X)
            assert_served_equal(fmt, margin, want_margin)
            assert_served_equal(fmt, output, want_output)


def test_depthwise_model_with_few_bins_and_sampling(tmp_path):
    """Few bins (quantile edges that are data values), row and feature sampling, depth-wise."""
    model, checks = fit(
        "regression", 0.2, max_bins=8, subsample=0.7, colsample_bytree=0.5,
        grow_policy="depthwise", max_depth=3,
    )  # fmt: skip
    for fmt in FORMATS:
        export_model(model, tmp_path / f"m{SUFFIX[fmt]}", format=fmt)
        for X in checks:
            assert_served_equal(
                fmt, served(tmp_path / f"m{SUFFIX[fmt]}", fmt, X)[0], ours(model, X)[0]
            )


def test_a_model_of_single_leaf_trees_exports(tmp_path):
    X = np.arange(20.0).reshape(10, 2)
    model = DARTRegressor(n_estimators=3, min_samples_leaf=10).fit(X, X[:, 0])
    assert all(t.n_leaves == 1 for r in model.ensemble_.trees for t in r)
    for fmt in FORMATS:
        export_model(model, tmp_path / f"m{SUFFIX[fmt]}", format=fmt)
        np.testing.assert_allclose(
            served(tmp_path / f"m{SUFFIX[fmt]}", fmt, X)[0], model.predict(X), 1e-6
        )


def edge_values(model) -> np.ndarray:
    """Every bin edge of every feature (each feature in its own rows, the rest NaN)."""
    rows = []
    for j, edges in enumerate(model.binner_.edges):
        block = np.full((len(edges), len(model.binner_.edges)), np.nan)
        block[:, j] = edges
        rows.append(block)
    return np.vstack(rows)


def test_xgboost_float32_rounding_at_split_edges(tmp_path):
    """An edge value itself goes our way in XGBoost, and every float32 value does when the
    edges come from float32 data; a float64 value next to an edge may not, and
    ``serving_mismatches`` names exactly the rows that XGBoost predicts differently."""
    model, _ = fit("regression", 0.3, max_bins=16)  # quantile edges: float64 data values
    export_model(model, tmp_path / "m.json")
    edges = edge_values(model)
    assert_served_equal("xgboost-json", served(tmp_path / "m.json", "xgboost-json", edges)[0],
                        ours(model, edges)[0])  # fmt: skip
    # Just above and below each edge (float64 neighbours and float32 neighbours).
    f32 = edges.astype(np.float32)
    near = np.vstack([
        np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf),
        np.nextafter(f32, np.float32(np.inf)).astype(float),
        np.nextafter(f32, np.float32(-np.inf)).astype(float), f32.astype(float),
    ])  # fmt: skip
    flagged = serving_mismatches(model, near, "xgboost-json")
    got, want = served(tmp_path / "m.json", "xgboost-json", near)[0], ours(model, near)[0]
    off = ~np.isclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
    assert flagged.any() and off.any()  # float64 values just above an edge: float32 is too coarse
    np.testing.assert_array_equal(off, flagged)
    np.testing.assert_allclose(got[~flagged], want[~flagged], rtol=1e-6, atol=1e-4)

    # float32 data, including neighbouring float32 values (edges halfway between them):
    rng = np.random.default_rng(2)
    base = np.float32(1.3)
    ladder = [np.float32(base)]
    for _ in range(5):
        ladder.append(np.nextafter(ladder[-1], np.float32(2)))
    pool = np.array([*ladder, 0.25, 7.5, -3.0], dtype=np.float32).astype(float)
    X = rng.choice(pool, size=(400, 2))
    y = np.isin(X[:, 0], pool[1::2]) * 5.0 + X[:, 1]
    model = DARTRegressor(n_estimators=10, min_samples_leaf=1, random_state=0).fit(X, y)
    assert np.all(np.diff(ladder) > 0) and len(model.binner_.edges[0]) == len(pool) - 1
    export_model(model, tmp_path / "f32.json")
    every = np.array(np.meshgrid(pool, pool)).reshape(2, -1).T
    assert not serving_mismatches(model, every, "xgboost-json").any()
    assert_served_equal("xgboost-json", served(tmp_path / "f32.json", "xgboost-json", every)[0],
                        model.predict(every))  # fmt: skip
    assert np.ptp(model.predict(every[every[:, 1] == 7.5])) > 4  # the ladder's steps matter


def test_lightgbm_reads_tiny_values_as_zero(tmp_path):
    """LightGBM reads |x| <= 1e-35 as 0: with an edge between such a value and 0 (only data
    that tiny makes one) the row goes another way, and ``serving_mismatches`` says so."""
    X = np.repeat([[0.0], [2e-40], [1.0]], 20, axis=0)
    model = DARTRegressor(n_estimators=3, min_samples_leaf=5).fit(X, (X[:, 0] > 0) * 1.0)
    assert model.binner_.edges[0][0] == 1e-40
    export_model(model, tmp_path / "m.txt", format="lightgbm-text")
    rows = np.array([[0.0], [1.5e-40], [2e-40], [1.0], [np.nan]])
    flagged = serving_mismatches(model, rows, "lightgbm-text")
    assert flagged.tolist() == [False, True, True, False, False]
    got, want = served(tmp_path / "m.txt", "lightgbm-text", rows)[0], model.predict(rows)
    assert np.array_equal(~np.isclose(got, want, rtol=1e-12), flagged)


def test_files_are_the_documented_formats(tmp_path):
    model, _ = fit("multiclass", 0.3)
    export_model(model, tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())  # Infinity where all present go left
    assert doc["learner"]["objective"]["name"] == "multi:softprob"
    assert doc["learner"]["gradient_booster"]["model"]["tree_info"][:4] == [0, 1, 2, 3]
    assert len(doc["learner"]["gradient_booster"]["model"]["trees"]) == 4 * 25
    export_model(model, tmp_path / "m.txt", format="lightgbm-text")
    booster = lightgbm.Booster(model_file=str(tmp_path / "m.txt"))
    assert booster.num_trees() == 4 * 25 and booster.num_model_per_iteration() == 4


def test_feature_names_travel_with_the_model(tmp_path):
    frame = pd.DataFrame(X_TRAIN, columns=["a", "b", "c", "d"])
    model = DARTRegressor(**SMALL).fit(frame, signal(X_TRAIN))
    export_model(model, tmp_path / "m.json")
    booster = xgboost.Booster(model_file=str(tmp_path / "m.json"))
    assert booster.feature_names == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="feature_names mismatch"):  # XGBoost checks order
        booster.predict(xgboost.DMatrix(frame[["d", "c", "b", "a"]]))
    regressor = xgboost.XGBRegressor()
    regressor.load_model(tmp_path / "m.json")
    assert_served_equal("xgboost-json", regressor.predict(frame), model.predict(frame))
    export_model(model, tmp_path / "m.txt", format="lightgbm-text")
    assert lightgbm.Booster(model_file=str(tmp_path / "m.txt")).feature_name() == list("abcd")
    spaced = DARTRegressor(**SMALL).fit(frame.rename(columns={"a": "a b"}), signal(X_TRAIN))
    with pytest.warns(UserWarning, match="Column_0"):
        export_model(spaced, tmp_path / "s.txt", format="lightgbm-text")
    assert lightgbm.Booster(model_file=str(tmp_path / "s.txt")).feature_name()[0] == "Column_0"


def test_export_refuses_bad_requests_and_writes_atomically(tmp_path):
    model, _ = fit("regression", 0.0)
    path = tmp_path / "m.json"
    with pytest.raises(ParameterError, match="not fitted"):
        export_model(DARTRegressor(), path)
    with pytest.raises(ParameterError, match="onnx"):
        export_model(model, path, format="onnx")
    with pytest.raises(ParameterError, match="DARTRegressor"):
        export_model(object(), path)
    assert list(tmp_path.iterdir()) == []
    export_model(model, path)
    before = path.read_bytes()
    with pytest.raises(ParameterError, match="--force"):
        export_model(model, path, format="lightgbm-text")
    assert path.read_bytes() == before
    export_model(model, path, format="lightgbm-text", force=True)
    assert path.read_text().startswith("tree\n") and list(tmp_path.iterdir()) == [path]
    with pytest.raises(ParameterError, match="format"):
        serving_mismatches(model, X_TRAIN, "onnx")


def test_cli_export(tmp_path):
    names = [f"x{i}" for i in range(4)]
    labels = signal(X_TRAIN) > 0.3
    model = DARTClassifier(**SMALL).fit(pd.DataFrame(X_TRAIN, columns=names), labels)
    save(model, tmp_path / "m.json")
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    default = tmp_path / "m.xgboost.json"
    assert res.stdout == f"exported DARTClassifier (25 rounds) to {default} as xgboost-json\n"
    out = tmp_path / "m.txt"
    args = ["export", str(tmp_path / "m.json"), "--format", "lightgbm-text", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    unseen = pd.DataFrame(X_UNSEEN, columns=names)
    proba = load(tmp_path / "m.json").predict_proba(unseen)[:, 1]
    assert_served_equal("lightgbm-text", served(out, "lightgbm-text", unseen)[1], proba)
    assert_served_equal("xgboost-json", served(default, "xgboost-json", unseen)[1], proba)
    res = runner.invoke(app, args)
    assert isinstance(res.exception, ParameterError) and "--force" in str(res.exception)
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    res = runner.invoke(app, ["export", str(tmp_path / "m.json"), "--format", "onnx"])
    assert isinstance(res.exception, ParameterError) and "xgboost-json" in str(res.exception)
    # --check: rows next to a split edge make XGBoost's float32 view differ (exit 1).
    header = ",".join(names)
    np.savetxt(tmp_path / "ok.csv", X_UNSEEN, delimiter=",", header=header, comments="")
    check = ["export", str(tmp_path / "m.json"), "--force", "--check"]
    res = runner.invoke(app, [*check, str(tmp_path / "ok.csv")])
    assert res.exit_code == 0 and "all 303 rows" in res.stderr
    near = np.nextafter(edge_values(model), np.inf)
    np.savetxt(tmp_path / "near.csv", near, delimiter=",", header=header, comments="")
    res = runner.invoke(app, [*check, str(tmp_path / "near.csv")])
    assert res.exit_code == 1 and "float32" in res.stderr and default.exists()


values = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-3, 3.0, 1e6, np.nan]),
    st.floats(-1e3, 1e3, width=32),
    st.floats(-1e3, 1e3),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(values, min_size=3, max_size=3), min_size=12, max_size=80),
    labels=st.lists(st.floats(-10, 10), min_size=80, max_size=80),
    classify=st.booleans(),
    rate_drop=st.sampled_from([0.0, 0.5, 1.0]),
    max_bins=st.integers(2, 16),
    max_leaves=st.integers(2, 6),
    learning_rate=st.sampled_from([0.1, 1.0]),
)
def test_random_models_export_exactly(
    tmp_path_factory, rows, labels, classify, rate_drop, max_bins, max_leaves, learning_rate
):
    X = np.array(rows)
    y = np.array(labels[: len(X)])
    params = {"n_estimators": 4, "max_bins": max_bins, "max_leaves": max_leaves,
              "min_samples_leaf": 1, "rate_drop": rate_drop, "skip_drop": 0.0,
              "learning_rate": learning_rate, "random_state": 0}  # fmt: skip
    if classify:
        y = y > np.median(y)
        if y.all() or not y.any():
            return
        model = DARTClassifier(**params).fit(X, y)
    else:
        model = DARTRegressor(**params).fit(X, y)
    unseen = np.vstack([X[::-1, ::-1], np.full((1, 3), np.nan)])
    folder = tmp_path_factory.mktemp("export")
    for fmt in FORMATS:
        export_model(model, folder / f"m{SUFFIX[fmt]}", format=fmt)
        for data_ in (X, unseen):
            same = ~serving_mismatches(model, data_, fmt)
            got, want = served(folder / f"m{SUFFIX[fmt]}", fmt, data_)[0], ours(model, data_)[0]
            scale = max(1.0, float(np.abs(want).max()))
            tol = 1e-12 if fmt == "lightgbm-text" else 1e-6
            assert np.all(np.abs(got - want)[same] <= tol * scale), fmt
