"""A small MILP interface so the allocation can run on scipy.milp (HiGHS) or another solver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix


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

    def solve(self, problem: MilpProblem) -> MilpResult:
        """Solve ``problem`` with HiGHS through scipy."""
        options = {"time_limit": self.time_limit} if self.time_limit else {}
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
