"""ABFT overhead benchmark: unprotected vs global-only, tiled-only, guided and replication.

Usage: python benchmarks/abft_bench.py [--quick] [--batches 1,64] [--size 32]
Prints a Markdown table (best-of-rounds ms, overhead %, guided/global ratio) and the detection
rate of exponent-MSB output flips under the guided selector.
"""

from __future__ import annotations

import argparse

import torch

from redundancy.abft import zoo
from redundancy.abft.bench import time_strategies
from redundancy.abft.inject import campaign
from redundancy.abft.profile import measure_profile
from redundancy.abft.protect import protect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="batch 1 only, 3 rounds")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    batches = [1] if args.quick else [int(b) for b in args.batches.split(",")]
    repeats = 3 if args.quick else args.repeats
    profile = measure_profile("cpu")
    print(f"profile: {profile.name}, fp32 {profile.peak('float32') / 1e9:.1f} GFLOP/s, "
          f"{profile.bandwidth / 1e9:.1f} GB/s, 1 thread\n")  # fmt: skip
    print("| network | batch | unprotected ms | global % | tiled % | guided % | replication % "
          "| guided/global | guided <= best fixed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in sorted(zoo.ZOO):
        for batch in batches:
            x = zoo.example_input(name, batch, size=args.size)
            t = time_strategies(zoo.build(name, args.width), x, profile, repeats)
            o = {s: 100 * t.overhead(s) for s in t.seconds}
            best = min(o["global"], o["tiled"])
            cells = [name, str(batch), f"{1e3 * t.unprotected:.2f}"]
            cells += [f"{o[s]:.0f}" for s in ("global", "tiled", "guided", "replication")]
            cells += [f"{o['guided'] / o['global']:.2f}", "yes" if o["guided"] <= best else "no"]
            print("| " + " | ".join(cells) + " |")
    x = zoo.example_input("resnet50", 1, size=args.size)
    guided = protect(zoo.build("resnet50", args.width), profile, x)
    result = campaign(guided, x, "output", bits=[30, 29, 28], trials=20 if args.quick else 100)
    pooled = result.total()
    print(f"\ndetection of exponent-MSB output flips (resnet50, guided): "
          f"{100 * pooled.detection_rate:.1f}% of {pooled.trials}, false positives "
          f"{result.false_positives}/{result.clean_runs}")  # fmt: skip


if __name__ == "__main__":
    main()
