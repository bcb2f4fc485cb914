"""Headline figures: repair bytes of MBR/MSR vs RS on the same file (measured), and the secure file
size B_s over a grid of (n, k, d, l) (formula vs the rank-measured eavesdropper view).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from redundancy import gf256
from redundancy.regenerating.baseline import rs_encode, rs_repair
from redundancy.regenerating.code import RegeneratingCode
from redundancy.regenerating.params import RegenParams
from redundancy.regenerating.robust import robust_repair
from redundancy.regenerating.security import observation_matrix, worst_leakage
from redundancy.reproduce import Row

SYSTEM = "regenerating"


def measure_repair(params: RegenParams, data: bytes, failed: int = 0) -> int:
    """Encode ``data``, lose node ``failed``, repair it; return bytes downloaded (checked exact)."""
    code = RegeneratingCode(params)
    nodes = code.encode(data, np.random.default_rng(0))
    moved = 0

    def fetch(j: int) -> np.ndarray:
        nonlocal moved
        sent = code.helper_symbols(nodes[j], failed)
        moved += sent.nbytes
        return sent

    rebuilt, _ = robust_repair(code, failed, fetch)
    if not np.array_equal(rebuilt, nodes[failed]):
        raise AssertionError("repaired node differs from the lost one")
    return moved


def measure_rs_repair(n: int, k: int, data: bytes) -> int:
    """Bytes RS(n, k) reads to rebuild shard 0 of ``data`` (checked exact)."""
    shards = rs_encode(data, n, k)
    rebuilt, moved = rs_repair(shards, 0, k)
    if not np.array_equal(rebuilt, shards[0]):
        raise AssertionError("RS repair differs from the lost shard")
    return moved


def eavesdropper_rank(params: RegenParams) -> int:
    """Largest rank of what any l nodes store and receive in repairs (exhaustive)."""
    code = RegeneratingCode(params)
    sets = combinations(range(params.n), params.l)
    return max(gf256.rank(observation_matrix(code, w)) for w in sets)


def _repair_rows(quick: bool) -> tuple[list[Row], dict[str, float]]:
    size = (1 << 20) if quick else (16 << 20)
    data = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    n, k = 12, 6
    rs = measure_rs_repair(n, k, data)
    whole_file = "1.000 (RS repair downloads the whole file B)"
    rows = [Row(SYSTEM, f"RS({n},{k}) repair bytes / file", whole_file, f"{rs / size:.3f}")]
    ratios = {f"RS({n},{k})": rs / size}
    for params in (RegenParams("mbr", n, k, 10), RegenParams("msr", n, k, 10)):
        moved = measure_repair(params, data)
        expected = params.d / params.secure_symbols
        label = f"{params.kind.upper()}({n},{k},{params.d})"
        rows.append(
            Row(
                SYSTEM,
                f"{label} repair bytes / file",
                f"{expected:.3f} (d*beta/B)",
                f"{moved / size:.3f}",
                f"{moved} bytes vs RS {rs}: {rs / moved:.2f}x less",
            )
        )
        ratios[label] = moved / size
    return rows, ratios


GRID = [(10, 4, 6), (10, 4, 9), (12, 5, 8)]


def _secure_rows(quick: bool) -> tuple[list[Row], list[tuple[str, int, int]]]:
    rows, points = [], []
    grid = GRID[:1] if quick else GRID
    for n, k, d in grid:
        for kind in ("mbr", "msr"):
            top = k - 1 if kind == "mbr" else min(k - 1, d - k)  # MSR: l < alpha = d-k+1
            for l in range(1, top + 1):  # noqa: E741
                params = RegenParams(kind, n, k, d, l=l)  # type: ignore[arg-type]
                measured = params.file_symbols - eavesdropper_rank(params)
                leak = worst_leakage(RegeneratingCode(params))
                formula = (
                    f"sum_(i={l + 1}..{k}) (d-i+1) = {params.secure_symbols}"
                    if kind == "mbr"
                    else f"(k-l)(alpha-l) = {params.secure_symbols}"
                )
                rows.append(
                    Row(
                        SYSTEM,
                        f"B_s {kind.upper()}({n},{k},{d}) l={l}",
                        formula,
                        str(measured),
                        f"B - eavesdropper rank; leak to any {l} nodes: {leak} symbols",
                    )
                )
                points.append((f"{kind.upper()}({n},{k},{d})", l, measured))
    return rows, points


def run(quick: bool, out_dir: Path) -> list[Row]:
    """Measure repair traffic and secure capacity; save two plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    repair_rows, ratios = _repair_rows(quick)
    secure_rows, points = _secure_rows(quick)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(list(ratios), list(ratios.values()), color=["gray", "tab:blue", "tab:orange"])
    left.set_ylabel("bytes downloaded per repair / file size")
    left.set_title("single-node repair traffic (measured)")
    for label in dict.fromkeys(p[0] for p in points):
        series = [(l, b) for name, l, b in points if name == label]  # noqa: E741
        right.plot(*zip(*series, strict=True), marker="o", label=label)
    right.set_xlabel("eavesdropped nodes l")
    right.set_ylabel("secure symbols per stripe B_s")
    right.set_title("secure capacity (rank-measured)")
    right.legend()
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "regenerating.png", dpi=100)
    plt.close(fig)
    return repair_rows + secure_rows
