"""Checksum schemes: bit-exact outputs, no false positives, above-threshold faults detected."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from redundancy.abft import zoo
from redundancy.abft.gemm import ColumnSums, conv_padding, layer_shape
from redundancy.abft.protect import protect
from redundancy.abft.schemes import SCHEMES, Monitor, ProtectedLayer, SilentDataCorruption
from redundancy.abft.thresholds import ThresholdConfig, gamma, unit_roundoff
from redundancy.errors import ParameterError

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def test_unit_roundoff_and_gamma() -> None:
    assert unit_roundoff(torch.float32) == 2.0**-24
    assert unit_roundoff("bfloat16") == 2.0**-8
    assert gamma(10, 2.0**-24) == pytest.approx(10 * 2.0**-24)
    assert math.isinf(gamma(300, 2.0**-8))
    with pytest.raises(ParameterError, match="dtype"):
        unit_roundoff(torch.int32)
    with pytest.raises(ParameterError, match="lam"):
        ThresholdConfig(lam=0.0)
    with pytest.raises(ParameterError, match="mode"):
        ThresholdConfig(mode="loose")  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 5),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    dil=st.integers(1, 2),
    h=st.integers(6, 12),
)
def test_column_sums_match_unfold(k: int, stride: int, pad: int, dil: int, h: int) -> None:
    conv = nn.Conv2d(3, 4, k, stride, pad, dil)
    x = torch.randn(2, 3, h, h + 1)
    cols = F.unfold(x.double(), k, dil, pad, stride)
    expect = cols.sum((0, 2)).view(3, k, k)
    assert torch.allclose(ColumnSums(conv)(x.sum(0)).double(), expect, atol=1e-4)
    shape = layer_shape(conv, x.shape, torch.float32)
    assert shape.m == cols.shape[0] * cols.shape[2]


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "pads"),
    [
        ((4, 2), (1, 1), (1, 1), (0, 1, 1, 2)),  # 'same' for a 4x2 kernel: asymmetric
        ((3, 1), (2, 3), (1, 1), (0, 0, 1, 1)),
        ((2, 3), (1, 2), (2, 1), (1, 1, 0, 0)),
        ((1, 1), (3, 2), (1, 1), (0, 0, 0, 0)),
    ],
)
def test_column_sums_match_unfold_for_rectangular_windows_and_odd_layouts(
    kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], pads: tuple
) -> None:
    """Rectangular kernels, strides and dilations, hand-written asymmetric padding, one input
    channel, and a non-contiguous (transposed) image: column sums equal unfold's."""
    conv = nn.Conv2d(1, 2, kernel, stride, dilation=dilation)
    conv.padding = (0, 0)
    sums = ColumnSums(conv)
    sums.pads = pads  # (left, right, top, bottom), as conv_padding gives for 'same'
    image = torch.randn(1, 9, 7, generator=torch.Generator().manual_seed(4)).transpose(1, 2)
    assert not image.is_contiguous()
    cols = F.unfold(F.pad(image.double(), pads)[None], kernel, dilation, 0, stride)
    expect = cols.sum((0, 2)).view(1, *kernel)
    assert torch.allclose(sums(image).double(), expect, atol=1e-5)


def test_same_padding_resolved() -> None:
    conv = nn.Conv2d(2, 2, 4, padding="same", dilation=1)
    assert conv_padding(conv) == (1, 2, 1, 2)
    with pytest.raises(ParameterError, match="padding_mode"):
        conv_padding(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))


