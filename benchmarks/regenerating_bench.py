"""Repair one node of a large file: bytes downloaded and wall time, MBR and MSR vs RS(n, k);
encode throughput vs RS at the same storage overhead. Prints a Markdown table with ratios.

    .venv/bin/python benchmarks/regenerating_bench.py [--size-mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from redundancy import gf256
from redundancy.regenerating import RegeneratingCode, RegenParams
from redundancy.regenerating.baseline import rs_encode, rs_repair


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Fastest of ``repeat`` runs (seconds) and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def regen_repair(code: RegeneratingCode, nodes: np.ndarray, failed: int) -> tuple[np.ndarray, int]:
    """Helpers compute their symbols, the newcomer combines d of them; return node and bytes."""
    helpers = [j for j in range(code.params.n) if j != failed][: code.params.d]
    sent = {j: code.helper_symbols(nodes[j], failed) for j in helpers}
    return code.repair(failed, sent), sum(s.nbytes for s in sent.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--d", type=int, default=10)
    args = parser.parse_args()
    size = args.size_mib << 20
    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    n, k, d = args.n, args.k, args.d
    print(
        f"file {args.size_mib} MiB, gf256 backend {gf256.default_backend()}, "
        f"best of {args.repeat}\n"
    )

    rs_time, rs_shards = best(lambda: rs_encode(data, n, k), args.repeat)
    rs_rep_time, (rs_node, rs_bytes) = best(lambda s=rs_shards: rs_repair(s, 0, k), args.repeat)
    assert np.array_equal(rs_node, rs_shards[0])
    del rs_shards
    rows = [
        f"| RS({n},{k}) | {n / k:.2f} | {size / rs_time / 1e6:.0f} | - | - | {rs_bytes} | "
        f"{rs_bytes} | {rs_rep_time * 1e3:.0f} | 1.00 | 1.00 |"
    ]
    for kind in ("mbr", "msr"):
        params = RegenParams(kind, n, k, d)  # type: ignore[arg-type]
        code = RegeneratingCode(params)
        overhead = n * params.alpha / params.file_symbols
        enc_time, nodes = best(lambda code=code: code.encode(data), args.repeat)
        rep_time, (node, moved) = best(lambda c=code, x=nodes: regen_repair(c, x, 0), args.repeat)
        assert np.array_equal(node, nodes[0])
        target = params.d * nodes.shape[2]
        del nodes
        # RS anchor at the same storage overhead n'/k' = n*alpha/B (k' >= k preferred).
        k_eq = next(q for q in [*range(k, 64), *range(1, k)] if (overhead * q).is_integer())
        n_eq = round(overhead * k_eq)
        rs_eq_time, _ = best(lambda a=n_eq, b=k_eq: rs_encode(data, a, b), args.repeat)
        rows.append(
            f"| {kind.upper()}({n},{k},{d}) | {overhead:.2f} | {size / enc_time / 1e6:.0f} | "
            f"RS({n_eq},{k_eq}) {size / rs_eq_time / 1e6:.0f} | {rs_eq_time / enc_time:.2f} | "
            f"{moved} | {target} | {rep_time * 1e3:.0f} | {rs_bytes / moved:.2f} | "
            f"{rs_rep_time / rep_time:.2f} |"
        )
    print(
        "| code | storage overhead | encode MB/s | RS encode MB/s, same overhead | "
        "encode ratio (ours/RS) | repair bytes downloaded | target d*beta*L | repair ms | "
        "RS bytes / ours | RS time / ours |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
