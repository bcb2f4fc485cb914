"""ECRM vs checkpointing vs no fault tolerance, side by side on the same data and failure.

    .venv/bin/python benchmarks/ecrm_bench.py                 # small, in-process, k = 2 and 4
    .venv/bin/python benchmarks/ecrm_bench.py --gib 2 --ray   # the issue's scale (needs RAM/cores)

For each k: training time without failure in the three modes (overhead over no fault tolerance),
recovery time after one of 4 servers is killed (checkpoint restore + redo vs ECRM rebuild), and
ECRM's throughput while rebuilding. Prints a Markdown table with the ratios and the targets
(ECRM overhead <= half of checkpointing's; recovery >= 5x faster).
"""

from __future__ import annotations

import argparse

from redundancy.ecrm.compare import compare
from redundancy.ecrm.config import make_config
from redundancy.ecrm.train import ray_session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=0.05, help="embedding tables in total (GiB)")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--k", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--mtbf", type=float, default=60.0, help="MTBF (s) for Young's interval")
    ap.add_argument("--ray", action="store_true", help="one Ray actor process per server")
    args = ap.parse_args()
    rows = max(1, int(args.gib * 2**30 / (26 * args.dim * 4)))
    print(f"26 tables x {rows} rows x {args.dim} float32 = {args.gib:.2f} GiB, "
          "4 servers (k + 1 when k = 4), "
          f"{args.steps} steps, server 1 killed at step {args.steps // 2}, "
          f"{'Ray actors' if args.ray else 'in-process'}\n")  # fmt: skip
    lines = [
        "| k | no-FT s | ECRM overhead | ckpt overhead | ECRM/ckpt overhead | ckpt recovery s "
        "| ECRM recovery s | recovery ratio | ECRM thr. while rebuilding |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in args.k:
        cfg = make_config(
            steps=args.steps, mtbf_s=args.mtbf, fail_server=1, use_ray=args.ray,
            model={"table_rows": [rows] * 26, "dim": args.dim},
            servers={"k": k, "num_servers": max(4, k + 1), "rebuild_ranges": 4},
        )  # fmt: skip
        if args.ray:
            with ray_session():
                cmp = compare(cfg, args.steps // 2)
        else:
            cmp = compare(cfg, args.steps // 2)
        e, c = cmp.overhead("ecrm"), cmp.overhead("checkpoint")
        ratio = f"{e / c:.2f}" if c > 0 else "n/a"
        lines.append(
            f"| {k} | {cmp.clean['none'].total_s:.2f} | {100 * e:+.1f}% | {100 * c:+.1f}% | "
            f"{ratio} (target <= 0.5) | {cmp.failed['checkpoint'].recovery_s:.2f} | "
            f"{cmp.failed['ecrm'].recovery_s:.2f} | {cmp.recovery_ratio():.1f}x (target >= 5x) | "
            f"{100 * cmp.recovery_throughput():.0f}% |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
