"""Ray backend: each model instance is a CPU Ray actor with one torch thread.

``ray_session`` starts a small local Ray (two CPUs, no dashboard) and always shuts it down, so
no Ray process outlives a command or a test.
"""

from __future__ import annotations

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


class _Instance:
    """One model instance: sleeps (or burns as CPU work) the injected delay, then runs its model
    on one thread."""

    def __init__(self, model: torch.nn.Module, cores: set[int] | None) -> None:
        torch.set_num_threads(1)
        self.model = model.eval()
        self.burn = cores is not None
        pin_process(cores)

    def infer(self, inputs: torch.Tensor, delay: float) -> torch.Tensor:
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
        self._refs_of: dict[Future, object] = {}
        self._cls = ray.remote(num_cpus=0, max_restarts=0)(_Instance)
        self._refs = {role: ray.put(models.for_role(role)) for role in set(layout)}
        self.layout = layout
        self._actors = [self._start(i) for i in range(len(layout))]
        ray.get([a.ready.remote() for a in self._actors], timeout=120)

    def _start(self, instance: int):
        cores = core_of(instance) if self.burn else None
        return self._cls.remote(self._refs[self.layout[instance]], cores)

    def submit(self, task: Task, delay: float) -> Future:
        """Call the instance's actor; the future fails if the actor dies first."""
        ref = self._actors[task.instance].infer.remote(task.inputs, delay)
        future = ref.future()
        self._refs_of[future] = ref
        future.add_done_callback(lambda f: self._refs_of.pop(f, None))
        return future

    def cancel(self, future: Future) -> None:
        """Ask Ray to drop the call if it is still queued (its future then fails)."""
        ref = self._refs_of.get(future)
        if ref is not None:
            self._ray.cancel(ref)

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