LAYERS = {
    "linear": (lambda: nn.Linear(96, 70), (6, 96)),
    "conv": (lambda: nn.Conv2d(8, 48, 3, 1, 1), (2, 8, 10, 10)),
    "conv_strided": (lambda: nn.Conv2d(6, 20, 5, 2, 2, bias=False), (2, 6, 13, 13)),
    "conv_grouped": (lambda: nn.Conv2d(8, 16, 3, 1, 1, groups=4), (2, 8, 9, 9)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_bit_exact_clean_and_flags_a_changed_output(
    kind: str, scheme: str, dtype: torch.dtype
) -> None:
    """Clean: the plain layer's bits, no detection. A large change of one output is flagged
    (test_abft_guarantees checks the thresholds themselves against an independent bound)."""
    make, shape = LAYERS[kind]
    layer = make().to(dtype)
    x = torch.randn(shape).to(dtype)
    with torch.no_grad():
        expect = layer(x)
    monitor = Monitor()
    protected = ProtectedLayer(kind, copy.deepcopy(layer), scheme, monitor, tile=8)
    for _ in range(2):
        assert torch.equal(protected(x), expect)
    assert monitor.detections == []
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):
        index = int(torch.randint(expect.numel(), (1,), generator=gen))
        position = tuple(int(i) for i in torch.unravel_index(torch.tensor(index), expect.shape))
        delta = 1e4 * (1.0 + abs(float(expect[position])))  # far above any round-off

        def fault(y: torch.Tensor, position: tuple = position, delta: float = delta) -> None:
            y[position] += delta

        protected.output_fault = fault
        monitor.reset()
        protected(x)
        assert [d.layer for d in monitor.detections] == [kind]
    protected.output_fault = None


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_zoo_bit_exact_and_no_false_positives(name: str) -> None:
    model = zoo.build(name, width=0.25)
    x = zoo.example_input(name, batch=2, size=32)
    with torch.no_grad():
        expect = model(x)
        for strategy in ("global", "tiled", "replication"):
            protected = protect(model, strategy=strategy)
            for seed in range(2):
                xi = x if seed == 0 else zoo.example_input(name, batch=2, seed=seed, size=32)
                y = protected(xi)
                if seed == 0:
                    assert torch.equal(y, expect), strategy
            assert protected.report() == [], strategy
            assert max(protected.monitor.max_clean_ratio.values()) < 0.1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["dlrm", "vgg16"])
def test_low_precision_no_false_positives(name: str, dtype: torch.dtype) -> None:
    model = zoo.build(name, width=0.25).to(dtype)
    x = zoo.example_input(name, batch=2, size=32).to(dtype)
    with torch.no_grad():
        expect = model(x)
        for strategy in ("global", "tiled"):
            protected = protect(model, strategy=strategy)
            assert torch.equal(protected(x), expect)
            assert protected.report() == []


def test_rigorous_bound_is_looser_but_clean() -> None:
    layer = nn.Linear(200, 50)
    x = torch.randn(4, 200)
    loose = ProtectedLayer("l", layer, "global", Monitor(), thresholds=ThresholdConfig("rigorous"))
    tight = ProtectedLayer("l", layer, "global", Monitor())
    shape = torch.Size((4, 50))
    assert bool((loose.tolerance(x, shape) > tight.tolerance(x, shape)).all())
    loose(x)
    assert loose.monitor.detections == []


def test_raise_policy_names_layer() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    protected = protect(model, strategy="tiled", policy="raise")
    protected.layers["2"].output_fault = lambda y: y.mul_(1e6)
    with pytest.raises(SilentDataCorruption, match="'2'"):
        protected(torch.randn(3, 10))


def test_bad_arguments_raise_named_errors() -> None:
    with pytest.raises(ParameterError, match="scheme"):
        ProtectedLayer("l", nn.Linear(2, 2), "triple", Monitor())  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="tile"):
        ProtectedLayer("l", nn.Linear(2, 2), "tiled", Monitor(), tile=0)
    with pytest.raises(ParameterError, match="not Linear"):
        ProtectedLayer("l", nn.ReLU(), "global", Monitor())  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="strategy"):
        protect(nn.Linear(2, 2), strategy="quadruple")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="profile"):
        protect(nn.Linear(2, 2), strategy="guided")
    with pytest.raises(ParameterError, match="policy"):
        protect(nn.Linear(2, 2), strategy="tiled", policy="ignore")  # type: ignore[arg-type]
