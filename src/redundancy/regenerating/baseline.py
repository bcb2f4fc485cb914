"""The Reed-Solomon anchor, built directly on gf256: systematic [I; Cauchy] RS(n, k) whose repair
reads k whole shards. Used by reproduce and the benchmark to measure bytes moved side by side.
"""

from __future__ import annotations

import numpy as np

from redundancy import gf256
from redundancy.errors import check_range


def rs_generator(n: int, k: int) -> np.ndarray:
    """n x k systematic MDS generator [I_k; C], C Cauchy (all square submatrices invertible)."""
    check_range("k", k, 1, 254)
    check_range("n", n, k + 1, 255)
    parity = gf256.cauchy(list(range(k, n)), list(range(k)))
    return np.vstack([np.eye(k, dtype=np.uint8), parity])


def rs_encode(data: bytes | np.ndarray, n: int, k: int) -> np.ndarray:
    """Shards (n, L) of ``data``: k data shards then n-k parities."""
    raw = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data, np.uint8)
    length = max(1, -(-raw.size // k))
    shards = np.zeros((n, length), dtype=np.uint8)
    shards[:k].reshape(-1)[: raw.size] = raw.ravel()
    gf256.matmul(rs_generator(n, k)[k:], shards[:k], out=shards[k:])
    return shards


def rs_repair(shards: np.ndarray, failed: int, k: int) -> tuple[np.ndarray, int]:
    """Rebuild shard ``failed`` from the first k others; return it and the bytes read."""
    n = shards.shape[0]
    helpers = [j for j in range(n) if j != failed][:k]
    gen = rs_generator(n, k)
    rebuild = gf256.matmul_small(gen[failed][None, :], gf256.inverse(gen[helpers]))
    return gf256.matmul(rebuild, shards[helpers])[0], k * shards.shape[1]
