"""Deterministic in-process backend: every instance is a FIFO server in virtual time.

Model outputs are real (the instance's model runs on the query), latencies are drawn from a
seeded ``LatencyModel`` and crashes from a ``CrashSchedule``; the same seed gives the same
answers, so tests of the frontend's latency logic are exact and take milliseconds.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from redundancy.coded_inference.serving.config import ServingConfig
from redundancy.coded_inference.serving.faults import CrashSchedule, LatencyModel
from redundancy.coded_inference.serving.frontend import Answer, Frontend, Task, make_layout
from redundancy.coded_inference.serving.loadgen import poisson_arrivals
from redundancy.coded_inference.serving.models import ServingModels
from redundancy.errors import IntegrityError, ParameterError


@dataclass
class RunResult:
    """What one serving run produced: its answers, failures, lost and cancelled work.

    ``answers`` and ``failed`` together hold every query sent exactly once (``accounting``
    checks it).

    Attributes
    ----------
    strategy : str
        The strategy served.
    answers : list of Answer
        The answered queries (exact or approximate).
    submitted : int
        Queries sent.
    lost_tasks : int
        Tasks lost on crashed or unreachable instances.
    inputs : torch.Tensor
        The queries' inputs, by query id.
    duration : float
        Seconds from the first arrival to the last answer.
    cancelled_tasks : int, default 0
        Tasks dropped before they ran (``cancel``).
    busy_seconds : float, default nan
        Instance seconds spent on the tasks that started, parity and hedges included: what a
        strategy costs in work (simulator only).
    failed : list of Answer
        Queries answered with an explicit failure (``Answer.reason`` says why).

    Examples
    --------
    >>> from torch import nn
    >>> from redundancy.coded_inference.codes import AdditionEncoder, ParityCode
    >>> from redundancy.coded_inference.serving import FaultConfig, ServingModels, Slowdown
    >>> _ = torch.manual_seed(0)
    >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, bias=False))  # its own parity model
    >>> cheap = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> models = ServingModels(ParityCode(linear, linear, AdditionEncoder(2, (1, 4, 4))), cheap)
    >>> slow = Slowdown(instance=0, start_ms=0.0, end_ms=400.0, factor=20.0)
    >>> config = ServingConfig(
    ...     data_instances=4, queries=200, faults=FaultConfig(slowdowns=(slow,))
    ... )
    >>> result = simulate(config, models, torch.rand(20, 1, 4, 4))
    >>> result.accounting()
    {'sent': 200, 'exact': 104, 'approximate': 96, 'failed': 0, 'unaccounted': 0}
    """

    strategy: str
    answers: list[Answer]
    submitted: int
    lost_tasks: int
    inputs: torch.Tensor
    duration: float
    cancelled_tasks: int = 0
    busy_seconds: float = float("nan")
    failed: list[Answer] = field(default_factory=list)

    @classmethod
    def from_replies(cls, strategy: str, replies: list[Answer], **fields: object) -> RunResult:
        """A result whose answers and failures are split out of the frontend's ``replies``."""
        answers = [a for a in replies if not a.failed]
        failed = [a for a in replies if a.failed]
        return cls(strategy, answers, failed=failed, **fields)  # type: ignore[arg-type]

    def accounting(self) -> dict[str, int]:
        """How every query sent ended: exact, approximate (decoded or backup), failed.

        Returns
        -------
        dict
            ``sent``, ``exact``, ``approximate``, ``failed`` and ``unaccounted`` (sent minus
            the three, which is 0 unless a query was lost).

        Raises
        ------
        IntegrityError
            If a query id was answered twice or is not one of the queries sent.

        Examples
        --------
        >>> RunResult("none", [], 0, 0, torch.zeros(0), 0.0).accounting()["unaccounted"]
        0
        """
        ids = [a.query_id for a in (*self.answers, *self.failed)]
        if len(set(ids)) != len(ids) or any(not 0 <= q < self.submitted for q in ids):
            raise IntegrityError(
                f"{self.strategy}: query ids answered twice or never sent among {len(ids)} replies"
            )
        approximate = sum(a.approximate for a in self.answers)
        exact = len(self.answers) - approximate
        return {
            "sent": self.submitted,
            "exact": exact,
            "approximate": approximate,
            "failed": len(self.failed),
            "unaccounted": self.submitted - len(ids),
        }

    def latencies(self) -> np.ndarray:
        """Answer latencies in seconds, in query order."""
        return np.array([a.latency for a in sorted(self.answers, key=lambda a: a.query_id)])


