"""``redundancy dart``: fit, predict and compare DART/MART models on CSV data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

NAME = "dart"
app = typer.Typer(help="DART: gradient-boosted trees with dropout (fit, predict, compare).")
_out = Console()


def _load(data: Path | None, target: str, task: str):
    """CSV data, or the embedded default (diabetes for regression, breast cancer otherwise)."""
    from redundancy.dart.datasets import read_csv

    if data is not None:
        return read_csv(data, target)
    from sklearn.datasets import load_breast_cancer, load_diabetes

    X, y = (load_diabetes if task == "regression" else load_breast_cancer)(return_X_y=True)
    return X, y, [f"x{i}" for i in range(X.shape[1])]


def _task(task: str) -> str:
    from redundancy.errors import ParameterError

    if task not in ("regression", "classification"):
        raise ParameterError(f"--task {task!r} is not allowed (use regression or classification)")
    return task


@app.command()
def fit(
    data: Path = typer.Argument(None, help="CSV with a header row (default: built-in data)."),
    target: str = typer.Option("target", help="Name of the target column."),
    task: str = typer.Option("regression", help="regression or classification."),
    rate_drop: float = typer.Option(0.1, help="Dropout rate p (0 = MART)."),
    n_estimators: int = typer.Option(100, help="Boosting rounds."),
    out: Path = typer.Option(Path("dart_model.json"), help="Where to save the model (JSON)."),
) -> None:
    """Fit a DART model and save it as JSON."""
    from redundancy.dart import DARTClassifier, DARTRegressor, save

    X, y, names = _load(data, target, _task(task))
    cls = DARTRegressor if task == "regression" else DARTClassifier
    model = cls(n_estimators=n_estimators, rate_drop=rate_drop, random_state=0).fit(X, y)
    save(model, out)
    top = sorted(zip(model.feature_importances_, names, strict=True), reverse=True)[:5]
    _out.print(f"fitted {cls.__name__} ({model.n_estimators_} rounds), saved to {out}")
    _out.print("top features: " + ", ".join(f"{n} {v:.3f}" for v, n in top))


@app.command()
def predict(
    model_path: Path = typer.Argument(..., help="Model JSON written by `fit`."),
    data: Path = typer.Argument(..., help="CSV with the same feature columns (and the target)."),
    target: str = typer.Option("target", help="Target column to drop (and score against)."),
) -> None:
    """Predict with a saved model; print the first predictions and the score."""
    from sklearn.base import is_regressor

    from redundancy.dart import load
    from redundancy.dart.datasets import read_csv

    model = load(model_path)
    X, y, _ = read_csv(data, target)
    pred = model.predict(X)
    _out.print(f"first predictions: {pred[:5]}")
    _out.print(f"score ({'R^2' if is_regressor(model) else 'accuracy'}): {model.score(X, y):.4f}")


@app.command()
def compare(
    data: Path = typer.Argument(None, help="CSV with a header row (default: built-in data)."),
    target: str = typer.Option("target", help="Name of the target column."),
    task: str = typer.Option("regression", help="regression or classification."),
    folds: int = typer.Option(3, help="Cross-validation folds."),
    n_estimators: int = typer.Option(50, help="Boosting rounds for every model."),
    rate_drop: float = typer.Option(0.1, help="Dropout rate for the DART models."),
) -> None:
    """Cross-validate MART, our DART, XGBoost dart and LightGBM dart side by side."""
    from redundancy.dart.compare import compare_models
    from redundancy.errors import check_range

    check_range("folds", folds, 2, 20)
    X, y, _ = _load(data, target, _task(task))
    results = compare_models(
        X, y, task, folds=folds, n_estimators=n_estimators, rate_drop=rate_drop
    )
    table = Table(title=f"{folds}-fold CV, {n_estimators} rounds")
    for col in ("model", "RMSE" if task == "regression" else "error", "fit seconds"):
        table.add_column(col)
    for name, (score, seconds) in results.items():
        table.add_row(name, f"{score:.4f}", f"{seconds:.2f}")
    _out.print(table)
