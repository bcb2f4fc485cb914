"""Availability over time: how many nodes of each (region, config) can be had at each moment.

``AvailabilityTrace`` is a step function: at ``times[i]`` the counts become ``counts[i]``. The
generator makes each (region, config) wander between ``low`` and 1 times its catalog count as a
seeded mean-reverting random walk (spot-style fluctuation); the CSV loader reads
``time_s,region,config,available`` rows (a missing pair at a time keeps its previous value).
"""

from __future__ import annotations

import csv
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from redundancy.coral.planner.catalog import Scenario
from redundancy.errors import ConfigError, ParameterError

Key = tuple[str, str]  # (region, config)
AVAILABILITY_COLUMNS = ("time_s", "region", "config", "available")


@dataclass
class AvailabilityTrace:
    """Step function of node counts per (region, config)."""

    keys: list[Key]
    times: np.ndarray  # increasing, times[0] == 0
    counts: np.ndarray  # (len(times), len(keys)) int

    def at(self, t: float) -> dict[Key, int]:
        """Counts in force at time ``t``."""
        row = max(bisect_right(self.times.tolist(), t) - 1, 0)
        return {k: int(v) for k, v in zip(self.keys, self.counts[row], strict=True)}

    def apply(self, scenario: Scenario, t: float) -> Scenario:
        """A copy of ``scenario`` whose regions have the availability in force at ``t``."""
        now = self.at(t)
        regions = []
        for region in scenario.regions:
            avail = dict(region.availability)
            for (r, c), n in now.items():
                if r == region.name:
                    avail[c] = n
            regions.append(region.model_copy(update={"availability": avail}))
        return scenario.model_copy(update={"regions": regions})


def constant_availability(scenario: Scenario) -> AvailabilityTrace:
    """The scenario's own availability, unchanged over time.

    Parameters
    ----------
    scenario : Scenario
        Its regions' availability is used.

    Returns
    -------
    AvailabilityTrace
        One step at t = 0.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> scenario = load_scenario({"models": {"Phi4-14B": 3.0}, "gpus": ["L40S"],
    ...                           "gpus_per_node": [1], "regions": ["aws-us-east-2"]})
    >>> constant_availability(scenario).at(1e6)
    {('aws-us-east-2', 'L40Sx1'): 8}
    """
    keys = [(r.name, c) for r in scenario.regions for c in sorted(r.availability)]
    by_name = {r.name: r.availability for r in scenario.regions}
    counts = np.array([[by_name[r][c] for r, c in keys]])
    return AvailabilityTrace(keys, np.zeros(1), counts.reshape(1, len(keys)))


def fluctuating_availability(
    scenario: Scenario,
    duration_s: float = 1800.0,
    step_s: float = 360.0,
    low: float = 0.5,
    volatility: float = 0.25,
    seed: int = 0,
) -> AvailabilityTrace:
    """Each (region, config) count = round(base * f), f a mean-reverting walk in [low, 1].

    Parameters
    ----------
    scenario : Scenario
        Base counts (its regions' availability).
    duration_s : float, default 1800
        Length of the trace.
    step_s : float, default 360
        Time between changes.
    low : float, default 0.5
        Smallest fraction of the base count.
    volatility : float, default 0.25
        Size of each step of the walk.
    seed : int, default 0
        Random seed.

    Returns
    -------
    AvailabilityTrace
        Counts per (region, config) at each step.

    Raises
    ------
    ParameterError
        ``low`` outside 0..1, non-positive durations, negative volatility.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> scenario = load_scenario({"models": {"Phi4-14B": 3.0}, "gpus": ["L40S"],
    ...                           "gpus_per_node": [1], "regions": ["aws-us-east-2"]})
    >>> trace = fluctuating_availability(scenario, 3600, seed=0)
    >>> [trace.at(t)[("aws-us-east-2", "L40Sx1")] for t in (0, 1800, 3599)]
    [7, 7, 4]
    """
    if not 0 <= low <= 1:
        raise ParameterError(f"low = {low} is out of range (allowed: 0..1)")
    if step_s <= 0 or duration_s <= 0:
        raise ParameterError("step_s and duration_s must be > 0")
    if volatility < 0:
        raise ParameterError(f"volatility = {volatility} is out of range (allowed: >= 0)")
    base = constant_availability(scenario)
    rng = np.random.default_rng(seed)
    steps = int(np.ceil(duration_s / step_s))
    centre = (1 + low) / 2
    frac = np.empty((steps, len(base.keys)))
    frac[0] = rng.uniform(low, 1, len(base.keys))
    for i in range(1, steps):
        drift = 0.3 * (centre - frac[i - 1])
        noise = volatility * rng.normal(size=len(base.keys))
        frac[i] = np.clip(frac[i - 1] + drift + noise, low, 1)
    counts = np.rint(frac * base.counts[0]).astype(np.int64)
    return AvailabilityTrace(base.keys, np.arange(steps) * step_s, counts)


def load_availability(path: str | Path, scenario: Scenario | None = None) -> AvailabilityTrace:
    """Read a ``time_s,region,config,available`` CSV; errors name the line number."""
    path = Path(path)
    rows: dict[float, dict[Key, int]] = {}
    if not path.is_file():
        raise ConfigError(f"cannot read availability {path}: no such file")
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if list(AVAILABILITY_COLUMNS) != header[:4]:
            raise ConfigError(f"{path}: header must start with {list(AVAILABILITY_COLUMNS)}")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                t, region, config, n = float(row[0]), row[1].strip(), row[2].strip(), int(row[3])
            except (IndexError, ValueError) as exc:
                raise ConfigError(f"{path}, line {line_no}: malformed row {row} ({exc})") from None
            if t < 0 or n < 0:
                raise ConfigError(f"{path}, line {line_no}: time_s and available must be >= 0")
            rows.setdefault(t, {})[(region, config)] = n
    if not rows:
        raise ConfigError(f"{path}: no rows")
    start = constant_availability(scenario).at(0) if scenario else {}
    keys = sorted(set(start) | {k for step in rows.values() for k in step})
    times = sorted(rows)
    if times[0] > 0:
        times.insert(0, 0.0)
    counts = np.zeros((len(times), len(keys)), dtype=np.int64)
    current = {k: start.get(k, 0) for k in keys}
    for i, t in enumerate(times):
        current.update(rows.get(t, {}))
        counts[i] = [current[k] for k in keys]
    return AvailabilityTrace(keys, np.asarray(times, dtype=float), counts)


def save_availability(trace: AvailabilityTrace, path: str | Path) -> None:
    """Write ``trace`` in the CSV format ``load_availability`` reads (atomically)."""
    from redundancy.storage_io import atomic_write_bytes

    lines = [",".join(AVAILABILITY_COLUMNS)]
    for t, row in zip(trace.times, trace.counts, strict=True):
        lines += [f"{t:g},{r},{c},{int(n)}" for (r, c), n in zip(trace.keys, row, strict=True)]
    atomic_write_bytes(Path(path), ("\n".join(lines) + "\n").encode())