class SimulatedCluster:
    """Instances as FIFO queues in virtual time, with injected delays, crashes and restarts.

    A task's service time is drawn when it starts; a crash loses the instance's running and
    queued tasks, and tasks sent to a down instance are lost at once; the frontend is told of
    every lost task and the tasks it re-sends are dispatched at once. Tasks the frontend lists
    as cancellable are dropped if still queued (a running task finishes).
    """

    def __init__(
        self,
        models: ServingModels,
        layout: tuple,
        latency: LatencyModel,
        crashes: CrashSchedule | None = None,
    ) -> None:
        self.models, self.layout, self.latency = models, layout, latency
        self.crashes = crashes or CrashSchedule()
        self.lost_tasks = 0
        self.cancelled_tasks = 0
        self.busy_seconds = 0.0

    def run(self, frontend: Frontend, arrivals: np.ndarray, inputs: torch.Tensor) -> list[Answer]:
        """Serve ``inputs[j]`` arriving at ``arrivals[j]``; return every reply given (answers
        and explicit failures)."""
        if len(arrivals) != len(inputs):
            raise ParameterError(f"{len(arrivals)} arrival times for {len(inputs)} queries")
        n = len(self.layout)
        queues: list[deque[Task]] = [deque() for _ in range(n)]
        current: list[Task | None] = [None] * n
        down = [False] * n
        epoch = [0] * n
        seq = itertools.count()
        events: list[tuple[float, int, str, object]] = [
            (t, next(seq), kind, i) for t, kind, i in self.crashes.events()
        ]
        events += [(float(t), next(seq), "arrival", j) for j, t in enumerate(arrivals)]
        heapq.heapify(events)
        answers: list[Answer] = []

        def start_next(i: int, now: float) -> None:
            task = current[i] = queues[i].popleft() if queues[i] else None
            if task is not None:
                service = self.latency.service(i, task.role, now)
                self.busy_seconds += service
                heapq.heappush(events, (now + service, next(seq), "done", (task, epoch[i])))

        def lose(lost: list[Task], now: float) -> None:
            """Tell the frontend of lost tasks; run what it re-sends (maybe lost again)."""
            pending = deque(lost)
            while pending:
                task = pending.popleft()
                self.lost_tasks += 1
                resent, failures = frontend.lost(task.task_id, now)
                answers.extend(failures)
                for retry in resent:
                    if down[retry.instance]:
                        pending.append(retry)
                    else:
                        queues[retry.instance].append(retry)
                        if current[retry.instance] is None:
                            start_next(retry.instance, now)

        def dispatch(tasks: list[Task], now: float) -> None:
            lost = []
            for task in tasks:
                if down[task.instance]:
                    lost.append(task)
                    continue
                queues[task.instance].append(task)
                if current[task.instance] is None:
                    start_next(task.instance, now)
            lose(lost, now)

        timers: set[float] = set()
        while events:
            now, _, kind, payload = heapq.heappop(events)
            if kind == "arrival":
                _, tasks = frontend.submit(inputs[payload], now)  # type: ignore[index]
                dispatch(tasks, now)
            elif kind == "done":
                task, started_epoch = payload  # type: ignore[misc]
                i = task.instance
                if started_epoch == epoch[i]:
                    output = self.models.run(task.role, task.inputs)
                    answers += frontend.complete(task.task_id, output, now)
                    start_next(i, now)
            elif kind == "crash":
                i = payload  # type: ignore[assignment]
                down[i] = True
                epoch[i] += 1
                lost = [*queues[i]] + ([current[i]] if current[i] is not None else [])
                queues[i].clear()
                current[i] = None
                lose(lost, now)  # type: ignore[arg-type]
            elif kind == "restart":
                down[payload] = False  # type: ignore[index]
            else:
                timers.discard(now)
                tasks, released = frontend.on_timer(now)
                dispatch(tasks, now)
                answers += released
            for task in frontend.take_cancels():
                queue = queues[task.instance]
                kept = deque(t for t in queue if t.task_id != task.task_id)
                if len(kept) < len(queue):
                    queues[task.instance] = kept
                    frontend.forget(task.task_id)
                    self.cancelled_tasks += 1
            due = frontend.next_deadline()
            if due is not None and due not in timers:
                timers.add(due)
                heapq.heappush(events, (due, next(seq), "timer", None))
        return answers


