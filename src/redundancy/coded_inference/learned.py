"""Learned codes: a neural encoder makes r = 1 parity query, the frozen deployed model runs it,
and a neural decoder rebuilds the one missing output from the k - 1 available ones and the parity
output. Only the encoder and the decoder are trained; the loss counts the erased position only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from redundancy.coded_inference.config import LossName, OptimConfig
from redundancy.coded_inference.evaluation import CodedAccuracy, degraded_scores
from redundancy.coded_inference.training import (
    TrainHistory,
    accuracy,
    adam,
    predict_logits,
    random_groups,
    run_epochs,
)
from redundancy.errors import DecodeError, ParameterError, check_range

CONV_DILATIONS = (1, 1, 2, 4, 8, 1)


class MLPEncoder(nn.Module):
    """Linear(k d -> h), ReLU, Linear(h -> r d) on the flattened group; h = hidden_factor k d."""

    def __init__(self, k: int, r: int, input_shape: tuple[int, int, int], hidden_factor: float):
        super().__init__()
        self.k, self.r, self.input_shape = k, r, input_shape
        d = input_shape[0] * input_shape[1] * input_shape[2]
        hidden = max(8, int(hidden_factor * k * d))
        self.net = nn.Sequential(nn.Linear(k * d, hidden), nn.ReLU(), nn.Linear(hidden, r * d))

    def forward(self, group: torch.Tensor) -> torch.Tensor:
        return self.net(group.flatten(1)).reshape(len(group), self.r, *self.input_shape)


class ConvEncoder(nn.Module):
    """3x3 convs with dilations 1, 1, 2, 4, 8, 1 on the k images as channels, 1x1 down to r."""

    def __init__(self, k: int, r: int, input_shape: tuple[int, int, int], channels: int = 16):
        super().__init__()
        self.k, self.r, self.input_shape = k, r, input_shape
        c = input_shape[0]
        layers: list[nn.Module] = []
        cin = k * c
        for dilation in CONV_DILATIONS:
            layers += [nn.Conv2d(cin, channels, 3, padding=dilation, dilation=dilation), nn.ReLU()]
            cin = channels
        layers.append(nn.Conv2d(cin, r * c, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, group: torch.Tensor) -> torch.Tensor:
        b, k, c, h, w = group.shape
        return self.net(group.reshape(b, k * c, h, w)).reshape(b, self.r, c, h, w)


class MLPDecoder(nn.Module):
    """MLP on the (k + r) concatenated outputs (erased ones zeroed) -> k rebuilt outputs."""

    def __init__(self, k: int, r: int, n_classes: int, hidden: int | None = None) -> None:
        super().__init__()
        self.k, self.n_classes = k, n_classes
        width = (k + r) * n_classes
        hidden = hidden or max(64, 4 * width)
        self.net = nn.Sequential(
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, k * n_classes),
        )

    def forward(self, outputs: torch.Tensor, parity_outputs: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([outputs.flatten(1), parity_outputs.flatten(1)], dim=1)
        return self.net(joined).reshape(len(outputs), self.k, self.n_classes)


class LearnedCode(nn.Module):
    """A learned encoder and decoder for groups of k queries, r = 1 parity.

    The encoder turns k queries into a parity query that the deployed model itself answers; the
    decoder rebuilds a missing output from the other outputs and that answer.

    Parameters
    ----------
    k : int
        Queries per coding group, 2..8.
    input_shape : tuple of int
        (C, H, W) of one query.
    n_classes : int
        Outputs of the deployed model.
    encoder : {"mlp", "conv"}, default "mlp"
        The encoder's architecture.
    r : int, default 1
        Parity queries per group (only 1 is supported).
    hidden_factor : float, default 1.0
        Width of the MLP encoder's hidden layer, in units of k times the image size.

    Raises
    ------
    ParameterError
        If k or r is out of range or the encoder is unknown; from ``encode`` for a group of
        the wrong shape and from ``reconstruct`` for a group whose size is not k.
    DecodeError
        From ``reconstruct`` unless exactly one output is missing.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> code = LearnedCode(2, (1, 4, 4), n_classes=3)
    >>> tuple(code.encode(torch.rand(5, 2, 1, 4, 4)).shape)  # (B, r, C, H, W)
    (5, 1, 1, 4, 4)
    >>> rebuilt = code.reconstruct(torch.rand(1, 3), [torch.rand(3), None])
    >>> tuple(rebuilt.shape)
    (3,)
    """

    def __init__(
        self,
        k: int,
        input_shape: tuple[int, int, int],
        n_classes: int,
        *,
        encoder: str = "mlp",
        r: int = 1,
        hidden_factor: float = 1.0,
    ) -> None:
        super().__init__()
        self.k = check_range("k", k, 2, 8)
        self.r = check_range("r", r, 1, 1)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_classes = n_classes
        if encoder == "mlp":
            self.encoder: nn.Module = MLPEncoder(k, r, self.input_shape, hidden_factor)
        elif encoder == "conv":
            self.encoder = ConvEncoder(k, r, self.input_shape)
        else:
            raise ParameterError(f"encoder={encoder!r} is unknown (allowed: mlp, conv)")
        self.encoder_name = encoder
        self.decoder = MLPDecoder(k, r, n_classes)

    def encode(self, group: torch.Tensor) -> torch.Tensor:
        """Parity queries (B, r, C, H, W) for groups (B, k, C, H, W)."""
        if (
            group.ndim != 5
            or group.shape[1] != self.k
            or tuple(group.shape[2:]) != self.input_shape
        ):
            raise ParameterError(
                f"a coding group must be (B, {self.k}, {self.input_shape}), "
                f"got {tuple(group.shape)}"
            )
        return self.encoder(group)

    def decode_erased(
        self, outputs: torch.Tensor, parity_outputs: torch.Tensor, erased: torch.Tensor
    ) -> torch.Tensor:
        """Rebuild output ``erased[b]`` of each group b from the others and the parity outputs."""
        keep = torch.ones_like(outputs)
        rows = torch.arange(len(outputs))
        keep[rows, erased] = 0.0
        return self.decoder(outputs * keep, parity_outputs)[rows, erased]

    @torch.no_grad()
    def reconstruct(
        self, parity_outputs: torch.Tensor, outputs: Sequence[torch.Tensor | None]
    ) -> torch.Tensor:
        """Serving API: the one missing output (None) of a group of k single outputs."""
        if len(outputs) != self.k:
            raise ParameterError(f"this code was trained for k={self.k}; got {len(outputs)}")
        missing = [i for i, o in enumerate(outputs) if o is None]
        if len(missing) != 1:
            raise DecodeError(
                f"a learned r=1 code rebuilds one missing output; {len(missing)} are missing"
            )
        filled = torch.stack(
            [torch.zeros(self.n_classes) if o is None else o.reshape(-1) for o in outputs]
        ).unsqueeze(0)
        rebuilt = self.decode_erased(
            filled, parity_outputs.reshape(1, self.r, -1), torch.tensor(missing)
        )
        return rebuilt[0]


def erased_loss(
    rebuilt: torch.Tensor, target_logits: torch.Tensor, labels: torch.Tensor, loss: LossName
) -> torch.Tensor:
    """KL to the deployed softmax, MSE to its outputs, or cross-entropy to the label."""
    if loss == "kl":
        return functional.kl_div(
            functional.log_softmax(rebuilt, -1),
            functional.log_softmax(target_logits, -1),
            reduction="batchmean",
            log_target=True,
        )
    if loss == "mse":
        return functional.mse_loss(rebuilt, target_logits)
    if loss == "ce":
        return functional.cross_entropy(rebuilt, labels)
    raise ParameterError(f"loss={loss!r} is unknown (allowed: kl, mse, ce)")


def _rebuild_all(
    code: LearnedCode,
    deployed: nn.Module,
    x: torch.Tensor,
    outputs: torch.Tensor,
    groups: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every single-erasure case of ``groups``: (rebuilt (B*k, c), erased positions (B*k,))."""
    b, k = groups.shape
    parity_out = deployed(code.encode(x[groups]).flatten(0, 1)).reshape(b, code.r, -1)
    erased = torch.arange(k).repeat(b)
    rebuilt = code.decode_erased(
        outputs[groups].repeat_interleave(k, 0), parity_out.repeat_interleave(k, 0), erased
    )
    return rebuilt, erased


