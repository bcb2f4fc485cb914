"""Serving measurements: latency percentiles, throughput, and how good approximate answers are.

An approximate answer (decoded by ParM or from the cheap backup) is scored two ways, as in the
ParM paper: agreement of its class with the deployed model's own class, and accuracy against
the true label when labels are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from redundancy.coded_inference.serving.frontend import Answer
from redundancy.coded_inference.serving.simulation import RunResult


@dataclass(frozen=True)
class ServingReport:
    """One strategy's numbers (latencies in milliseconds, over the answered queries).

    ``answered + failed == submitted`` for every run: each query sent is answered (exactly or
    approximately) or failed with a reason.

    Attributes
    ----------
    strategy : str
        The strategy served.
    submitted, answered, failed : int
        Queries sent, answered, and answered with a failure.
    median_ms, p99_ms, p999_ms : float
        Latency percentiles.
    throughput_qps : float
        Answers per second of the run's duration.
    reconstructed : float
        Approximate share of the answers (decoded or backup).
    approx_agreement : float
        How often an approximate answer's class agrees with the deployed model's.
    approx_accuracy : float
        Accuracy of the approximate answers against the labels (nan without labels).
    accuracy : float
        Accuracy of all answers against the labels (nan without labels).
    work_ms : float, default nan
        Instance milliseconds per submitted query (simulator only).

    Examples
    --------
    >>> from torch import nn
    >>> from redundancy.coded_inference.codes import AdditionEncoder, ParityCode
    >>> from redundancy.coded_inference.serving import ServingConfig, ServingModels, simulate
    >>> _ = torch.manual_seed(0)
    >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, bias=False))  # its own parity model
    >>> cheap = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> models = ServingModels(ParityCode(linear, linear, AdditionEncoder(2, (1, 4, 4))), cheap)
    >>> config = ServingConfig(data_instances=4, queries=200)
    >>> result = simulate(config, models, torch.rand(20, 1, 4, 4))
    >>> report = summarize(result, linear)
    >>> report.answered + report.failed == report.submitted, report.approx_agreement
    (True, 1.0)
    >>> report.tail_gap_ms == report.p999_ms - report.median_ms
    True
    """

    strategy: str
    submitted: int
    answered: int
    failed: int
    median_ms: float
    p99_ms: float
    p999_ms: float
    throughput_qps: float
    reconstructed: float
    approx_agreement: float
    approx_accuracy: float
    accuracy: float
    work_ms: float = float("nan")  # instance milliseconds per submitted query (simulator only)

    @property
    def tail_gap_ms(self) -> float:
        """p99.9 minus median: the spread ParM tries to shrink."""
        return self.p999_ms - self.median_ms

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain values, for JSON."""
        return {**asdict(self), "tail_gap_ms": self.tail_gap_ms}


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) * 1e3 if len(values) else float("nan")


def summarize(
    result: RunResult,
    deployed: torch.nn.Module,
    labels: torch.Tensor | None = None,
) -> ServingReport:
    """Measure one run: latency percentiles, throughput and approximate-answer quality.

    Parameters
    ----------
    result : RunResult
        The run.
    deployed : torch.nn.Module
        The deployed model, whose own classes the approximate answers are compared with.
    labels : torch.Tensor, optional
        ``labels[j]`` is the true class of ``result.inputs[j]`` (indices taken modulo its
        length); without labels the accuracies are nan.

    Returns
    -------
    ServingReport
        The run's numbers.

    Examples
    --------
    >>> from torch import nn
    >>> from redundancy.coded_inference.codes import AdditionEncoder, ParityCode
    >>> from redundancy.coded_inference.serving import ServingConfig, ServingModels, simulate
    >>> _ = torch.manual_seed(0)
    >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, bias=False))  # its own parity model
    >>> cheap = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> models = ServingModels(ParityCode(linear, linear, AdditionEncoder(2, (1, 4, 4))), cheap)
    >>> config = ServingConfig(data_instances=4, queries=200)
    >>> result = simulate(config, models, torch.rand(20, 1, 4, 4))
    >>> report = summarize(result, linear, labels=torch.zeros(20, dtype=torch.long))
    >>> report.strategy, report.answered, 0.0 <= report.accuracy <= 1.0
    ('parm', 200, True)
    """
    answers: Sequence[Answer] = sorted(result.answers, key=lambda a: a.query_id)
    lat = np.array([a.latency for a in answers])
    nan = float("nan")
    failed = len(result.failed)
    if not answers:
        return ServingReport(
            result.strategy, result.submitted, 0, failed, nan, nan, nan, 0.0, 0, nan, nan, nan
        )
    ids = torch.tensor([a.query_id for a in answers])
    with torch.no_grad():
        own = deployed(result.inputs[ids]).argmax(-1)
    got = torch.stack([a.output for a in answers]).argmax(-1)
    approx = torch.tensor([a.approximate for a in answers])
    agreement = float((got[approx] == own[approx]).float().mean()) if approx.any() else nan
    accuracy = approx_accuracy = nan
    if labels is not None:
        truth = labels[ids % len(labels)]
        accuracy = float((got == truth).float().mean())
        if approx.any():
            approx_accuracy = float((got[approx] == truth[approx]).float().mean())
    return ServingReport(
        strategy=result.strategy,
        submitted=result.submitted,
        answered=len(answers),
        failed=failed,
        median_ms=_pct(lat, 0.5),
        p99_ms=_pct(lat, 0.99),
        p999_ms=_pct(lat, 0.999),
        throughput_qps=len(answers) / result.duration if result.duration > 0 else float("nan"),
        reconstructed=float(approx.float().mean()),
        approx_agreement=agreement,
        approx_accuracy=approx_accuracy,
        accuracy=accuracy,
        work_ms=result.busy_seconds * 1e3 / result.submitted,
    )


