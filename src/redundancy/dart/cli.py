"""``redundancy dart``: fit, predict, compare and export DART/MART models on CSV data.

Cheap to import: numpy, pandas, scikit-learn and the numba tree learner are imported inside the
commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from redundancy import ui
from redundancy.errors import ParameterError

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "dart": "DART: gradient-boosted trees with dropout (fit, predict, compare, export).",
}
NAME = "dart"
app = typer.Typer(
    help="DART: gradient-boosted trees with dropout (fit, predict, compare, export).",
    no_args_is_help=True,
)
_TASKS = ("regression", "classification")
_EXPORT_FORMATS = {"xgboost-json": ".xgboost.json", "lightgbm-text": ".lightgbm.txt"}
_SERVING_REASON = {
    "xgboost-json": "values within float32 rounding of a split edge",
    "lightgbm-text": "values with |x| <= 1e-35 read as 0",
}


def _task(task: str) -> str:
    if task not in _TASKS:
        raise ParameterError(f"--task {task!r} is not allowed (use regression or classification)")
    return task


def _load(data: Path | None, target: str, task: str) -> Any:
    """(features as a DataFrame with their column names, y): the CSV, or the built-in data."""
    import pandas as pd

    from redundancy.dart.datasets import read_csv

    if data is not None:
        X, y, names = read_csv(data, target)
    else:
        from sklearn.datasets import load_breast_cancer, load_diabetes

        X, y = (load_diabetes if task == "regression" else load_breast_cancer)(return_X_y=True)
        names = [f"x{i}" for i in range(X.shape[1])]
    return pd.DataFrame(X, columns=names), y


def _features(model: Any, data: Path, target: str) -> tuple[Any, Any]:
    """(the CSV's features as a DataFrame in the model's column order, target or None)."""
    import pandas as pd

    from redundancy.dart.datasets import read_csv

    X, y, names = read_csv(data, target, require_target=False)
    features = pd.DataFrame(X, columns=names)
    if hasattr(model, "feature_names_in_"):  # the model's own column order, by name
        missing = [n for n in model.feature_names_in_ if n not in names]
        if missing:
            raise ParameterError(f"{data} lacks the model's feature columns {missing[:5]}")
        features = features[list(model.feature_names_in_)]
    return features, y


@app.command()
def fit(
    data: Path = typer.Argument(
        None, help="CSV with a header row ('-': stdin; default: built-in data)."
    ),
    target: str = typer.Option("target", help="Name of the target column."),
    task: str = typer.Option("regression", help="regression or classification."),
    rate_drop: float = typer.Option(0.1, help="Dropout rate p (0 = MART)."),
    n_estimators: int = typer.Option(100, help="Boosting rounds."),
    out: Path = typer.Option(Path("dart_model.json"), help="Where to save the model (JSON)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
) -> None:
    """Fit a DART model on named columns and save it as JSON."""
    _task(task)
    ui.check_output(out, force=force)
    from redundancy.dart import DARTClassifier, DARTRegressor, save

    X, y = _load(data, target, task)
    cls = DARTRegressor if task == "regression" else DARTClassifier
    with ui.progress(f"fitting {cls.__name__}"):
        model = cls(n_estimators=n_estimators, rate_drop=rate_drop, random_state=0).fit(X, y)
    save(model, out)
    top = sorted(zip(model.feature_importances_, X.columns, strict=True), reverse=True)[:5]
    print(f"fitted {cls.__name__} ({model.n_estimators_} rounds), saved to {out}")
    print("top features: " + ", ".join(f"{n} {v:.3f}" for v, n in top))


@app.command()
def predict(
    model_path: Path = typer.Argument(..., help="Model JSON written by `fit`."),
    data: Path = typer.Argument(
        ..., help="CSV with the model's feature columns, any order ('-': stdin)."
    ),
    target: str = typer.Option(
        "target", help="Target column: dropped, and scored against (score on stderr) if present."
    ),
    out: str = typer.Option("-", "--out", help="CSV of predictions to write ('-': stdout)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
) -> None:
    """Predict every row of a CSV; write one prediction per row as CSV (header ``prediction``)."""
    ui.check_output(out, force=force)
    import pandas as pd
    from sklearn.base import is_regressor

    from redundancy.dart import load

    model = load(model_path)
    features, y = _features(model, data, target)
    pred = model.predict(features)
    frame = pd.DataFrame({"prediction": pred})
    ui.write_output(out, frame.to_csv(index=False, float_format="%.17g").encode(), force=force)
    if y is not None:
        kind = "R^2" if is_regressor(model) else "accuracy"
        ui.note(f"score ({kind}) on {len(y)} rows: {model.score(features, y):.4f}")


@app.command()
def compare(
    data: Path = typer.Argument(
        None, help="CSV with a header row ('-': stdin; default: built-in data)."
    ),
    target: str = typer.Option("target", help="Name of the target column."),
    task: str = typer.Option("regression", help="regression or classification."),
    folds: int = typer.Option(3, help="Cross-validation folds (2..20)."),
    n_estimators: int = typer.Option(50, help="Boosting rounds for every model."),
    rate_drop: float = typer.Option(0.1, help="Dropout rate for the DART models."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Cross-validate MART, our DART, XGBoost dart and LightGBM dart side by side."""
    from redundancy.errors import check_range

    check_range("folds", folds, 2, 20)
    _task(task)
    from redundancy.dart.compare import compare_models

    X, y = _load(data, target, task)
    with ui.progress(f"{folds}-fold CV of each model") as advance:
        results = compare_models(
            X.to_numpy(),
            y,
            task,
            folds=folds,
            n_estimators=n_estimators,
            rate_drop=rate_drop,
            on_fit=lambda: advance(),
        )
    metric = "RMSE" if task == "regression" else "error"
    if as_json:
        ui.print_json(
            {
                "task": task,
                "folds": folds,
                "n_estimators": n_estimators,
                "rate_drop": rate_drop,
                "metric": metric.lower(),
                "models": {
                    name: {metric.lower(): score, "fit_seconds": seconds}
                    for name, (score, seconds) in results.items()
                },
            }
        )
        return
    ui.print_table(
        ("model", metric, "fit (s)"),
        [(name, f"{score:.4f}", f"{seconds:.2f}") for name, (score, seconds) in results.items()],
        title=f"{folds}-fold CV, {n_estimators} rounds",
    )


