"""Erasure coding's headline figures: kernel throughput, repair reads, and a damaged-store drill."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from redundancy import gf256
from redundancy.erasure import store
from redundancy.erasure.codes import LRC, ReedSolomon
from redundancy.reproduce import Row

SYSTEM = "erasure"


def encode_throughput(backend: str, shard_bytes: int, repeats: int) -> float:
    """GB/s of data encoded by RS(10,4) with ``backend`` (best of ``repeats``)."""
    code = ReedSolomon(10, 4)
    data = np.random.default_rng(0).integers(0, 256, (10, shard_bytes), dtype=np.uint8)
    out = np.empty((4, shard_bytes), dtype=np.uint8)
    gf256.matmul(code.parity_matrix, data, out=out, backend=backend)  # warm-up (numba compiles)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        gf256.matmul(code.parity_matrix, data, out=out, backend=backend)
        best = min(best, time.perf_counter() - start)
    return data.nbytes / best / 1e9


def damaged_store_drill(workdir: Path, size: int) -> tuple[bool, list[int], int]:
    """Encode a file with LRC(6,2,2), lose one shard and corrupt another, repair, decode."""
    source = workdir / "input.bin"
    source.write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    root = workdir / "store"
    manifest = store.encode_file(source, root, "lrc:6,2,2", stripe_size=64 * 1024)
    (root / manifest.shards[0].path).unlink()
    victim = root / manifest.shards[7].path
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    report = store.verify_store(root)
    repaired = store.repair_store(root)
    store.decode_store(root, workdir / "output.bin")
    same = (workdir / "output.bin").read_bytes() == source.read_bytes()
    return same and report.recoverable, report.damaged, repaired.bytes_read


def run(quick: bool, out_dir: Path) -> list[Row]:
    """Measure and return the rows; plot throughput per backend."""
    shard_bytes, repeats = (1 << 20, 3) if quick else (16 << 20, 10)
    speeds = {b: encode_throughput(b, shard_bytes, repeats) for b in gf256.available_backends()}
    rows = []
    if "isal" in speeds:
        rows.append(
            Row(
                SYSTEM,
                "RS(10,4) encode, ISA-L backend (GB/s, 1 thread)",
                "",
                f"{speeds['isal']:.2f}",
                f"{shard_bytes >> 20} MiB shards",
                reference="ISA-L's own perf test on this machine: 10-11",
            )
        )
    if "numba" in speeds:
        rows.append(
            Row(
                SYSTEM,
                "RS(10,4) encode, numba backend (GB/s, all cores)",
                "",
                f"{speeds['numba']:.2f}",
                "no table lookups",
                reference="REFERENCES.md, 1 core: 6-7",
            )
        )
    rows.append(
        Row(
            SYSTEM,
            "RS(10,4) encode, numpy reference (GB/s)",
            "",
            f"{speeds['numpy']:.2f}",
            "ground truth in tests",
            reference="a fancy-index table kernel: 0.2",
        )
    )
    rs, lrc = ReedSolomon(12, 4), LRC(12, 2, 2)
    rows.append(
        Row(
            SYSTEM,
            "shards read to repair one data shard, LRC(12,2,2) vs RS(12,4)",
            "",
            f"{lrc.repair_plan([0]).read_count} vs {rs.repair_plan([0]).read_count}",
            "same 1.33x overhead",
            reference="Azure LRC paper (Huang et al., ATC 2012): 6 vs 12",
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        size = (3 << 20) if quick else (64 << 20)
        ok, damaged, read = damaged_store_drill(Path(tmp), size)
    rows.append(
        Row(
            SYSTEM,
            "store drill: 1 lost + 1 corrupt shard, repair then decode",
            "",
            "identical" if ok else "MISMATCH",
            f"damaged {damaged} found by CRC; repair read {read / size:.2f}x file size",
            reference="required: bytes identical",
        )
    )
    _plot(speeds, out_dir / "encode_throughput.png")
    return rows


def _plot(speeds: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(
        list(speeds), list(speeds.values()), color=["#4477aa", "#66ccee", "#bbbbbb"][: len(speeds)]
    )
    ax.set_ylabel("GB/s of data")
    ax.set_title("RS(10,4) encode throughput by backend")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
