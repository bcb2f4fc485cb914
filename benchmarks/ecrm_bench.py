"""ECRM vs checkpointing vs no fault tolerance, side by side on the same data and failure.

    .venv/bin/python benchmarks/ecrm_bench.py                       # small, in-process
    .venv/bin/python benchmarks/ecrm_bench.py --gib 2 --ray --k 2   # the issue's scale

For each k: ``--rounds`` interleaved rounds of the three modes (see ``redundancy.ecrm.compare``),
each figure as median (min..max). Overhead: time for the failure-free first ``--fail-at`` steps
over no fault tolerance's, paired per round. Recovery: kill until training is back past the
failure step (checkpoint: restart + reload + redo; ECRM: degraded reads). Rebuild: kill until
the replacement holds its whole shard again (ECRM, in the background). Throughput while
rebuilding: ECRM new steps/s between kill and end of rebuild over steps/s before the kill.
Checkpoint cost C (mean over the run's checkpoints) and Young's steady-state overhead
C / sqrt(2 C MTBF) are printed too: a segment shorter than the interval holds no checkpoint.
Targets: ECRM overhead <= half of checkpointing's; recovery >= 5x faster.
"""

from __future__ import annotations

import argparse
import time

from redundancy.ecrm.compare import Spread, compare
from redundancy.ecrm.config import make_config
from redundancy.ecrm.train import ray_session, young_interval


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=0.05, help="embedding tables in total (GiB)")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--fail-at", type=int, default=None, help="default: steps // 2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--k", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--optimizer", default="adagrad", choices=["adagrad", "sgd"])
    ap.add_argument("--mtbf", type=float, default=60.0, help="MTBF (s) for Young's interval")
    ap.add_argument("--ranges", type=int, default=32, help="ranges a rebuild runs in")
    ap.add_argument("--ray", action="store_true", help="one Ray actor process per server")
    args = ap.parse_args()
    rows = max(1, int(args.gib * 2**30 / (26 * args.dim * 4)))
    fail_at = args.fail_at if args.fail_at is not None else args.steps // 2
    print(
        f"26 tables x {rows} rows x {args.dim} float32 = {args.gib:.2f} GiB ({args.optimizer}), "
        f"4 servers (k + 1 when k = 4), batch {args.batch}, {args.steps} steps, server 1 killed "
        f"at step {fail_at}, MTBF {args.mtbf:g} s, {args.rounds} rounds, "
        f"{'Ray actors' if args.ray else 'in-process'}\n"
    )
    lines = [
        "| k | no-FT s / step | ECRM overhead | ckpt overhead (ckpts) | ECRM / ckpt overhead "
        "| ckpt C s (Young C/I) | ckpt recovery s (redone) | ECRM recovery s | recovery ratio "
        "| ECRM rebuild s | ckpt recovery / ECRM rebuild | ECRM thr. while rebuilding |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in args.k:
        cfg = make_config(
            steps=args.steps, mtbf_s=args.mtbf, fail_server=1, use_ray=args.ray,
            model={"table_rows": [rows] * 26, "dim": args.dim},
            data={"batch_size": args.batch},
            servers={"k": k, "num_servers": max(4, k + 1), "rebuild_ranges": args.ranges,
                     "optimizer": args.optimizer},
        )  # fmt: skip
        t0 = time.perf_counter()

        def log(msg: str, k: int = k, t0: float = t0) -> None:
            print(f"  k={k} {msg} ({time.perf_counter() - t0:.0f} s)", flush=True)

        if args.ray:
            with ray_session():
                cmp = compare(cfg, fail_at, log, args.rounds)
        else:
            cmp = compare(cfg, fail_at, log, args.rounds)
        e, c = cmp.overhead("ecrm"), cmp.overhead("checkpoint")
        rel = f"{e.median / c.median:.2f}" if c.median > 0 else "n/a"
        ckpts = sorted(r["checkpoint"].checkpoints - 1 for r in cmp.rounds)
        none_step = cmp.segment_s("none").median / fail_at
        cost = Spread(tuple(r["checkpoint"].checkpoint_s / r["checkpoint"].checkpoints
                            for r in cmp.rounds))  # fmt: skip
        young = cost.median / young_interval(cost.median, args.mtbf)
        lines.append(
            f"| {k} | {none_step:.3f} | {e.fmt('+.1f', 100, '%')} | "
            f"{c.fmt('+.1f', 100, '%')} ({ckpts[0]}..{ckpts[-1]}) | {rel} | "
            f"{cost.fmt()} ({100 * young:.0f}%) | "
            f"{cmp.recovery('checkpoint').fmt()} ({cmp.redone().fmt('.0f')}) | "
            f"{cmp.recovery('ecrm').fmt()} | {cmp.recovery_ratio().fmt('.1f', unit='x')} | "
            f"{cmp.rebuild().fmt()} | {cmp.rebuild_ratio().fmt('.1f', unit='x')} | "
            f"{cmp.recovery_throughput().fmt('.0f', 100, '%')} |"
        )
        print(f"k={k} done in {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
