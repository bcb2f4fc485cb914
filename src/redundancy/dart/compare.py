"""Side-by-side runs of our MART/DART and the peers (XGBoost dart, LightGBM dart).

Settings are matched: leaf-wise trees with the same leaf cap, learning rate, bins, minimum leaf
size and L2; dropout rate ``p`` with no cap and no skipping (XGBoost ``one_drop=1`` is the
paper's plus-one rule; LightGBM has none).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from redundancy.dart.estimators import DARTClassifier, DARTRegressor

SETTINGS = {"max_leaves": 31, "learning_rate": 0.1, "min_samples_leaf": 20, "reg_lambda": 1.0}


def make_models(
    task: str, n_estimators: int, rate_drop: float, n_jobs: int = 2
) -> dict[str, Callable[[], Any]]:
    """Factories of unfitted models keyed by name; peers are skipped when not installed."""
    s = SETTINGS
    ours = DARTRegressor if task == "regression" else DARTClassifier
    models: dict[str, Callable[[], Any]] = {
        "ours MART": lambda: ours(n_estimators=n_estimators, rate_drop=0.0, random_state=0, **s),
        "ours DART": lambda: ours(
            n_estimators=n_estimators, rate_drop=rate_drop, skip_drop=0.0, random_state=0, **s
        ),
    }
    try:
        import xgboost as xgb

        xcls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
        models["xgboost dart"] = lambda: xcls(
            booster="dart",
            rate_drop=rate_drop,
            one_drop=1,
            skip_drop=0.0,
            n_estimators=n_estimators,
            learning_rate=s["learning_rate"],
            tree_method="hist",
            grow_policy="lossguide",
            max_leaves=s["max_leaves"],
            max_depth=0,
            max_bin=255,
            reg_lambda=s["reg_lambda"],
            n_jobs=n_jobs,
            random_state=0,
        )
    except ImportError:
        pass
    try:
        import lightgbm as lgb

        lcls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
        models["lightgbm dart"] = lambda: lcls(
            boosting_type="dart",
            drop_rate=rate_drop,
            skip_drop=0.0,
            max_drop=-1,
            n_estimators=n_estimators,
            learning_rate=s["learning_rate"],
            num_leaves=s["max_leaves"],
            min_child_samples=s["min_samples_leaf"],
            reg_lambda=s["reg_lambda"],
            max_bin=255,
            n_jobs=n_jobs,
            random_state=0,
            verbose=-1,
        )
    except ImportError:
        pass
    return models


def score(task: str, model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """RMSE for regression, error rate for classification."""
    pred = model.predict(X)
    if task == "regression":
        return float(np.sqrt(np.mean((pred - y) ** 2)))
    return float(np.mean(pred != y))


def compare_models(
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    *,
    folds: int,
    n_estimators: int,
    rate_drop: float,
    on_fit: Callable[[], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Cross-validated (mean score, mean fit seconds) of every model on (X, y).

    ``on_fit`` (if given) is called after each of the folds x models fits (for progress).
    """
    if task == "classification":
        y = np.unique(y, return_inverse=True)[1]
        splits = StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y)
    else:
        splits = KFold(folds, shuffle=True, random_state=0).split(X)
    splits = list(splits)
    out = {}
    for name, factory in make_models(task, n_estimators, rate_drop).items():
        scores, seconds = [], []
        for tr, te in splits:
            model = factory()
            start = time.perf_counter()
            model.fit(X[tr], y[tr])
            seconds.append(time.perf_counter() - start)
            scores.append(score(task, model, X[te], y[te]))
            if on_fit is not None:
                on_fit()
        out[name] = (float(np.mean(scores)), float(np.mean(seconds)))
    return out
