"""ABFT overhead benchmark: unprotected vs global-only, tiled-only, guided and replication.

Usage: python benchmarks/abft_bench.py [--quick] [--batches 1,64] [--size 32] [--repeats 9]
Prints a Markdown table (median ms over interleaved rounds, overhead %, guided/global and
guided/best-fixed overhead ratios, timing noise) and the detection rate of exponent-MSB output
flips under the guided selector. The guided selector is ``--selector`` (default: measured).
"""

from __future__ import annotations

import argparse

import torch

from redundancy.abft import zoo
from redundancy.abft.bench import time_strategies
from redundancy.abft.inject import campaign
from redundancy.abft.profile import measure_profile
from redundancy.abft.protect import protect

COLUMNS = (
    "network",
    "batch",
    "unprotected ms",
    "global %",
    "tiled %",
    "guided %",
    "replication %",
    "guided/global",
    "guided/best fixed",
    "noise %",
    "guided <= best fixed",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="batch 1 only, 3 rounds")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--selector", default="measured", help="measured, cost or paper")
    parser.add_argument("--trials", type=int, default=200, help="flips per bit position")
    args = parser.parse_args()
    torch.set_num_threads(1)
    batches = [1] if args.quick else [int(b) for b in args.batches.split(",")]
    repeats = 3 if args.quick else args.repeats
    profile = measure_profile("cpu")
    print(f"profile: {profile.name}, fp32 {profile.peak('float32') / 1e9:.1f} GFLOP/s, "
          f"{profile.bandwidth / 1e9:.1f} GB/s, 1 thread, selector {args.selector}\n")  # fmt: skip
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    met, false_positives, worst = 0, 0, 0.0
    for name in sorted(zoo.ZOO):
        for batch in batches:
            x = zoo.example_input(name, batch, size=args.size)
            model = zoo.build(name, args.width)
            t = time_strategies(model, x, profile, repeats, selector=args.selector)
            false_positives += t.false_positives
            worst = max(worst, t.max_clean_ratio)
            o = {s: 100 * t.overhead(s) for s in t.seconds}
            best = min(o["global"], o["tiled"])
            ok = o["guided"] <= best + 100 * t.noise
            met += ok
            cells = [name, str(batch), f"{1e3 * t.unprotected:.2f}"]
            cells += [f"{o[s]:.0f}" for s in ("global", "tiled", "guided", "replication")]
            cells += [f"{o['guided'] / o['global']:.2f}", f"{o['guided'] / best:.2f}"]
            cells += [f"{100 * t.noise:.1f}", "yes" if ok else "no"]
            print("| " + " | ".join(cells) + " |")
    rows = len(zoo.ZOO) * len(batches)
    print(f"\nguided <= best fixed (within noise) on {met} of {rows} rows; false positives in "
          f"all timed (clean) runs: {false_positives}; max clean |diff|/threshold "
          f"{worst:.3g}")  # fmt: skip
    x = zoo.example_input("resnet50", 1, size=args.size)
    guided = protect(zoo.build("resnet50", args.width), profile, x, selector=args.selector)
    trials = 20 if args.quick else args.trials
    result = campaign(guided, x, "output", bits=[30, 29, 28], trials=trials)
    pooled = result.total()
    print(f"detection of exponent-MSB output flips (bits 30/29/28, resnet50, guided): "
          f"{100 * pooled.detection_rate:.1f}% of {pooled.trials} "
          f"({pooled.trials - pooled.detected} missed), false positives "
          f"{result.false_positives}/{result.clean_runs}")  # fmt: skip


if __name__ == "__main__":
    main()
