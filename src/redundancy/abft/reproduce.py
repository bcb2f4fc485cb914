"""Headline experiment: overhead of global-only vs intensity-guided ABFT per network, measured.

The paper (SC'21) reports 1.09-5.3x less overhead than global-only ABFT on a T4 in FP16; here the
same comparison runs on this machine's CPU at reduced widths and input sizes; the guided selector
times both schemes per layer here. Detection is measured with exponent-MSB flips in layer outputs
and in weights, on a CNN (resnet50) and two transformers (a GPT-style decoder and an
nn.TransformerEncoderLayer stack). The paper gives no detection rate, so those rows have no
paper figure.
"""

from __future__ import annotations

from pathlib import Path

import torch

from redundancy.abft import zoo
from redundancy.abft.bench import time_strategies
from redundancy.abft.inject import campaign
from redundancy.abft.profile import measure_profile
from redundancy.abft.protect import protect
from redundancy.reproduce import Row

PAPER = "1.09-5.3x less overhead (T4, FP16)"
DETECTION_MODELS = ("resnet50", "gpt", "transformer")


def _plot(names: list[str], overheads: dict[str, list[float]], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from redundancy.storage_io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(overheads)
    for i, (strategy, values) in enumerate(overheads.items()):
        ax.bar(
            [j + i * width for j in range(len(names))],
            [100 * v for v in values],
            width,
            label=strategy,
        )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names)
    ax.set_ylabel("overhead vs unprotected (%)")
    ax.set_title("ABFT overhead on this CPU")
    ax.legend()
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out_dir / "abft_overhead.png", buf.getvalue())


def run(quick: bool, out_dir: Path) -> list[Row]:
    """Time global, tiled and guided per zoo network; measure detection of high-bit flips.

    Parameters
    ----------
    quick : bool
        Four networks, 3 rounds, 10 flips per bit (seconds) instead of the whole zoo.
    out_dir : Path
        Folder for ``abft_overhead.png``.

    Returns
    -------
    list of Row
        One overhead row per network, then one detection row per model and fault target.
    """
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        profile = measure_profile("cpu")
        names = ["dlrm", "alexnet", "squeezenet", "resnet50"] if quick else sorted(zoo.ZOO)
        size, batch, repeats = (32, 1, 3) if quick else (64, 8, 7)
        rows: list[Row] = []
        overheads: dict[str, list[float]] = {"global": [], "tiled": [], "guided": []}
        for name in names:
            x = zoo.example_input(name, batch, size=size)
            t = time_strategies(zoo.build(name), x, profile, repeats, ("global", "tiled", "guided"))
            for strategy in overheads:
                overheads[strategy].append(t.overhead(strategy))
            g, gd, tl = t.overhead("global"), t.overhead("guided"), t.overhead("tiled")
            rows.append(
                Row(
                    "abft",
                    f"{name}: global/guided overhead",
                    PAPER,
                    f"{g / gd:.2f}x (global {100 * g:.0f}%, guided {100 * gd:.0f}%, "
                    f"tiled {100 * tl:.0f}%)",
                    f"CPU 1 thread, batch {batch}, {size}px, width 0.25",
                )
            )
        trials = 10 if quick else 100
        for name in DETECTION_MODELS:
            x = zoo.example_input(name, 1, size=32)
            guided = protect(zoo.build(name), profile, x)
            for target in ("output", "weight"):
                result = campaign(guided, x, target, bits=[30, 29, 28], trials=trials)
                pooled = result.total()
                rows.append(
                    Row(
                        "abft",
                        f"detection of exponent-MSB flips ({target}s, {name}, guided)",
                        "",
                        f"{100 * pooled.detection_rate:.1f}% of {pooled.trials} flips, "
                        f"{100 * pooled.coverage:.1f}% of the {pooled.corrupted} that changed "
                        f"the output; false positives {result.false_positives}/"
                        f"{result.clean_runs}",
                        f"bits 30, 29, 28 of fp32; {len(guided.layers)} checked layers"
                        + (f", {len(guided.unprotected)} unprotected" if guided.unprotected else "")
                        + "; the paper reports no detection rate",
                    )
                )
        _plot(names, overheads, out_dir)
        return rows
    finally:
        torch.set_num_threads(threads)
