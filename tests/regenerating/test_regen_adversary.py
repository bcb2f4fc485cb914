"""Up to b lying nodes: the right data or a clear error, never wrong data; on-demand contacts."""

from itertools import combinations

import numpy as np
import pytest

from redundancy.errors import DecodeError, IntegrityError, RedundancyError
from redundancy.regenerating import (
    RegeneratingCode,
    RegenParams,
    decode_file,
    encode_file,
    robust_decode,
    robust_repair,
)
from redundancy.regenerating.algebra import berlekamp_welch
from redundancy.regenerating.files import node_path, read_node, write_node

ROBUST = [
    RegenParams("mbr", 8, 3, 4, b=1),
    RegenParams("mbr", 9, 3, 4, b=2),
    RegenParams("msr", 9, 3, 4, b=2),
    RegenParams("msr", 9, 3, 5, b=1),  # shortened
    RegenParams("mbr", 8, 3, 4, l=1, b=1),
]


def _setup(params: RegenParams, seed: int = 0):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    code = RegeneratingCode(params)
    return code, data, code.encode(data, rng), rng


def _attack(nodes, bad, rng, targeted_nodes=None):
    lied = nodes.copy()
    for j in bad:
        if targeted_nodes is not None:
            lied[j] = targeted_nodes[j]  # a consistent-looking encoding of another file
        else:
            mask = rng.random(lied[j].shape) < 0.2
            lied[j] ^= mask * rng.integers(1, 256, lied[j].shape, dtype=np.uint8)
    return lied


@pytest.mark.parametrize("params", ROBUST, ids=str)
@pytest.mark.parametrize("targeted", [False, True])
def test_up_to_b_liars_are_corrected(params: RegenParams, targeted: bool) -> None:
    code, data, nodes, rng = _setup(params)
    other = code.encode(bytes(reversed(data)), rng) if targeted else None
    for size in range(1, params.b + 1):
        for bad in combinations(range(params.n), size):
            lied = _attack(nodes, bad, rng, other)
            out, report = robust_decode(code, lambda j, lied=lied: lied[j], len(data))
            assert out == data
            assert set(report.corrupt) <= set(bad)
            for failed in sorted(set(range(params.n)) - set(bad))[:2]:
                rebuilt, rep = robust_repair(
                    code, failed, lambda j, lied=lied, f=failed: code.helper_symbols(lied[j], f)
                )
                assert np.array_equal(rebuilt, nodes[failed])
                assert set(rep.corrupt) <= set(bad)


@pytest.mark.parametrize("params", ROBUST, ids=str)
def test_on_demand_contacts_minimum_when_honest(params: RegenParams) -> None:
    code, data, nodes, _ = _setup(params)
    out, report = robust_decode(code, lambda j: nodes[j], len(data))
    base = params.k if params.kind == "mbr" else params.d  # MBR reads check two k-dim stages
    assert out == data and report.rounds == 1 and len(report.contacted) == base + params.b
    _, rep = robust_repair(code, 0, lambda j: code.helper_symbols(nodes[j], 0))
    assert rep.rounds == 1 and len(rep.contacted) == params.d + params.b and not rep.corrupt


def test_honest_code_without_b_reads_exactly_k_and_d() -> None:
    code, data, nodes, _ = _setup(RegenParams("mbr", 8, 3, 5))
    _, report = robust_decode(code, lambda j: nodes[j], len(data))
    assert len(report.contacted) == 3
    _, rep = robust_repair(code, 7, lambda j: code.helper_symbols(nodes[j], 7))
    assert rep.contacted == [0, 1, 2, 3, 4]


MBR_TWO_STAGE = [
    RegenParams("mbr", 10, 3, 5, b=2),
    RegenParams("mbr", 8, 3, 3, b=2),  # d = k: no T block
    RegenParams("mbr", 10, 4, 6, l=1, b=1),
]


@pytest.mark.parametrize("params", MBR_TWO_STAGE, ids=str)
@pytest.mark.parametrize("where", ["anywhere", "s-part", "t-part"])
def test_mbr_reads_correct_b_liars_from_only_k_plus_2b_nodes(
    params: RegenParams, where: str
) -> None:
    """Two-stage decoding: liars among just k + 2b contacted nodes (fewer than d + 2b)."""
    code, data, nodes, rng = _setup(params)
    k, b = params.k, params.b
    available = list(range(k + 2 * b))
    for size in range(1, b + 1):
        for bad in combinations(available, size):
            lied = nodes.copy()
            for j in bad:
                noise = rng.integers(1, 256, lied[j].shape, dtype=np.uint8)
                if where == "s-part":
                    noise[k:] = 0
                elif where == "t-part":
                    noise[:k] = 0
                lied[j] ^= noise
            if not (lied != nodes).any():
                continue  # d = k has no T part to corrupt
            out, report = robust_decode(code, lambda j, x=lied: x[j], len(data), available)
            assert out == data
            if min(bad) < k + b:  # seen by the first (detection) round: correct from k + 2b
                assert report.corrupt == sorted(bad)
                assert report.contacted == available and report.rounds == 2
            else:  # the first k + b nodes were honest and consistent: nothing more fetched
                assert report.contacted == available[: k + b] and report.rounds == 1


def test_mbr_read_beyond_its_nodes_is_refused_not_wrong() -> None:
    params = RegenParams("mbr", 10, 3, 5, b=2)
    code, data, nodes, rng = _setup(params)
    available = list(range(params.k + 2 * params.b))
    lied = nodes.copy()
    for j in available[: params.b + 2]:
        lied[j] ^= rng.integers(1, 256, lied[j].shape, dtype=np.uint8)
    with pytest.raises(DecodeError):
        robust_decode(code, lambda j: lied[j], len(data), available)


@pytest.mark.parametrize("seed", range(6))
def test_too_many_liars_never_return_wrong_data(tmp_path, seed: int) -> None:
    params = RegenParams("msr", 9, 3, 4, b=2)
    rng = np.random.default_rng(seed)
    source = tmp_path / "f.bin"
    source.write_bytes(rng.integers(0, 256, 700, dtype=np.uint8).tobytes())
    folder = tmp_path / "nodes"
    encode_file(source, folder, params, rng)
    count = int(rng.integers(params.b + 1, params.n + 1))
    for j in rng.choice(params.n, count, replace=False):
        header, content = read_node(node_path(folder, int(j)))
        lied = content ^ rng.integers(0, 256, content.shape, dtype=np.uint8)
        write_node(node_path(folder, int(j)), header, lied)
    try:
        decode_file(folder, tmp_path / "out.bin")
    except RedundancyError as exc:
        assert isinstance(exc, DecodeError | IntegrityError)
        assert not (tmp_path / "out.bin").exists()
    else:
        assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()


def test_berlekamp_welch_finds_errors_and_refuses_too_many() -> None:
    points = np.arange(1, 11, dtype=np.uint8)
    coeffs = np.array([5, 7, 11, 13], dtype=np.uint8)
    from redundancy.regenerating.algebra import poly_eval

    word = poly_eval(coeffs, points)
    word[[2, 8, 9]] ^= np.array([1, 200, 33], dtype=np.uint8)
    assert berlekamp_welch(points, word, 4) == [2, 8, 9]
    word[0] ^= 1
    word[5] ^= 9
    with pytest.raises(DecodeError, match="more than 3"):
        berlekamp_welch(points, word, 4)
