"""Real-time serving: a driver thread runs the frontend against an executor of instances.

An executor runs tasks on instances and hands back ``concurrent.futures.Future`` objects: the
thread executor here (one worker thread per instance, in-process) or ``RayExecutor`` (one Ray
actor per instance). The ``LatencyModel``'s service time (emulating a bigger model, slowdowns
and background load) is slept inside the instance before the real model runs (or, with real
CPU hogs, burnt as CPU work); crashes from the fault config are applied at their times (queued
and running work is lost), and tasks the frontend cancels are dropped if not yet started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

import torch

from redundancy.coded_inference.serving.config import FaultConfig, ServingConfig
from redundancy.coded_inference.serving.faults import CrashSchedule, LatencyModel
from redundancy.coded_inference.serving.frontend import Answer, Frontend, Task, make_layout
from redundancy.coded_inference.serving.hogs import CpuHogs, core_of, pin_thread, spin
from redundancy.coded_inference.serving.loadgen import open_loop, poisson_arrivals
from redundancy.coded_inference.serving.models import ServingModels
from redundancy.coded_inference.serving.simulation import RunResult
from redundancy.errors import ParameterError, RedundancyError


class InstanceDown(RedundancyError):
    """The instance crashed while the task was queued or running."""


class Executor(Protocol):
    """What the driver needs from a backend of model instances."""

    def submit(self, task: Task, delay: float) -> Future: ...
    def cancel(self, future: Future) -> bool: ...
    def crash(self, instance: int) -> None: ...
    def restart(self, instance: int) -> None: ...
    def close(self) -> None: ...


class ThreadExecutor:
    """Each instance is a single worker thread with a FIFO queue, in this process.

    With ``burn`` the service time is spent as CPU work on a core pinned per instance (for real
    CPU hogs); all instance threads still share the GIL.
    """

    def __init__(self, models: ServingModels, layout: tuple, *, burn: bool = False) -> None:
        self.models, self.layout, self.burn = models, layout, burn
        self._pools = [
            ThreadPoolExecutor(
                1, f"instance-{i}", initializer=pin_thread, initargs=(core_of(i) if burn else None,)
            )
            for i in range(len(layout))
        ]
        self._epoch = [0] * len(layout)
        self._down = [False] * len(layout)

    def submit(self, task: Task, delay: float) -> Future:
        """Queue ``task`` on its instance; it sleeps ``delay`` (background load), then runs."""
        i = task.instance
        if self._down[i]:
            failed: Future = Future()
            failed.set_exception(InstanceDown(f"instance {i} is down"))
            return failed
        return self._pools[i].submit(self._run, task, delay, self._epoch[i])

    def cancel(self, future: Future) -> bool:
        """Drop the task if it has not started; True if it was dropped."""
        return future.cancel()

    def _run(self, task: Task, delay: float, epoch: int) -> torch.Tensor:
        if delay > 0:
            spin(delay) if self.burn else time.sleep(delay)
        if self._epoch[task.instance] != epoch:
            raise InstanceDown(f"instance {task.instance} crashed")
        return self.models.run(task.role, task.inputs)

    def crash(self, instance: int) -> None:
        """Lose the instance's queued and running work; refuse new work until restart."""
        self._down[instance] = True
        self._epoch[instance] += 1

    def restart(self, instance: int) -> None:
        """Accept work again."""
        self._down[instance] = False

    def close(self) -> None:
        """Stop the worker threads (queued work is dropped)."""
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)


