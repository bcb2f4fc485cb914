"""Request traces: bursty synthetic generators and loaders for the Azure LLM and BurstGPT CSVs.

A ``Trace`` holds numpy columns (arrival s, model index, input and output tokens) sorted by arrival,
so the simulator never builds a Python object per request.

Generators follow the published shapes: arrivals are a Gamma renewal process whose coefficient of
variation ``burst_cv`` > 1 gives bursts (cv = 1 is Poisson), optionally modulated by a slow
sinusoidal rate; lengths are log-normal with the requested means (conversation: ~750 input /
~240 output tokens, as Coral reports; code: long prompts, short answers, approximate).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from redundancy.errors import ConfigError, ParameterError


class WorkloadShape(BaseModel):
    """Length and arrival shape of a synthetic workload."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input_mean: float = Field(default=750.0, gt=0)
    input_sigma: float = Field(default=0.9, ge=0)  # log-normal shape parameter
    output_mean: float = Field(default=240.0, gt=0)
    output_sigma: float = Field(default=0.8, ge=0)
    max_tokens: int = Field(default=8192, ge=2)
    burst_cv: float = Field(default=2.0, gt=0)  # coefficient of variation of inter-arrivals
    rate_swing: float = Field(default=0.3, ge=0, lt=1)  # +-fraction of a slow rate wave
    swing_period_s: float = Field(default=600.0, gt=0)


SHAPES = {
    "conversation": WorkloadShape(),
    "code": WorkloadShape(input_mean=2000.0, input_sigma=0.7, output_mean=30.0, output_sigma=1.0),
    "poisson": WorkloadShape(burst_cv=1.0, rate_swing=0.0),
}


@dataclass
class Trace:
    """Requests sorted by arrival: times (s from start), model index, input/output token counts."""

    models: list[str]
    arrival: np.ndarray
    model: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)

    @property
    def duration(self) -> float:
        """Time of the last arrival (0 for an empty trace)."""
        return float(self.arrival[-1]) if len(self.arrival) else 0.0

    def rates(self) -> dict[str, float]:
        """Mean request rate per model (req/s) over the trace's span."""
        span = max(self.duration, 1e-9)
        counts = np.bincount(self.model, minlength=len(self.models))
        return {m: float(counts[i]) / span for i, m in enumerate(self.models)}


def _lognormal(rng: np.random.Generator, mean: float, sigma: float, n: int, cap: int) -> np.ndarray:
    mu = np.log(mean) - sigma**2 / 2  # E[lognormal] = exp(mu + sigma^2/2) = mean
    return np.clip(np.rint(rng.lognormal(mu, sigma, n)), 1, cap).astype(np.int64)


def _arrivals(rng: np.random.Generator, rate: float, duration: float, shape: WorkloadShape):
    """Gamma renewal arrivals at unit rate, time-warped so the intensity follows a slow wave."""
    k = 1.0 / shape.burst_cv**2
    expected = rate * duration
    n = int(expected + 6 * np.sqrt(expected * shape.burst_cv**2 + 1) + 10)
    unit = np.cumsum(rng.gamma(k, 1.0 / k, n))  # mean gap 1 in "work" units
    grid = np.linspace(0.0, duration, 2049)
    omega = 2 * np.pi / shape.swing_period_s
    phase = rng.uniform(0, 2 * np.pi)
    # Lambda(t) = rate * (t + swing/omega * (sin(omega t + phase) - sin(phase))) is increasing.
    work = rate * (grid + shape.rate_swing / omega * (np.sin(omega * grid + phase) - np.sin(phase)))
    unit = unit[unit < work[-1]]
    return np.interp(unit, work, grid)


def synthetic_trace(
    demand: dict[str, float],
    duration_s: float = 1800.0,
    shape: WorkloadShape | str = "conversation",
    seed: int = 0,
) -> Trace:
    """A bursty trace with ``demand[m]`` req/s on average for each model, for ``duration_s``.

    Parameters
    ----------
    demand : dict of str to float
        Mean arrival rate (req/s) per model.
    duration_s : float, default 1800
        Length of the trace.
    shape : WorkloadShape or {"conversation", "code"}, default "conversation"
        Burstiness (Gamma-renewal cv), rate swing and log-normal request lengths.
    seed : int, default 0
        Random seed.

    Returns
    -------
    Trace
        Arrivals (sorted), model index, input and output tokens per request.

    Raises
    ------
    ParameterError
        Unknown shape, non-positive duration, negative demand.

    Examples
    --------
    >>> trace = synthetic_trace({"A": 2.0, "B": 1.0}, 600, seed=0)
    >>> len(trace), trace.models
    (1855, ['A', 'B'])
    >>> {name: round(rate, 2) for name, rate in trace.rates().items()}
    {'A': 2.16, 'B': 0.93}
    """
    if isinstance(shape, str):
        if shape not in SHAPES:
            raise ParameterError(f"workload shape {shape!r} is unknown (allowed: {sorted(SHAPES)})")
        shape = SHAPES[shape]
    if duration_s <= 0:
        raise ParameterError(f"duration_s = {duration_s} is out of range (allowed: > 0)")
    for name, rate in demand.items():
        if rate < 0:
            raise ParameterError(f"demand of {name} = {rate} is out of range (allowed: >= 0)")
    rng = np.random.default_rng(seed)
    models = list(demand)
    parts = []
    for index, name in enumerate(models):
        times = _arrivals(rng, demand[name], duration_s, shape) if demand[name] > 0 else []
        times = np.asarray(times, dtype=float)
        n = len(times)
        parts.append(
            (
                times,
                np.full(n, index, dtype=np.int64),
                _lognormal(rng, shape.input_mean, shape.input_sigma, n, shape.max_tokens),
                _lognormal(rng, shape.output_mean, shape.output_sigma, n, shape.max_tokens),
            )
        )
    return _sorted(models, *(np.concatenate([p[i] for p in parts]) for i in range(4)))


