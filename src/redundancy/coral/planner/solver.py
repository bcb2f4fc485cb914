"""A small MILP interface so the allocation can run on scipy.milp (HiGHS) or another solver.

``solve_reduced`` speeds up the allocation ILP without giving up optimality: the LP relaxation
gives a bound LB and reduced costs d_j; a MILP over the few most promising columns gives an
incumbent UB; every column with LB + d_j > UB is zero in every solution at least as good as UB
(c.x >= LB + d_j x_j for any feasible x), so the MILP over the remaining columns is exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_matrix, vstack


@dataclass
class MilpProblem:
    """minimise c.x  s.t.  row_lower <= A x <= row_upper, var_lower <= x <= var_upper."""

    c: np.ndarray
    A: csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    var_lower: np.ndarray
    var_upper: np.ndarray
    integer: np.ndarray  # 1 for integer variables, 0 for continuous


@dataclass
class MilpResult:
    """Solution (None when infeasible), objective value and whether it is proven optimal."""

    x: np.ndarray | None
    objective: float
    optimal: bool
    message: str


class Solver(Protocol):
    """Anything that solves a MilpProblem (scipy.milp, highspy, OR-Tools ...)."""

    def solve(self, problem: MilpProblem) -> MilpResult:
        """Solve ``problem``; return x=None when it is infeasible."""
        ...


@dataclass
class ScipySolver:
    """scipy.optimize.milp (HiGHS branch and cut)."""

    time_limit: float | None = None
    mip_rel_gap: float = 0.0  # 0: prove optimality (HiGHS's default stops at 1e-4)

    def solve(self, problem: MilpProblem) -> MilpResult:
        """Solve ``problem`` with HiGHS through scipy."""
        options: dict[str, float] = {"mip_rel_gap": self.mip_rel_gap}
        if self.time_limit:
            options["time_limit"] = self.time_limit
        result = milp(
            problem.c,
            constraints=LinearConstraint(problem.A, problem.row_lower, problem.row_upper),
            integrality=problem.integer,
            bounds=Bounds(problem.var_lower, problem.var_upper),
            options=options,
        )
        if result.x is None:
            return MilpResult(None, float("inf"), False, result.message)
        return MilpResult(result.x, float(result.fun), result.status == 0, result.message)


def _columns(problem: MilpProblem, keep: np.ndarray) -> MilpProblem:
    """The sub-problem over the columns ``keep`` (the others fixed at 0)."""
    return MilpProblem(
        problem.c[keep],
        problem.A[:, keep],
        problem.row_lower,
        problem.row_upper,
        problem.var_lower[keep],
        problem.var_upper[keep],
        problem.integer[keep],
    )


def _lift(result: MilpResult, keep: np.ndarray, size: int) -> MilpResult:
    if result.x is None:
        return result
    x = np.zeros(size)
    x[keep] = result.x
    return MilpResult(x, result.objective, result.optimal, result.message)


def _better(result: MilpResult, fallback: MilpResult) -> MilpResult:
    """``result`` unless it has no solution or a worse one than ``fallback`` (timed-out solves)."""
    if result.x is None or (fallback.x is not None and fallback.objective < result.objective):
        return fallback if fallback.x is not None else result
    return result


def lp_relaxation(problem: MilpProblem) -> tuple[float, np.ndarray] | None:
    """(bound, reduced costs) of the LP relaxation; None when even the relaxation is infeasible."""
    solved = lp_solution(problem)
    return None if solved is None else solved[:2]


def lp_solution(problem: MilpProblem) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(bound, reduced costs, x) of the LP relaxation; None when it is infeasible."""
    upper = np.isfinite(problem.row_upper)
    lower = np.isfinite(problem.row_lower)
    a_ub = vstack([problem.A[upper], -problem.A[lower]]).tocsr()
    b_ub = np.concatenate([problem.row_upper[upper], -problem.row_lower[lower]])
    result = linprog(
        problem.c,
        A_ub=a_ub,
        b_ub=b_ub,
        bounds=np.column_stack([problem.var_lower, problem.var_upper]),
        method="highs",
    )
    if result.status == 2:
        return None
    if result.status != 0:
        raise RuntimeError(f"LP relaxation failed: {result.message}")
    return float(result.fun), np.asarray(result.lower.marginals), np.asarray(result.x)


def solve_reduced(
    problem: MilpProblem,
    solver: Solver,
    candidates: np.ndarray,
    *,
    floors: np.ndarray | None = None,
    lower: float = -np.inf,
    seed: np.ndarray | None = None,
    relaxed: tuple[float, np.ndarray] | None = None,
    core: int = 64,
    time_limit: float | None = None,
) -> MilpResult:
    """Exact solve with reduced-cost fixing of ``candidates`` (integer columns, lower bound 0).

    ``floors[k]``: a caller's valid lower bound on the objective of any solution using candidate
    k; ``lower``: a valid lower bound on the optimum; ``seed``: columns of a likely good solution.
    ``time_limit`` (s): once spent, the best incumbent so far is returned, marked not optimal
    (give the solver a per-solve limit too).
    """
    start = time.perf_counter()
    best = MilpResult(None, float("inf"), False, "no incumbent within the time limit")
    relaxed = relaxed or lp_relaxation(problem)
    if relaxed is None:
        return MilpResult(None, float("inf"), True, "LP relaxation infeasible")
    bound, reduced = relaxed
    floor = bound + reduced[candidates]  # c.x >= LP + d_j x_j: LP's bound, not ``lower``
    bound = max(bound, lower)
    if floors is not None:
        floor = np.maximum(floor, floors)
    size = len(problem.c)
    fixed = np.zeros(size, dtype=bool)
    fixed[candidates] = True
    order = candidates[np.argsort(floor, kind="stable")]
    width = core
    while True:  # incumbents from ever more of the most promising columns
        keep = ~fixed
        keep[order[:width]] = True
        if seed is not None:
            keep[seed] = True
        incumbent = _lift(solver.solve(_columns(problem, keep)), keep, size)
        if width >= len(order):
            return _better(incumbent, best)
        if incumbent.x is not None and incumbent.objective < best.objective:
            best = incumbent
        if time_limit is not None and time.perf_counter() - start > time_limit:
            found = "best incumbent, not proven optimal" if best.x is not None else "none found"
            message = f"time limit {time_limit:g} s: {found}"
            return MilpResult(best.x, best.objective, False, message)
        if incumbent.x is not None:
            tolerance = 1e-6 * (1 + abs(incumbent.objective))
            if incumbent.optimal and incumbent.objective <= bound + tolerance:
                return incumbent  # meets a lower bound: optimal
            needed = ~fixed
            needed[candidates[floor <= incumbent.objective + tolerance]] = True
            if incumbent.optimal and not np.any(needed & ~keep):
                return incumbent  # its columns include every one an optimum may use
            if needed.sum() <= 16 * keep.sum():
                final = _lift(solver.solve(_columns(problem, needed)), needed, size)
                return _better(final, best)
        width *= 4
