"""ECRM's headline experiment at small scale: overhead, recovery time, throughput while recovering.

Runs in-process (``LocalCluster``: servers are objects in this process, one worker thread), because
Ray start-up alone takes ~10 s on a 2-core machine; ``benchmarks/ecrm_bench.py --ray`` runs the
same comparison with one process per server.
"""

from __future__ import annotations

from pathlib import Path

from redundancy.ecrm.compare import compare, plot_throughput
from redundancy.ecrm.config import make_config
from redundancy.reproduce import Row

SYSTEM = "ecrm"


def run(quick: bool, out_dir: Path) -> list[Row]:
    """Five trainings (3 modes clean, ECRM and checkpoint with a server killed mid-run)."""
    rows_per_table, steps = (10_000, 80) if quick else (100_000, 400)
    cfg = make_config(
        steps=steps,
        mtbf_s=30.0 if quick else 120.0,
        model={"table_rows": [rows_per_table] * 26, "dim": 16},
        servers={"k": 2, "num_servers": 4, "rebuild_ranges": 4},
    )
    cmp = compare(cfg, fail_at=steps // 2, repeats=1 if quick else 2)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_throughput(cmp, str(out_dir / "ecrm_throughput.png"), max(steps // 20, 1))
    gib = sum(cfg.model.table_rows) * cfg.model.dim * 4 / 2**30
    where = (
        f"in-process, 4 servers, k=2, 26 tables x {rows_per_table} rows x 16 "
        f"({gib:.2f} GiB + Adagrad state), {steps} steps, MTBF {cfg.mtbf_s:.0f} s for Young"
    )
    e, c = cmp.overhead("ecrm"), cmp.overhead("checkpoint")
    less = f"{(1 - e / c) * 100:.0f}% less" if c > 0 else "checkpointing cost not measurable"
    ck = cmp.failed["checkpoint"]
    return [
        Row(
            SYSTEM,
            "normal-mode overhead vs no fault tolerance (ECRM / checkpointing)",
            "up to 88% less than checkpointing (final version: 66%)",
            f"{100 * e:+.1f}% / {100 * c:+.1f}% ({less})",
            where,
        ),
        Row(
            SYSTEM,
            "recovery time (checkpoint restore + redo / ECRM rebuild)",
            "up to 10.3x faster (final version: 9.8x)",
            f"{ck.recovery_s:.2f} s / {cmp.failed['ecrm'].recovery_s:.2f} s = "
            f"{cmp.recovery_ratio():.1f}x",
            f"{ck.redone_steps} steps redone; Young interval {ck.interval_steps} steps",
        ),
        Row(
            SYSTEM,
            "throughput while recovering (ECRM, vs before the failure)",
            "training continues; 7-13% drop",
            f"{100 * cmp.recovery_throughput():.0f}% of normal",
            "degraded reads + range-by-range rebuild interleaved with training",
        ),
        Row(
            SYSTEM,
            "pause after the failure (ECRM / checkpointing)",
            "no pause / restart from last checkpoint",
            f"{cmp.failed['ecrm'].pause_s:.3f} s / {ck.pause_s:.3f} s",
            "extra time of the first step after the kill beyond a normal step",
        ),
    ]
