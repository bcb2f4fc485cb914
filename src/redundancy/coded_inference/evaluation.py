"""Accuracy of coded inference and its baselines, and overall accuracy against unavailability f.

available: the deployed model's accuracy (no output missing); degraded: accuracy against the
true label of the outputs served when the deployed output is unavailable; reconstruction:
how often such an output's class agrees with the deployed model's. Overall accuracy at
unavailability f is (1 - f) * available + f * degraded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from redundancy.coded_inference.codes import ParityCode, decode_all_erasures
from redundancy.coded_inference.training import accuracy, predict_logits, random_groups
from redundancy.errors import ParameterError


@dataclass(frozen=True)
class CodedAccuracy:
    """Accuracies of one way of serving predictions when a deployed output is unavailable.

    Parameters
    ----------
    method : str
        The way of serving, e.g. ``"ParM (addition, k=2)"`` or ``"cheap backup"``.
    available : float
        The deployed model's accuracy (no output missing), 0..1.
    degraded : float
        Accuracy against the true label of the outputs served in place of unavailable ones.
    reconstruction : float
        How often such an output's class agrees with the deployed model's.

    Raises
    ------
    ParameterError
        From ``overall`` for f outside 0..1.

    Examples
    --------
    >>> result = CodedAccuracy("ParM", available=0.9, degraded=0.8, reconstruction=0.85)
    >>> round(result.overall(0.5), 3)  # (1 - f) * available + f * degraded
    0.85
    """

    method: str
    available: float
    degraded: float
    reconstruction: float

    def overall(self, f: float) -> float:
        """Overall accuracy when a fraction ``f`` of deployed outputs is unavailable."""
        if not 0.0 <= f <= 1.0:
            raise ParameterError(f"unavailability f={f} is out of range (allowed: 0..1)")
        return (1.0 - f) * self.available + f * self.degraded

    def as_dict(self) -> dict[str, float | str]:
        """Plain fields, for JSON reports."""
        return asdict(self)


def degraded_scores(
    rebuilt: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float]:
    """(degraded accuracy vs labels, reconstruction accuracy vs the deployed argmax)."""
    degraded = accuracy(rebuilt, labels)
    agree = float((rebuilt.argmax(-1) == outputs.argmax(-1)).float().mean())
    return degraded, agree


def evaluate_parity_code(
    code: ParityCode, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0, method: str = ""
) -> CodedAccuracy:
    """Score ParM on a test set: seeded coding groups, every single-erasure case decoded.

    Parameters
    ----------
    code : ParityCode
        The deployed model, parity model and encoder.
    x, y : torch.Tensor
        Test images and labels.
    seed : int, default 0
        Seeds the grouping of the test set.
    method : str, optional
        Name in the result (default ``"ParM (<encoder>, k=<k>)"``).

    Returns
    -------
    CodedAccuracy
        Available, degraded and reconstruction accuracy.

    Raises
    ------
    ParameterError
        If the images do not fit the encoder, or there are fewer than k of them.

    Examples
    --------
    A linear model without bias is its own perfect parity model for the addition code, so
    every rebuilt output has the deployed model's class:

    >>> from torch import nn
    >>> from redundancy.coded_inference.codes import AdditionEncoder
    >>> _ = torch.manual_seed(0)
    >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, bias=False))
    >>> code = ParityCode(linear, linear, AdditionEncoder(2, (1, 4, 4)))
    >>> x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 3, (20,))
    >>> result = evaluate_parity_code(code, x, y)
    >>> result.method, result.reconstruction, result.degraded == result.available
    ('ParM (addition, k=2)', 1.0, True)
    """
    if x.shape[1:] != torch.Size(code.encoder.input_shape):
        raise ParameterError(
            f"test images {tuple(x.shape[1:])} do not fit the code's {code.encoder.input_shape}"
        )
    outputs = predict_logits(code.deployed, x)
    groups = random_groups(len(x), code.k, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        parity_out = predict_logits(code.parity, code.encode(x[groups]))
    rebuilt = decode_all_erasures(parity_out, outputs[groups])
    degraded, agree = degraded_scores(rebuilt, outputs[groups], y[groups])
    return CodedAccuracy(
        method or f"ParM ({code.encoder.name}, k={code.k})", accuracy(outputs, y), degraded, agree
    )


def default_prediction_baseline(
    y_train: torch.Tensor, deployed_logits: torch.Tensor, y: torch.Tensor
) -> CodedAccuracy:
    """Answer an unavailable query with the most frequent training label."""
    default = int(torch.bincount(y_train).argmax())
    fixed = torch.full_like(y, default)
    return CodedAccuracy(
        "default prediction",
        accuracy(deployed_logits, y),
        float((fixed == y).float().mean()),
        float((fixed == deployed_logits.argmax(-1)).float().mean()),
    )


def cheap_backup_baseline(
    cheap_logits: torch.Tensor, deployed_logits: torch.Tensor, y: torch.Tensor
) -> CodedAccuracy:
    """Answer an unavailable query with a smaller backup model's prediction."""
    degraded, agree = degraded_scores(cheap_logits, deployed_logits, y)
    return CodedAccuracy("cheap backup", accuracy(deployed_logits, y), degraded, agree)


def plot_overall(
    results: Sequence[CodedAccuracy], path: Path, title: str, points: int = 21
) -> None:
    """Overall accuracy vs unavailability f for each method, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from redundancy.storage_io import atomic_open

    fs = [i / (points - 1) for i in range(points)]
    fig, ax = plt.subplots(figsize=(6, 4))
    for result in results:
        ax.plot(fs, [100 * result.overall(f) for f in fs], label=result.method, marker=".")
    ax.set_xlabel("unavailability f")
    ax.set_ylabel("overall accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_open(Path(path)) as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def table(
    results: Sequence[CodedAccuracy], fs: Sequence[float] = (0.1, 0.5)
) -> tuple[list[str], list[list[str]]]:
    """Columns and cells of the results table (percentages), for ``ui.print_table``."""
    columns = ["method", "available %", "degraded %", "reconstruction %"]
    columns += [f"overall f={f:g} %" for f in fs]
    rows = [
        [r.method]
        + [f"{100 * v:.1f}" for v in (r.available, r.degraded, r.reconstruction)]
        + [f"{100 * r.overall(f):.1f}" for f in fs]
        for r in results
    ]
    return columns, rows


def markdown(results: Sequence[CodedAccuracy], fs: Sequence[float] = (0.1, 0.5)) -> str:
    """The results as a Markdown table (percentages)."""
    head = "| method | available | degraded | reconstruction | " + " | ".join(
        f"overall f={f:g}" for f in fs
    )
    lines = [head + " |", "|---" * (4 + len(fs)) + "|"]
    for r in results:
        cells = [f"{100 * v:.1f}%" for v in (r.available, r.degraded, r.reconstruction)]
        cells += [f"{100 * r.overall(f):.1f}%" for f in fs]
        lines.append(f"| {r.method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[CodedAccuracy], out_dir: Path, title: str) -> list[Path]:
    """Save results.json, results.md and overall.png (accuracy vs f) into ``out_dir``."""
    import json

    from redundancy.storage_io import atomic_write_bytes

    out_dir = Path(out_dir)
    paths = [out_dir / "results.json", out_dir / "results.md", out_dir / "overall.png"]
    payload = {"title": title, "results": [r.as_dict() for r in results]}
    atomic_write_bytes(paths[0], json.dumps(payload, indent=2).encode())
    atomic_write_bytes(paths[1], f"# {title}\n\n{markdown(results)}".encode())
    plot_overall(results, paths[2], title)
    return paths
