"""Injected slowness: heavy-tailed background delays, slow periods, slowdowns and crashes.

The same ``LatencyModel`` drives the simulator (it draws whole service times) and the real-time
executors (they sleep the drawn background delay before running the model), so a seed gives the
same sequence of per-instance delays in both.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from redundancy.coded_inference.serving.config import FaultConfig, LatencyConfig
from redundancy.coded_inference.serving.frontend import Role


class LatencyModel:
    """Per-instance seeded draws of service time and background-load delay (seconds)."""

    def __init__(
        self,
        config: LatencyConfig,
        n_instances: int,
        *,
        k: int = 2,
        faults: FaultConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.config, self.k = config, k
        self._rngs = [np.random.default_rng([seed, i]) for i in range(n_instances)]
        self._hog_rngs = [np.random.default_rng([seed, i, 1]) for i in range(n_instances)]
        self._hog_starts: list[list[float]] = [[] for _ in range(n_instances)]
        self._hog_ends: list[list[float]] = [[] for _ in range(n_instances)]
        self._hog_horizon = [0.0] * n_instances
        self._slowdowns: dict[int, list[tuple[float, float, float]]] = {}
        for s in (faults or FaultConfig()).slowdowns:
            self._slowdowns.setdefault(s.instance, []).append(
                (s.start_ms / 1e3, s.end_ms / 1e3, s.factor)
            )

    def base(self, instance: int, role: Role) -> float:
        """Seconds of model work for one request (jittered; a cheap model is k times faster)."""
        c = self.config
        work = c.service_ms / 1e3 / (self.k if role == "cheap" else 1)
        if c.jitter:
            work *= math.exp(c.jitter * self._rngs[instance].standard_normal())
        return work

    def background(self, instance: int) -> float:
        """Seconds of extra delay from background load: zero, or a capped Pareto draw."""
        c = self.config
        rng = self._rngs[instance]
        if c.slow_prob == 0.0 or rng.random() >= c.slow_prob:
            return 0.0
        return min(c.slow_scale_ms * (1.0 + rng.pareto(c.pareto_alpha)), c.max_slow_ms) / 1e3

    def hogged(self, instance: int, now: float) -> bool:
        """Whether ``instance`` is in one of its seeded slow periods at time ``now``."""
        c = self.config
        if c.hog_factor == 1.0:
            return False
        rng = self._hog_rngs[instance]
        starts, ends = self._hog_starts[instance], self._hog_ends[instance]
        while self._hog_horizon[instance] <= now:
            start = self._hog_horizon[instance] + rng.exponential(c.hog_gap_ms / 1e3)
            starts.append(start)
            ends.append(start + rng.exponential(c.hog_ms / 1e3))
            self._hog_horizon[instance] = ends[-1]
        j = bisect.bisect_right(starts, now) - 1
        return j >= 0 and now < ends[j]

    def factor(self, instance: int, now: float) -> float:
        """Slowdown factor of ``instance`` at time ``now``: injected windows times slow periods."""
        factor = self.config.hog_factor if self.hogged(instance, now) else 1.0
        for start, end, window in self._slowdowns.get(instance, ()):
            if start <= now < end:
                return factor * window
        return factor

    def service(self, instance: int, role: Role, start: float) -> float:
        """Total seconds a request started at ``start`` occupies ``instance``."""
        return self.base(instance, role) * self.factor(instance, start) + self.background(instance)


class CrashSchedule:
    """When each instance is down: sorted [crash, restart) windows in seconds."""

    def __init__(self, faults: FaultConfig | None = None) -> None:
        self.windows: dict[int, list[tuple[float, float]]] = {}
        for c in (faults or FaultConfig()).crashes:
            restart = math.inf if c.restart_ms is None else c.restart_ms / 1e3
            self.windows.setdefault(c.instance, []).append((c.at_ms / 1e3, restart))
        for w in self.windows.values():
            w.sort()

    def events(self) -> list[tuple[float, str, int]]:
        """(time, "crash" | "restart", instance), in time order, for real-time executors."""
        out = []
        for i, ws in self.windows.items():
            for a, b in ws:
                out.append((a, "crash", i))
                if math.isfinite(b):
                    out.append((b, "restart", i))
        return sorted(out)
