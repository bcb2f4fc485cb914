"""Decoding and repair that survive up to b lying nodes, with on-demand security.

Node j stores psi_j^T W with psi_j = (1, x_j, ..., x_j^(d'-1)) P (P invertible), so every column
of the stacked node contents is a Reed-Solomon codeword of dimension d' (virtual zero nodes of a
shortened MSR code included). The same holds for the symbols helpers send to a newcomer. We
first contact the minimum plus b extra nodes, enough to *detect* b bad ones by syndromes; only
when an inconsistency shows do we fetch more (up to d' + 2b real evaluations, then further) and
*correct* by locating the bad rows (Berlekamp-Welch) and leaving them out.

MBR data collection needs fewer nodes (two stages, as in Rashmi et al.): with M = [[S, T],
[T^T, 0]], the last d-k symbols of node j are Phi_j T, an RS codeword of dimension k in x_j; once
T is known from k good rows, the first k symbols minus Delta_j T^T are Phi_j S, again of dimension
k. So MBR reads start at k + b nodes (detection) and correct b liars from k + 2b, where the other
cases need d' + b and d' + 2b.
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
    """What an on-demand read or repair did: nodes contacted and nodes found lying.

    Attributes
    ----------
    contacted : list of int
        Nodes asked for data, in order.
    corrupt : list of int
        Nodes whose data was found inconsistent with the others and left out.
    rounds : int
        Rounds of fetching (1 when the first k (or d) nodes were consistent).

    Examples
    --------
    >>> Report(contacted=[0, 1, 2], rounds=1)
    Report(contacted=[0, 1, 2], corrupt=[], rounds=1)
    """

    contacted: list[int] = field(default_factory=list)
    corrupt: list[int] = field(default_factory=list)
    rounds: int = 0


def _consistent(points: np.ndarray, rows: np.ndarray, kappa: int) -> bool:
    if len(points) <= kappa:
        return True
    return not gf256.matmul(parity_check(points, kappa), rows).any()


class _WholeRows:
    """Every row (node content or helper symbols) is an RS codeword of dimension d'."""

    def __init__(self, code: RegeneratingCode) -> None:
        self.con = code.construction
        self.base = code.params.d  # real nodes needed without liars
        self.kappa = code.params.d + self.con.virtual

    def _rows(self, nodes: list[int], got: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        con = self.con
        rows = np.zeros((con.virtual + len(nodes), got[nodes[0]].size), dtype=np.uint8)
        for i, j in enumerate(nodes):
            rows[con.virtual + i] = got[j].reshape(-1)
        points = np.concatenate([con.points[: con.virtual], con.real_points()[nodes]])
        return points, rows

    def consistent(self, nodes: list[int], got: dict[int, np.ndarray]) -> bool:
        return _consistent(*self._rows(nodes, got), self.kappa)

    def locate(self, nodes: list[int], got: dict[int, np.ndarray]) -> set[int]:
        bad = locate_corrupt_rows(*self._rows(nodes, got), self.kappa, trusted=self.con.virtual)
        return {nodes[r - self.con.virtual] for r in bad}


class _MbrStages:
    """MBR node contents checked in two stages of dimension k: T's part, then S's part."""

    def __init__(self, code: RegeneratingCode) -> None:
        self.con = code.construction
        self.k, self.d = code.params.k, code.params.d
        self.base = self.k

    def _parts(self, nodes: list[int], got: dict[int, np.ndarray]) -> tuple[np.ndarray, ...]:
        stacked = np.stack([got[j] for j in nodes])  # (m, d, L)
        tail = np.ascontiguousarray(stacked[:, self.k :].reshape(len(nodes), -1))
        head = np.ascontiguousarray(stacked[:, : self.k].reshape(len(nodes), -1))
        return self.con.real_points()[nodes], self.con.psi[nodes], tail, head

    def _s_part(self, psi: np.ndarray, tail: np.ndarray, head: np.ndarray, good: list[int]):
        """Rows Phi_j S: the head minus Delta_j T^T, T solved from k good tail rows."""
        k, d = self.k, self.d
        if d == k:
            return head
        chosen = good[:k]
        t_rows = gf256.matmul(gf256.inverse(np.ascontiguousarray(psi[chosen, :k])), tail[chosen])
        length = head.shape[1] // k
        t_transposed = np.ascontiguousarray(
            t_rows.reshape(k, d - k, length).transpose(1, 0, 2).reshape(d - k, k * length)
        )
        return head ^ gf256.matmul(np.ascontiguousarray(psi[:, k:]), t_transposed)

    def consistent(self, nodes: list[int], got: dict[int, np.ndarray]) -> bool:
        points, psi, tail, head = self._parts(nodes, got)
        if not _consistent(points, tail, self.k):
            return False
        return _consistent(points, self._s_part(psi, tail, head, list(range(len(nodes)))), self.k)

    def locate(self, nodes: list[int], got: dict[int, np.ndarray]) -> set[int]:
        points, psi, tail, head = self._parts(nodes, got)
        bad = locate_corrupt_rows(points, tail, self.k) if self.d > self.k else set()
        good = [i for i in range(len(nodes)) if i not in bad]
        s_rows = self._s_part(psi, tail, head, good)[good]
        bad |= {good[r] for r in locate_corrupt_rows(points[good], s_rows, self.k)}
        return {nodes[r] for r in bad}


def _on_demand(
    code: RegeneratingCode,
    order: Sequence[int],
    minimum: int,
    fetch: Callable[[int], np.ndarray],
    check: _WholeRows | _MbrStages,
) -> tuple[dict[int, np.ndarray], Report]:
    """Fetch rows in ``order`` until they are consistent (b = 0: exactly ``minimum``).

    Returns the good rows (bad ones left out) and the report. Rows are 2-D (pieces, L).
    """
    b = code.params.b
    report = Report()
    targets = (
        [minimum] if b == 0 else [check.base + b, *range(check.base + 2 * b, len(order) + 2, 2)]
    )
    got: dict[int, np.ndarray] = {}
    for level, target in enumerate(targets):
        target = min(target, len(order))
        for j in order[len(got) : target]:
            got[j] = fetch(j)
        report.contacted = list(got)
        report.rounds = level + 1
        if b == 0:
            return got, report
        nodes = list(got)
        if level == 0:
            if check.consistent(nodes, got):
                return got, report
            continue
        try:
            bad = check.locate(nodes, got)
        except DecodeError:
            if target >= len(order):
                raise
            continue
        report.corrupt = sorted(bad)
        return {j: got[j] for j in nodes if j not in bad}, report
    raise DecodeError(f"inconsistent pieces from all {len(order)} nodes contacted")


def robust_decode(
    code: RegeneratingCode,
    fetch: Callable[[int], np.ndarray],
    size: int,
    order: Sequence[int] | None = None,
) -> tuple[bytes, Report]:
    """Read ``size`` bytes, fetching node contents on demand; up to b liars are corrected.

    Asks the nodes in ``order`` for their content, k at first, and more only while what it got
    is inconsistent; nodes found lying are left out and named in the report.

    Parameters
    ----------
    code : RegeneratingCode
        The code the nodes were encoded with.
    fetch : callable
        ``fetch(node) -> (alpha, L) uint8 array``.
    size : int
        Bytes of data to return.
    order : sequence of int, optional
        Nodes to ask, in order (default 0..n-1).

    Returns
    -------
    data : bytes
        The data.
    report : Report
        Nodes contacted and found corrupt.

    Raises
    ------
    ParameterError
        If ``order`` repeats a node or names one outside 0..n-1.
    DecodeError
        If fewer than k nodes are available, or too many lie to find k consistent ones.

    Examples
    --------
    >>> from redundancy.regenerating import RegenParams
    >>> code = RegeneratingCode(RegenParams("mbr", n=8, k=3, d=4, b=1))
    >>> nodes = code.encode(b"truth", rng=np.random.default_rng(0))
    >>> nodes[1] ^= 1  # node 1 lies
    >>> robust_decode(code, lambda node: nodes[node], size=5)
    (b'truth', Report(contacted=[0, 1, 2, 3, 4], corrupt=[1], rounds=2))
    """
    p = code.params
    order = list(range(p.n)) if order is None else list(order)
    if len(set(order)) != len(order) or not set(order) <= set(range(p.n)):
        raise ParameterError(f"order must list distinct nodes in 0..{p.n - 1}")
    if len(order) < p.k:
        raise DecodeError(f"data collection needs k={p.k} nodes, only {len(order)} available")
    check = _MbrStages(code) if p.kind == "mbr" else _WholeRows(code)
    good, report = _on_demand(code, order, p.k, fetch, check)
    return code.decode(good, size), report


def robust_repair(
    code: RegeneratingCode,
    failed: int,
    fetch_helper: Callable[[int], np.ndarray],
    order: Sequence[int] | None = None,
) -> tuple[np.ndarray, Report]:
    """Rebuild node ``failed``, asking helpers for their (L,) symbols on demand.

    Asks d helpers at first, and more only while their symbols are inconsistent.

    Parameters
    ----------
    code : RegeneratingCode
        The code the nodes were encoded with.
    failed : int
        The node to rebuild, 0..n-1.
    fetch_helper : callable
        ``fetch_helper(j) -> (L,) uint8 array``: what helper j sends (see
        :meth:`RegeneratingCode.helper_symbols`).
    order : sequence of int, optional
        Helpers to ask, in order (default every other node).

    Returns
    -------
    content : numpy.ndarray
        The rebuilt (alpha, L) content of node ``failed``.
    report : Report
        Helpers contacted and found corrupt.

    Raises
    ------
    ParameterError
        If ``order`` contains ``failed``.
    DecodeError
        If fewer than d helpers are available, or too many lie.

    Examples
    --------
    >>> from redundancy.regenerating import RegenParams
    >>> code = RegeneratingCode(RegenParams("mbr", n=6, k=3, d=4))
    >>> nodes = code.encode(b"some data", rng=np.random.default_rng(0))
    >>> content, report = robust_repair(code, 0, lambda j: code.helper_symbols(nodes[j], 0))
    >>> bool(np.array_equal(content, nodes[0])), report.contacted
    (True, [1, 2, 3, 4])
    """
    p = code.params
    if order is None:
        order = [j for j in range(p.n) if j != failed]
    order = list(order)
    if failed in order:
        raise ParameterError(f"helper {failed} is the failed node itself")
    if len(order) < p.d:
        raise DecodeError(f"repair needs d={p.d} helpers, only {len(order)} available")

    def helper_rows(j: int) -> np.ndarray:
        return fetch_helper(j)[None, :]

    good, report = _on_demand(code, order, p.d, helper_rows, _WholeRows(code))
    return code.repair(failed, {j: s[0] for j, s in good.items()}), report
