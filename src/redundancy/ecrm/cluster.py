"""Where the shards run: in this process (``LocalCluster``) or one Ray actor process each.

Both expose the same small asynchronous interface, so the coordinator and trainer are the same
code either way: ``call`` returns a ``Pending``; ``result`` returns its value or raises
``ServerUnavailable`` naming the server (dead process, or no answer within the timeout, so a
lost server is reported and never hung on).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from redundancy.ecrm.shard import ShardSpec, ShardStore
from redundancy.errors import RedundancyError


class ServerUnavailable(RedundancyError):
    """A parameter server died or did not answer in time.

    Parameters
    ----------
    server : int
        The server's index (kept as ``self.server``).
    why : str
        What happened, for the message.

    Examples
    --------
    >>> error = ServerUnavailable(2, "no answer within 30 s")
    >>> error.server, str(error)
    (2, 'parameter server 2 is unavailable: no answer within 30 s')
    """

    def __init__(self, server: int, why: str) -> None:
        super().__init__(f"parameter server {server} is unavailable: {why}")
        self.server = server


@dataclass
class Pending:
    """An outstanding call to one server: a value/exception (local) or a Ray ObjectRef."""

    server: int
    ref: Any = None
    value: Any = None
    error: BaseException | None = None
    extra: dict = field(default_factory=dict)


class LocalCluster:
    """Shards as plain objects in this process; calls run immediately, in submission order."""

    def __init__(self, spec: ShardSpec, num_servers: int) -> None:
        self.spec = spec
        self.stores: list[ShardStore | None] = [ShardStore(spec, q) for q in range(num_servers)]

    @property
    def num_servers(self) -> int:
        return len(self.stores)

    def call(self, server: int, method: str, *args: Any) -> Pending:
        store = self.stores[server]
        if store is None:
            return Pending(server, error=ServerUnavailable(server, "killed"))
        try:
            resolved = [self.result(a) if isinstance(a, Pending) else a for a in args]
            return Pending(server, value=getattr(store, method)(*resolved))
        except RedundancyError as exc:
            return Pending(server, error=exc)

    def result(self, pending: Pending) -> Any:
        if pending.error is not None:
            raise pending.error
        return pending.value

    def done(self, pending: Pending) -> bool:
        return True

    def handoff(self, pendings: list[Pending]) -> list:
        """Results to pass on to another server's call (here: the values themselves)."""
        return [self.result(p) for p in pendings]

    def kill(self, server: int) -> None:
        """Lose the server and everything it held."""
        store = self.stores[server]
        if store is not None:
            store.close()
        self.stores[server] = None

    def replace(self, server: int, *, missing: bool = True) -> None:
        """Start an empty replacement (all ranges missing until rebuilt or restored)."""
        self.stores[server] = ShardStore(self.spec, server, missing=missing)

    def joined(self, server: int) -> bool:
        return self.stores[server] is not None

    def shutdown(self) -> None:
        for q in range(len(self.stores)):
            self.kill(q)


class RayCluster:
    """One Ray actor process per shard; the driver is the worker and the 2PC coordinator."""

    def __init__(self, spec: ShardSpec, num_servers: int, timeout_s: float = 30.0) -> None:
        import ray

        if not ray.is_initialized():
            raise RedundancyError("RayCluster needs ray.init() first (see trainer.ray_session)")
        self.spec, self.timeout_s = spec, timeout_s
        self._actor_cls = ray.remote(num_cpus=0, max_restarts=0)(ShardStore)
        self.actors = [self._actor_cls.remote(spec, q) for q in range(num_servers)]
        self._join = [a.ping.remote() for a in self.actors]
        self.pids = [int(ray.get(a.pid.remote(), timeout=120)) for a in self.actors]

    @property
    def num_servers(self) -> int:
        return len(self.actors)

    def call(self, server: int, method: str, *args: Any) -> Pending:
        refs = [a.ref if isinstance(a, Pending) else a for a in args]
        return Pending(server, ref=getattr(self.actors[server], method).remote(*refs))

    def result(self, pending: Pending) -> Any:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        try:
            return ray.get(pending.ref, timeout=self.timeout_s)
        except RayActorError:
            raise ServerUnavailable(pending.server, "process died") from None
        except GetTimeoutError:
            raise ServerUnavailable(pending.server, f"no answer in {self.timeout_s} s") from None
        except RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            if isinstance(cause, RedundancyError):
                raise cause from None
            raise

    def done(self, pending: Pending) -> bool:
        import ray

        ready, _ = ray.wait([pending.ref], timeout=0)
        return bool(ready)

    def handoff(self, pendings: list[Pending]) -> list:
        """ObjectRefs in a list (so Ray does not resolve them before the receiving call runs:
        the receiver's rebuild thread fetches them without blocking its call queue)."""
        return [p.ref for p in pendings]

    def kill(self, server: int) -> None:
        """SIGKILL the server's process (a real crash, not a polite shutdown)."""
        os.kill(self.pids[server], signal.SIGKILL)

    def replace(self, server: int, *, missing: bool = True) -> None:
        """Start a replacement actor; it joins when its first ping answers (see ``joined``)."""
        actor = self._actor_cls.remote(self.spec, server, missing=missing)
        self.actors[server] = actor
        self._join[server] = actor.ping.remote()
        self.pids[server] = -1

    def joined(self, server: int) -> bool:
        import ray

        ready, _ = ray.wait([self._join[server]], timeout=0)
        if ready and self.pids[server] < 0:
            self.pids[server] = int(ray.get(self.actors[server].pid.remote(), timeout=60))
        return bool(ready)

    def shutdown(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
