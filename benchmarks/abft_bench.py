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
from redundancy.abft.reproduce import DETECTION_MODELS

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
    trials = 20 if args.quick else args.trials
    print("\n| model | fault in | detected | of flips | missed | false positives |")
    print("|---|---|---|---|---|---|")
    for name in DETECTION_MODELS:
        x = zoo.example_input(name, 1, size=args.size)
        guided = protect(zoo.build(name, args.width), profile, x, selector=args.selector)
        for target in ("output", "weight"):
            result = campaign(guided, x, target, bits=[30, 29, 28], trials=trials)
            pooled = result.total()
            print(f"| {name} | {target}s | {100 * pooled.detection_rate:.1f}% | {pooled.trials} "
                  f"| {pooled.trials - pooled.detected} | "
                  f"{result.false_positives}/{result.clean_runs} |")  # fmt: skip
    print("(exponent-MSB flips, bits 30/29/28 of fp32, guided protection)")


if __name__ == "__main__":
    main()
