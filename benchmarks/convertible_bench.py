"""Convertible conversion vs read-all-and-re-encode, side by side on the same stores.

Usage: python benchmarks/convertible_bench.py [--mib 256] [--stripe-mib 4] [--repeats 2]
Two stores of --mib MiB each are encoded with cvt:10,4:20,4 (not timed); each conversion is run
into a fresh folder (best wall time of --repeats, page cache as it is). Also times the
piggybacked (7,6)x2 -> (14,12) merge and the LRC (6,1,3,1)x2 -> (12,2,3,1) global merge in
memory (re-encode anchor: the same final parities computed from all data). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from redundancy import gf256
from redundancy.convertible import bounds
from redundancy.convertible.bounds import Conversion
from redundancy.convertible.lrc import LRCGlobalMerge
from redundancy.convertible.merge_store import convert_stores
from redundancy.convertible.piggyback import PiggybackMerge
from redundancy.convertible.spec import parse_lrc_merge
from redundancy.convertible.stores import encode_store


def _best(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def store_rows(mib: int, stripe_mib: int, repeats: int) -> list[tuple]:
    work = Path(tempfile.mkdtemp(prefix="convbench-"))
    try:
        rng = np.random.default_rng(0)
        stores = []
        for t in range(2):
            src = work / f"f{t}.bin"
            src.write_bytes(rng.integers(0, 256, mib << 20, dtype=np.uint8).tobytes())
            encode_store(src, work / f"s{t}", "cvt:10,4:20,4", stripe_size=stripe_mib << 20)
            src.unlink()
            stores.append(work / f"s{t}")
        rows = []
        for method in ("reencode", "optimal"):
            counter = iter(range(repeats))

            def once(method: str = method, counter=counter) -> object:
                out = work / f"{method}-{next(counter)}"
                return convert_stores(stores, out, method=method)

            seconds, report = _best(once, repeats)
            rows.append((method, report.bytes_read, report.bytes_written, seconds))
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def piggyback_rows(shard_bytes: int, repeats: int) -> list[tuple]:
    conv = Conversion.merge(6, 1, 2, 2)
    code = PiggybackMerge.build(conv)
    rng = np.random.default_rng(1)
    data = [rng.integers(0, 256, (6, shard_bytes), dtype=np.uint8) for _ in range(2)]
    words = [code.encode(d) for d in data]
    code.matrix  # noqa: B018 - solve once, outside the timing
    seconds, (_, nbytes) = _best(lambda: code.convert(words), repeats)
    anchor_s, _ = _best(lambda: code.final_encode(np.vstack(data)), repeats)
    reencode_bytes = 12 * shard_bytes
    return [
        ("reencode", reencode_bytes, 2 * shard_bytes, anchor_s),
        ("piggyback", nbytes, 2 * shard_bytes, seconds),
    ]


def lrc_rows(shard_bytes: int, repeats: int) -> list[tuple]:
    merge = parse_lrc_merge("6,1,3,1", "12,2,3,1")
    code = LRCGlobalMerge.build(merge)
    rng = np.random.default_rng(2)
    data = [rng.integers(0, 256, (6, shard_bytes), dtype=np.uint8) for _ in range(2)]
    words = [code.encode(d) for d in data]
    code.matrix  # noqa: B018 - solve once, outside the timing
    seconds, (_, nbytes) = _best(lambda: code.convert(words), repeats)
    merged = np.vstack(data).reshape(12 * code.alpha, -1)
    anchor_s, _ = _best(lambda: gf256.matmul(code.final_globals, merged), repeats)
    return [
        ("reencode", 12 * shard_bytes, 2 * shard_bytes, anchor_s),
        ("LRC global merge", nbytes, 2 * shard_bytes, seconds),
    ]


def table(title: str, rows: list[tuple]) -> str:
    anchor = rows[0]
    lines = [
        f"\n**{title}**\n",
        "| method | MiB read | MiB written | wall s | read ratio | time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, read, written, seconds in rows:
        lines.append(
            f"| {name} | {read / 2**20:.1f} | {written / 2**20:.1f} | {seconds:.3f} | "
            f"{anchor[1] / read:.2f}x | {anchor[3] / seconds:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="MiB per initial store")
    parser.add_argument("--stripe-mib", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    bound = bounds.costs(Conversion.merge(10, 4, 2, 4))
    print(
        f"bound: read {bound.read_access} shards, write {bound.write_access}; re-encode "
        f"{bound.reencode_read} + {bound.reencode_write}"
    )
    print(
        table(
            f"(14,10)x2 -> (24,20), 2 x {args.mib} MiB stores",
            store_rows(args.mib, args.stripe_mib, args.repeats),
        )
    )
    shard = (args.mib << 20) // 6 // 2 * 2
    print(
        table(
            f"(7,6)x2 -> (14,12) piggyback, in memory, {shard / 2**20:.1f} MiB shards",
            piggyback_rows(shard, args.repeats),
        )
    )
    lrc_shard = (args.mib << 20) // 6 // 3 * 3
    lrc_bound = bounds.lrc_bandwidth_bound(parse_lrc_merge("6,1,3,1", "12,2,3,1"))
    print(
        table(
            f"LRC (6,1,3,1)x2 -> (12,2,3,1), in memory, {lrc_shard / 2**20:.1f} MiB shards "
            f"(bound {bounds.format_units(lrc_bound)} shards, MDS-only 8)",
            lrc_rows(lrc_shard, args.repeats),
        )
    )


if __name__ == "__main__":
    main()
