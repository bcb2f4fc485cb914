"""DART side by side: ours vs XGBoost (booster=dart) vs LightGBM (boosting=dart).

Matched settings (31 leaves leaf-wise, lr 0.1, 255 bins, lambda 1, min leaf 20, drop rate p, no
skip, no cap, 2 threads) on make_hastie_10_2, make_friedman1 and a synthetic ranking set.
Prints a Markdown table of fit seconds, predict seconds and held-out accuracy, with the ratio
of each peer's fit time to ours.  Usage: python benchmarks/dart_bench.py [--scale 0.1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_friedman1, make_hastie_10_2

from redundancy.dart import DARTClassifier, DARTRanker, DARTRegressor
from redundancy.dart.compare import SETTINGS, make_models
from redundancy.dart.datasets import make_ranking
from redundancy.dart.losses import group_pointer, ndcg


def _rankers(rounds: int, p: float) -> dict:
    import lightgbm as lgb
    import xgboost as xgb

    s = SETTINGS
    return {
        "ours DART": lambda: DARTRanker(n_estimators=rounds, rate_drop=p, random_state=0, **s),
        "xgboost dart": lambda: xgb.XGBRanker(
            booster="dart",
            rate_drop=p,
            one_drop=1,
            skip_drop=0.0,
            n_estimators=rounds,
            learning_rate=s["learning_rate"],
            tree_method="hist",
            grow_policy="lossguide",
            max_leaves=s["max_leaves"],
            max_depth=0,
            objective="rank:ndcg",
            n_jobs=2,
            random_state=0,
        ),
        "lightgbm dart": lambda: lgb.LGBMRanker(
            boosting_type="dart",
            drop_rate=p,
            skip_drop=0.0,
            max_drop=-1,
            n_estimators=rounds,
            learning_rate=s["learning_rate"],
            num_leaves=s["max_leaves"],
            min_child_samples=s["min_samples_leaf"],
            n_jobs=2,
            random_state=0,
            verbose=-1,
        ),
    }


def _time(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's sizes")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--rate-drop", type=float, default=0.1)
    args = ap.parse_args()
    n_h, n_f = int(100_000 * args.scale), int(200_000 * args.scale)
    DARTRegressor(n_estimators=2).fit(np.random.rand(50, 3), np.random.rand(50))  # JIT warm-up
    DARTClassifier(n_estimators=2).fit(np.random.rand(50, 3), np.arange(50) % 3)
    DARTRanker(n_estimators=2).fit(np.random.rand(50, 3), np.arange(50) % 3, np.full(5, 10))
    rows = []
    cases = [
        ("hastie_10_2", "classification", make_hastie_10_2(n_h + 20_000, random_state=0), n_h),
        ("friedman1", "regression", make_friedman1(n_f + 20_000, noise=1.0, random_state=0), n_f),
    ]
    for name, task, (X, y), n in cases:
        if task == "classification":
            y = (y > 0).astype(int)
        models = make_models(task, args.rounds, args.rate_drop)
        for model_name, factory in models.items():
            model = factory()
            Xtr, ytr, Xte = X[:n], y[:n], X[n:]
            _, fit_s = _time(lambda m=model, a=Xtr, b=ytr: m.fit(a, b))
            pred, pred_s = _time(lambda m=model, a=Xte: m.predict(a))
            acc = (
                np.sqrt(np.mean((pred - y[n:]) ** 2))
                if task == "regression"
                else np.mean(pred != y[n:])
            )
            metric = "RMSE" if task == "regression" else "error"
            rows.append((f"{name} n={n}", model_name, fit_s, pred_s, f"{metric} {acc:.4f}"))
    nq = max(int(5000 * args.scale), 50)
    X, y, g = make_ranking(n_queries=nq, seed=0)
    Xt, yt, gt = make_ranking(n_queries=max(nq // 5, 10), seed=1)
    for model_name, factory in _rankers(args.rounds, args.rate_drop).items():
        model = factory()
        _, fit_s = _time(lambda m=model: m.fit(X, y, group=g))
        pred, pred_s = _time(lambda m=model: m.predict(Xt))
        score = ndcg(yt, pred, group_pointer(gt))
        rows.append((f"ranking {nq}x20", model_name, fit_s, pred_s, f"NDCG {score:.4f}"))
    ours = {r[0]: r[2] for r in rows if r[1] == "ours DART"}
    print(f"rounds={args.rounds}, rate_drop={args.rate_drop}, scale={args.scale}\n")
    print("| data | model | fit s | predict s | held-out | fit time / ours DART |")
    print("|---|---|---|---|---|---|")
    for data, model_name, fit_s, pred_s, acc in rows:
        print(
            f"| {data} | {model_name} | {fit_s:.2f} | {pred_s:.3f} | {acc} | "
            f"{fit_s / ours[data]:.2f} |"
        )


if __name__ == "__main__":
    main()
