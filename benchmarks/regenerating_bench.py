"""Repair of one node of a large file: bytes downloaded and wall time, MBR and MSR vs RS(n, k);
encode throughput vs RS at the same storage overhead. Prints a Markdown table with ratios.

Each task gets one untimed warm-up call, then ``--repeat`` consecutive timed calls; the tasks run
in order and then again in reverse order (so drifting load on a shared machine hits both ends
alike), and the median of all timed calls is reported. Consecutive calls matter for the encodes
that allocate a fresh output: interleaving outputs of different sizes makes the kernel compact
memory for transparent huge pages on first touch (seconds of system time per GiB here), a cost of
the allocation pattern rather than of the encoder. Encode is measured both with a fresh output and
into a reused output buffer, for our codes and for RS alike.

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


def measure(tasks: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each task (warm-up, then ``repeat`` calls; forward and reverse pass)."""
    times: dict[str, list[float]] = {name: [] for name in tasks}
    names = list(tasks)
    for order in (names, names[::-1]):
        for name in order:
            tasks[name]()
            for _ in range(repeat):
                start = time.perf_counter()
                tasks[name]()
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
        f"median of 2 x {args.repeat} timed runs per task\n"
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
        rs_out = np.empty((anchors[kind][0], -(-data.size // anchors[kind][1])), dtype=np.uint8)
        reused = np.empty_like(nodes[kind])
        tasks[f"{kind} encode"] = lambda c=code: c.encode(data)
        tasks[f"{kind} rs-eq encode"] = lambda a=anchors[kind]: rs_encode(data, *a)
        tasks[f"{kind} encode reused"] = lambda c=code, o=reused: c.encode(data, out=o)
        tasks[f"{kind} rs-eq encode reused"] = lambda a=anchors[kind], o=rs_out: rs_encode(
            data, *a, out=o
        )
        tasks[f"{kind} repair"] = lambda c=code, x=nodes[kind]: regen_repair(c, x, 0)
    spent = measure(tasks, args.repeat)

    def mbs(name: str) -> str:
        return f"{size / spent[name] / 1e6:.0f}"

    rows = [
        f"| RS({n},{k}) | {n / k:.2f} | {mbs('rs encode')} | - | - | - | "
        f"{rs_bytes} | {rs_bytes} | {spent['rs repair'] * 1e3:.0f} | 1.00 | 1.00 |"
    ]
    for kind, code in codes.items():
        p = code.params
        rep = spent[f"{kind} repair"]
        n_eq, k_eq = anchors[kind]
        fresh = spent[f"{kind} rs-eq encode"] / spent[f"{kind} encode"]
        reuse = spent[f"{kind} rs-eq encode reused"] / spent[f"{kind} encode reused"]
        rows.append(
            f"| {kind.upper()}({n},{k},{d}) | {n * p.alpha / p.file_symbols:.2f} | "
            f"{mbs(f'{kind} encode')} / {mbs(f'{kind} encode reused')} | "
            f"RS({n_eq},{k_eq}) {mbs(f'{kind} rs-eq encode')} / "
            f"{mbs(f'{kind} rs-eq encode reused')} | {fresh:.2f} | {reuse:.2f} | "
            f"{moved[kind]} | {p.d * nodes[kind].shape[2]} | {rep * 1e3:.0f} | "
            f"{rs_bytes / moved[kind]:.2f} | {spent['rs repair'] / rep:.2f} |"
        )
    print(
        "| code | storage overhead | encode MB/s (fresh / reused output) | RS encode MB/s, same "
        "overhead (fresh / reused) | encode ratio ours/RS, fresh | ratio, reused | "
        "repair bytes downloaded | target d*beta*L | repair ms | RS bytes / ours | "
        "RS time / ours |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
