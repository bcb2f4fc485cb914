"""Real background load: a busy-loop subprocess per slowed instance, always cleaned up.

With ``ServingConfig(background="cpu-hog")`` a real-time run turns each ``Slowdown`` window into
a CPU-hog process that runs from ``start_ms`` to ``end_ms``, pinned (on Linux) to the same core
as the instance it slows, and the instances burn their service time as CPU work (``spin``)
instead of sleeping, so the hog slows them through real CPU contention rather than a modelled
factor. ``CpuHogs.close`` kills every hog; it runs when the driver closes and at interpreter
exit, and a hog whose parent died anyway notices within milliseconds and exits.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time

# burns one core; also exits by itself if its parent dies without cleaning up (reparented)
_BUSY_LOOP = """
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(200_000):
        pass
"""


def spin(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU time (longer in wall time if the core is shared)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def core_of(instance: int) -> set[int] | None:
    """The one core instance ``instance`` and its hog share, or None where pinning is missing."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return {cores[instance % len(cores)]}


def pin_thread(cores: set[int] | None) -> None:
    """Pin the calling thread to ``cores`` (no-op where unsupported)."""
    if cores is not None:
        os.sched_setaffinity(0, cores)


def pin_process(cores: set[int] | None) -> None:
    """Pin every thread of this process to ``cores`` (no-op where unsupported)."""
    if cores is None:
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # a thread that ended meanwhile
            continue


class CpuHogs:
    """Busy-loop subprocesses, at most one per instance; ``close`` stops all of them."""

    def __init__(self) -> None:
        self._procs: dict[int, subprocess.Popen] = {}
        atexit.register(self.close)

    @property
    def pids(self) -> list[int]:
        """Process ids of the hogs running now."""
        return [p.pid for p in self._procs.values()]

    def start(self, instance: int) -> None:
        """Start a hog on ``instance``'s core (nothing if one runs there already)."""
        if instance in self._procs:
            return
        proc = subprocess.Popen(
            [sys.executable, "-c", _BUSY_LOOP, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs[instance] = proc
        cores = core_of(instance)
        if cores is not None:
            os.sched_setaffinity(proc.pid, cores)

    def stop(self, instance: int) -> None:
        """Stop ``instance``'s hog and reap it."""
        proc = self._procs.pop(instance, None)
        if proc is None:
            return
        proc.kill()
        proc.wait(timeout=10)

    def close(self) -> None:
        """Stop every hog."""
        for instance in list(self._procs):
            self.stop(instance)
        atexit.unregister(self.close)
