"""LRC global merge (6,1,3,1)x2 -> (12,2,3,1): verified codes, 7 1/3 read, nothing cheaper."""

import subprocess
import sys
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.convertible.algebra import bounds
from redundancy.convertible.algebra.bounds import LRCMerge
from redundancy.convertible.algebra.lrc import (
    LRCGlobalMerge,
    locally_repairable,
    measure,
    tolerates,
)
from redundancy.convertible.algebra.minimal import cheaper_read_set
from redundancy.convertible.spec import parse_lrc_merge
from redundancy.errors import ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))


@cache
def example() -> LRCGlobalMerge:
    return LRCGlobalMerge.build(parse_lrc_merge("6,1,3,1", "12,2,3,1"))


def test_reads_meet_the_bound_and_beat_mds_only():
    code = example()
    m = code.merge
    assert code.alpha == 3
    assert len(code.reads) == 22  # 3 global + 8 single symbols, per codeword
    assert code.bandwidth() == bounds.lrc_bandwidth_bound(m) == Fraction(22, 3)
    assert bounds.lrc_mds_only_bandwidth(m) == 8 and bounds.lrc_reencode_bandwidth(m) == 12
    per_node = {(t, node): 0 for t in range(2) for node in range(9)}
    for t, node, _ in code.reads:
        per_node[t, node] += 1
    assert all(per_node[t, node] == (3 if node == 8 else 1) for t, node in per_node)


def test_measured_bytes_equal_the_bound():
    result = measure(parse_lrc_merge("6,1,3,1", "12,2,3,1"), shard_bytes=3 * 512)
    assert result.correct
    assert result.units == Fraction(22, 3) and result.bytes_read == 22 * 512


@pytest.mark.parametrize(
    "merge", [LRCMerge(6, 1, 2, 3, 1, 3), LRCMerge(4, 1, 2, 2, 2, 2)], ids=["lam3", "l2"]
)
def test_other_parameters_meet_the_bound(merge):
    result = measure(merge, shard_bytes=4 * 3 * 64)
    assert result.correct and result.units == bounds.lrc_bandwidth_bound(merge)


def test_codes_have_optimal_distance_and_local_repair():
    code = example()
    initial, final = code.initial, code.final
    assert (initial.n, initial.distance, final.n, final.distance) == (9, 3, 18, 4)
    assert tolerates(code.initial_generator, initial, 3, 2)
    assert tolerates(code.final_generator, final, 3, 3)
    assert not tolerates(code.initial_generator, initial, 3, 3)  # distance is exactly 3
    assert locally_repairable(code.initial_generator, initial, 3)
    assert locally_repairable(code.final_generator, final, 3)


def test_verification_rejects_a_broken_code():
    code = example()
    broken = code.initial_generator.copy()
    broken[-3:] = 0  # no global parity: two losses in one group are fatal
    assert not tolerates(broken, code.initial, 3, 2)
    broken = code.final_generator.copy()
    broken[36:39] = 0  # first local parity gone: its data can no longer be rebuilt locally
    assert not locally_repairable(broken, code.final, 3)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_conversion_equals_direct_final_encoding(units, seed):
    code = example()
    rng = np.random.default_rng(seed)
    data = [rng.integers(0, 256, (6, 3 * units), dtype=np.uint8) for _ in range(2)]
    words = [code.encode(d) for d in data]
    globals_, nbytes = code.convert(words)
    final = code.final_encode(np.vstack(data))
    assert nbytes == 22 * units
    assert np.array_equal(globals_, final[-2:])
    # data and local parities are untouched: the final codeword reuses them as they are
    assert np.array_equal(final[:12], np.vstack(data))
    assert np.array_equal(final[12:16], np.vstack([w[6:8] for w in words]))


def test_exhaustive_search_finds_nothing_cheaper():
    code = example()
    width = code.merge.k * code.alpha
    for t in range(code.merge.lam):
        targets = code.final_globals[:, t * width : (t + 1) * width]
        ours = sum(1 for s in code.reads if s[0] == t)  # 11 symbols
        limit = ours - 6  # pi-rank of a read set of `ours` symbols covering the 6 targets
        found, _ = cheaper_read_set(code.initial_generator, targets, limit - 1)
        assert found is None  # no read set of <= 10 symbols of this codeword works
        found, _ = cheaper_read_set(code.initial_generator, targets, limit)
        assert found is not None and len(found) == ours


def test_search_on_a_tiny_case():
    symbols = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.uint8)
    targets = np.array([[1, 1, 0]], dtype=np.uint8)
    assert cheaper_read_set(symbols, targets, 0)[0] == (3,)  # the stored sum itself
    targets = np.array([[1, 1, 1]], dtype=np.uint8)
    assert cheaper_read_set(symbols, targets, 0)[0] is None
    assert len(cheaper_read_set(symbols, targets, 1)[0]) == 2


def test_bad_parameters():
    with pytest.raises(ParameterError):
        LRCGlobalMerge.build(LRCMerge(6, 2, 1, 3, 1, 2))  # g_F <= g_I: nothing to piggyback
    with pytest.raises(ParameterError):
        LRCGlobalMerge.build(LRCMerge(6, 0, 1, 3, 1, 2))  # g_I = 0: no global to piggyback on
    with pytest.raises(ParameterError):
        parse_lrc_merge("6,1,3,1", "12,4,3,1")  # g_F > r: outside the bound's range
    with pytest.raises(ParameterError):
        example().convert([example().encode(np.zeros((6, 3), np.uint8))])
    with pytest.raises(ParameterError):
        example().encode(np.zeros((6, 4), np.uint8))


def test_cli_shows_construction_next_to_bound():
    out = subprocess.run([CLI, "convert", "lrc-cost"], capture_output=True, text=True, check=True)
    assert out.stdout.count("7 1/3") == 2 and "correct=True" in out.stdout
