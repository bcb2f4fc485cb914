"""GF(2^8) (polynomial 0x11d, generator 2): arithmetic, small-matrix algebra, one bulk kernel."""

from redundancy.gf256.field import (
    EXP,
    GENERATOR,
    LOG,
    MUL_TABLE,
    POLYNOMIAL,
    add,
    div,
    exp,
    inv,
    log,
    mul,
    power,
)
from redundancy.gf256.kernel import available_backends, default_backend, matmul
from redundancy.gf256.linalg import (
    cauchy,
    inverse,
    is_mds,
    is_superregular,
    matmul_small,
    rank,
    solve,
    vandermonde,
)

__all__ = [
    "EXP",
    "GENERATOR",
    "LOG",
    "MUL_TABLE",
    "POLYNOMIAL",
    "add",
    "available_backends",
    "cauchy",
    "default_backend",
    "div",
    "exp",
    "inv",
    "inverse",
    "is_mds",
    "is_superregular",
    "log",
    "matmul",
    "matmul_small",
    "mul",
    "power",
    "rank",
    "solve",
    "vandermonde",
]
