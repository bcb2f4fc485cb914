"""The Reed-Solomon anchor, built directly on gf256: systematic [I; Cauchy] RS(n, k) whose repair
reads k whole shards. Used by reproduce and the benchmark to measure bytes moved side by side.
"""

from __future__ import annotations

import numpy as np

from redundancy import gf256
from redundancy.errors import ParameterError, check_range


def rs_generator(n: int, k: int) -> np.ndarray:
    """n x k systematic MDS generator [I_k; C], C Cauchy (all square submatrices invertible)."""
    check_range("k", k, 1, 254)
    check_range("n", n, k + 1, 255)
    parity = gf256.cauchy(list(range(k, n)), list(range(k)))
    return np.vstack([np.eye(k, dtype=np.uint8), parity])


def rs_encode(
    data: bytes | np.ndarray, n: int, k: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Shards (n, L) of ``data``: k data shards then n-k parities.

    ``out``: a preallocated C-contiguous (n, L) uint8 array to fill and return (as the
    regenerating encoder's ``out=``, so the two can be compared with the same output policy).
    """
    raw = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data, np.uint8)
    raw = raw.ravel()
    length = max(1, -(-raw.size // k))
    if out is None:
        shards = np.zeros((n, length), dtype=np.uint8)
    elif out.shape != (n, length) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ParameterError(f"out must be a C-contiguous uint8 array of shape {(n, length)}")
    else:
        shards = out
        shards[:k].reshape(-1)[raw.size :] = 0
    shards[:k].reshape(-1)[: raw.size] = raw
    gf256.matmul(rs_generator(n, k)[k:], shards[:k], out=shards[k:])
    return shards


def rs_repair(shards: np.ndarray, failed: int, k: int) -> tuple[np.ndarray, int]:
    """Rebuild shard ``failed`` from the first k others; return it and the bytes read."""
    n = shards.shape[0]
    helpers = [j for j in range(n) if j != failed][:k]
    gen = rs_generator(n, k)
    rebuild = gf256.matmul_small(gen[failed][None, :], gf256.inverse(gen[helpers]))
    return gf256.matmul(rebuild, shards[helpers])[0], k * shards.shape[1]
