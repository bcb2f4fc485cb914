"""Issue 22's speed targets: our MART/DART fit and prediction against LightGBM and XGBoost.

For each size (100k x 20, 200k x 50, 1M x 20; --quick: 1/20 of the rows, 50 rounds), task
(regression, binary) and thread count (1, 2), in one run: fit seconds of our MART vs LightGBM
gbdt (target ratio <= 1), our DART vs LightGBM dart (<= 0.5) and XGBoost dart (<= 0.1), and
prediction throughput of our MART model vs XGBoost gbtree with the same number of trees
(target ratio >= 1). Matched settings: 31 leaves leaf-wise, learning rate 0.1, 255 bins, min leaf
20, L2 1, drop rate 0.1 with no skipping and no cap. The load average is printed before and after:
timings are only meaningful on an idle machine.

Usage: python benchmarks/dart_speed.py [--quick] [--rounds 200] [--threads 1 2]
       [--sizes 100000x20 200000x50 1000000x20] [--no-xgboost-dart]
"""

from __future__ import annotations

import argparse
import os
import time

import lightgbm as lgb
import numba
import numpy as np
import xgboost as xgb

from redundancy.dart import DARTClassifier, DARTRegressor

LEAVES, LR, MIN_LEAF, P = 31, 0.1, 20, 0.1
PREDICT_ROWS = 100_000


def make_data(n: int, n_features: int, task: str, seed: int = 0):
    """Gaussian features, a nonlinear noisy target (thresholded at its median for binary)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float64)
    score = (
        np.sin(X[:, 0] * X[:, 1])
        + 0.5 * X[:, 2] ** 2
        + np.where(X[:, 3] > 0, X[:, 4], -X[:, 4])
        + 0.3 * X[:, 5:].sum(axis=1) / np.sqrt(max(n_features - 5, 1))
        + rng.normal(scale=0.5, size=n)
    )
    y = score if task == "regression" else (score > np.median(score)).astype(np.int64)
    return X, y


def models(task: str, rounds: int, threads: int) -> dict:
    ours = DARTRegressor if task == "regression" else DARTClassifier
    common = {"n_estimators": rounds, "max_leaves": LEAVES, "learning_rate": LR}
    common |= {"min_samples_leaf": MIN_LEAF, "reg_lambda": 1.0, "random_state": 0}
    lcls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    lgb_common = {"n_estimators": rounds, "num_leaves": LEAVES, "learning_rate": LR}
    lgb_common |= {"min_child_samples": MIN_LEAF, "reg_lambda": 1.0, "max_bin": 255}
    lgb_common |= {"n_jobs": threads, "random_state": 0, "verbose": -1}
    xcls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    xgb_common = {"n_estimators": rounds, "max_leaves": LEAVES, "learning_rate": LR}
    xgb_common |= {"tree_method": "hist", "grow_policy": "lossguide", "max_depth": 0}
    xgb_common |= {"max_bin": 256, "reg_lambda": 1.0, "n_jobs": threads, "random_state": 0}
    drop = {"skip_drop": 0.0}
    lgb_dart = {"drop_rate": P, "max_drop": -1, **drop}
    return {
        "ours MART": lambda: ours(rate_drop=0.0, **common),
        "lgb gbdt": lambda: lcls(boosting_type="gbdt", **lgb_common),
        "ours DART": lambda: ours(rate_drop=P, one_drop=True, max_drop=0, **drop, **common),
        "lgb dart": lambda: lcls(boosting_type="dart", **lgb_dart, **lgb_common),
        "xgb dart": lambda: xcls(booster="dart", rate_drop=P, one_drop=1, **drop, **xgb_common),
        "xgb gbtree": lambda: xcls(booster="gbtree", **xgb_common),
    }


def timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def warm_up() -> None:
    """Compile our numba kernels once (outside every timing)."""
    for cls, y in ((DARTRegressor, np.random.rand(300)), (DARTClassifier, np.arange(300) % 2)):
        m = cls(n_estimators=3, rate_drop=0.5, random_state=0).fit(np.random.rand(300, 4), y)
        m.predict(np.random.rand(10, 4))


def run_case(n, n_features, task, threads, rounds, with_xgb_dart) -> dict[str, float]:
    numba.set_num_threads(threads)
    X, y = make_data(n, n_features, task)
    Xp, _ = make_data(min(n, PREDICT_ROWS), n_features, task, seed=1)
    out: dict[str, float] = {}
    fitted = {}
    for name, factory in models(task, rounds, threads).items():
        if name == "xgb dart" and not with_xgb_dart:
            out[name] = float("nan")
            continue
        fitted[name], out[name] = timed(lambda f=factory: f().fit(X, y))
    for name in ("ours MART", "xgb gbtree"):
        method = "predict" if task == "regression" else "predict_proba"
        getattr(fitted[name], method)(Xp[:1000])  # warm caches / lazy set-up
        _, seconds = timed(lambda m=fitted[name], f=method: getattr(m, f)(Xp))
        out[f"{name} predict rows/s"] = len(Xp) / seconds
    return out


def fmt(x: float) -> str:
    return "—" if np.isnan(x) else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1/20 of the rows, 50 rounds")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", nargs="+", default=["100000x20", "200000x50", "1000000x20"])
    ap.add_argument("--tasks", nargs="+", default=["regression", "binary"])
    ap.add_argument("--no-xgboost-dart", action="store_true", help="skip the slowest peer")
    args = ap.parse_args()
    scale, rounds = (20, 50) if args.quick else (1, args.rounds)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    load_before = os.getloadavg()
    warm_up()
    rows = []
    for n, n_features in sizes:
        for task in args.tasks:
            for threads in args.threads:
                r = run_case(
                    n // scale, n_features, task, threads, rounds, not args.no_xgboost_dart
                )
                rows.append((f"{n // scale}x{n_features}", task, threads, r))
                print(f"done {rows[-1][0]} {task} {threads}t", flush=True)
    load_after = os.getloadavg()
    print(
        f"\n{rounds} rounds, {LEAVES} leaves, lr {LR}, drop rate {P}; load average "
        f"(1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
        f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}; "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| data | task | threads | ours MART s | LGBM gbdt s | MART/LGBM (≤1) | ours DART s "
        "| LGBM dart s | DART/LGBM (≤0.5) | XGB dart s | DART/XGB (≤0.1) "
        "| ours predict krows/s | XGB predict krows/s | ours/XGB (≥1) |"
    )
    print("|---" * 14 + "|")
    for data, task, threads, r in rows:
        po, px = r["ours MART predict rows/s"] / 1e3, r["xgb gbtree predict rows/s"] / 1e3
        cells = [
            data, task, str(threads),
            fmt(r["ours MART"]), fmt(r["lgb gbdt"]), fmt(r["ours MART"] / r["lgb gbdt"]),
            fmt(r["ours DART"]), fmt(r["lgb dart"]), fmt(r["ours DART"] / r["lgb dart"]),
            fmt(r["xgb dart"]), fmt(r["ours DART"] / r["xgb dart"]),
            fmt(po), fmt(px), fmt(po / px),
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
