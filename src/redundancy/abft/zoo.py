"""The references' networks, defined here at reduced width and input size (no downloads).

Each builder takes ``width`` (a channel multiplier, 1.0 = the published widths) and returns a
model with random weights drawn from a fixed seed, in eval mode, plus its example input shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from redundancy.errors import ParameterError


def _c(channels: int, width: float) -> int:
    return max(4, round(channels * width))


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True):
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def alexnet(width: float, classes: int = 100) -> nn.Module:
    """AlexNet: 5 convs (11x11 stride 4 first) and 3 fully connected layers."""
    c = [_c(x, width) for x in (64, 192, 384, 256, 256)]
    fc = _c(4096, width)
    return nn.Sequential(
        nn.Conv2d(3, c[0], 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(c[0], c[1], 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(c[1], c[2], 3, 1, 1), nn.ReLU(),
        nn.Conv2d(c[2], c[3], 3, 1, 1), nn.ReLU(),
        nn.Conv2d(c[3], c[4], 3, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(c[4] * 4, fc), nn.ReLU(), nn.Linear(fc, fc), nn.ReLU(), nn.Linear(fc, classes),
    )  # fmt: skip


def vgg16(width: float, classes: int = 100) -> nn.Module:
    """VGG16: 13 3x3 convs in 5 stages with max pooling, then 3 fully connected layers."""
    layers: list[nn.Module] = []
    cin = 3
    for stage, reps in zip((64, 128, 256, 512, 512), (2, 2, 3, 3, 3), strict=True):
        for _ in range(reps):
            layers += [nn.Conv2d(cin, _c(stage, width), 3, padding=1), nn.ReLU()]
            cin = _c(stage, width)
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    fc = _c(4096, width)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, fc), nn.ReLU()]
    layers += [nn.Linear(fc, fc), nn.ReLU(), nn.Linear(fc, classes)]
    return nn.Sequential(*layers)


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = 4 * mid
        self.body = nn.Sequential(
            _conv_bn(cin, mid, 1), _conv_bn(mid, mid, 3, stride), _conv_bn(mid, cout, 1, relu=False)
        )
        self.skip = (
            _conv_bn(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + (x if self.skip is None else self.skip(x)))


def resnet50(width: float, classes: int = 100) -> nn.Module:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3], expansion 4."""
    stem = _c(64, width)
    layers: list[nn.Module] = [_conv_bn(3, stem, 7, 2), nn.MaxPool2d(3, 2, 1)]
    cin = stem
    for i, (mid, reps) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)):
        for r in range(reps):
            layers.append(_Bottleneck(cin, _c(mid, width), 2 if r == 0 and i > 0 else 1))
            cin = 4 * _c(mid, width)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


