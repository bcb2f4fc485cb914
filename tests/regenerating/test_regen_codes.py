"""Any k nodes decode, any d helpers repair to the identical node: exhaustive on small codes."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.errors import DecodeError, IntegrityError, ParameterError
from redundancy.regenerating import RegeneratingCode, RegenParams
from redundancy.regenerating.params import mbr_capacity

SMALL = [
    RegenParams("mbr", 5, 2, 3),
    RegenParams("mbr", 6, 3, 4),
    RegenParams("mbr", 6, 3, 5),
    RegenParams("mbr", 4, 1, 1),
    RegenParams("msr", 6, 3, 4),
    RegenParams("msr", 7, 3, 5),  # shortened: d > 2k-2
    RegenParams("msr", 7, 3, 6),  # shortened twice
    RegenParams("msr", 5, 2, 2),
    RegenParams("mbr", 6, 3, 4, l=1),
    RegenParams("msr", 7, 4, 6, l=2),
    RegenParams("msr", 8, 3, 6, l=2),  # secure and shortened
]


def _encode(params: RegenParams, seed: int = 0, size: int = 300):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    code = RegeneratingCode(params)
    return code, data, code.encode(data, rng)


@pytest.mark.parametrize("params", SMALL, ids=str)
def test_every_k_subset_decodes(params: RegenParams) -> None:
    code, data, nodes = _encode(params)
    assert nodes.shape == (params.n, params.alpha, code.stripes(len(data)))
    for subset in combinations(range(params.n), params.k):
        assert code.decode({i: nodes[i] for i in subset}, len(data)) == data


@pytest.mark.parametrize("params", SMALL, ids=str)
def test_every_helper_set_repairs_identically(params: RegenParams) -> None:
    code, _, nodes = _encode(params)
    for failed in range(params.n):
        others = [j for j in range(params.n) if j != failed]
        for helpers in combinations(others, params.d):
            sent = {j: code.helper_symbols(nodes[j], failed) for j in helpers}
            assert all(s.shape == (nodes.shape[2],) for s in sent.values())  # beta = 1
            assert np.array_equal(code.repair(failed, sent), nodes[failed])


@settings(max_examples=30, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=2000),
    which=st.sampled_from(SMALL),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_any_data(data: bytes, which: RegenParams, seed: int) -> None:
    code = RegeneratingCode(which)
    rng = np.random.default_rng(seed)
    nodes = code.encode(data, rng)
    subset = sorted(rng.choice(which.n, which.k, replace=False).tolist())
    assert code.decode({i: nodes[i] for i in subset}, len(data)) == data
    failed = int(rng.integers(which.n))
    helpers = [j for j in rng.permutation(which.n).tolist() if j != failed][: which.d]
    sent = {j: code.helper_symbols(nodes[j], failed) for j in helpers}
    assert np.array_equal(code.repair(failed, sent), nodes[failed])


def test_large_code_round_trip() -> None:
    params = RegenParams("msr", 20, 8, 16)
    code, data, nodes = _encode(params, size=100_000)
    assert code.decode({i: nodes[i] for i in range(12, 20)}, len(data)) == data
    sent = {j: code.helper_symbols(nodes[j], 3) for j in range(4, 20)}
    assert np.array_equal(code.repair(3, sent), nodes[3])


@pytest.mark.parametrize(("n", "k", "d"), [(6, 3, 4), (10, 4, 8), (12, 5, 11), (5, 1, 4)])
@pytest.mark.parametrize("l", [0, 1, 2])
def test_capacity_formulas(n: int, k: int, d: int, l: int) -> None:  # noqa: E741
    if l < k:
        mbr = RegenParams("mbr", n, k, d, l=l)
        assert mbr.file_symbols == k * d - k * (k - 1) // 2
        assert (
            mbr.secure_symbols
            == mbr_capacity(k, d, l)
            == sum(d - i + 1 for i in range(l + 1, k + 1))
        )
        assert RegeneratingCode(mbr).construction.generators.shape[2] == mbr.file_symbols
    if k >= 2 and d >= 2 * k - 2 and l < min(k, d - k + 1):  # d > 2k-2: shortened
        msr = RegenParams("msr", n, k, d, l=l)
        assert msr.secure_symbols == (k - l) * (msr.alpha - l)
        assert msr.file_symbols == k * msr.alpha == k * (d - k + 1)
        assert RegeneratingCode(msr).construction.generators.shape[2] == msr.file_symbols


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"kind": "mbr", "n": 6, "k": 3, "d": 2}, "d"),
        ({"kind": "mbr", "n": 6, "k": 3, "d": 6}, "d"),
        ({"kind": "msr", "n": 6, "k": 3, "d": 3}, "d"),
        ({"kind": "msr", "n": 8, "k": 3, "d": 5, "l": 3}, "l"),
        ({"kind": "mbr", "n": 6, "k": 3, "d": 4, "l": 3}, "l"),
        ({"kind": "mbr", "n": 6, "k": 3, "d": 4, "b": 1}, "b"),
        ({"kind": "rs", "n": 6, "k": 3, "d": 4}, "kind"),
        ({"kind": "mbr", "n": 300, "k": 3, "d": 4}, "n"),
    ],
)
def test_bad_parameters_name_the_field(fields: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        RegenParams(**fields)


def test_bad_repair_and_decode_inputs() -> None:
    code, data, nodes = _encode(RegenParams("mbr", 6, 3, 4))
    with pytest.raises(DecodeError, match="d=4"):
        code.repair(0, {j: code.helper_symbols(nodes[j], 0) for j in (1, 2, 3)})
    with pytest.raises(ParameterError, match="failed node"):
        code.repair(0, {j: code.helper_symbols(nodes[j], 0) for j in range(6)})
    with pytest.raises(ParameterError, match="helper"):
        code.repair(0, {j: np.zeros(nodes.shape[2], np.uint8) for j in (1, 2, 3, 9)})
    with pytest.raises(DecodeError, match="k=3"):
        code.decode({0: nodes[0], 1: nodes[1]}, len(data))
    with pytest.raises(IntegrityError, match="differ in shape"):
        code.decode({0: nodes[0], 1: nodes[1], 2: nodes[2][:, :-1]}, len(data))
    with pytest.raises(IntegrityError, match="uint8"):
        code.decode({0: nodes[0], 1: nodes[1], 2: nodes[2][:2]}, len(data))


def test_rs_anchor_fills_a_reused_buffer_like_a_fresh_one() -> None:
    from redundancy.regenerating.baseline import rs_encode

    data = np.random.default_rng(3).integers(0, 256, 1001, dtype=np.uint8)
    fresh = rs_encode(data, 9, 4)
    reused = np.full_like(fresh, 0xAB)  # stale bytes must not leak into the padding
    assert rs_encode(data, 9, 4, out=reused) is reused
    assert np.array_equal(reused, fresh)
    with pytest.raises(ParameterError, match="out must be"):
        rs_encode(data, 9, 4, out=np.empty((9, 10), dtype=np.uint8))
