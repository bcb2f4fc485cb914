"""Secrecy as a rank test: any l nodes (stored + all repair traffic into them) learn nothing."""

from itertools import combinations

import numpy as np
import pytest

from redundancy import gf256
from redundancy.regenerating import RegeneratingCode, RegenParams, leakage, observation_matrix
from redundancy.regenerating.security import worst_leakage

SECURE = [
    RegenParams("mbr", 5, 2, 3, l=1),
    RegenParams("mbr", 6, 3, 4, l=1),
    RegenParams("mbr", 6, 3, 5, l=2),
    RegenParams("mbr", 7, 4, 6, l=3),
    RegenParams("msr", 6, 3, 4, l=1),
    RegenParams("msr", 7, 4, 6, l=1),
    RegenParams("msr", 7, 4, 6, l=2),
    RegenParams("msr", 9, 5, 8, l=3),
    RegenParams("msr", 7, 3, 5, l=1),  # shortened (d > 2k-2) from here on
    RegenParams("msr", 7, 3, 5, l=2),
    RegenParams("msr", 8, 3, 6, l=2),
    RegenParams("msr", 9, 4, 7, l=2),
    RegenParams("msr", 10, 4, 8, l=3),
]


@pytest.mark.parametrize("params", SECURE, ids=str)
def test_no_l_set_learns_anything(params: RegenParams) -> None:
    code = RegeneratingCode(params)
    for watched in combinations(range(params.n), params.l):
        assert leakage(code, watched) == 0


@pytest.mark.parametrize("params", SECURE, ids=str)
def test_secure_capacity_is_reached(params: RegenParams) -> None:
    """The keys exactly fill what l nodes can see, so no secret symbol is wasted on keys;
    one more node always leaks, and the secret fills B - (eavesdropper rank)."""
    code = RegeneratingCode(params)
    seen = max(
        gf256.rank(observation_matrix(code, w)) for w in combinations(range(params.n), params.l)
    )
    assert seen == params.key_symbols
    assert params.secure_symbols == params.file_symbols - seen
    assert worst_leakage(code, params.l + 1) > 0


def test_eavesdropper_view_is_a_one_time_pad() -> None:
    """Tiny exhaustive check on real bytes: for a watched node, every secret is consistent with
    the same observation (some key explains it), so the observation says nothing about it."""
    params = RegenParams("mbr", 4, 2, 2, l=1)
    code = RegeneratingCode(params)
    obs = observation_matrix(code, [0])
    keys = params.key_symbols
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, params.file_symbols, dtype=np.uint8)
    seen = gf256.matmul_small(obs, x[:, None])[:, 0]
    for secret in range(256):
        other = x.copy()
        other[keys:] = secret
        shift = gf256.matmul_small(obs[:, keys:], (other[keys:] ^ x[keys:])[:, None])[:, 0]
        solvable = gf256.rank(obs[:, :keys]) == gf256.rank(
            np.hstack([obs[:, :keys], shift[:, None]])
        )
        assert solvable, f"secret {secret} would be ruled out by the observation {seen}"


def test_insecure_code_leaks() -> None:
    code = RegeneratingCode(RegenParams("mbr", 6, 3, 4))
    assert leakage(code, [0]) == 4  # a plain node reveals alpha = d symbols
