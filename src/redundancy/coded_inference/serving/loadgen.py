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
    on_send: Callable[[], object] | None = None,
) -> list[object | None]:
    """Send ``inputs[j]`` at ``arrivals[j]`` (real time); collect results for ``timeout`` more.

    ``on_send`` (e.g. a progress bar's advance) is called after each query is sent.

    Returns one entry per query sent, in send order: its result, or None when it did not
    arrive within the bound (or the send failed).
    """
    start = time.perf_counter()
    futures: list[Future] = []
    for j, t in enumerate(arrivals):
        delay = start + float(t) - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        futures.append(send(inputs[j % len(inputs)]))
        if on_send is not None:
            on_send()
    wait(futures, timeout=timeout)
    results = [
        f.result() if f.done() and not f.cancelled() and f.exception() is None else None
        for f in futures
    ]
    for f in futures:
        f.cancel()
    return results
