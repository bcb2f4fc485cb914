"""Repair of one node of a large file: bytes downloaded and wall time, MBR and MSR vs RS(n, k);
encode throughput vs RS at the same storage overhead. Prints a Markdown table with ratios.

Every measurement is repeated ``--repeat`` times, the repeats interleaved round-robin (so load on a
shared machine hits all of them alike), and the median is reported.

    .venv/bin/python benchmarks/regenerating_bench.py [--size-mib 256] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from redundancy import gf256
from redundancy.regenerating import RegeneratingCode, RegenParams
from redundancy.regenerating.baseline import rs_encode, rs_repair


def interleaved(tasks: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each task over ``repeat`` round-robin rounds."""
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(repeat):
        for name, fn in tasks.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(spent) for name, spent in times.items()}


def regen_repair(code: RegeneratingCode, nodes: np.ndarray, failed: int) -> tuple[np.ndarray, int]:
    """Helpers compute their symbols, the newcomer combines d of them; return node and bytes."""
    helpers = [j for j in range(code.params.n) if j != failed][: code.params.d]
    sent = {j: code.helper_symbols(nodes[j], failed) for j in helpers}
    return code.repair(failed, sent), sum(s.nbytes for s in sent.values())


def same_overhead_rs(overhead: float, k: int) -> tuple[int, int]:
    """RS(n', k') with n'/k' = ``overhead`` (k' >= k preferred)."""
    k_eq = next(q for q in [*range(k, 64), *range(1, k)] if (overhead * q).is_integer())
    return round(overhead * k_eq), k_eq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--d", type=int, default=10)
    args = parser.parse_args()
    size = args.size_mib << 20
    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    n, k, d = args.n, args.k, args.d
    print(
        f"file {args.size_mib} MiB, gf256 backend {gf256.default_backend()}, "
        f"median of {args.repeat} interleaved runs\n"
    )
    codes = {kind: RegeneratingCode(RegenParams(kind, n, k, d)) for kind in ("mbr", "msr")}
    rs_shards = rs_encode(data, n, k)
    rs_node, rs_bytes = rs_repair(rs_shards, 0, k)
    assert np.array_equal(rs_node, rs_shards[0])
    nodes = {kind: code.encode(data) for kind, code in codes.items()}
    moved, anchors = {}, {}
    for kind, code in codes.items():
        node, moved[kind] = regen_repair(code, nodes[kind], 0)
        assert np.array_equal(node, nodes[kind][0])
        p = code.params
        anchors[kind] = same_overhead_rs(n * p.alpha / p.file_symbols, k)
    tasks: dict[str, Callable[[], object]] = {
        "rs encode": lambda: rs_encode(data, n, k),
        "rs repair": lambda: rs_repair(rs_shards, 0, k),
    }
    for kind, code in codes.items():
        tasks[f"{kind} encode"] = lambda c=code: c.encode(data)
        tasks[f"{kind} repair"] = lambda c=code, x=nodes[kind]: regen_repair(c, x, 0)
        tasks[f"{kind} rs-eq encode"] = lambda a=anchors[kind]: rs_encode(data, *a)
        reused = np.empty_like(nodes[kind])
        tasks[f"{kind} encode reused"] = lambda c=code, o=reused: c.encode(data, out=o)
    spent = interleaved(tasks, args.repeat)

    rows = [
        f"| RS({n},{k}) | {n / k:.2f} | {size / spent['rs encode'] / 1e6:.0f} | - | - | "
        f"{rs_bytes} | {rs_bytes} | {spent['rs repair'] * 1e3:.0f} | 1.00 | 1.00 |"
    ]
    for kind, code in codes.items():
        p = code.params
        enc, rep = spent[f"{kind} encode"], spent[f"{kind} repair"]
        eq = spent[f"{kind} rs-eq encode"]
        n_eq, k_eq = anchors[kind]
        rows.append(
            f"| {kind.upper()}({n},{k},{d}) | {n * p.alpha / p.file_symbols:.2f} | "
            f"{size / enc / 1e6:.0f} | RS({n_eq},{k_eq}) {size / eq / 1e6:.0f} | {eq / enc:.2f} | "
            f"{moved[kind]} | {p.d * nodes[kind].shape[2]} | {rep * 1e3:.0f} | "
            f"{rs_bytes / moved[kind]:.2f} | {spent['rs repair'] / rep:.2f} |"
        )
    print(
        "| code | storage overhead | encode MB/s | RS encode MB/s, same overhead | "
        "encode ratio (ours/RS) | repair bytes downloaded | target d*beta*L | repair ms | "
        "RS bytes / ours | RS time / ours |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nencode into a reused, already-touched output buffer (`encode(data, out=buf)`):")
    for kind in codes:
        enc = spent[f"{kind} encode reused"]
        ratio = spent[f"{kind} rs-eq encode"] / enc
        print(f"- {kind.upper()}: {size / enc / 1e6:.0f} MB/s, {ratio:.2f}x RS encode (fresh)")


if __name__ == "__main__":
    main()
