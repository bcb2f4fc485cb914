"""What protect() guarantees: the unprotected model's bits, checks that do not depend on warm-up,
and round-off thresholds equal to the bound stated in docs/abft.md, derived here independently."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from redundancy.abft import zoo
from redundancy.abft.inject import campaign
from redundancy.abft.protect import protect
from redundancy.abft.schemes import Monitor, ProtectedLayer
from redundancy.abft.thresholds import ThresholdConfig

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SCHEMES = ["global", "tiled", "replication"]


# --- bit-identical outputs --------------------------------------------------------------------


@pytest.mark.parametrize("strategy", SCHEMES)
def test_gelu_mlp_outputs_are_bit_identical_on_every_batch(strategy: str) -> None:
    net = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 10)).eval()
    protected = protect(net, strategy=strategy)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(40):
            x = torch.randn(8, 32, generator=gen)
            assert torch.equal(protected(x), net(x))
    assert protected.report() == []


class _ViewAfterLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(16, 12)
        self.o = nn.Linear(5 * 12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.o(self.q(x).view(x.shape[0], -1))


@pytest.mark.parametrize("strategy", SCHEMES)
def test_view_of_a_protected_layers_output_works_and_matches(strategy: str) -> None:
    model = _ViewAfterLinear().eval()
    x = torch.randn(4, 5, 16)
    protected = protect(model, strategy=strategy)
    with torch.no_grad():
        assert torch.equal(protected(x), model(x))
    assert protected.layers["q"].weight is not None  # attributes read through to the layer


def test_protected_model_keeps_autograd_and_its_gradients() -> None:
    model = nn.Sequential(nn.Linear(6, 8), nn.SiLU(), nn.Linear(8, 2))
    x = torch.randn(3, 6)
    protected = protect(model, strategy="tiled")
    model.eval()
    protected(x).sum().backward()
    model(x).sum().backward()
    for (_, theirs), ours in zip(model.named_parameters(), protected.parameters(), strict=True):
        assert torch.equal(ours.grad, theirs.grad)


# --- a hypothesis property: random architectures, every supported dtype ------------------------


class _Act(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.fn = {
            "gelu": nn.GELU(),
            "tanh": nn.GELU("tanh"),
            "silu": nn.SiLU(),
            "relu": nn.ReLU(),
        }[kind]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class _FlattenLinear(nn.Module):
    """Mixes all tokens: (B, T, D) -> view (B, T*D) -> Linear -> view (B, T, D')."""

    def __init__(self, tokens: int, dim: int, out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(tokens * dim, tokens * out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.reshape(x.shape[0], -1)).view(x.shape[0], x.shape[1], -1)


class _TokenConv(nn.Module):
    """A Conv2d over the token axis on a non-contiguous (B, D, T, 1) view."""

    def __init__(self, dim: int, out: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, out, (kernel, 1), padding=(kernel // 2, 0), groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class _Encoder(nn.Module):
    def __init__(self, dim: int, heads: int, norm_first: bool, batch_first: bool) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, 0.0, "gelu", batch_first=batch_first, norm_first=norm_first
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_first:
            return self.layer(x)
        return self.layer(x.transpose(0, 1)).transpose(0, 1)


@st.composite
def architectures(draw: st.DrawFn) -> tuple[nn.Module, tuple[int, int, int]]:
    """A random stack of token-wise blocks on (batch, tokens, dim) inputs."""
    batch, tokens = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dim = start = draw(st.sampled_from([4, 8, 12]))
    blocks: list[nn.Module] = []
    for kind in draw(st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=5)):
        heads = draw(st.sampled_from([h for h in (1, 2, 4) if dim % h == 0]))
        if kind == "linear":
            out = draw(st.sampled_from([4, 8, 12]))
            blocks.append(nn.Linear(dim, out, bias=draw(st.booleans())))
            dim = out
        elif kind == "act":
            blocks.append(_Act(draw(st.sampled_from(["gelu", "tanh", "silu", "relu"]))))
        elif kind == "norm":
            blocks.append(nn.LayerNorm(dim))
        elif kind == "flatten":
            out = draw(st.sampled_from([4, 8]))
            blocks.append(_FlattenLinear(tokens, dim, out))
            dim = out
        elif kind == "conv":
            out = draw(st.sampled_from([4, 8, 12]))
            groups = draw(st.sampled_from([g for g in (1, 2, 4) if dim % g == 0 and out % g == 0]))
            blocks.append(_TokenConv(dim, out, draw(st.sampled_from([1, 3])), groups))
            dim = out
        elif kind == "mha":
            blocks.append(_SelfAttention(dim, heads))
        elif kind == "encoder":
            blocks.append(_Encoder(dim, heads, draw(st.booleans()), draw(st.booleans())))
        else:
            blocks.append(zoo._DecoderBlock(dim, heads))
    return nn.Sequential(*blocks), (batch, tokens, start)


BLOCKS = ["linear", "act", "norm", "flatten", "conv", "mha", "encoder", "gpt"]


@settings(max_examples=25, deadline=None)
@given(
    arch=architectures(),
    dtype=st.sampled_from(DTYPES),
    strategy=st.sampled_from(SCHEMES),
    tile=st.sampled_from([1, 3, 32]),
    seed=st.integers(0, 2**16),
)
def test_protected_forward_is_bit_identical_for_random_architectures(
    arch: tuple[nn.Module, tuple[int, int, int]],
    dtype: torch.dtype,
    strategy: str,
    tile: int,
    seed: int,
) -> None:
    body, shape = arch
    torch.manual_seed(seed)
    model = body.to(dtype).eval()
    for p in model.parameters():  # fresh seeded weights, as drawn
        p.data.normal_(0, 0.5)
    x = torch.randn(shape).to(dtype)
    protected = protect(model, strategy=strategy, tile=tile)  # type: ignore[arg-type]
    with torch.no_grad():  # inference (nn.TransformerEncoderLayer may take its fast path)
        assert torch.equal(protected(x), model(x))
    assert torch.equal(protected(x), model(x))  # with autograd on: the module-by-module path
    assert protected.report() == []


def test_attention_projections_are_listed_as_unprotected_and_fast_paths_as_unchecked() -> None:
    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    protected = protect(layer, strategy="tiled")
    assert list(protected.unprotected) == ["self_attn.out_proj"]
    with torch.no_grad():  # PyTorch's fused inference path reads linear1/linear2 directly
        assert torch.equal(protected(x), layer(x))
    assert protected.unchecked == ["linear1", "linear2"]
    protected(x)  # with autograd on, the layer calls its modules: every check runs
    assert protected.unchecked == []


# --- detection does not depend on call order ---------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_transient_fault_in_the_first_gemm_of_a_new_shape_is_detected(
    kind: str, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first GEMM call of a fresh protected model returns a corrupted result, once."""
    layer = nn.Linear(24, 40) if kind == "linear" else nn.Conv2d(4, 40, 3, padding=1)
    x = torch.randn(5, 24) if kind == "linear" else torch.randn(2, 4, 6, 6)
    name = "linear" if kind == "linear" else "conv2d"
    real = getattr(F, name)
    calls = []

    def faulty(*args: object, **kwargs: object) -> torch.Tensor:
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            out.view(-1)[7] += 100.0
        return out

    protected = protect(layer.eval(), strategy=scheme)  # type: ignore[arg-type]
    monkeypatch.setattr(F, name, faulty)
    with torch.no_grad():
        first = protected(x)
    monkeypatch.setattr(F, name, real)
    assert [d.layer for d in protected.report()] == [""]
    with torch.no_grad():
        assert not torch.equal(first, layer(x))  # the fault reached the output and was flagged
        protected.monitor.reset()
        assert torch.equal(protected(x), layer(x))  # later clean calls: clean and exact
    assert protected.report() == []


@pytest.mark.parametrize("scheme", ["global", "tiled"])
def test_same_fault_same_verdict_first_call_or_after_warm_up(scheme: str) -> None:
    layer = nn.Linear(32, 64).eval()
    x = torch.randn(8, 32)
    ratios = []
    for warm_up in (0, 3):
        protected = protect(layer, strategy=scheme)  # type: ignore[arg-type]
        with torch.no_grad():
            for _ in range(warm_up):
                protected(x)
            protected.layers[""].output_fault = lambda y: y[3, 5].add_(1.0)
            protected(x)
        ratios.append([d.ratio for d in protected.report()])
    assert len(ratios[0]) == 1 and ratios[0] == ratios[1]


# --- thresholds equal the documented bound, computed here from scratch -------------------------

U = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}
LAM = 8.0  # the default statistical bound's lambda (docs/abft.md)


def bound_factor(n: int, u: float, mode: str) -> float:
    """f(n): gamma_n (rigorous) or Higham & Mary's exp(lam sqrt(n) u + n u^2 / (1 - u)) - 1."""
    if mode == "rigorous":
        return n * u / (1 - n * u)
    return math.exp(LAM * math.sqrt(n) * u + n * u * u / (1 - u)) - 1


def gemm_rows(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The layer as C = A B + b in float64: A (rows x K) from torch's own unfold for convs."""
    groups = gemm_groups(layer, x)
    assert len(groups) == 1
    return groups[0]


def gemm_groups(layer: nn.Module, x: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """(A, B, b) in float64 for each group of the layer's GEMM (one for Linear)."""
    w = layer.weight.detach().double()
    zero = torch.zeros(w.shape[0], dtype=torch.float64)
    b = zero if layer.bias is None else layer.bias.detach().double()
    if isinstance(layer, nn.Linear):
        return [(x.double().reshape(-1, w.shape[1]), w.T, b)]
    g = layer.groups
    per_in, per_out = x.shape[1] // g, w.shape[0] // g
    parts = []
    for i in range(g):
        xg = x[:, i * per_in : (i + 1) * per_in].double()
        cols = F.unfold(xg, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
        a = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        out = slice(i * per_out, (i + 1) * per_out)
        parts.append((a, w[out].flatten(1).T, b[out]))
    return parts


def to_rows(t: torch.Tensor, conv: bool) -> torch.Tensor:
    """Output (or per-row thresholds) as (rows, channels), rows in im2col order."""
    return t.permute(0, 2, 3, 1).flatten(0, 2) if conv else t.reshape(-1, t.shape[-1])


def output_index(y: torch.Tensor, conv: bool, row: int, channel: int) -> tuple[int, ...]:
    """Index into the layer's output of GEMM element (row, channel)."""
    if not conv:
        return (*torch.unravel_index(torch.tensor(row), y.shape[:-1]), channel)
    b, ho, wo = torch.unravel_index(torch.tensor(row), (y.shape[0], *y.shape[2:]))
    return (int(b), channel, int(ho), int(wo))


def independent_threshold(
    layer: nn.Module, x: torch.Tensor, scheme: str, tile: int, mode: str
) -> torch.Tensor:
    """docs/abft.md's thresholds: per output channel (global) or per row and tile (tiled).

    u is the layer's unit roundoff and v = 2^-24 that of the fp32 check sums. Global:
    [f(K+2, u) + f(rows, v) + f(sum terms, v) + f(K, v)] (1 + gamma(m, v)) (1^T|A| |B| + rows |b|)
    where the input-column sum has ``rows`` terms for a Linear and batch + HoWo for a conv,
    and m is the number of terms in the fp32 magnitude sums. Tiled: [2 f(K+2, u) + f(tile, v)]
    (1 + gamma(K, v)) (||A_i||_1 max_k sum_{j in t} |B_kj| + sum_{j in t} |b_j|).
    """
    u, v = U[layer.weight.dtype], 2.0**-24

    def gamma(n: int) -> float:
        return n * v / (1 - n * v)

    per_group = []
    for a, b_mat, bias in gemm_groups(layer, x):
        rows, k = a.shape
        if scheme == "global":
            if isinstance(layer, nn.Linear):
                parts, summed = [rows, rows, k], rows + k
            else:
                pixels = rows // x.shape[0]
                parts, summed = [rows, x.shape[0], pixels, k], x.shape[0] + pixels + k
            factor = bound_factor(k + 2, u, mode) + sum(bound_factor(n, v, mode) for n in parts)
            magnitude = a.abs().sum(0) @ b_mat.abs() + rows * bias.abs()
            per_group.append(factor * (1 + gamma(summed)) * magnitude)
            continue
        n = b_mat.shape[1]
        width = max(d for d in range(1, tile + 1) if n % d == 0)
        tile_weights = b_mat.abs().view(k, n // width, width).sum(2).amax(0)
        tile_bias = bias.abs().view(n // width, width).sum(1)
        factor = 2 * bound_factor(k + 2, u, mode) + bound_factor(width, v, mode)
        row_norms = a.abs().sum(1, keepdim=True)
        per_group.append(factor * (1 + gamma(k)) * (row_norms * tile_weights + tile_bias))
    return torch.cat(per_group, -1)


SMALL_LAYERS = {
    "linear": (lambda: nn.Linear(12, 10), (5, 12)),
    "linear_nobias": (lambda: nn.Linear(20, 6, bias=False), (3, 2, 20)),
    "conv": (lambda: nn.Conv2d(3, 8, 3, 1, 1), (2, 3, 5, 5)),
    "conv_strided": (lambda: nn.Conv2d(2, 6, 2, 2, 0), (1, 2, 6, 6)),
    "conv_grouped": (lambda: nn.Conv2d(4, 8, 3, 1, 1, groups=2, bias=False), (2, 4, 4, 4)),
}


@pytest.mark.parametrize("mode", ["statistical", "rigorous"])
@pytest.mark.parametrize("dtype", list(U))
@pytest.mark.parametrize("scheme", ["global", "tiled"])
@pytest.mark.parametrize("kind", sorted(SMALL_LAYERS))
def test_threshold_equals_the_documented_bound_and_faults_twice_it_are_caught(
    kind: str, scheme: str, dtype: torch.dtype, mode: str
) -> None:
    make, shape = SMALL_LAYERS[kind]
    layer = make().to(dtype).eval()
    x = torch.randn(shape).to(dtype)
    tile = 4
    expected = independent_threshold(layer, x, scheme, tile, mode)
    monitor = Monitor()
    checked = ProtectedLayer(kind, layer, scheme, monitor, tile, ThresholdConfig(mode))  # type: ignore[arg-type]
    conv = isinstance(layer, nn.Conv2d)
    with torch.no_grad():
        y = checked(x)
        actual = checked.tolerance(x, y.shape).double()
    if scheme == "tiled":
        actual = to_rows(actual.expand(*y.shape[:-1], -1) if not conv else actual, conv)
    assert torch.allclose(actual, expected, rtol=1e-4, atol=0)
    assert monitor.detections == []

    gen = torch.Generator().manual_seed(3)
    rows, channels = to_rows(y, conv).shape
    width = channels // expected.shape[-1] if scheme == "tiled" else 1
    for trial in range(6):
        row = int(torch.randint(rows, (1,), generator=gen))
        channel = int(torch.randint(channels, (1,), generator=gen))
        tau = float(expected[channel] if scheme == "global" else expected[row, channel // width])
        index = output_index(y, conv, row, channel)
        for scale, flagged in ((2.0, True), (0.25, False)):
            delta = (1 if trial % 2 else -1) * scale * tau

            def fault(out: torch.Tensor, index: tuple = index, delta: float = delta) -> None:
                out[index] += delta

            checked.output_fault = fault
            monitor.reset()
            with torch.no_grad():
                checked(x)
            assert bool(monitor.detections) == flagged, (scale, row, channel)
    checked.output_fault = None


@pytest.mark.parametrize("scheme", ["global", "tiled"])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_thresholds_and_detection_hold_when_one_layer_sees_several_input_shapes(
    kind: str, scheme: str
) -> None:
    """The checks reuse per-shape scratch tensors: alternating input shapes and magnitudes
    must give the documented threshold every time, and a fault of twice it is still caught."""
    make, shape = SMALL_LAYERS[kind]
    layer = make().eval()
    monitor = Monitor()
    checked = ProtectedLayer(kind, layer, scheme, monitor, 4)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(5)
    other = (*shape[:-2], shape[-2] + 2, shape[-1] + 3) if kind == "conv" else (7, shape[-1])
    conv = kind == "conv"
    for input_shape, scale in [(shape, 100.0), (other, 1.0), (shape, 0.01), (other, 10.0)]:
        x = scale * torch.randn(input_shape, generator=gen)
        expected = independent_threshold(layer, x, scheme, 4, "statistical")
        monitor.reset()
        checked.output_fault = None
        with torch.no_grad():
            y = checked(x)
            actual = checked.tolerance(x, y.shape).double()
        if scheme == "tiled":
            actual = to_rows(actual.expand(*y.shape[:-1], -1) if not conv else actual, conv)
        assert torch.allclose(actual, expected, rtol=1e-4, atol=0), input_shape
        assert monitor.detections == []
        index = output_index(y, conv, 0, 0)
        tau = float(expected[0] if scheme == "global" else expected[0, 0])

        def fault(out: torch.Tensor, index: tuple = index, tau: float = tau) -> None:
            out[index] += 2 * tau

        checked.output_fault = fault
        with torch.no_grad():
            checked(x)
        assert len(monitor.detections) == 1, input_shape
        # a copy's scratch tensors alias each other, not the original's
        checked.output_fault = None
        copied = copy.deepcopy(checked)
        copied.monitor.reset()
        with torch.no_grad():
            copied(x)
            checked(3 * x + 1)
            actual = copied.tolerance(x, y.shape).double()
        if scheme == "tiled":
            actual = to_rows(actual.expand(*y.shape[:-1], -1) if not conv else actual, conv)
        assert torch.allclose(actual, expected, rtol=1e-4, atol=0), input_shape
        assert copied.monitor.detections == []


@pytest.mark.parametrize("dtype", list(U))
def test_documented_base_bound_holds_for_torchs_gemm(dtype: torch.dtype) -> None:
    """|C^ - C| <= gamma_{K+1}(u) (|A||B| + |b|) elementwise (Higham Thm 3.5), the bound the
    thresholds build on, checked against float64 on a layer's real output."""
    layer = nn.Linear(64, 16).to(dtype)
    x = torch.randn(32, 64).to(dtype)
    a, b_mat, bias = gemm_rows(layer, x)
    with torch.no_grad():
        error = (layer(x).double() - (a @ b_mat + bias)).abs()
    magnitude = a.abs() @ b_mat.abs() + bias.abs()
    assert bool((error <= bound_factor(65, U[dtype], "rigorous") * magnitude).all())


# --- detection on transformers -----------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["global", "tiled"])
@pytest.mark.parametrize("name", ["gpt", "transformer"])
def test_transformer_zoo_models_detect_exponent_flips_in_outputs_and_weights(
    name: str, strategy: str
) -> None:
    model = zoo.build(name, width=0.25)
    x = zoo.example_input(name, 2)
    protected = protect(model, strategy=strategy)  # type: ignore[arg-type]
    with torch.no_grad():
        assert torch.equal(protected(x), model(x))
    assert protected.unchecked == []
    for target in ("output", "weight"):
        result = campaign(protected, x, target, bits=[30], trials=12, seed=2)  # type: ignore[arg-type]
        assert result.false_positives == 0
        assert result.total().detected == result.total().trials == 12
