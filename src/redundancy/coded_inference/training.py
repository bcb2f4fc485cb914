"""Trainers: the deployed classifier, and ParM's parity model (MSE to the sum of frozen outputs).

Both run one shared epoch loop with Adam, early stopping on a validation split (the best
weights are restored), an optional progress bar on stderr, and an optional checkpoint written
atomically after every epoch so a run can be resumed where it stopped.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from redundancy.coded_inference.codes import Encoder
from redundancy.coded_inference.config import OptimConfig
from redundancy.errors import ParameterError
from redundancy.storage_io import atomic_write_bytes


@dataclass
class TrainHistory:
    """Per-epoch training loss and validation score (lower is better), and how it ended."""

    train_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    resumed_from: int = 0


@contextmanager
def _bar(enabled: bool, total: int, label: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (``redundancy.ui.progress``), or nothing when not ``enabled``."""
    if not enabled:
        yield lambda: None
        return
    from redundancy.ui import progress

    with progress(label, total=total) as advance:
        yield lambda: advance(1)


def run_epochs(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_epoch: Callable[[int], float],
    validate: Callable[[], float],
    optim: OptimConfig,
    *,
    meta: dict[str, object],
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = False,
    label: str = "training",
) -> TrainHistory:
    """Train ``module`` epoch by epoch with early stopping; restore the best weights at the end.

    ``meta`` (e.g. k and encoder) is stored in the checkpoint and must match on resume, so a
    checkpoint for another code is refused instead of silently continued.
    """
    history = TrainHistory()
    best_state = copy.deepcopy(module.state_dict())
    best, bad, start = float("inf"), 0, 0
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state.get("meta") != meta:
            raise ParameterError(
                f"checkpoint {checkpoint} was written for {state.get('meta')}, not {meta}"
            )
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        best_state, best, bad = state["best_model"], state["best"], state["bad"]
        history.train_loss, history.val_score = state["train_loss"], state["val_score"]
        history.best_epoch = state["best_epoch"]
        start = history.resumed_from = state["epoch"] + 1
    with _bar(progress, optim.epochs - start, label) as advance:
        for epoch in range(start, optim.epochs):
            module.train()
            history.train_loss.append(float(train_epoch(epoch)))
            module.eval()
            with torch.no_grad():
                score = float(validate())
            history.val_score.append(score)
            if score < best:
                best, bad, history.best_epoch = score, 0, epoch
                best_state = copy.deepcopy(module.state_dict())
            else:
                bad += 1
            if checkpoint is not None:
                _save_checkpoint(
                    checkpoint, module, optimizer, epoch, best_state, best, bad, history, meta
                )
            advance()
            if bad >= optim.patience:
                history.stopped_early = epoch + 1 < optim.epochs
                break
    module.load_state_dict(best_state)
    module.eval()
    return history


def _save_checkpoint(
    path: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    best_state: dict,
    best: float,
    bad: int,
    history: TrainHistory,
    meta: dict[str, object],
) -> None:
    buffer = io.BytesIO()
    torch.save(
        {
            "model": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "best_model": best_state,
            "best": best,
            "bad": bad,
            "meta": meta,
            "train_loss": history.train_loss,
            "val_score": history.val_score,
            "best_epoch": history.best_epoch,
        },
        buffer,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())


def adam(module: nn.Module, optim: OptimConfig) -> torch.optim.Adam:
    """Adam with the configured learning rate and weight decay (paper: 1e-3, 1e-5)."""
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """The model's raw outputs for ``x`` in eval mode, batched."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose argmax equals the label."""
    return float((logits.argmax(dim=-1) == labels).float().mean())


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    optim: OptimConfig,
    *,
    seed: int = 0,
    progress: bool = False,
    checkpoint: Path | None = None,
    resume: bool = False,
    label: str = "deployed model",
) -> TrainHistory:
    """Train a classifier with cross-entropy and Adam; early stopping on validation error.

    The best weights (lowest validation error) are restored at the end.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier, trained in place.
    x, y : torch.Tensor
        Training images (N, C, H, W) and int64 labels (N,).
    x_val, y_val : torch.Tensor
        Validation images and labels.
    optim : OptimConfig
        Epochs, batch size, Adam settings and patience.
    seed : int, default 0
        Seeds the batch order of each epoch.
    progress : bool, default False
        Show a progress bar on stderr.
    checkpoint : Path, optional
        Save the training state here after every epoch (atomically).
    resume : bool, default False
        Continue from ``checkpoint`` if it exists.
    label : str, default "deployed model"
        Name shown on the progress bar.

    Returns
    -------
    TrainHistory
        Per-epoch training loss and validation error, the best epoch, and whether it stopped
        early.

    Raises
    ------
    ParameterError
        If images and labels differ in number, or the checkpoint was written for another run.

    Examples
    --------
    >>> from redundancy.coded_inference.config import OptimConfig
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.rand(32, 1, 4, 4), torch.randint(0, 3, (32,))
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> history = fit_classifier(model, x[:24], y[:24], x[24:], y[24:], OptimConfig(epochs=2))
    >>> len(history.train_loss), len(history.val_score)
    (2, 2)
    """
    if len(x) != len(y):
        raise ParameterError(f"{len(x)} images but {len(y)} labels")
    optimizer = adam(model, optim)

    def train_epoch(epoch: int) -> float:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + epoch))
        total = 0.0
        for i in range(0, len(x), optim.batch_size):
            idx = order[i : i + optim.batch_size]
            loss = functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        return total / len(x)

    return run_epochs(
        model,
        optimizer,
        train_epoch,
        lambda: 1.0 - accuracy(predict_logits(model, x_val), y_val),
        optim,
        meta={"kind": "classifier"},
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        label=label,
    )