def simulate(config: ServingConfig, models: ServingModels, inputs: torch.Tensor) -> RunResult:
    """Serve ``config.queries`` queries (cycling through ``inputs``) at Poisson arrivals.

    Every instance is a FIFO server in virtual time: model outputs are real, latencies and
    crashes are drawn from the config's seed, so a run is exactly reproducible and fast.

    Parameters
    ----------
    config : ServingConfig
        Strategy, instances, load, latency and faults (``background="modelled"``).
    models : ServingModels
        The deployed, parity and cheap models (for ``config.k``).
    inputs : torch.Tensor
        Query images (N, C, H, W), cycled through.

    Returns
    -------
    RunResult
        Every query's answer or failure, and the work spent.

    Raises
    ------
    ParameterError
        If the models are for another k, or the background needs a real-time backend.

    Examples
    --------
    With instance 0 twenty times slower, ParM answers the queries stuck behind it from the
    parity path; a linear parity model decodes them exactly:

    >>> from torch import nn
    >>> from redundancy.coded_inference.codes import AdditionEncoder, ParityCode
    >>> from redundancy.coded_inference.serving import FaultConfig, ServingModels, Slowdown
    >>> _ = torch.manual_seed(0)
    >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, bias=False))  # its own parity model
    >>> cheap = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> models = ServingModels(ParityCode(linear, linear, AdditionEncoder(2, (1, 4, 4))), cheap)
    >>> slow = Slowdown(instance=0, start_ms=0.0, end_ms=400.0, factor=20.0)
    >>> config = ServingConfig(
    ...     data_instances=4, queries=200, faults=FaultConfig(slowdowns=(slow,))
    ... )
    >>> result = simulate(config, models, torch.rand(20, 1, 4, 4))
    >>> len(result.answers), result.failed
    (200, [])
    >>> decoded = [a for a in result.answers if a.source == "decoded"]
    >>> len(decoded)
    96
    >>> all(torch.allclose(a.output, linear(result.inputs[a.query_id : a.query_id + 1])[0],
    ...                    atol=1e-5) for a in decoded)
    True
    """
    if models.k != config.k:
        raise ParameterError(f"the models are for k={models.k}, the config for k={config.k}")
    if config.background != "modelled":
        raise ParameterError(
            f"background={config.background!r} needs a real-time backend (threads or ray); "
            "the simulator allows 'modelled'"
        )
    layout = make_layout(config.strategy, config.data_instances, config.k)
    frontend = Frontend.from_config(config, layout, models.code)
    latency = LatencyModel(
        config.latency, len(layout), k=config.k, faults=config.faults, seed=config.seed
    )
    cluster = SimulatedCluster(models, layout, latency, CrashSchedule(config.faults))
    arrivals = poisson_arrivals(config.rate_qps, config.queries, seed=config.seed)
    queries = inputs[torch.arange(config.queries) % len(inputs)]
    replies = cluster.run(frontend, arrivals, queries)
    end = max((a.done for a in replies), default=float(arrivals[-1]))
    return RunResult.from_replies(
        config.strategy,
        replies,
        submitted=config.queries,
        lost_tasks=cluster.lost_tasks,
        inputs=queries,
        duration=end - arrivals[0],
        cancelled_tasks=cluster.cancelled_tasks,
        busy_seconds=cluster.busy_seconds,
    )