def train_learned_code(
    code: LearnedCode,
    deployed: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_val: torch.Tensor,
    optim: OptimConfig,
    *,
    loss: LossName = "kl",
    seed: int = 0,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> TrainHistory:
    """Train encoder and decoder through the frozen deployed model, all k erasures per group.

    Parameters
    ----------
    code : LearnedCode
        The code, trained in place.
    deployed : torch.nn.Module
        The deployed model (frozen: only the code learns).
    x, y : torch.Tensor
        Training images (N, C, H, W) and labels (labels are used only by the ``"ce"`` loss).
    x_val : torch.Tensor
        Validation images; the score is how often a rebuilt output's class differs from the
        deployed model's.
    optim : OptimConfig
        Epochs, batch size (in groups), Adam settings and patience.
    loss : {"kl", "mse", "ce"}, default "kl"
        KL to the deployed softmax, MSE to its outputs, or cross-entropy to the label.
    seed : int, default 0
        Seeds the groupings.
    checkpoint : Path, optional
        Save the training state here after every epoch (atomically).
    resume : bool, default False
        Continue from ``checkpoint`` if it exists.
    progress : bool, default False
        Show a progress bar on stderr.

    Returns
    -------
    TrainHistory
        Per-epoch training loss and validation error.

    Raises
    ------
    ParameterError
        If there are fewer than k images, or the checkpoint was written for another code.

    Examples
    --------
    >>> from redundancy.coded_inference.config import OptimConfig
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.rand(40, 1, 4, 4), torch.randint(0, 3, (40,))
    >>> deployed = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).requires_grad_(False)
    >>> code = LearnedCode(2, (1, 4, 4), n_classes=3)
    >>> history = train_learned_code(code, deployed, x[:32], y[:32], x[32:], OptimConfig(epochs=2))
    >>> len(history.train_loss)
    2
    """
    deployed.eval()
    for p in deployed.parameters():
        p.requires_grad_(False)
    outputs = predict_logits(deployed, x)
    val_outputs = predict_logits(deployed, x_val)
    val_groups = random_groups(len(x_val), code.k, torch.Generator().manual_seed(seed + 10_007))
    optimizer = adam(code, optim)

    def train_epoch(epoch: int) -> float:
        groups = random_groups(len(x), code.k, torch.Generator().manual_seed(seed + epoch))
        total = 0.0
        for i in range(0, len(groups), optim.batch_size):
            g = groups[i : i + optim.batch_size]
            rebuilt, erased = _rebuild_all(code, deployed, x, outputs, g)
            target = outputs[g].reshape(len(erased), -1)
            value = erased_loss(rebuilt, target, y[g].reshape(-1), loss)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            total += value.item() * len(g)
        return total / len(groups)

    def validate() -> float:
        rebuilt, _ = _rebuild_all(code, deployed, x_val, val_outputs, val_groups)
        return 1.0 - accuracy(
            rebuilt, val_outputs[val_groups].reshape(-1, val_outputs.shape[1]).argmax(-1)
        )

    meta = {"kind": "learned", "k": code.k, "encoder": code.encoder_name, "loss": loss}
    return run_epochs(
        code,
        optimizer,
        train_epoch,
        validate,
        optim,
        meta=meta,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        label=f"learned code k={code.k}",
    )


@torch.no_grad()
def evaluate_learned_code(
    code: LearnedCode, deployed: nn.Module, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0
) -> CodedAccuracy:
    """Score a learned code over every single erasure of seeded test groups.

    Parameters
    ----------
    code : LearnedCode
        The trained code.
    deployed : torch.nn.Module
        The deployed model it wraps.
    x, y : torch.Tensor
        Test images and labels.
    seed : int, default 0
        Seeds the grouping of the test set.

    Returns
    -------
    CodedAccuracy
        Available, degraded and reconstruction accuracy.

    Raises
    ------
    ParameterError
        If there are fewer than k test images.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 3, (20,))
    >>> deployed = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> result = evaluate_learned_code(LearnedCode(2, (1, 4, 4), 3), deployed, x, y)
    >>> result.method, 0.0 <= result.degraded <= 1.0
    ('learned code (mlp, k=2)', True)
    """
    code.eval()
    outputs = predict_logits(deployed, x)
    groups = random_groups(len(x), code.k, torch.Generator().manual_seed(seed))
    rebuilt, _ = _rebuild_all(code, deployed, x, outputs, groups)
    degraded, agree = degraded_scores(
        rebuilt, outputs[groups].reshape(rebuilt.shape), y[groups].reshape(-1)
    )
    return CodedAccuracy(
        f"learned code ({code.encoder_name}, k={code.k})", accuracy(outputs, y), degraded, agree
    )