def random_groups(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """A random partition of ``n`` indices into groups of k, shape (n // k, k)."""
    if n < k:
        raise ParameterError(f"need at least k={k} samples to form a coding group, got {n}")
    order = torch.randperm(n, generator=generator)
    return order[: (n // k) * k].reshape(-1, k)


def train_parity_model(
    deployed: nn.Module,
    parity: nn.Module,
    encoder: Encoder,
    x: torch.Tensor,
    x_val: torch.Tensor,
    optim: OptimConfig,
    *,
    groups_per_epoch: int = 1,
    seed: int = 0,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> TrainHistory:
    """Train ``parity`` so F_P(encode(X_1..X_k)) approximates sum_i F(X_i) (MSE).

    The deployed model is frozen; its outputs on every training image are computed once. Each
    epoch draws ``groups_per_epoch`` fresh random groupings; any one of the k outputs can be
    the missing one, and the subtraction decoder needs the same target for all of them.

    Parameters
    ----------
    deployed : torch.nn.Module
        The deployed model F (not changed).
    parity : torch.nn.Module
        The parity model F_P, trained in place (ParM gives it F's architecture).
    encoder : Encoder
        Turns a group of k images into the parity query.
    x : torch.Tensor
        Training images (N, C, H, W), N >= k; no labels are needed.
    x_val : torch.Tensor
        Validation images (at least k).
    optim : OptimConfig
        Epochs, batch size (in groups), Adam settings and patience.
    groups_per_epoch : int, default 1
        Random groupings of ``x`` per epoch.
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
        Per-epoch training MSE and validation MSE.

    Raises
    ------
    ParameterError
        If the images do not fit the encoder, there are fewer than k of them, or the
        checkpoint was written for another code.

    Examples
    --------
    >>> from redundancy.coded_inference.codes import AdditionEncoder
    >>> from redundancy.coded_inference.config import OptimConfig
    >>> _ = torch.manual_seed(0)
    >>> x = torch.rand(40, 1, 4, 4)
    >>> deployed = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> parity = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> encoder = AdditionEncoder(2, (1, 4, 4))
    >>> history = train_parity_model(
    ...     deployed, parity, encoder, x[:32], x[32:], OptimConfig(epochs=3)
    ... )
    >>> len(history.val_score), history.val_score[-1] < history.val_score[0]
    (3, True)
    """
    if x.shape[1:] != torch.Size(encoder.input_shape):
        raise ParameterError(
            f"images of shape {tuple(x.shape[1:])} do not fit the encoder's {encoder.input_shape}"
        )
    k = encoder.k
    targets = predict_logits(deployed, x)
    val_groups = random_groups(len(x_val), k, torch.Generator().manual_seed(seed + 10_007))
    val_query = encoder.encode(x_val[val_groups])
    val_target = predict_logits(deployed, x_val)[val_groups].sum(dim=1)
    optimizer = adam(parity, optim)

    def train_epoch(epoch: int) -> float:
        gen = torch.Generator().manual_seed(seed + epoch)
        groups = torch.cat([random_groups(len(x), k, gen) for _ in range(groups_per_epoch)])
        total = 0.0
        for i in range(0, len(groups), optim.batch_size):
            g = groups[i : i + optim.batch_size]
            loss = functional.mse_loss(parity(encoder.encode(x[g])), targets[g].sum(dim=1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(g)
        return total / len(groups)

    def validate() -> float:
        return float(functional.mse_loss(predict_logits(parity, val_query), val_target))

    return run_epochs(
        parity,
        optimizer,
        train_epoch,
        validate,
        optim,
        meta={"kind": "parity", "k": k, "encoder": encoder.name},
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        label=f"parity model k={k}",
    )