TABLE_COLUMNS = (
    "strategy",
    "answered",
    "failed",
    "median ms",
    "p99 ms",
    "p99.9 ms",
    "p99.9-median ms",
    "qps",
    "approx. %",
    "approx. agree %",
    "accuracy %",
)


def table_rows(reports: Sequence[ServingReport]) -> list[list[str]]:
    """Cells of ``TABLE_COLUMNS`` for each report (for ``ui.print_table``; no ``nan%``)."""
    from redundancy.ui import format_number

    def pct(x: float) -> str:
        return format_number(100 * x, 3)

    return [
        [
            r.strategy,
            f"{r.answered}/{r.submitted}",
            str(r.failed),
            format_number(r.median_ms, 4),
            format_number(r.p99_ms, 4),
            format_number(r.p999_ms, 4),
            format_number(r.tail_gap_ms, 4),
            format_number(r.throughput_qps, 4),
            pct(r.reconstructed),
            pct(r.approx_agreement),
            pct(r.accuracy),
        ]
        for r in reports
    ]


def markdown(reports: Sequence[ServingReport], title: str = "") -> str:
    """Format reports as a Markdown table, one strategy per row.

    Parameters
    ----------
    reports : sequence of ServingReport
        The reports.
    title : str, optional
        A line put above the table.

    Returns
    -------
    str
        The table, ending with a newline.

    Examples
    --------
    >>> report = ServingReport("parm", 10, 10, 0, 12.0, 30.0, 41.5, 380.0, 0.2, 1.0, 0.9, 0.95)
    >>> print(markdown([report]).splitlines()[-1])
    | parm | 10/10 | 0 | 12.0 | 30.0 | 41.5 | 29.5 | 380 | 20.00% | 100.0% | 95.0% |
    """
    head = (
        "| strategy | answered | failed | median ms | p99 ms | p99.9 ms | p99.9-median ms | qps "
        "| approx. | approx. agree | accuracy |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = "".join(
        f"| {r.strategy} | {r.answered}/{r.submitted} | {r.failed} | {r.median_ms:.1f} "
        f"| {r.p99_ms:.1f} "
        f"| {r.p999_ms:.1f} | {r.tail_gap_ms:.1f} | {r.throughput_qps:.0f} "
        f"| {100 * r.reconstructed:.2f}% | {100 * r.approx_agreement:.1f}% "
        f"| {100 * r.accuracy:.1f}% |\n"
        for r in reports
    )
    return (f"{title}\n\n" if title else "") + head + rows


def plot_cdfs(results: Sequence[RunResult], path: Path, title: str = "") -> Path:
    """Latency CDFs of several runs on a log x axis, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from redundancy.storage_io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 4))
    for result in results:
        lat = np.sort(result.latencies()) * 1e3
        if len(lat):
            ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=result.strategy)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of queries answered")
    ax.set_ylim(0.9, 1.0005)
    ax.set_title(title or "latency CDF (upper 10%)")
    ax.legend()
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
