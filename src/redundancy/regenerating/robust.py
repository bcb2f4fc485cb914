"""Decoding and repair that survive up to b lying nodes, with on-demand security.

Node j stores psi_j^T W with psi_j = (1, x_j, ..., x_j^(d'-1)) P (P invertible), so every column
of the stacked node contents is a Reed-Solomon codeword of dimension d' (virtual zero nodes of a
shortened MSR code included). The same holds for the symbols helpers send to a newcomer. We
first contact the minimum plus b extra nodes, enough to *detect* b bad ones by syndromes; only
when an inconsistency shows do we fetch more (up to d' + 2b real evaluations, then further) and
*correct* by locating the bad rows (Berlekamp-Welch) and leaving them out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from redundancy import gf256
from redundancy.errors import DecodeError, ParameterError
from redundancy.regenerating.algebra import locate_corrupt_rows, parity_check
from redundancy.regenerating.code import RegeneratingCode


@dataclass
class Report:
    """What an on-demand read or repair did: nodes contacted and nodes found lying."""

    contacted: list[int] = field(default_factory=list)
    corrupt: list[int] = field(default_factory=list)
    rounds: int = 0


def _consistent(points: np.ndarray, rows: np.ndarray, kappa: int) -> bool:
    if len(points) <= kappa:
        return True
    return not gf256.matmul(parity_check(points, kappa), rows).any()


def _on_demand(
    code: RegeneratingCode,
    order: Sequence[int],
    minimum: int,
    fetch: Callable[[int], np.ndarray],
) -> tuple[dict[int, np.ndarray], Report]:
    """Fetch rows in ``order`` until they are consistent (b = 0: exactly ``minimum``).

    Returns the good rows (bad ones left out) and the report. Rows are 2-D (pieces, L).
    """
    p, con = code.params, code.construction
    report = Report()
    kappa = p.d + con.virtual
    targets = [minimum] if p.b == 0 else [p.d + p.b, *range(p.d + 2 * p.b, len(order) + 2, 2)]
    got: dict[int, np.ndarray] = {}
    for level, target in enumerate(targets):
        target = min(target, len(order))
        for j in order[len(got) : target]:
            got[j] = fetch(j)
        report.contacted = list(got)
        report.rounds = level + 1
        if p.b == 0:
            return got, report
        nodes = list(got)
        width = got[nodes[0]].size
        rows = np.zeros((con.virtual + len(nodes), width), dtype=np.uint8)
        for i, j in enumerate(nodes):
            rows[con.virtual + i] = got[j].reshape(-1)
        points = np.concatenate([con.points[: con.virtual], con.real_points()[nodes]])
        if level == 0:
            if _consistent(points, rows, kappa):
                return got, report
            continue
        try:
            bad = locate_corrupt_rows(points, rows, kappa, trusted=con.virtual)
        except DecodeError:
            if target >= len(order):
                raise
            continue
        report.corrupt = sorted(nodes[r - con.virtual] for r in bad)
        return {j: got[j] for j in nodes if j not in report.corrupt}, report
    raise DecodeError(f"inconsistent pieces from all {len(order)} nodes contacted")


def robust_decode(
    code: RegeneratingCode,
    fetch: Callable[[int], np.ndarray],
    size: int,
    order: Sequence[int] | None = None,
) -> tuple[bytes, Report]:
    """Read ``size`` bytes, fetching node contents (alpha, L) on demand; b liars are corrected."""
    p = code.params
    order = list(range(p.n)) if order is None else list(order)
    if len(set(order)) != len(order) or not set(order) <= set(range(p.n)):
        raise ParameterError(f"order must list distinct nodes in 0..{p.n - 1}")
    if len(order) < p.k:
        raise DecodeError(f"data collection needs k={p.k} nodes, only {len(order)} available")
    good, report = _on_demand(code, order, p.k, fetch)
    return code.decode(good, size), report


def robust_repair(
    code: RegeneratingCode,
    failed: int,
    fetch_helper: Callable[[int], np.ndarray],
    order: Sequence[int] | None = None,
) -> tuple[np.ndarray, Report]:
    """Rebuild node ``failed`` asking helpers (in ``order``) for their (L,) symbols on demand."""
    p = code.params
    if order is None:
        order = [j for j in range(p.n) if j != failed]
    order = list(order)
    if failed in order:
        raise ParameterError(f"helper {failed} is the failed node itself")
    if len(order) < p.d:
        raise DecodeError(f"repair needs d={p.d} helpers, only {len(order)} available")
    good, report = _on_demand(code, order, p.d, lambda j: fetch_helper(j)[None, :])
    return code.repair(failed, {j: s[0] for j, s in good.items()}), report
