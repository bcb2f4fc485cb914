"""Encoders and the subtraction decoder: exact where the algebra says so, loud on bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.coded_inference.codes import (
    AdditionEncoder,
    ConcatenationEncoder,
    ParityCode,
    decode_all_erasures,
    make_encoder,
    subtraction_decode,
)
from redundancy.coded_inference.models import build_model
from redundancy.errors import DecodeError, ParameterError

torch.set_num_threads(1)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(2, 6), missing=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_subtraction_recovers_missing_output_of_an_additive_parity(k, missing, seed):
    missing %= k
    outputs = torch.randn(k, 10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    parity = outputs.sum(dim=0)
    partial = [None if i == missing else outputs[i] for i in range(k)]
    assert torch.allclose(subtraction_decode(parity, partial), outputs[missing])


@settings(max_examples=20, deadline=None)
@given(k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_addition_encoder_is_the_sum(k, seed):
    group = torch.rand(3, k, 1, 6, 6, generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(AdditionEncoder(k, (1, 6, 6)).encode(group), group.sum(dim=1))


def test_linear_deployed_model_is_recovered_exactly():
    torch.manual_seed(0)
    k, shape = 3, (1, 8, 8)
    deployed = build_model("linear", shape, 10).double()
    parity = build_model("linear", shape, 10).double()
    parity.load_state_dict(deployed.state_dict())
    with torch.no_grad():  # F(sum X) = W sum X + b, so a parity bias of k b gives sum F(X_i)
        parity.net[-1].bias.mul_(k)
    code = ParityCode(deployed, parity, AdditionEncoder(k, shape))
    group = torch.rand(4, k, *shape, dtype=torch.float64)
    outputs = code.outputs(group.flatten(0, 1)).reshape(4, k, 10)
    parity_out = code.parity_output(code.encode(group))
    rebuilt = decode_all_erasures(parity_out, outputs)
    assert torch.allclose(rebuilt, outputs, atol=1e-10)
    single = code.decode(parity_out[0], [outputs[0, 0], None, outputs[0, 2]])
    assert torch.allclose(single, outputs[0, 1], atol=1e-10)


def test_concatenation_k2_places_shrunk_images_side_by_side():
    group = torch.zeros(1, 2, 1, 4, 4)
    group[0, 0] = 1.0  # left image all ones, right all zeros
    parity = ConcatenationEncoder(2, (1, 4, 4)).encode(group)
    assert parity.shape == (1, 1, 4, 4)
    assert torch.all(parity[..., :2] == 1.0) and torch.all(parity[..., 2:] == 0.0)


def test_concatenation_k4_fills_quadrants_and_keeps_odd_sizes():
    group = torch.arange(4.0).reshape(1, 4, 1, 1, 1).expand(1, 4, 1, 6, 6).contiguous()
    parity = ConcatenationEncoder(4, (1, 6, 6)).encode(group)
    assert parity.shape == (1, 1, 6, 6)
    assert parity[0, 0, 0, 0] == 0 and parity[0, 0, 0, 5] == 1
    assert parity[0, 0, 5, 0] == 2 and parity[0, 0, 5, 5] == 3
    odd = ConcatenationEncoder(2, (1, 7, 7)).encode(torch.ones(2, 2, 1, 7, 7))
    assert odd.shape == (2, 1, 7, 7)


@pytest.mark.parametrize(
    ("name", "k"), [("addition", 1), ("addition", 65), ("concatenation", 3), ("xor", 2)]
)
def test_bad_encoder_parameters_are_refused(name, k):
    with pytest.raises(ParameterError):
        make_encoder(name, k, (1, 8, 8))


def test_group_of_wrong_size_or_shape_is_refused():
    encoder = AdditionEncoder(2, (1, 8, 8))
    with pytest.raises(ParameterError, match="k=2"):
        encoder.encode(torch.zeros(1, 3, 1, 8, 8))
    with pytest.raises(ParameterError, match="expects"):
        encoder.encode(torch.zeros(1, 2, 1, 28, 28))


def test_decoder_needs_exactly_one_missing_output_and_the_right_k():
    out = torch.zeros(10)
    with pytest.raises(DecodeError):
        subtraction_decode(out, [out, out])
    with pytest.raises(DecodeError):
        subtraction_decode(out, [None, None])
    with pytest.raises(ParameterError):
        subtraction_decode(out, [None, torch.zeros(5)])
    model = build_model("linear", (1, 8, 8), 10)
    code = ParityCode(model, model, AdditionEncoder(2, (1, 8, 8)))
    with pytest.raises(ParameterError, match="k=2"):
        code.decode(out, [None, out, out])
