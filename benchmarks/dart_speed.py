"""Issue 22's speed targets: our MART/DART fit and prediction against LightGBM and XGBoost.

For each size (default 100k x 20, 200k x 50, 1M x 20; --quick: 1/20 of the rows, 50 rounds),
task (regression, binary) and thread count (1, 2), in one run: fit seconds of our MART vs
LightGBM gbdt (target ratio <= 1), our DART vs LightGBM dart (<= 0.5) and XGBoost dart (<= 0.1),
and prediction throughput of our MART model vs XGBoost gbtree with the same number of trees
(target ratio >= 1; XGBoost's sklearn ``predict``/``predict_proba`` run its ``inplace_predict``
on numpy input). Matched settings: 31 leaves leaf-wise, learning rate 0.1, 255 bins, min leaf
20, L2 1, drop rate 0.1 with no skipping and no cap.

The machine may be shared, so every timing is repeated with ours and the peer alternating
(ours, LightGBM, ours, LightGBM, ...; XGBoost dart, minutes per fit, only once) and each cell is
the median; each row shows the 1-minute load average at its start and end. Ratios are only
comparable within a row. The last two columns are ratios of process CPU seconds (all threads),
less disturbed by other jobs than wall time at 1 thread (at 2 threads they count spin-waiting
too); both read like the targets: ≤ 1 and ≥ 1. ``OMP_WAIT_POLICY`` (shown in the header)
reaches LightGBM, XGBoost and numba's OpenMP layer alike; set it in the environment, not here.

Usage: python benchmarks/dart_speed.py [--quick] [--rounds 200] [--threads 1 2] [--repeats 3]
       [--sizes 100000x20 200000x50 1000000x20] [--tasks regression binary]
       [--no-dart | --no-xgboost-dart]
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


def timed(fn) -> tuple[object, float, float]:
    """Result, wall seconds and process CPU seconds (all threads) of ``fn()``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def warm_up() -> None:
    """Compile our numba kernels once (outside every timing)."""
    for cls, y in ((DARTRegressor, np.random.rand(300)), (DARTClassifier, np.arange(300) % 2)):
        m = cls(n_estimators=3, rate_drop=0.5, random_state=0).fit(np.random.rand(300, 4), y)
        m.predict(np.random.rand(10, 4))


def interleaved(factories: dict, repeats: int, X, y) -> tuple[dict, dict]:
    """Median fit wall and CPU seconds of each model (``name`` and ``name cpu``), the models
    taking turns ``repeats`` times."""
    seconds: dict[str, list[float]] = {}
    fitted = {}
    for r in range(repeats):
        for name, factory in factories.items():
            if name == "xgb dart" and r > 0:
                continue
            fitted[name], wall, cpu = timed(lambda f=factory: f().fit(X, y))
            seconds.setdefault(name, []).append(wall)
            seconds.setdefault(f"{name} cpu", []).append(cpu)
    return {name: float(np.median(v)) for name, v in seconds.items()}, fitted


def run_case(n, n_features, task, threads, rounds, repeats, dart) -> dict[str, float]:
    numba.set_num_threads(threads)
    X, y = make_data(n, n_features, task)
    Xp, _ = make_data(min(n, PREDICT_ROWS), n_features, task, seed=1)
    load_start = os.getloadavg()[0]
    every = models(task, rounds, threads)
    wanted = ["ours MART", "lgb gbdt"] + {
        "all": ["ours DART", "lgb dart", "xgb dart"],
        "no-xgb": ["ours DART", "lgb dart"],
        "none": [],
    }[dart]
    out, fitted = interleaved({k: every[k] for k in wanted}, repeats, X, y)
    fitted["xgb gbtree"] = every["xgb gbtree"]().fit(X, y)
    method = "predict" if task == "regression" else "predict_proba"
    predictors = ("ours MART", "xgb gbtree")
    for name in predictors:
        getattr(fitted[name], method)(Xp[:1000])  # warm caches / lazy set-up
    wall_times: dict[str, list[float]] = {name: [] for name in predictors}
    cpu_times: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(max(3, 2 * repeats + 1)):
        for name in predictors:
            _, wall, cpu = timed(lambda m=fitted[name]: getattr(m, method)(Xp))
            wall_times[name].append(wall)
            cpu_times[name].append(cpu)
    for name in predictors:
        out[f"{name} predict rows/s"] = len(Xp) / float(np.median(wall_times[name]))
        out[f"{name} predict cpu"] = float(np.median(cpu_times[name]))
    out["load"] = (load_start, os.getloadavg()[0])
    return out


def fmt(x: float) -> str:
    return "—" if np.isnan(x) else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1/20 of the rows, 50 rounds")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3, help="fits per model (median reported)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", nargs="+", default=["100000x20", "200000x50", "1000000x20"])
    ap.add_argument("--tasks", nargs="+", default=["regression", "binary"])
    skip = ap.add_mutually_exclusive_group()
    skip.add_argument("--no-xgboost-dart", action="store_true", help="skip the slowest peer")
    skip.add_argument("--no-dart", action="store_true", help="MART and prediction only")
    args = ap.parse_args()
    scale, rounds = (20, 50) if args.quick else (1, args.rounds)
    dart = "none" if args.no_dart else "no-xgb" if args.no_xgboost_dart else "all"
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    warm_up()
    rows = []
    for n, n_features in sizes:
        for task in args.tasks:
            for threads in args.threads:
                r = run_case(n // scale, n_features, task, threads, rounds, args.repeats, dart)
                rows.append((f"{n // scale}x{n_features}", task, threads, r))
                print(f"done {rows[-1][0]} {task} {threads}t", flush=True)
    print(
        f"\n{rounds} rounds, {LEAVES} leaves, lr {LR}, drop rate {P}; medians of {args.repeats} "
        f"interleaved fits; {os.cpu_count()} CPUs; OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}\n"
    )
    print(
        "| data | task | threads | load 1-min start/end | ours MART s | LGBM gbdt s "
        "| MART/LGBM (≤1) | ours DART s | LGBM dart s | DART/LGBM (≤0.5) | XGB dart s "
        "| DART/XGB (≤0.1) | ours predict krows/s | XGB predict krows/s | ours/XGB (≥1) "
        "| MART/LGBM CPU s | XGB/ours predict CPU s |"
    )
    print("|---" * 17 + "|")
    nan = float("nan")
    for data, task, threads, r in rows:
        po, px = r["ours MART predict rows/s"] / 1e3, r["xgb gbtree predict rows/s"] / 1e3
        dart_s, lgb_dart, xgb_dart = (r.get(k, nan) for k in ("ours DART", "lgb dart", "xgb dart"))
        cells = [
            data, task, str(threads), f"{r['load'][0]:.2f}/{r['load'][1]:.2f}",
            fmt(r["ours MART"]), fmt(r["lgb gbdt"]), fmt(r["ours MART"] / r["lgb gbdt"]),
            fmt(dart_s), fmt(lgb_dart), fmt(dart_s / lgb_dart),
            fmt(xgb_dart), fmt(dart_s / xgb_dart),
            fmt(po), fmt(px), fmt(po / px),
            fmt(r["ours MART cpu"] / r["lgb gbdt cpu"]),
            fmt(r["xgb gbtree predict cpu"] / r["ours MART predict cpu"]),
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
