"""Ray backend: each model instance is a CPU Ray actor with one torch thread.

``ray_session`` starts a small local Ray (two CPUs, no dashboard) and always shuts it down, so
no Ray process outlives a command or a test.

Cancellation does not use ``ray.cancel``: cancelling a queued actor call can leave the calls
queued behind it stuck for good (ray-project/ray#60850; on Ray 2.60 ``parm compare --backend
ray`` lost 5 to 36 of 400 equal-resources queries that way). Instead the executor tells the
actor, through a separate one-thread concurrency group, which call ids to skip; a skipped call
fails with ``CallSkipped`` and the driver counts it as cancelled.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import torch

from redundancy.coded_inference.serving.frontend import Task
from redundancy.coded_inference.serving.hogs import core_of, pin_process, spin
from redundancy.coded_inference.serving.models import ServingModels


@contextmanager
def ray_session(num_cpus: int = 2) -> Iterator[None]:
    """A local Ray for the duration of the block; shut down even on error."""
    import ray

    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


class CallSkipped(RuntimeError):
    """The call was cancelled before it started (the instance skipped it)."""


class _Instance:
    """One model instance: sleeps (or burns as CPU work) the injected delay, then runs its model
    on one thread; calls named by ``skip`` (sent on the "control" group) are not run."""

    def __init__(self, model: torch.nn.Module, cores: set[int] | None) -> None:
        torch.set_num_threads(1)
        self.model = model.eval()
        self.burn = cores is not None
        self._skip: set[int] = set()
        pin_process(cores)

    def skip(self, call_id: int) -> None:
        self._skip.add(call_id)

    def infer(self, call_id: int, inputs: torch.Tensor, delay: float) -> torch.Tensor:
        if call_id in self._skip:
            self._skip.discard(call_id)
            raise CallSkipped(f"call {call_id} was cancelled before it started")
        if delay > 0:
            spin(delay) if self.burn else time.sleep(delay)
        with torch.no_grad():
            return self.model(inputs).squeeze(0)

    def ready(self) -> bool:
        return True


class RayExecutor:
    """Ray actors as instances; a crash kills the actor (its queued calls fail). With ``burn``
    each actor process is pinned to one core and burns its service time as CPU work."""

    def __init__(self, models: ServingModels, layout: tuple, *, burn: bool = False) -> None:
        import ray

        self._ray, self.burn = ray, burn
        self._calls: dict[Future, tuple[int, int]] = {}  # future -> (instance, call id)
        self._call_ids = itertools.count()
        # "control" runs skip() beside a running infer(); the default group runs one infer at a time
        self._cls = ray.remote(
            num_cpus=0, max_restarts=0, max_concurrency=1, concurrency_groups={"control": 1}
        )(_Instance)
        self._refs = {role: ray.put(models.for_role(role)) for role in set(layout)}
        self.layout = layout
        self._actors = [self._start(i) for i in range(len(layout))]
        ray.get([a.ready.remote() for a in self._actors], timeout=120)

    def _start(self, instance: int):
        cores = core_of(instance) if self.burn else None
        return self._cls.remote(self._refs[self.layout[instance]], cores)

    def submit(self, task: Task, delay: float) -> Future:
        """Call the instance's actor; the future fails if the actor dies first."""
        call_id = next(self._call_ids)
        ref = self._actors[task.instance].infer.remote(call_id, task.inputs, delay)
        future = ref.future()
        self._calls[future] = (task.instance, call_id)
        future.add_done_callback(lambda f: self._calls.pop(f, None))
        return future

    def cancel(self, future: Future) -> bool:
        """Ask the instance to skip the call if it has not started (its future then fails).

        Returns True: the call's future resolves either way (skipped or run to the end).
        """
        call = self._calls.get(future)
        if call is None:
            return False
        instance, call_id = call
        self._actors[instance].skip.options(concurrency_group="control").remote(call_id)
        return True

    def crash(self, instance: int) -> None:
        """Kill the actor: its queued and running calls fail with an actor error."""
        self._ray.kill(self._actors[instance], no_restart=True)

    def restart(self, instance: int) -> None:
        """Start a fresh actor for the instance (new calls queue while it loads)."""
        self._actors[instance] = self._start(instance)

    def close(self) -> None:
        """Kill every actor."""
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)
