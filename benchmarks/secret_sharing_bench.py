"""Shamir split+combine throughput (1 MiB secret, n = 10, k = 5) side by side with pycryptodome
(16-byte chunks, as its users must) and a plain table-lookup GF(2^8) baseline; then SNEAK vs SMT
symbols and randomness on n = 1000.

Run: .venv/bin/python benchmarks/secret_sharing_bench.py [--quick]
"""

from __future__ import annotations

import os
import random
import sys
import time

import numpy as np

from redundancy.gf256 import MUL_TABLE
from redundancy.secret_sharing import combine, split
from redundancy.secret_sharing.reproduce import measure

N, K = 10, 5


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ours(secret: bytes, field: str) -> None:
    shares = split(secret, N, K, field=field)
    assert combine(shares[N - K :]) == secret


def plain_table(secret: bytes) -> None:
    """Byte-wise Shamir with MUL_TABLE lookups on secret bytes (numpy; not constant-time)."""
    s = np.frombuffer(secret, np.uint8)
    coeffs = np.frombuffer(os.urandom((K - 1) * s.size), np.uint8).reshape(K - 1, -1)
    shares = {}
    for x in range(1, N + 1):
        acc = coeffs[-1].copy()
        for c in coeffs[-2::-1]:
            acc = MUL_TABLE[x][acc] ^ c
        shares[x] = MUL_TABLE[x][acc] ^ s
    xs = list(shares)[:K]
    out = np.zeros_like(s)
    for i in xs:
        w = 1
        for j in xs:
            if j != i:
                w = int(MUL_TABLE[w, MUL_TABLE[j, _inv(i ^ j)]])
        out ^= MUL_TABLE[w][shares[i]]
    assert out.tobytes() == secret


def _inv(a: int) -> int:
    return next(b for b in range(1, 256) if MUL_TABLE[a, b] == 1)


def pycryptodome(secret: bytes) -> None:
    from Crypto.Protocol.SecretSharing import Shamir

    for a in range(0, len(secret), 16):
        chunk = secret[a : a + 16]
        shares = Shamir.split(K, N, chunk)
        assert Shamir.combine(shares[:K]) == chunk


def main() -> None:
    quick = "--quick" in sys.argv
    size = 1 << 20
    secret = os.urandom(size)
    sample = secret[: (16 << 10) if not quick else (2 << 10)]
    rows = [
        ("ours gf256 (constant-time)", size, best_of(lambda: ours(secret, "gf256"))),
        ("ours p521 (big ints)", size, best_of(lambda: ours(secret, "p521"), 1)),
        ("plain numpy table (not CT)", size, best_of(lambda: plain_table(secret))),
    ]
    try:
        import Crypto  # noqa: F401

        rows.append(
            ("pycryptodome, 16 B chunks", len(sample), best_of(lambda: pycryptodome(sample), 1))
        )
    except ImportError:
        print("pycryptodome not installed: its row is skipped")
    anchor = rows[-1]
    anchor_tp = anchor[1] / anchor[2]
    print(
        f"\n### Shamir split+combine, n={N}, k={K} (secret 1 MiB; pycryptodome on "
        f"{len(sample) >> 10} KiB, throughput extrapolates linearly)\n"
    )
    print("| implementation | bytes | seconds | MB/s | vs anchor |")
    print("|---|---:|---:|---:|---:|")
    for name, nbytes, secs in rows:
        tp = nbytes / secs
        print(f"| {name} | {nbytes} | {secs:.3f} | {tp / 1e6:.3g} | {tp / anchor_tp:.1f}x |")

    n = 300 if quick else 1000
    print(f"\n### SNEAK vs SMT, k=3, n={n} (k-propagating part of each graph)\n")
    print("| graph | n | SNEAK random | SMT random | ratio | SNEAK symbols | SMT symbols | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    random.seed(0)
    for kind in ("rgg", "er"):
        m = measure(kind, n)
        print(
            f"| {kind} | {m['n']} | {m['sneak_rand']} | {m['smt_rand']} | "
            f"{m['smt_rand'] / m['sneak_rand']:.0f}x | {m['sneak_comm']} | {m['smt_comm']} | "
            f"{m['smt_comm'] / m['sneak_comm']:.2f}x |"
        )


if __name__ == "__main__":
    main()
