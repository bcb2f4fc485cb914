"""Reed-Solomon and LRC on byte shards: round trips, minimal repair reads, bad input."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy import gf256
from redundancy.erasure import LRC, LinearCode, ReedSolomon, parse_code
from redundancy.errors import DecodeError, ParameterError

small_rs = st.tuples(st.integers(1, 12), st.integers(0, 5))


@given(params=small_rs, payload=st.binary(max_size=3000), seed=st.integers(0, 2**32 - 1))
def test_rs_any_k_shards_recover_the_bytes(params, payload, seed):
    k, m = params
    code = ReedSolomon(k, m)
    shards = list(code.encode_all(code.split(payload)))
    rng = np.random.default_rng(seed)
    lost = rng.choice(code.n, size=m, replace=False) if m else []
    for i in lost:
        shards[i] = None
    rebuilt = code.reconstruct(shards)
    assert code.join(rebuilt, len(payload)) == payload
    assert code.verify(rebuilt)


@pytest.mark.parametrize("construction", ["cauchy", "vandermonde"])
@pytest.mark.parametrize(("k", "m"), [(1, 1), (4, 2), (6, 3), (10, 4), (12, 4)])
def test_rs_generators_are_mds_exhaustively(construction, k, m):
    code = ReedSolomon(k, m, construction=construction)
    assert gf256.is_mds(code.generator)


@pytest.mark.parametrize("construction", ["cauchy", "vandermonde"])
@pytest.mark.parametrize(("k", "m"), [(200, 56), (128, 128), (255, 1), (20, 236)])
def test_rs_large_generators_decode_from_random_k_subsets(construction, k, m):
    code = ReedSolomon(k, m, construction=construction)
    rng = np.random.default_rng(k * 1000 + m)
    for _ in range(3):
        rows = sorted(rng.choice(code.n, size=k, replace=False).tolist())
        assert gf256.rank(code.generator[rows]) == k


def test_rs_cauchy_matches_isal_gf_gen_cauchy1_matrix():
    # ISA-L's gf_gen_cauchy1_matrix: parity entry (i, j) = 1 / (i XOR j) for i = k..n-1.
    code = ReedSolomon(10, 4)
    for i in range(4):
        for j in range(10):
            assert code.parity_matrix[i, j] == gf256.inv((10 + i) ^ j)


def test_rs_vandermonde_interoperates_with_klauspost_layout():
    # klauspost/reedsolomon's default matrix: Vandermonde on 0..n-1 times inverse of its top.
    code = ReedSolomon(3, 2, construction="vandermonde")
    v = gf256.vandermonde(range(5), 3)
    assert np.array_equal(code.generator, gf256.matmul_small(v, gf256.inverse(v[:3])))


def test_reconstruct_only_rebuilds_named_shards_and_reads_k():
    code = ReedSolomon(4, 2)
    full = code.encode_all(code.split(bytes(range(200))))
    shards = [None, full[1], None, full[3], full[4], full[5]]
    out = code.reconstruct(shards, only=[2])
    assert out[0] is None and np.array_equal(out[2], full[2])
    data_only = code.reconstruct_data(shards)
    assert np.array_equal(data_only[0], full[0])
    assert code.repair_plan([0]).read_count == 4


def test_repair_plan_prefers_data_shards():
    code = ReedSolomon(4, 3)
    assert code.repair_plan([5]).reads == (0, 1, 2, 3)


def test_too_few_shards_says_what_is_missing():
    code = ReedSolomon(4, 2)
    full = code.encode_all(code.split(b"x" * 64))
    shards = [None, None, None, full[3], full[4], full[5]]
    with pytest.raises(DecodeError, match=r"\[0, 1, 2\].*1 more"):
        code.reconstruct(shards)


@pytest.mark.parametrize(("k", "l", "g"), [(6, 2, 2), (12, 2, 2), (6, 3, 1), (7, 2, 2), (10, 5, 3)])
def test_lrc_distance_and_local_repair(k, l, g):  # noqa: E741
    code = LRC(k, l, g)
    rng = np.random.default_rng(k + l + g)
    data = rng.integers(0, 256, (k, 37), dtype=np.uint8)
    full = code.encode_all(data)
    group_sizes = [len(group) - 1 for group in code.local_groups]
    for i in range(k):  # any single data shard: read only its group
        plan = code.repair_plan([i])
        assert plan.read_count == max(group_sizes) or plan.read_count in group_sizes
        assert plan.read_count < k
        shards = list(full)
        shards[i] = None
        assert np.array_equal(code.reconstruct(shards)[i], full[i])
    for lost in combinations(range(code.n), g + 1):  # distance g + 2: any g + 1 erasures
        shards = [None if i in lost else full[i] for i in range(code.n)]
        assert np.array_equal(np.stack(code.reconstruct(shards)), full)


def test_lrc_12_2_2_matches_azure_figures():
    code = LRC(12, 2, 2)
    assert code.n == 16
    assert code.repair_plan([0]).read_count == 6  # versus 12 for RS(12, 4)
    assert ReedSolomon(12, 4).repair_plan([0]).read_count == 12


def test_linear_code_rejects_non_systematic_generator():
    with pytest.raises(ParameterError, match="systematic"):
        LinearCode(np.array([[1, 1], [0, 1], [1, 0]], dtype=np.uint8))
    with pytest.raises(ParameterError, match="n x k"):
        LinearCode(np.ones((1, 2), dtype=np.uint8))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rs:0,4", "k=0 is out of range"),
        ("rs:10,247", "m=247 is out of range"),
        ("rs:10", "takes 2 parameters"),
        ("rs:a,b", "must be integers"),
        ("zz:1,2", "kind must be"),
        ("lrc:6,7,1", "l=7 is out of range"),
        ("lrc:60,4,6", "erasure patterns"),
    ],
)
def test_bad_code_specs_name_the_parameter(spec, message):
    with pytest.raises(ParameterError, match=message):
        parse_code(spec)


def test_shape_errors():
    code = ReedSolomon(3, 2)
    with pytest.raises(ParameterError, match="expected 3 data shards"):
        code.encode([b"ab", b"cd"])
    with pytest.raises(ParameterError, match="equal lengths"):
        code.encode([b"ab", b"cd", b"e"])
    with pytest.raises(ParameterError, match="expected 5 shard slots"):
        code.reconstruct([None] * 4)
    with pytest.raises(ParameterError, match="size=99"):
        code.join(code.split(b"abc"), 99)
