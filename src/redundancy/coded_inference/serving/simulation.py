"""Deterministic in-process backend: every instance is a FIFO server in virtual time.

Model outputs are real (the instance's model runs on the query), latencies are drawn from a
seeded ``LatencyModel`` and crashes from a ``CrashSchedule``; the same seed gives the same
answers, so tests of the frontend's latency logic are exact and take milliseconds.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from redundancy.coded_inference.serving.config import ServingConfig
from redundancy.coded_inference.serving.faults import CrashSchedule, LatencyModel
from redundancy.coded_inference.serving.frontend import Answer, Frontend, Task, make_layout
from redundancy.coded_inference.serving.loadgen import poisson_arrivals
from redundancy.coded_inference.serving.models import ServingModels
from redundancy.errors import ParameterError


@dataclass
class RunResult:
    """What one serving run produced: answers, and how many queries and tasks went in or lost."""

    strategy: str
    answers: list[Answer]
    submitted: int
    lost_tasks: int
    inputs: torch.Tensor
    duration: float

    def latencies(self) -> np.ndarray:
        """Answer latencies in seconds, in query order."""
        return np.array([a.latency for a in sorted(self.answers, key=lambda a: a.query_id)])


class SimulatedCluster:
    """Instances as FIFO servers in virtual time, with injected delays and crashes."""

    def __init__(
        self,
        models: ServingModels,
        layout: tuple,
        latency: LatencyModel,
        crashes: CrashSchedule | None = None,
    ) -> None:
        self.models, self.layout, self.latency = models, layout, latency
        self.crashes = crashes or CrashSchedule()
        self._free = [0.0] * len(layout)
        self.lost_tasks = 0

    def _start(self, task: Task, now: float) -> tuple[float, torch.Tensor] | None:
        """(finish time, output) of a task dispatched at ``now``, or None if a crash loses it."""
        i = task.instance
        if self.crashes.down(i, now):
            self.lost_tasks += 1
            return None
        start = max(now, self._free[i])
        end = start + self.latency.service(i, task.role, start)
        crash = self.crashes.crash_between(i, now, end)
        if crash is not None:
            self.lost_tasks += 1
            self._free[i] = max(self._free[i], crash[1])
            return None
        self._free[i] = end
        return end, self.models.run(task.role, task.inputs)

    def run(self, frontend: Frontend, arrivals: np.ndarray, inputs: torch.Tensor) -> list[Answer]:
        """Serve ``inputs[j]`` arriving at ``arrivals[j]``; return every answer given."""
        if len(arrivals) != len(inputs):
            raise ParameterError(f"{len(arrivals)} arrival times for {len(inputs)} queries")
        seq = itertools.count()
        events: list[tuple[float, int, str, object]] = [
            (float(t), next(seq), "arrival", j) for j, t in enumerate(arrivals)
        ]
        heapq.heapify(events)
        answers: list[Answer] = []

        def dispatch(tasks: list[Task], now: float) -> None:
            for task in tasks:
                started = self._start(task, now)
                if started is None:
                    frontend.forget(task.task_id)
                else:
                    heapq.heappush(events, (started[0], next(seq), "done", (task, started[1])))

        timers: set[float] = set()
        while events:
            now, _, kind, payload = heapq.heappop(events)
            if kind == "arrival":
                _, tasks = frontend.submit(inputs[payload], now)  # type: ignore[index]
                dispatch(tasks, now)
            elif kind == "done":
                task, output = payload  # type: ignore[misc]
                answers += frontend.complete(task.task_id, output, now)
            else:
                timers.discard(now)
                tasks, released = frontend.on_timer(now)
                dispatch(tasks, now)
                answers += released
            due = frontend.next_deadline()
            if due is not None and due not in timers:
                timers.add(due)
                heapq.heappush(events, (due, next(seq), "timer", None))
        return answers


def simulate(config: ServingConfig, models: ServingModels, inputs: torch.Tensor) -> RunResult:
    """Serve ``config.queries`` queries (cycling through ``inputs``) at Poisson arrivals."""
    if models.k != config.k:
        raise ParameterError(f"the models are for k={models.k}, the config for k={config.k}")
    layout = make_layout(config.strategy, config.data_instances, config.k)
    frontend = Frontend.from_config(config, layout, models.code)
    latency = LatencyModel(
        config.latency, len(layout), k=config.k, faults=config.faults, seed=config.seed
    )
    cluster = SimulatedCluster(models, layout, latency, CrashSchedule(config.faults))
    arrivals = poisson_arrivals(config.rate_qps, config.queries, seed=config.seed)
    queries = inputs[torch.arange(config.queries) % len(inputs)]
    answers = cluster.run(frontend, arrivals, queries)
    end = max((a.done for a in answers), default=float(arrivals[-1]))
    return RunResult(
        config.strategy, answers, config.queries, cluster.lost_tasks, queries, end - arrivals[0]
    )