class ServingDriver:
    """Owns a Frontend in one thread; ``submit`` may be called from any thread."""

    def __init__(
        self,
        frontend: Frontend,
        executor: Executor,
        latency: LatencyModel,
        crashes: CrashSchedule | None = None,
        hogs: FaultConfig | None = None,
    ) -> None:
        self.frontend, self.executor, self.latency = frontend, executor, latency
        self._faults = (crashes or CrashSchedule()).events()
        self._hogs = CpuHogs() if hogs and hogs.slowdowns else None
        for s in hogs.slowdowns if self._hogs else ():
            self._faults += [(s.start_ms / 1e3, "hog", s.instance)]
            self._faults += [(s.end_ms / 1e3, "unhog", s.instance)]
        self._faults.sort()
        self._lock = threading.Lock()
        self._inbox: list[tuple[torch.Tensor, Future]] = []
        self._wake: Future = Future()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="serving-driver", daemon=True)
        self._t0 = time.perf_counter()
        self.lost_tasks = 0
        self.cancelled_tasks = 0
        self._future_of: dict[int, Future] = {}
        self._thread.start()

    def submit(self, x: torch.Tensor) -> Future:
        """Queue one query (C, H, W); the future resolves to its ``Answer``."""
        answer: Future = Future()
        with self._lock:
            self._inbox.append((x, answer))
            if not self._wake.done():
                self._wake.set_result(None)
        return answer

    def close(self) -> None:
        """Stop the driver thread and the executor."""
        with self._lock:
            self._stop = True
            if not self._wake.done():
                self._wake.set_result(None)
        self._thread.join(timeout=30)
        try:
            self.executor.close()
        finally:
            if self._hogs is not None:
                self._hogs.close()

    @property
    def hog_pids(self) -> list[int]:
        """Process ids of the CPU hogs running now (real background load)."""
        return self._hogs.pids if self._hogs else []

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _dispatch(self, tasks: list[Task], running: dict[Future, Task], now: float) -> None:
        for task in tasks:
            delay = self.latency.service(task.instance, task.role, now)
            future = self.executor.submit(task, delay)
            running[future] = task
            self._future_of[task.task_id] = future

    def _fault(self, kind: str, instance: int) -> None:
        if kind == "crash":
            self.executor.crash(instance)
        elif kind == "restart":
            self.executor.restart(instance)
        elif kind == "hog":
            self._hogs.start(instance)  # type: ignore[union-attr]
        else:
            self._hogs.stop(instance)  # type: ignore[union-attr]

    def _loop(self) -> None:
        running: dict[Future, Task] = {}
        callers: dict[int, Future] = {}
        cancelling: set[int] = set()
        while True:
            with self._lock:
                if self._stop:
                    break
                inbox, self._inbox = self._inbox, []
                if self._wake.done():
                    self._wake = Future()
                wake = self._wake
            now = self._now()
            while self._faults and self._faults[0][0] <= now:
                _, kind, instance = self._faults.pop(0)
                self._fault(kind, instance)
            for x, answer in inbox:
                qid, tasks = self.frontend.submit(x, now)
                callers[qid] = answer
                self._dispatch(tasks, running, now)
            tasks, answers = self.frontend.on_timer(now)
            self._dispatch(tasks, running, now)
            self._deliver(answers, callers)  # before waiting: nothing may wake the loop soon
            deadlines = [d for d in (self.frontend.next_deadline(),) if d is not None]
            deadlines += [self._faults[0][0]] if self._faults else []
            timeout = max(0.0, min(deadlines) - self._now()) if deadlines else None
            done, _ = wait([wake, *running], timeout=timeout, return_when=FIRST_COMPLETED)
            now = self._now()
            answers = []
            for future in done:
                task = running.pop(future, None)
                if task is None:
                    continue
                self._future_of.pop(task.task_id, None)
                if future.cancelled() or future.exception() is not None:
                    if task.task_id in cancelling:
                        self.cancelled_tasks += 1
                        self.frontend.forget(task.task_id)
                    else:
                        self.lost_tasks += 1
                        resent, failures = self.frontend.lost(task.task_id, now)
                        self._dispatch(resent, running, now)
                        answers += failures
                else:
                    answers += self.frontend.complete(task.task_id, future.result(), now)
                cancelling.discard(task.task_id)
            for task in self.frontend.take_cancels():
                future = self._future_of.get(task.task_id)
                cancellable = future is not None and task.task_id not in cancelling
                if cancellable and self.executor.cancel(future):
                    cancelling.add(task.task_id)
            self._deliver(answers, callers)

    @staticmethod
    def _deliver(answers: list[Answer], callers: dict[int, Future]) -> None:
        """Resolve each answered query's future (one its caller gave up on stays cancelled)."""
        for a in answers:
            caller = callers.pop(a.query_id, None)
            if caller is not None and caller.set_running_or_notify_cancel():
                caller.set_result(a)


def make_driver(
    config: ServingConfig, models: ServingModels, backend: str = "threads"
) -> ServingDriver:
    """A started driver for ``config`` on thread or Ray instances (Ray must be initialised)."""
    layout = make_layout(config.strategy, config.data_instances, config.k)
    frontend = Frontend.from_config(config, layout, models.code)
    burn = config.background == "cpu-hog"
    # with real hogs the slowdown windows slow instances by CPU contention, not by a factor
    modelled = config.faults.model_copy(update={"slowdowns": ()}) if burn else config.faults
    latency = LatencyModel(
        config.latency, len(layout), k=config.k, faults=modelled, seed=config.seed
    )
    if backend == "ray":
        from redundancy.coded_inference.serving.ray_backend import RayExecutor

        executor: Executor = RayExecutor(models, layout, burn=burn)
    elif backend == "threads":
        executor = ThreadExecutor(models, layout, burn=burn)
    else:
        raise ParameterError(f"backend={backend!r} is unknown (allowed: threads, ray)")
    hogs = config.faults if burn else None
    return ServingDriver(frontend, executor, latency, CrashSchedule(config.faults), hogs)


def serve_realtime(
    config: ServingConfig,
    models: ServingModels,
    inputs: torch.Tensor,
    *,
    backend: str = "threads",
    max_seconds: float = 30.0,
    timeout: float | None = None,
    on_send: Callable[[], object] | None = None,
) -> RunResult:
    """Open-loop Poisson load against a real-time frontend (threads or Ray actors).

    At most ``config.queries`` queries and ``max_seconds`` of sending; replies are awaited for
    at most ``timeout`` seconds more (default: the query deadline plus one second). Every query
    sent is in the result: answered, or failed with a reason (the driver fails a query at its
    deadline; one with no reply at all from the driver is failed here). Ray must already be
    initialised for ``backend="ray"``. ``on_send`` is called after each query is sent.
    """
    arrivals = poisson_arrivals(
        config.rate_qps, config.queries, seed=config.seed, max_seconds=max_seconds
    )
    queries = inputs[torch.arange(len(arrivals)) % len(inputs)]
    wait_for = config.deadline_ms / 1e3 + 1.0 if timeout is None else timeout
    driver = make_driver(config, models, backend)
    try:
        start = time.perf_counter()
        results = open_loop(driver.submit, queries, arrivals, timeout=wait_for, on_send=on_send)
        duration = time.perf_counter() - start
    finally:
        driver.close()
    replies: list[Answer] = [
        reply
        if isinstance(reply, Answer)
        else Answer(
            j,
            None,
            "failed",
            float(arrivals[j]),
            duration,
            f"no reply from the serving driver within {wait_for:g} s after the last query",
        )
        for j, reply in enumerate(results)
    ]
    return RunResult.from_replies(
        config.strategy,
        replies,
        submitted=len(arrivals),
        lost_tasks=driver.lost_tasks,
        inputs=queries,
        duration=duration,
        cancelled_tasks=driver.cancelled_tasks,
    )
