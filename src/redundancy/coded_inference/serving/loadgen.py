"""Open-loop load: Poisson arrivals at a set rate, bounded in count and in time.

Open loop means a query is sent at its arrival time whether or not earlier ones were answered,
so a slow server builds a queue instead of slowing the client down (the tail shows up).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, wait

import numpy as np
import torch

from redundancy.errors import ParameterError


def poisson_arrivals(
    rate: float, count: int, *, seed: int = 0, max_seconds: float | None = None
) -> np.ndarray:
    """Arrival times (seconds from 0) of ``count`` queries at ``rate`` per second.

    With ``max_seconds`` the schedule is cut at that time (fewer queries, never a longer run).
    """
    if not rate > 0:
        raise ParameterError(f"rate={rate} must be > 0 queries per second")
    if count < 1:
        raise ParameterError(f"count={count} must be >= 1")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=count)
    times = np.cumsum(gaps) - gaps[0]
    if max_seconds is not None:
        times = times[times <= max_seconds]
    return times


def open_loop(
    send: Callable[[torch.Tensor], Future],
    inputs: torch.Tensor,
    arrivals: np.ndarray,
    *,
    timeout: float = 10.0,
) -> tuple[list[object], int]:
    """Send ``inputs[j]`` at ``arrivals[j]`` (real time); collect results for ``timeout`` more.

    Returns the results that arrived (in send order) and how many did not within the bound.
    """
    start = time.perf_counter()
    futures: list[Future] = []
    for j, t in enumerate(arrivals):
        delay = start + float(t) - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        futures.append(send(inputs[j % len(inputs)]))
    wait(futures, timeout=timeout)
    results = [f.result() for f in futures if f.done() and f.exception() is None]
    for f in futures:
        f.cancel()
    return results, len(futures) - len(results)
