"""Fit Coral's calibrated performance model to measured vLLM per-layer times; print the held-out
error table and (with --write) update ``src/redundancy/coral/data/calibration.yaml``.

Run: ``python benchmarks/coral_calibrate.py [--profiles ../shared/data/helix-profiles/llama2_70b]
[--write]`` (seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from redundancy.coral.planner.calibration import fit, load_measurements

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "helix-profiles" / "llama2_70b"


def main() -> None:
    """Fit, print, optionally write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=Path, default=DEFAULT)
    parser.add_argument("--write", action="store_true", help="update calibration.yaml")
    args = parser.parse_args()
    calibration = fit(load_measurements(args.profiles))
    print(f"smooth exponent {calibration.smooth:.2f}")
    print("| GPU | eta bandwidth | eta decode | eta prefill | overhead ms/layer | source |")
    print("|---|---|---|---|---|---|")
    for name, g in calibration.gpus.items():
        print(f"| {name} | {g.eta_bandwidth:.3f} | {g.eta_decode:.3f} | {g.eta_prefill:.3f} | "
              f"{g.overhead_ms:.3f} | {g.source} |")  # fmt: skip
    for name, link in calibration.links.items():
        print(f"link {name}: {link.bus_gbs:.1f} GB/s bus, {link.latency_us:.1f} us ({link.source})")
    print("\n| node | phase | held-out rows | median abs. error % | max abs. error % |")
    print("|---|---|---|---|---|")
    for row in calibration.errors:
        print(f"| {row['node']} | {row['phase']} | {row['rows']} | {row['median_pct']} | "
              f"{row['max_pct']} |")  # fmt: skip
    if args.write:
        path = ROOT / "src" / "redundancy" / "coral" / "data" / "calibration.yaml"
        path.write_text(calibration.to_yaml())
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
