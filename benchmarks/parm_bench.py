"""Benchmark: ParM (addition, concatenation) and learned codes vs the cheap-backup and
default-prediction baselines, on MNIST-5k and Fashion-MNIST, k = 2, 3, 4 (learned: 2, 5).

All methods of one data set share one trained deployed Base-MLP, the same test split and the
same seeded coding groups; the table gives degraded and overall accuracy and the ratio of each
method's degraded accuracy to the cheap backup's (the anchor).

    .venv/bin/python benchmarks/parm_bench.py               # defaults below
    .venv/bin/python benchmarks/parm_bench.py --fashion-train 60000 --epochs 60
"""

from __future__ import annotations

import argparse
import time

import torch

from redundancy.coded_inference.config import (
    DataConfig,
    LearnedCodeConfig,
    OptimConfig,
    ParmConfig,
)
from redundancy.coded_inference.data import fashion_available, load_data
from redundancy.coded_inference.evaluation import cheap_backup_baseline
from redundancy.coded_inference.models import build_cheap_model, build_model
from redundancy.coded_inference.pipeline import run_learned, run_parm, train_deployed
from redundancy.coded_inference.training import predict_logits


def _rows_for(dataset: str, args: argparse.Namespace) -> list[tuple]:
    limit = args.fashion_train if dataset == "fashion" else None
    data = load_data(DataConfig(dataset=dataset, max_train=limit))
    deployed_opt = OptimConfig(epochs=args.epochs, patience=6)
    trainer_opt = OptimConfig(epochs=args.epochs, patience=8)
    deployed = build_model("base-mlp", data.input_shape, data.n_classes)
    train_deployed(data, deployed, deployed_opt, val_fraction=0.1, seed=0)
    rows, anchors = [], {}
    for k in args.ks:
        for encoder in ("addition", "concatenation"):
            if encoder == "concatenation" and k not in (2, 4):
                continue
            start = time.perf_counter()
            config = ParmConfig(
                data=DataConfig(dataset=dataset, max_train=limit),
                k=k,
                encoder=encoder,
                deployed=deployed_opt,
                parity=trainer_opt,
                groups_per_epoch=args.groups,
            )
            parm, cheap, default = run_parm(config, data=data, deployed=deployed).results
            rows.append((data.name, k, parm, cheap, time.perf_counter() - start))
        anchors[k] = cheap
        rows += [(data.name, k, cheap, cheap, 0.0), (data.name, k, default, cheap, 0.0)]
    for k in args.learned_ks:
        if k not in anchors:
            cheap_model = build_cheap_model(data.input_shape, data.n_classes, k)
            train_deployed(data, cheap_model, deployed_opt, val_fraction=0.1, seed=0)
            anchors[k] = cheap_backup_baseline(
                predict_logits(cheap_model, data.x_test),
                predict_logits(deployed, data.x_test),
                data.y_test,
            )
            rows.append((data.name, k, anchors[k], anchors[k], 0.0))
        start = time.perf_counter()
        config = LearnedCodeConfig(
            data=DataConfig(dataset=dataset, max_train=limit),
            k=k,
            deployed=deployed_opt,
            code=trainer_opt,
            hidden_factor=args.hidden_factor,
        )
        learned = run_learned(config, data=data, deployed=deployed).results[0]
        rows.append((data.name, k, learned, anchors[k], time.perf_counter() - start))
    return rows


def _table(rows: list[tuple]) -> str:
    lines = [
        "| data | k | method | available | degraded | reconstruction | overall f=0.1 | "
        "degraded / cheap backup | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, k, result, anchor, seconds in sorted(rows, key=lambda r: (r[0], r[1])):
        lines.append(
            f"| {name} | {k} | {result.method} | {100 * result.available:.1f}% | "
            f"{100 * result.degraded:.1f}% | {100 * result.reconstruction:.1f}% | "
            f"{100 * result.overall(0.1):.1f}% | {result.degraded / anchor.degraded:.2f}x | "
            f"{seconds:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse options, run every configuration, print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist5k", "fashion"])
    parser.add_argument("--ks", nargs="+", type=int, default=[2, 3, 4])
    parser.add_argument("--learned-ks", nargs="+", type=int, default=[2, 5])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--groups", type=int, default=2, help="random groupings per epoch")
    parser.add_argument("--fashion-train", type=int, default=20000)
    parser.add_argument("--hidden-factor", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    for dataset in args.datasets:
        if dataset == "fashion" and not fashion_available():
            print("fashion: skipped (Debian dataset-fashion-mnist not installed)")
            continue
        rows += _rows_for(dataset, args)
    print(_table(rows))


if __name__ == "__main__":
    main()