def _sorted(models, arrival, model, inp, out) -> Trace:
    order = np.argsort(arrival, kind="stable")
    return Trace(
        models, arrival[order].astype(float), model[order], inp[order], out[order]
    )  # fmt: skip


AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
BURSTGPT_COLUMNS = ("Timestamp", "Model", "Request tokens", "Response tokens")


def _azure_time(text: str) -> float:
    head, _, frac = text.strip().partition(".")
    base = datetime.fromisoformat(head.replace("T", " ").rstrip("Z"))
    return base.timestamp() + (float("0." + frac.rstrip("Z")) if frac else 0.0)


def load_trace(
    path: str | Path,
    models: list[str] | None = None,
    rate_scale: float = 1.0,
    duration_s: float | None = None,
) -> Trace:
    """Read an Azure LLM inference trace CSV or a BurstGPT CSV (detected from the header).

    Azure rows map to ``models[0]``; BurstGPT rows keep their ``Model`` column, mapped onto
    ``models`` by order of first appearance (round-robin when there are more names than models).
    Failed BurstGPT rows (0 response tokens) are skipped. Times start at 0; ``rate_scale`` > 1
    compresses them (more req/s).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    models : list of str, optional
        Model names the requests are mapped onto (default: ``["model"]`` for Azure, the trace's
        own names for BurstGPT).
    rate_scale : float, default 1.0
        Divides every arrival time (> 1: more requests per second).
    duration_s : float, optional
        Keep only the requests arriving in the first ``duration_s`` seconds (after scaling).

    Returns
    -------
    Trace
        Arrivals sorted by time, with each request's model, input and output tokens.

    Raises
    ------
    ParameterError
        ``rate_scale`` is not > 0.
    ConfigError
        The file is missing, its header is neither format, a line is malformed (named by its
        number), or it holds no requests.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "azure.csv"
    >>> _ = path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\\n"
    ...                     "2023-11-16 18:15:46.6805900,374,44\\n"
    ...                     "2023-11-16 18:15:50.9951690,396,109\\n")
    >>> trace = load_trace(path, models=["Phi4-14B"], rate_scale=2.0)
    >>> trace.models, trace.arrival.round(3).tolist(), trace.output_tokens.tolist()
    (['Phi4-14B'], [0.0, 2.157], [44, 109])
    """
    path = Path(path)
    if rate_scale <= 0:
        raise ParameterError(f"rate_scale = {rate_scale} is out of range (allowed: > 0)")
    if not path.is_file():
        raise ConfigError(f"cannot read trace {path}: no such file")
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if all(c in header for c in AZURE_COLUMNS):
            kind, columns = "azure", AZURE_COLUMNS
        elif all(c in header for c in BURSTGPT_COLUMNS):
            kind, columns = "burstgpt", BURSTGPT_COLUMNS
        else:
            raise ConfigError(
                f"{path}: header {header} is neither Azure {list(AZURE_COLUMNS)} "
                f"nor BurstGPT {list(BURSTGPT_COLUMNS)}"
            )
        where = [header.index(c) for c in columns]
        times, names, inputs, outputs = [], [], [], []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                cells = [row[i] for i in where]
                if kind == "azure":
                    t, name = _azure_time(cells[0]), ""
                    n_in, n_out = int(cells[1]), int(cells[2])
                else:
                    t, name = float(cells[0]), cells[1].strip()
                    n_in, n_out = int(float(cells[2])), int(float(cells[3]))
            except (IndexError, ValueError) as exc:
                raise ConfigError(f"{path}, line {line_no}: malformed row {row} ({exc})") from None
            if n_in < 0 or n_out < 0 or not np.isfinite(t):
                raise ConfigError(f"{path}, line {line_no}: negative token count or bad time")
            if kind == "burstgpt" and n_out == 0:
                continue
            times.append(t)
            names.append(name)
            inputs.append(max(n_in, 1))
            outputs.append(max(n_out, 1))
    if not times:
        raise ConfigError(f"{path}: no requests")
    targets = models or (["model"] if kind == "azure" else list(dict.fromkeys(names)))
    seen = list(dict.fromkeys(names))
    index = {name: i % len(targets) for i, name in enumerate(seen)}
    arrival = np.asarray(times, dtype=float)
    arrival = (arrival - arrival.min()) / rate_scale
    model = np.array([index[n] for n in names], dtype=np.int64)
    trace = _sorted(targets, arrival, model, np.array(inputs), np.array(outputs))
    if duration_s is not None:
        keep = trace.arrival <= duration_s
        trace = Trace(
            targets, trace.arrival[keep], trace.model[keep],
            trace.input_tokens[keep], trace.output_tokens[keep],
        )  # fmt: skip
    return trace
