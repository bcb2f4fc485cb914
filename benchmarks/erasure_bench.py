"""Erasure-coding benchmark: our kernel and store side by side with ISA-L, zfec and pyeclib.

Run: .venv/bin/python benchmarks/erasure_bench.py [--quick]
Prints Markdown tables (throughput in GB/s of data, ratio = ours / anchor). The file store against
the disk's limit (encode vs a plain copy, decode vs cp, verify vs cat) is
benchmarks/erasure_store_bench.py.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from redundancy import gf256
from redundancy.erasure import ReedSolomon
from redundancy.gf256 import kernel

K, M = 10, 4


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: compile, build tables, fault in pages
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def isal_direct(matrix: np.ndarray, data: np.ndarray, out: np.ndarray) -> Callable[[], None]:
    """The anchor: ec_encode_data called straight through ctypes, tables built once outside."""
    lib = kernel.isal_library()
    tables = np.zeros(32 * matrix.size, dtype=np.uint8)
    lib.ec_init_tables(K, M, np.ascontiguousarray(matrix).ctypes.data, tables.ctypes.data)
    srcs = (ctypes.c_void_p * K)(*(data.ctypes.data + i * data.strides[0] for i in range(K)))
    dsts = (ctypes.c_void_p * M)(*(out.ctypes.data + i * out.strides[0] for i in range(M)))
    length = data.shape[1]
    return lambda: lib.ec_encode_data(length, K, M, tables.ctypes.data, srcs, dsts)


def kernel_table(shard_sizes: list[int], repeats: int) -> list[str]:
    code = ReedSolomon(K, M)
    rows = [
        "| shards | ours isal | ours numba | ISA-L direct | isal/ISA-L | numba/ISA-L |",
        "|---|---|---|---|---|---|",
    ]
    for size in shard_sizes:
        data = np.random.default_rng(0).integers(0, 256, (K, size), dtype=np.uint8)
        out = np.empty((M, size), dtype=np.uint8)
        volume = data.nbytes / 1e9
        speeds = {}
        for backend in ("isal", "numba"):
            if backend in gf256.available_backends():
                run = partial(gf256.matmul, code.parity_matrix, data, out=out, backend=backend)
                secs = best_seconds(run, repeats)
                speeds[backend] = volume / secs
        anchor = volume / best_seconds(isal_direct(code.parity_matrix, data, out), repeats)
        rows.append(
            f"| {K} x {size >> 20} MiB | {speeds.get('isal', 0):.2f} "
            f"| {speeds.get('numba', 0):.2f} "
            f"| {anchor:.2f} | {speeds.get('isal', 0) / anchor:.2f}x "
            f"| {speeds.get('numba', 0) / anchor:.2f}x |"
        )
    return rows


def peers_table(buffer_bytes: int, repeats: int) -> list[str]:
    """End to end on one buffer: split + encode, through each library's own API."""
    import zfec
    from pyeclib.ec_iface import ECDriver

    payload = np.random.default_rng(1).integers(0, 256, buffer_bytes, dtype=np.uint8).tobytes()
    code = ReedSolomon(K, M)
    volume = buffer_bytes / 1e9

    def ours() -> None:
        code.encode(code.split(payload))

    zfec_encoder = zfec.Encoder(K, K + M)
    block = -(-buffer_bytes // K)

    def zfec_encode() -> None:
        padded = payload + bytes(block * K - buffer_bytes)
        zfec_encoder.encode([padded[i * block : (i + 1) * block] for i in range(K)])

    driver = ECDriver(k=K, m=M, ec_type="isa_l_rs_vand")
    timings = {
        "ours": best_seconds(ours, repeats),
        "zfec": best_seconds(zfec_encode, max(1, repeats // 2)),
        "pyeclib isa_l_rs_vand": best_seconds(lambda: driver.encode(payload), max(1, repeats // 2)),
    }
    rows = [f"| library ({buffer_bytes >> 20} MiB buffer) | GB/s | ours / it |", "|---|---|---|"]
    for name, secs in timings.items():
        rows.append(f"| {name} | {volume / secs:.2f} | {timings[name] / timings['ours']:.1f}x |")
    return rows


def decode_table(shard_bytes: int, repeats: int) -> list[str]:
    code = ReedSolomon(K, M)
    data = np.random.default_rng(2).integers(0, 256, (K, shard_bytes), dtype=np.uint8)
    full = code.encode_all(data)
    shards = [None if i < 4 else full[i] for i in range(K + M)]
    volume = data.nbytes / 1e9
    encode = volume / best_seconds(lambda: code.encode(data), repeats)
    decode = volume / best_seconds(lambda: code.reconstruct(shards), repeats)
    assert all(np.array_equal(a, b) for a, b in zip(code.reconstruct(shards), full, strict=True))
    return [
        "| operation (RS(10,4), 4 data shards lost) | GB/s | vs encode |",
        "|---|---|---|",
        f"| encode | {encode:.2f} | 1.00x |",
        f"| reconstruct (decode) | {decode:.2f} | {decode / encode:.2f}x |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    print(f"backends: {gf256.available_backends()}; cores: {os.cpu_count()}\n")
    sizes = [1 << 20] if args.quick else [1 << 20, 16 << 20]
    for table in (
        kernel_table(sizes, repeats),
        peers_table((32 if args.quick else 256) << 20, repeats),
        decode_table(1 << 20 if args.quick else 16 << 20, repeats),
    ):
        print("\n".join(table), end="\n\n")
    print(f"bench process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB")


if __name__ == "__main__":
    main()
