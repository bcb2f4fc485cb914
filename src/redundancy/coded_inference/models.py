"""Deployed classifiers: Base-MLP (784-200-100-10), a small CNN, a CIFAR-size ResNet-18.

A parity model has the deployed model's architecture (ParM), so every model here is built from
(name, input shape, number of classes); a user's own model comes from a state dict or a
TorchScript file.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import nn

from redundancy.errors import ConfigError, ParameterError

MODEL_NAMES = ("base-mlp", "small-cnn", "resnet18", "linear")


class MLP(nn.Module):
    """Flatten, then Linear-ReLU layers; Base-MLP is hidden = (200, 100)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        widths = (in_features, *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Two 3x3 conv + pool blocks (16, 32 channels), then a 64-unit hidden layer."""

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        c, h, w = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * (h // 4) * (w // 4), 64),
            nn.ReLU(),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


class ResNet18(nn.Module):
    """CIFAR-size ResNet-18: 3x3 stem, four stages of two basic blocks (64..512), global pool."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        )
        blocks: list[nn.Module] = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(torch.relu(self.stem(x)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def build_model(name: str, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Build a fresh model of architecture ``name`` for images of ``input_shape``.

    Parameters
    ----------
    name : {"base-mlp", "small-cnn", "resnet18", "linear"}
        Base-MLP (784-200-100-10 for MNIST), a small CNN, a CIFAR-size ResNet-18, or a linear
        classifier.
    input_shape : tuple of int
        (C, H, W) of one image.
    n_classes : int
        Number of outputs.

    Returns
    -------
    torch.nn.Module
        The untrained model, mapping (B, C, H, W) images to (B, n_classes) logits.

    Raises
    ------
    ParameterError
        If ``name`` is unknown, or the images are smaller than 4x4 for small-cnn.

    Examples
    --------
    >>> model = build_model("base-mlp", (1, 28, 28), 10)
    >>> sum(p.numel() for p in model.parameters())  # 784*200+200 + 200*100+100 + 100*10+10
    178110
    >>> tuple(model(torch.zeros(2, 1, 28, 28)).shape)
    (2, 10)
    """
    if name not in MODEL_NAMES:
        raise ParameterError(f"model={name!r} is unknown (allowed: {', '.join(MODEL_NAMES)})")
    c, h, w = input_shape
    if name == "base-mlp":
        return MLP(c * h * w, (200, 100), n_classes)
    if name == "linear":
        return MLP(c * h * w, (), n_classes)
    if name == "small-cnn":
        if h < 4 or w < 4:
            raise ParameterError(f"small-cnn needs images of at least 4x4, got {h}x{w}")
        return SmallCNN(input_shape, n_classes)
    return ResNet18(c, n_classes)


def build_cheap_model(input_shape: tuple[int, int, int], n_classes: int, k: int) -> nn.Module:
    """Build the "cheap backup" baseline: an MLP with Base-MLP's widths divided by k.

    One parity model serves k queries, so a backup with 1/k of the deployed model's hidden
    width spends about the same extra compute per query.

    Parameters
    ----------
    input_shape : tuple of int
        (C, H, W) of one image.
    n_classes : int
        Number of outputs.
    k : int
        Queries per coding group of the ParM setup it is compared with.

    Returns
    -------
    torch.nn.Module
        The untrained MLP with hidden widths (200 // k, 100 // k).

    Examples
    --------
    >>> cheap = build_cheap_model((1, 28, 28), 10, k=2)
    >>> [layer.out_features for layer in cheap.modules() if isinstance(layer, nn.Linear)]
    [100, 50, 10]
    """
    c, h, w = input_shape
    return MLP(c * h * w, (max(1, 200 // k), max(1, 100 // k)), n_classes)


def check_compatible(model: nn.Module, input_shape: tuple[int, int, int], n_classes: int) -> None:
    """Run one dummy image through ``model``; a shape mismatch becomes a ParameterError."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape))
    except RuntimeError as exc:
        raise ParameterError(
            f"model does not accept images of shape {input_shape}: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        model.train(was_training)
    if tuple(out.shape) != (1, n_classes):
        raise ParameterError(
            f"model outputs shape {tuple(out.shape)[1:]} but the data has {n_classes} classes"
        )


def load_model(
    path: Path,
    name: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    n_classes: int | None = None,
) -> nn.Module:
    """Load a user's model: a TorchScript file, or a state dict for architecture ``name``.

    Parameters
    ----------
    path : Path
        The file.
    name : str, optional
        Architecture of a state dict (see :func:`build_model`); None reads TorchScript.
    input_shape : tuple of int, optional
        (C, H, W) of one image; needed with ``name``.
    n_classes : int, optional
        Number of outputs; needed with ``name``.

    Returns
    -------
    torch.nn.Module
        The model, with the file's weights.

    Raises
    ------
    ConfigError
        If the file is missing, is not TorchScript (without ``name``), or does not fit the
        architecture.
    ParameterError
        If ``name`` is given without ``input_shape`` and ``n_classes``.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "linear.pt"
    >>> torch.save(build_model("linear", (1, 4, 4), 3).state_dict(), path)
    >>> model = load_model(path, "linear", (1, 4, 4), 3)
    >>> tuple(model(torch.zeros(1, 1, 4, 4)).shape)
    (1, 3)
    >>> path.unlink(); path.parent.rmdir()
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist")
    if name is None:
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as exc:
            raise ConfigError(
                f"{path} is not a TorchScript file (pass the architecture name "
                f"to load a state dict): {str(exc).splitlines()[0]}"
            ) from None
    if input_shape is None or n_classes is None:
        raise ParameterError("input_shape and n_classes are needed to load a state dict")
    model = build_model(name, input_shape, n_classes)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(
            f"{path} does not fit model {name!r}: {str(exc).splitlines()[0]}"
        ) from None
    return model
