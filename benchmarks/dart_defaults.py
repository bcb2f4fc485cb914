"""When does DART beat MART? Cross-validated DART settings against MART with the same trees.

For each candidate setting (learning rate, dropout rate, skip rate, cap, normalisation; 100
rounds) the MART baseline is the same model with ``rate_drop=0``. Data: scikit-learn's bundled sets
(diabetes, breast_cancer, digits, wine) and synthetic ones (friedman1, make_classification,
hastie_10_2). Prints one Markdown table of DART/MART score ratios (RMSE or error; < 1 is DART
better) and, per setting, on how many sets DART is at least as good.

Usage: python benchmarks/dart_defaults.py [--quick] [--folds 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_classification,
    make_friedman1,
    make_hastie_10_2,
)
from sklearn.model_selection import KFold, StratifiedKFold

from redundancy.dart import DARTClassifier, DARTRegressor


def datasets(quick: bool) -> dict:
    n = 600 if quick else 2000
    X_h, y_h = make_hastie_10_2(n, random_state=0)
    return {
        "diabetes": ("regression", *load_diabetes(return_X_y=True)),
        "friedman1": ("regression", *make_friedman1(n, noise=1.0, random_state=0)),
        "breast_cancer": ("classification", *load_breast_cancer(return_X_y=True)),
        "digits": ("classification", *load_digits(return_X_y=True)),
        "wine": ("classification", *load_wine(return_X_y=True)),
        "make_classification": (
            "classification",
            *make_classification(n, n_features=20, n_informative=8, random_state=0),
        ),
        "hastie_10_2": ("classification", X_h, (y_h > 0).astype(int)),
    }


# (label, shared tree/boosting settings, dropout settings)
SETTINGS = [
    ("lr .1, p .1 (old default)", {"learning_rate": 0.1}, {"rate_drop": 0.1}),
    ("lr .1, p .05, skip .5", {"learning_rate": 0.1}, {"rate_drop": 0.05, "skip_drop": 0.5}),
    ("lr .3, p .1", {"learning_rate": 0.3}, {"rate_drop": 0.1}),
    ("lr .3, p .05, skip .5", {"learning_rate": 0.3}, {"rate_drop": 0.05, "skip_drop": 0.5}),
    ("lr .3, p .02, skip .5", {"learning_rate": 0.3}, {"rate_drop": 0.02, "skip_drop": 0.5}),
    ("lr .3, p .1, skip .5", {"learning_rate": 0.3}, {"rate_drop": 0.1, "skip_drop": 0.5}),
    ("lr .3, p .1, skip .5, max 3", {"learning_rate": 0.3},
     {"rate_drop": 0.1, "skip_drop": 0.5, "max_drop": 3}),
    ("lr .3, p .05, skip .5, forest", {"learning_rate": 0.3},
     {"rate_drop": 0.05, "skip_drop": 0.5, "normalize_type": "forest"}),
]  # fmt: skip


def cv_score(task, make, X, y, folds) -> float:
    if task == "classification":
        splits = StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y)
    else:
        splits = KFold(folds, shuffle=True, random_state=0).split(X)
    scores = []
    for tr, te in splits:
        pred = make().fit(X[tr], y[tr]).predict(X[te])
        if task == "regression":
            scores.append(np.sqrt(np.mean((pred - y[te]) ** 2)))
        else:
            scores.append(np.mean(pred != y[te]))
    return float(np.mean(scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="600-row synthetic sets, 3 settings")
    ap.add_argument("--folds", type=int, default=3)
    args = ap.parse_args()
    settings = SETTINGS[:3] if args.quick else SETTINGS
    data = datasets(args.quick)
    start = time.perf_counter()
    ratios: dict[str, dict[str, float]] = {label: {} for label, _, _ in settings}
    for name, (task, X, y) in data.items():
        cls = DARTRegressor if task == "regression" else DARTClassifier
        for label, shared, drop in settings:
            base = {"max_leaves": 31, "min_samples_leaf": 20, "n_estimators": 100, **shared}
            base["random_state"] = 0
            mart = cv_score(task, lambda b=base, c=cls: c(rate_drop=0.0, **b), X, y, args.folds)
            dart = cv_score(task, lambda b=base, d=drop, c=cls: c(**d, **b), X, y, args.folds)
            ratios[label][name] = dart / mart if mart > 0 else (1.0 if dart == 0 else np.inf)
            print(f"{name:20s} {label:40s} MART {mart:.4f} DART {dart:.4f}", flush=True)
    print(
        f"\n{args.folds}-fold CV, 31 leaves, min leaf 20; load average {os.getloadavg()[0]:.2f}; "
        f"{time.perf_counter() - start:.0f} s\n"
    )
    names = list(data)
    print("| setting | " + " | ".join(names) + " | DART >= MART on |")
    print("|---" * (len(names) + 2) + "|")
    for label, row in ratios.items():
        wins = sum(row[n] <= 1.0 for n in names)
        cells = " | ".join(f"{row[n]:.3f}" for n in names)
        print(f"| {label} | {cells} | {wins}/{len(names)} |")


if __name__ == "__main__":
    main()
