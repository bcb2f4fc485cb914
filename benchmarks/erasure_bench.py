"""Erasure-coding benchmark: our kernel and store side by side with ISA-L, zfec and pyeclib.

Run: .venv/bin/python benchmarks/erasure_bench.py [--quick]
Prints Markdown tables (throughput in GB/s of data, ratio = ours / anchor).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

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


STORE_CHILD = """
import sys, time
from pathlib import Path
from redundancy.erasure import store
src, root, out = map(Path, sys.argv[1:4])
t0 = time.perf_counter(); store.encode_file(src, root, "rs:10,4"); t1 = time.perf_counter()
(root / "node-000" / "shard-000.bin").unlink()
t2 = time.perf_counter(); store.decode_store(root, out); t3 = time.perf_counter()
hwm_kib = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]  # reset by exec
print(t1 - t0, t3 - t2, hwm_kib)
"""


def store_table(file_bytes: int) -> list[str]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        src = Path(tmp) / "big.bin"
        chunk = np.random.default_rng(3).integers(0, 256, 1 << 24, dtype=np.uint8).tobytes()
        with src.open("wb") as handle:
            for _ in range(file_bytes // len(chunk)):
                handle.write(chunk)
        result = subprocess.run(
            [sys.executable, "-c", STORE_CHILD, str(src), f"{tmp}/st", f"{tmp}/out.bin"],
            capture_output=True,
            text=True,
            check=True,
        )
        enc, dec, rss_kib = result.stdout.split()
        same = Path(f"{tmp}/out.bin").stat().st_size == file_bytes
    gb = file_bytes / 1e9
    return [
        f"| file store, {file_bytes >> 20} MiB file, RS(10,4) | value |",
        "|---|---|",
        f"| encode (read, encode, CRC, SHA-256, write, fsync) | {gb / float(enc):.2f} GB/s |",
        f"| decode with 1 data shard lost | {gb / float(dec):.2f} GB/s |",
        f"| peak RSS (target < 300 MiB) | {int(rss_kib) / 1024:.0f} MiB |",
        f"| output size correct | {same} |",
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
        store_table((64 if args.quick else 1024) << 20),
    ):
        print("\n".join(table), end="\n\n")
    print(f"bench process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB")


if __name__ == "__main__":
    main()
