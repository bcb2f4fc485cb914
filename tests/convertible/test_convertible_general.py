"""General-regime conversion: split some initial codewords, merge the rest, read only the bound."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from redundancy import gf256
from redundancy.convertible.algebra import bounds
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.algebra.family import verify_mds
from redundancy.convertible.algebra.general import GeneralConversion, convert, measure
from redundancy.convertible.cli import app
from redundancy.errors import ParameterError

EXAMPLE = Conversion(5, 1, 12, 1)  # [6,5] x12 -> [13,12] x5
CASES = [
    EXAMPLE,
    Conversion(3, 2, 4, 2),  # k_F > k_I, r_F = r_I
    Conversion(4, 2, 9, 1),  # r_F < r_I, two whole codewords merged per final codeword
    Conversion(5, 2, 3, 2),  # k_I > k_F: every initial codeword split
]


@pytest.mark.parametrize("conv", CASES, ids=lambda c: c.describe())
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_conversion_equals_direct_encoding_and_meets_bound(conv, data):
    gen = GeneralConversion.build(conv)
    ic, fc = gen.initial_code(), gen.final_code()
    width = data.draw(st.integers(1, 8))
    initial = [
        np.array(
            data.draw(
                st.lists(
                    st.binary(min_size=width, max_size=width),
                    min_size=conv.k_i,
                    max_size=conv.k_i,
                )
            )
        )
        .view(np.uint8)
        .reshape(conv.k_i, width)
        for _ in range(conv.lambda_i)
    ]
    parities, touched = convert(gen, [ic.encode_all(d) for d in initial])
    for u, final_data in enumerate(gen.final_data(initial)):
        got = np.stack([parities[(u, j)] for j in range(conv.r_f)])
        assert np.array_equal(got, fc.encode(final_data))
    assert len(touched) == bounds.read_access_bound(conv)
    assert touched == set(gen.reads)


@pytest.mark.parametrize("conv", CASES, ids=lambda c: c.describe())
def test_codes_verified_mds_and_layout_is_stable(conv):
    gen = GeneralConversion.build(conv)
    assert verify_mds(gen.initial_code()) and verify_mds(gen.final_code())
    shards = [s for final in gen.layout for s in final]
    assert sorted(shards) == [(t, i) for t in range(conv.lambda_i) for i in range(conv.k_i)]


def test_example_reads_18_of_60_measured():
    run = measure(EXAMPLE, shard_bytes=256)
    assert (run.shards_read, run.bytes_read) == (18, 18 * 256)
    assert run.correct and run.final_mds
    assert bounds.read_access_bound(EXAMPLE) == 18
    gen = GeneralConversion.build(EXAMPLE)
    # 2 split codewords read 3 data + 1 parity; 10 merged codewords read 1 parity each
    per_word = [sum(1 for t, _ in gen.reads if t == w) for w in range(EXAMPLE.lambda_i)]
    assert per_word == [4, 4] + [1] * 10


@pytest.mark.parametrize("conv", CASES, ids=lambda c: c.describe())
def test_nothing_cheaper_for_these_codes(conv):
    """Exact minimum over every read set (per-codeword decomposition) equals the bound."""
    assert GeneralConversion.build(conv).minimal_reads() == bounds.read_access_bound(conv)


def test_per_codeword_decomposition_agrees_with_whole_search():
    """Smallest case by brute force over all read sets of all codewords together."""
    conv = Conversion(4, 1, 3, 1)  # [5,4] x3 -> [4,3] x4, bound 6
    gen = GeneralConversion.build(conv)
    symbols = [(t, i) for t in range(conv.lambda_i) for i in range(conv.k_i + conv.r_i)]
    vectors = {s: gen.symbol_vector(s) for s in symbols}
    targets = np.array(list(gen.target_vectors().values()), dtype=np.uint8)

    def works(subset):
        basis = np.array([vectors[s] for s in subset], dtype=np.uint8).reshape(-1, conv.lcm)
        return gf256.rank(basis) == gf256.rank(np.vstack([basis, targets]))

    sizes = (n for n in range(len(symbols) + 1) for sub in combinations(symbols, n) if works(sub))
    assert next(sizes) == gen.minimal_reads() == bounds.read_access_bound(conv) == 6


def test_reads_meet_bound_on_every_small_general_conversion():
    for k_i in range(2, 7):
        for k_f in range(2, 13):
            for r_i in range(0, 3):
                for r_f in range(1, 3):
                    if k_i == k_f:
                        continue
                    conv = Conversion(k_i, r_i, k_f, r_f)
                    if conv.regime != "general":
                        continue
                    gen = GeneralConversion.build(conv)
                    assert len(gen.reads) == bounds.read_access_bound(conv), conv.describe()


def test_other_regimes_refused():
    with pytest.raises(ParameterError, match="merge"):
        GeneralConversion.build(Conversion.merge(5, 1, 2, 1))


def test_cli_cost_prints_measured_reads():
    result = CliRunner().invoke(app, ["cost", "--code", "rs:5,1", "--to", "rs:12,1"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "read 18 shards (bound 18, re-encode 60)" in text
    assert "direct encoding: True" in text and "MDS: True" in text