@app.command()
def export(
    model_path: Path = typer.Argument(..., help="Model JSON written by `fit`."),
    format: str = typer.Option(
        "xgboost-json", "--format", help="xgboost-json (XGBoost) or lightgbm-text (LightGBM)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="File to write (default: beside the model, .xgboost.json or .lightgbm.txt).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
    check: Path = typer.Option(
        None,
        "--check",
        help="CSV of rows to check: exit 1 if the exported model routes any of them unlike ours.",
    ),
    target: str = typer.Option("target", help="Target column of --check: dropped if present."),
) -> None:
    """Export a model for XGBoost or LightGBM serving (DART weights folded into the leaves)."""
    if format not in _EXPORT_FORMATS:
        raise ParameterError(
            f"--format {format!r} is not allowed (use {' or '.join(_EXPORT_FORMATS)})"
        )
    if out is None:
        out = model_path.with_name(model_path.stem + _EXPORT_FORMATS[format])
    ui.check_output(out, force=force)
    from redundancy.dart import load
    from redundancy.dart.export import export_model, serving_mismatches

    model = load(model_path)
    export_model(model, out, format=format, force=force)
    print(f"exported {type(model).__name__} ({model.n_estimators_} rounds) to {out} as {format}")
    if check is not None:
        features, _ = _features(model, check, target)
        differs = serving_mismatches(model, features, format)
        ui.note(
            f"{int(differs.sum())} of {len(differs)} rows of {check} take another path through "
            f"the trees in {format} ({_SERVING_REASON[format]})"
            if differs.any()
            else f"all {len(differs)} rows of {check} take the same path in {format}"
        )
        if differs.any():
            raise typer.Exit(1)