def squeezenet(width: float, classes: int = 100) -> nn.Module:
    """SqueezeNet 1.1: fire modules (1x1 squeeze, 1x1 + 3x3 expand)."""
    cfg = [(16, 64), (16, 64), None, (32, 128), (32, 128), None, (48, 192), (48, 192)]
    cfg += [(64, 256), (64, 256)]
    cin = _c(64, width)
    layers: list[nn.Module] = [
        nn.Conv2d(3, cin, 3, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True),
    ]
    for item in cfg:
        if item is None:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            continue
        sq, ex = _c(item[0], width), _c(item[1], width)
        layers.append(_Fire(cin, sq, ex))
        cin = 2 * ex
    layers += [nn.Conv2d(cin, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class _ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        side = cin if stride == 2 else half
        self.branch = nn.Sequential(
            _conv_bn(side, half, 1),
            _conv_bn(half, half, 3, stride, groups=half, relu=False),
            _conv_bn(half, half, 1),
        )
        self.proj = (
            nn.Sequential(_conv_bn(cin, cin, 3, 2, groups=cin, relu=False), _conv_bn(cin, half, 1))
            if stride == 2
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.branch(b)], 1)
        else:
            out = torch.cat([self.proj(x), self.branch(x)], 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


def shufflenet(width: float, classes: int = 100) -> nn.Module:
    """ShuffleNet V2 (1.0x): channel split, depthwise 3x3, channel shuffle; stages [4, 8, 4]."""
    stem = _c(24, width)
    layers: list[nn.Module] = [_conv_bn(3, stem, 3, 2), nn.MaxPool2d(3, 2, 1)]
    cin = stem
    for cout, reps in zip((116, 232, 464), (4, 8, 4), strict=True):
        cout = 2 * _c(cout // 2, width)
        for r in range(reps):
            layers.append(_ShuffleUnit(cin, cout, 2 if r == 0 else 1))
            cin = cout
    last = _c(1024, width)
    layers += [_conv_bn(cin, last, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers.append(nn.Linear(last, classes))
    return nn.Sequential(*layers)


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(),
            nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def densenet(width: float, classes: int = 100) -> nn.Module:
    """DenseNet-like (DenseNet-121 block layout [6, 12, 24, 16], growth 32, transitions /2)."""
    growth = _c(32, width)
    cin = 2 * growth
    layers: list[nn.Module] = [_conv_bn(3, cin, 7, 2), nn.MaxPool2d(3, 2, 1)]
    for i, reps in enumerate((6, 12, 24, 16)):
        for _ in range(reps):
            layers.append(_DenseLayer(cin, growth))
            cin += growth
        if i < 3:
            layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cin // 2, 1), nn.AvgPool2d(2)]
            cin //= 2
    layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers.append(nn.Linear(cin, classes))
    return nn.Sequential(*layers)


def _mlp(sizes: list[int], final_relu: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if final_relu or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return layers


def dlrm_mlp(width: float, classes: int = 1) -> nn.Module:
    """The DLRM MLPs: bottom 13-512-256-64 and top 512-512-256-1, chained via a 512-wide join."""
    b = [13, _c(512, width), _c(256, width), _c(64, width)]
    t = [_c(512, width), _c(512, width), _c(256, width), classes]
    return nn.Sequential(*_mlp(b, True), nn.Linear(b[-1], t[0]), nn.ReLU(), *_mlp(t, False))


TOKENS, FEATURES = 16, 32  # transformer inputs: 16 tokens of 32 features each


class _CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=-1)
        q, k, v = (t.view(batch, tokens, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(batch, tokens, dim))


class _DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = _CausalSelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class _GPT(nn.Module):
    def __init__(self, dim: int, heads: int, depth: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Linear(FEATURES, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(TOKENS, dim))
        self.blocks = nn.Sequential(*(_DecoderBlock(dim, heads) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln(self.blocks(self.embed(x) + self.pos[: x.shape[1]])))


def gpt(width: float, classes: int = 100) -> nn.Module:
    """A GPT-style decoder: pre-norm blocks of causal self-attention (nn.Linear Q/K/V and
    output projections, scaled dot-product attention) and a GELU MLP (4x); 4 blocks, 4 heads,
    width 256 at 1.0; 16 input tokens of 32 features, a next-token head per token."""
    return _GPT(4 * _c(64, width), 4, 4, classes)


class _Encoder(nn.Module):
    def __init__(self, dim: int, heads: int, depth: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Linear(FEATURES, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # sequence-first, nn.TransformerEncoderLayer's default layout (its module-by-module path)
        h = self.encoder(self.embed(x).transpose(0, 1))
        return self.head(h.mean(0))


def transformer(width: float, classes: int = 100) -> nn.Module:
    """A BERT-style encoder from ``nn.TransformerEncoderLayer`` (pre-norm, GELU, FFN 4x, 4
    blocks, 4 heads, width 256 at 1.0) over 16 tokens of 32 features, mean-pooled.
    ``nn.MultiheadAttention`` reads its projections' weights itself, so only the embedding,
    the feed-forward layers and the head are checked (see ``ProtectedModel.unprotected``)."""
    return _Encoder(4 * _c(64, width), 4, 4, classes)


@dataclass(frozen=True)
class ZooEntry:
    """A network builder and the shape of one input sample (without the batch dimension)."""

    build: Callable[[float], nn.Module]
    sample: tuple[int, ...]


ZOO: dict[str, ZooEntry] = {
    "alexnet": ZooEntry(alexnet, (3, 64, 64)),
    "vgg16": ZooEntry(vgg16, (3, 32, 32)),
    "resnet50": ZooEntry(resnet50, (3, 64, 64)),
    "squeezenet": ZooEntry(squeezenet, (3, 64, 64)),
    "shufflenet": ZooEntry(shufflenet, (3, 64, 64)),
    "densenet": ZooEntry(densenet, (3, 64, 64)),
    "dlrm": ZooEntry(dlrm_mlp, (13,)),
    "gpt": ZooEntry(gpt, (TOKENS, FEATURES)),
    "transformer": ZooEntry(transformer, (TOKENS, FEATURES)),
}


def build(name: str, width: float = 0.25, seed: int = 0) -> nn.Module:
    """Build zoo network ``name`` with random weights from ``seed`` (eval mode)."""
    if name not in ZOO:
        raise ParameterError(f"model={name!r} is not in the zoo (choose from {sorted(ZOO)})")
    if not (0.01 <= width <= 4.0):
        raise ParameterError(f"width={width} is out of range (allowed: 0.01..4)")
    torch.manual_seed(seed)
    return ZOO[name].build(width).eval()


def example_input(
    name: str, batch: int = 1, seed: int = 0, size: int | None = None
) -> torch.Tensor:
    """A seeded random input batch for zoo network ``name`` (``size`` overrides H = W)."""
    if name not in ZOO:
        raise ParameterError(f"model={name!r} is not in the zoo (choose from {sorted(ZOO)})")
    if not (1 <= batch <= 4096):
        raise ParameterError(f"batch={batch} is out of range (allowed: 1..4096)")
    sample = ZOO[name].sample
    if size is not None and len(sample) == 3:
        if not (16 <= size <= 1024):
            raise ParameterError(f"size={size} is out of range (allowed: 16..1024)")
        sample = (sample[0], size, size)
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *sample), generator=gen)
