"""The serving frontend's logic, free of I/O: coding groups, dispatch, decoding, hedging.

A backend (the simulator in virtual time, the thread or Ray executors in real time) feeds it
arrivals and task results and runs the tasks it returns; the frontend answers each query exactly
once, with whichever comes first: the query's own output, a hedged replica's, a cheap backup's,
or (ParM) the output decoded from the parity output and the group's k - 1 other outputs.

No query is ever silently lost. The members of one coding group run on distinct instances, so
one crash erases at most one of them. When a backend reports a task lost (``lost``), the
frontend re-dispatches whatever the query still needs to be answerable: a lost parity query is
sent again, and a query left with no way to be answered (no live task of its own, no cheap
backup, no decodable group) is re-sent to an instance that has not lost it. A query that has no
answer ``deadline`` seconds after its arrival, or that no instance is left to run, is answered
with an explicit failure (``Answer.failed``, with a ``reason``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

import torch

from redundancy.coded_inference.codes import ParityCode
from redundancy.coded_inference.serving.config import RoutingName, ServingConfig, StrategyName
from redundancy.errors import ParameterError

Role = Literal["deployed", "parity", "cheap"]
Source = Literal["own", "hedge", "retry", "backup", "decoded", "failed"]


def make_layout(strategy: StrategyName, data_instances: int, k: int) -> tuple[Role, ...]:
    """Give the role of every instance; all strategies use ``data_instances * (1 + 1/k)``.

    Parameters
    ----------
    strategy : {"none", "equal-resources", "cheap-backup", "parm"}
        The serving strategy.
    data_instances : int
        Deployed-model instances, a positive multiple of k.
    k : int
        Queries per coding group.

    Returns
    -------
    tuple of str
        ``"deployed"``, ``"parity"`` or ``"cheap"`` for each instance, deployed ones first.

    Raises
    ------
    ParameterError
        If ``data_instances`` is not a positive multiple of k, or the strategy is unknown.

    Examples
    --------
    >>> make_layout("parm", 4, 2)
    ('deployed', 'deployed', 'deployed', 'deployed', 'parity', 'parity')
    >>> make_layout("equal-resources", 4, 2)
    ('deployed', 'deployed', 'deployed', 'deployed', 'deployed', 'deployed')
    """
    if data_instances < k or data_instances % k:
        raise ParameterError(
            f"data_instances={data_instances} must be a positive multiple of k={k}"
        )
    extra = data_instances // k
    if strategy in ("none", "equal-resources"):
        return ("deployed",) * (data_instances + extra)
    if strategy == "cheap-backup":
        return ("deployed",) * data_instances + ("cheap",) * extra
    if strategy == "parm":
        return ("deployed",) * data_instances + ("parity",) * extra
    raise ParameterError(f"strategy={strategy!r} is unknown")


@dataclass(frozen=True)
class Task:
    """One model invocation: ``inputs`` (1, C, H, W) for instance ``instance``.

    Attributes
    ----------
    task_id : int
        Unique per frontend.
    instance : int
        The instance that runs it.
    role : str
        ``"deployed"``, ``"parity"`` or ``"cheap"``: which model runs.
    inputs : torch.Tensor
        The (1, C, H, W) input (a query, or a coding group's parity query).
    query_id : int, optional
        The query it answers (None for a parity task).
    group_id : int, optional
        The coding group it belongs to (ParM).
    hedge : bool, default False
        A re-sent copy of a slow query (equal-resources).
    retry : bool, default False
        A re-send of a task an instance lost.

    Examples
    --------
    >>> frontend = Frontend("none", make_layout("none", 2, 2), k=2)
    >>> query_id, tasks = frontend.submit(torch.zeros(1, 4, 4), now=0.0)
    >>> task = tasks[0]
    >>> task.query_id, task.instance, task.role, tuple(task.inputs.shape)
    (0, 0, 'deployed', (1, 1, 4, 4))
    """

    task_id: int
    instance: int
    role: Role
    inputs: torch.Tensor
    query_id: int | None = None
    group_id: int | None = None
    hedge: bool = False
    retry: bool = False


@dataclass(frozen=True)
class Answer:
    """The frontend's reply to one query; decoded and backup outputs are approximate.

    A failed answer (``source == "failed"``) has no output and says why in ``reason``.

    Attributes
    ----------
    query_id : int
        The query answered.
    output : torch.Tensor or None
        The (n_classes,) output; None for a failure.
    source : str
        ``"own"`` (the deployed model's output), ``"decoded"`` (ParM), ``"backup"`` (cheap
        model) or ``"failed"``.
    arrival : float
        When the query arrived, seconds.
    done : float
        When it was answered, seconds.
    reason : str, default ""
        Why a failed query failed.

    Examples
    --------
    >>> answer = Answer(7, torch.tensor([0.1, 0.9]), "decoded", arrival=1.0, done=1.25)
    >>> answer.approximate, answer.failed, answer.latency
    (True, False, 0.25)
    """

    query_id: int
    output: torch.Tensor | None
    source: Source
    arrival: float
    done: float
    reason: str = ""

    @property
    def approximate(self) -> bool:
        """True when the output is not the deployed model's own."""
        return self.source in ("decoded", "backup")

    @property
    def failed(self) -> bool:
        """True when the query could not be answered (``reason`` says why)."""
        return self.source == "failed"

    @property
    def latency(self) -> float:
        """Seconds from arrival to answer."""
        return self.done - self.arrival


@dataclass
class _Group:
    query_ids: list[int] = field(default_factory=list)
    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)
    parity_output: torch.Tensor | None = None
    parity_task: int | None = None
    closed: bool = False
    instances: set[int] = field(default_factory=set)
    parity_lost_on: set[int] = field(default_factory=set)


class Frontend:
    """Dispatch and answer queries under one strategy; not thread-safe (one driver owns it).

    Approximate answers (decoded, or a cheap backup's) are held until the query has waited
    ``approx_after`` seconds, so a query whose own output is merely a little slower than the
    parity path still gets the exact answer; ``hedge_after`` is equal-resources' timeout. A
    coding group still short of k queries ``group_timeout`` seconds after its first arrival is
    padded with zero queries and its parity query sent, so no query waits on later arrivals.
    The members of a coding group go to distinct deployed instances; lost tasks are repaired
    (see the module docstring) and a query unanswered ``deadline`` seconds after its arrival is
    answered with an explicit failure.
    ``routing`` places primary queries (see ``ServingConfig``; least-outstanding skips an
    instance for ``eject`` seconds after it lost a task); with ``cancel`` the frontend
    lists tasks that can no longer change any answer (``take_cancels``) for the backend to drop
    if they have not started.

    A backend drives it: :meth:`submit` each query and run the tasks returned,
    :meth:`complete` each finished task, :meth:`lost` each lost one, and call
    :meth:`on_timer` at :meth:`next_deadline`; the answers returned settle the queries.

    Parameters
    ----------
    strategy : {"none", "equal-resources", "cheap-backup", "parm"}
        How the redundant instances are used.
    layout : tuple of str
        The role of every instance (see :func:`make_layout`).
    k : int, default 2
        Queries per coding group.
    code : ParityCode, optional
        Encoder and decoder; needed by ``"parm"``, and its k must equal ``k``.
    hedge_after : float, default 0.02
        Equal-resources re-sends a query unanswered this many seconds.
    approx_after : float, default 0.012
        Hold approximate answers until the query is this old, seconds.
    group_timeout : float, default 0.02
        Pad a coding group not full this long after its first query, seconds.
    routing : {"least-outstanding", "round-robin"}, default "least-outstanding"
        How primary queries are placed.
    cancel : bool, default True
        List tasks that can no longer change an answer (``take_cancels``).
    eject : float, default 1.0
        Least-outstanding skips an instance this long after it lost a task, seconds.
    deadline : float, default 5.0
        Fail a query unanswered this long, seconds.

    Raises
    ------
    ParameterError
        If ``"parm"`` has no code, the code's k differs, the routing is unknown, or the
        deadline is not positive.

    Examples
    --------
    >>> frontend = Frontend("none", make_layout("none", 2, 2), k=2)
    >>> query_id, tasks = frontend.submit(torch.zeros(1, 4, 4), now=0.0)
    >>> [answer.source for answer in frontend.complete(tasks[0].task_id, torch.ones(3), 0.01)]
    ['own']
    >>> frontend.unanswered
    0
    """

    @classmethod
    def from_config(
        cls, config: ServingConfig, layout: tuple[Role, ...], code: ParityCode | None
    ) -> Frontend:
        """The frontend a serving config describes (times in the config are milliseconds)."""
        return cls(
            config.strategy,
            layout,
            k=config.k,
            code=code,
            hedge_after=config.hedge_after_ms / 1e3,
            approx_after=config.approx_after_ms / 1e3,
            group_timeout=config.group_timeout_ms / 1e3,
            routing=config.routing,
            cancel=config.cancel,
            eject=config.eject_ms / 1e3,
            deadline=config.deadline_ms / 1e3,
        )

    def __init__(
        self,
        strategy: StrategyName,
        layout: tuple[Role, ...],
        *,
        k: int = 2,
        code: ParityCode | None = None,
        hedge_after: float = 0.02,
        approx_after: float = 0.012,
        group_timeout: float = 0.02,
        routing: RoutingName = "least-outstanding",
        cancel: bool = True,
        eject: float = 1.0,
        deadline: float = 5.0,
    ) -> None:
        if strategy == "parm" and code is None:
            raise ParameterError("strategy 'parm' needs a ParityCode")
        if code is not None and code.k != k:
            raise ParameterError(f"the parity code is for k={code.k}, the frontend for k={k}")
        self.strategy, self.layout, self.k, self.code = strategy, layout, k, code
        self.hedge_after, self.approx_after = hedge_after, approx_after
        if routing not in ("round-robin", "least-outstanding"):
            raise ParameterError(
                f"routing={routing!r} is unknown (allowed: round-robin, least-outstanding)"
            )
        self.group_timeout, self.routing, self.cancel = group_timeout, routing, cancel
        self.eject = eject if routing == "least-outstanding" else 0.0
        if not deadline > 0:
            raise ParameterError(f"deadline={deadline} must be > 0 seconds")
        self.deadline = deadline
        self._now = 0.0
        self._ejected_until = [0.0] * len(layout)
        self._zero_output: torch.Tensor | None = None
        self._pools: dict[Role, list[int]] = {}
        for i, role in enumerate(layout):
            self._pools.setdefault(role, []).append(i)
        needed = {"cheap-backup": "cheap", "parm": "parity"}.get(strategy)
        if "deployed" not in self._pools or (needed and needed not in self._pools):
            raise ParameterError(f"layout {layout} lacks instances for strategy {strategy!r}")
        self._next: dict[Role, int] = dict.fromkeys(self._pools, 0)
        self._task_ids = itertools.count()
        self._query_ids = itertools.count()
        self._group_ids = itertools.count()
        self._timer_seq = itertools.count()
        self._tasks: dict[int, Task] = {}
        self._live: dict[int, set[int]] = {}  # query -> its unfinished tasks
        self._lost_on: dict[int, set[int]] = {}  # query -> instances that lost one of its tasks
        self._cancels: list[Task] = []
        self._outstanding = [0] * len(layout)
        self._arrival: dict[int, float] = {}
        self._inputs: dict[int, torch.Tensor] = {}
        self._home: dict[int, int] = {}
        self._open: int | None = None
        self._groups: dict[int, _Group] = {}
        self._group_of: dict[int, int] = {}
        self._held: dict[int, tuple[torch.Tensor, Source]] = {}
        self._timers: list[tuple[float, int, str, int]] = []

    @property
    def unanswered(self) -> int:
        """Queries submitted and not yet answered."""
        return len(self._arrival)

    def submit(self, x: torch.Tensor, now: float) -> tuple[int, list[Task]]:
        """Accept one query (C, H, W); return its id and the tasks to run now."""
        self._now = now
        qid = next(self._query_ids)
        self._arrival[qid] = now
        x = x.unsqueeze(0)
        self._inputs[qid] = x
        self._timer(now + self.deadline, "deadline", qid)
        group = None
        if self.strategy == "parm":
            if self._open is None:
                self._open = next(self._group_ids)
                self._groups[self._open] = _Group()
                self._timer(now + self.group_timeout, "group", self._open)
            group = self._groups[self._open]
        # members of one coding group on distinct instances: one crash is one erasure
        data = self._task("deployed", x, query_id=qid, exclude=group.instances if group else ())
        assert data is not None  # a group has k - 1 other members, there are >= k instances
        self._home[qid] = data.instance
        tasks = [data]
        if self.strategy == "equal-resources":
            self._timer(now + self.hedge_after, "hedge", qid)
        elif self.strategy == "cheap-backup":
            tasks += [t for t in (self._task("cheap", x, query_id=qid),) if t is not None]
        elif group is not None:
            group.query_ids.append(qid)
            group.inputs.append(x)
            group.instances.add(data.instance)
            self._group_of[qid] = self._open  # type: ignore[assignment]
            if len(group.query_ids) == self.k:
                tasks += self._close_group(self._open)  # type: ignore[arg-type]
        return qid, tasks

    def complete(self, task_id: int, output: torch.Tensor, now: float) -> list[Answer]:
        """Record a finished task's output (n_classes,) and return the answers it settles."""
        self._now = now
        task = self._pop(task_id)
        if task is None:
            return []
        if task.role == "parity":
            group = self._groups.get(task.group_id)  # type: ignore[arg-type]
            if group is None:
                return []
            group.parity_output = output
            return self._try_decode(task.group_id, now)  # type: ignore[arg-type]
        qid = task.query_id
        assert qid is not None
        if task.role == "cheap":
            return self._approximate(qid, output, "backup", now)
        source: Source = "hedge" if task.hedge else "retry" if task.retry else "own"
        answers = self._answer(qid, output, source, now)
        gid = self._group_of.get(qid)
        if gid is not None:
            self._groups[gid].outputs[qid] = output
            answers += self._try_decode(gid, now)
        return answers

    def forget(self, task_id: int) -> None:
        """Drop a task the backend cancelled; its query stays open for other paths."""
        self._pop(task_id)

    def lost(self, task_id: int, now: float) -> tuple[list[Task], list[Answer]]:
        """Drop a task its instance lost (crash, unreachable) and repair what it leaves behind.

        Least-outstanding routing then skips that instance for ``eject`` seconds. A lost parity
        query is re-sent while its group has unanswered queries; every query of the task's group
        (or the task's query alone) that is left with no way to be answered is re-sent to a
        deployed instance that has not lost it, or, when none is left, answered with an
        explicit failure.

        Parameters
        ----------
        task_id : int
            The lost task, as returned in ``Task.task_id``.
        now : float
            The backend's clock, in seconds.

        Returns
        -------
        tuple of (list of Task, list of Answer)
            Tasks the backend must run now, and failure answers to deliver now.
        """
        self._now = now
        task = self._pop(task_id)
        if task is None:
            return [], []
        if self.eject:
            self._ejected_until[task.instance] = now + self.eject
        tasks: list[Task] = []
        answers: list[Answer] = []
        gid = task.group_id if task.role == "parity" else self._group_of.get(task.query_id)  # type: ignore[arg-type]
        group = self._groups.get(gid) if gid is not None else None
        if task.role == "parity":
            if group is None:
                return [], []
            group.parity_lost_on.add(task.instance)
            if any(q in self._arrival for q in group.query_ids):
                retry = self._task(
                    "parity", task.inputs, group_id=gid, exclude=group.parity_lost_on, retry=True
                )
                if retry is not None:
                    group.parity_task = retry.task_id
                    tasks.append(retry)
        else:
            self._lost_on.setdefault(task.query_id, set()).add(task.instance)  # type: ignore[arg-type]
        for qid in group.query_ids if group is not None else [task.query_id]:
            if qid in self._arrival and qid not in self._held and not self._answerable(qid):
                retry = self._resend(qid)
                if retry is not None:
                    tasks.append(retry)
                else:
                    on = ", ".join(str(i) for i in sorted(self._lost_on.get(qid, ())))
                    reason = f"every deployed instance that could run it lost it (instances {on})"
                    answers += self._fail(qid, reason, now)
        return tasks, answers

    def take_cancels(self) -> list[Task]:
        """Unfinished tasks that can no longer change an answer (only with ``cancel``); the
        backend drops those still queued and calls ``forget`` for them."""
        out, self._cancels = self._cancels, []
        return [t for t in out if t.task_id in self._tasks]

    def next_deadline(self) -> float | None:
        """When the earliest pending timer (hedge, group timeout, held answer) is due."""
        while self._timers and not self._timer_matters(self._timers[0][2], self._timers[0][3]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def on_timer(self, now: float) -> tuple[list[Task], list[Answer]]:
        """Fire due timers: hedges and partial groups' parity queries to send, held answers,
        and failures of queries past their deadline."""
        self._now = now
        tasks: list[Task] = []
        answers: list[Answer] = []
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, key = heapq.heappop(self._timers)
            if not self._timer_matters(kind, key):
                continue
            if kind == "hedge":
                x, home = self._inputs[key], self._home[key]
                hedge = self._task("deployed", x, query_id=key, avoid=home, hedge=True)
                tasks += [hedge] if hedge is not None else []
            elif kind == "group":
                tasks += self._close_group(key)
                answers += self._try_decode(key, now)
            elif kind == "release" or key in self._held:
                output, source = self._held[key]
                answers += self._answer(key, output, source, now)
            else:
                on = ", ".join(str(i) for i in sorted(self._lost_on.get(key, ())))
                lost = f"; its tasks were lost on instances {on}" if on else ""
                answers += self._fail(key, f"no answer within {self.deadline:g} s{lost}", now)
        return tasks, answers

    def _timer_matters(self, kind: str, key: int) -> bool:
        """Whether a timer still matters: its group is open, or its query unanswered."""
        return self._open == key if kind == "group" else key in self._arrival

    def _timer(self, when: float, kind: str, key: int) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_seq), kind, key))

    def _task(
        self,
        role: Role,
        x: torch.Tensor,
        *,
        query_id: int | None = None,
        group_id: int | None = None,
        avoid: int | None = None,
        exclude: Collection[int] = (),
        hedge: bool = False,
        retry: bool = False,
    ) -> Task | None:
        """A task on an instance of ``role``, never one in ``exclude`` (None if no other is
        left): a primary query by ``routing``; a redundant task (parity query, hedge, cheap
        backup, re-sent task) on the one with the fewest outstanding tasks, ``avoid`` if
        possible. Ties go to the earliest in round-robin order."""
        pool = self._pools[role]
        start = self._next[role]
        order = [pool[(start + j) % len(pool)] for j in range(len(pool))]
        order = [i for i in order if i not in exclude]
        if not order:
            return None
        order = [i for i in order if self._ejected_until[i] <= self._now] or order
        order = [i for i in order if i != avoid] or order
        if hedge or retry or role != "deployed" or self.routing == "least-outstanding":
            instance = min(order, key=lambda i: self._outstanding[i])
        else:
            instance = order[0]
        if not retry:  # a re-sent task leaves the round-robin order of new work as it was
            self._next[role] = start + 1 + (order[0] != pool[start % len(pool)])
        self._outstanding[instance] += 1
        task = Task(next(self._task_ids), instance, role, x, query_id, group_id, hedge, retry)
        self._tasks[task.task_id] = task
        if query_id is not None:
            self._live.setdefault(query_id, set()).add(task.task_id)
        return task

    def _pop(self, task_id: int) -> Task | None:
        task = self._tasks.pop(task_id, None)
        if task is not None:
            self._outstanding[task.instance] -= 1
            live = self._live.get(task.query_id)  # type: ignore[arg-type]
            if live is not None:
                live.discard(task_id)
                if not live:
                    del self._live[task.query_id]  # type: ignore[arg-type]
        return task

    def _has_own_task(self, qid: int) -> bool:
        """Whether ``qid`` has an unfinished task of the deployed model."""
        return any(self._tasks[t].role == "deployed" for t in self._live.get(qid, ()))

    def _answerable(self, qid: int) -> bool:
        """Whether some unfinished work can still answer ``qid``: a task of its own (deployed
        model or cheap backup), or (ParM) its group's parity query with every other member's
        output in hand or still to come."""
        if qid in self._live:
            return True
        gid = self._group_of.get(qid)
        if gid is None:
            return False
        group = self._groups[gid]
        parity = (
            not group.closed or group.parity_output is not None or group.parity_task in self._tasks
        )
        others = (q for q in group.query_ids if q != qid)
        return parity and all(q in group.outputs or self._has_own_task(q) for q in others)

    def _resend(self, qid: int) -> Task | None:
        """Re-send ``qid`` to a deployed instance that has not lost it, apart from its group's
        other members if possible; None if every deployed instance has lost it."""
        lost_on = self._lost_on.get(qid, set())
        gid = self._group_of.get(qid)
        busy = {
            self._tasks[t].instance
            for q in (self._groups[gid].query_ids if gid is not None else ())
            for t in self._live.get(q, ())
        }
        x = self._inputs[qid]
        return self._task(
            "deployed", x, query_id=qid, exclude=lost_on | busy, retry=True
        ) or self._task("deployed", x, query_id=qid, exclude=lost_on, retry=True)

    def _close_group(self, gid: int) -> list[Task]:
        """Encode the group (zero queries fill a partial one) and make its parity task; with
        ``cancel``, none for a partial group whose queries are all answered already."""
        self._open = None
        group = self._groups[gid]
        group.closed = True
        if self.cancel and all(q not in self._arrival for q in group.query_ids):
            group.inputs.clear()
            return []
        padding = [torch.zeros_like(group.inputs[0])] * (self.k - len(group.inputs))
        if padding and self._zero_output is None:
            with torch.no_grad():
                self._zero_output = self.code.deployed(padding[0]).squeeze(0)  # type: ignore[union-attr]
        parity_query = self.code.encode(torch.cat(group.inputs + padding).unsqueeze(0))  # type: ignore[union-attr]
        group.inputs.clear()
        task = self._task("parity", parity_query, group_id=gid)
        assert task is not None  # nothing is excluded
        group.parity_task = task.task_id
        return [task]

    def _try_decode(self, gid: int, now: float) -> list[Answer]:
        group = self._groups[gid]
        answers: list[Answer] = []
        n = len(group.query_ids)
        ready = group.closed and group.parity_output is not None
        if ready and len(group.outputs) == n - 1:
            missing = next(q for q in group.query_ids if q not in group.outputs)
            if missing in self._arrival and missing not in self._held:
                outs = [group.outputs.get(q) for q in group.query_ids]
                outs += [self._zero_output] * (self.k - n)
                rebuilt = self.code.decode(group.parity_output, outs)  # type: ignore[union-attr]
                answers = self._approximate(missing, rebuilt, "decoded", now)
        if group.closed and all(q not in self._arrival for q in group.query_ids):
            del self._groups[gid]
            for q in group.query_ids:
                self._group_of.pop(q, None)
        return answers

    def _approximate(
        self, qid: int, output: torch.Tensor, source: Source, now: float
    ) -> list[Answer]:
        """Answer with an approximate output now, or hold it until the query is old enough."""
        arrival = self._arrival.get(qid)
        if arrival is None or qid in self._held:
            return []
        if now >= arrival + self.approx_after:
            return self._answer(qid, output, source, now)
        self._held[qid] = (output, source)
        self._timer(arrival + self.approx_after, "release", qid)
        return []

    def _fail(self, qid: int, reason: str, now: float) -> list[Answer]:
        """Answer ``qid`` with an explicit failure saying why."""
        return self._answer(qid, None, "failed", now, reason)

    def _answer(
        self, qid: int, output: torch.Tensor | None, source: Source, now: float, reason: str = ""
    ) -> list[Answer]:
        arrival = self._arrival.pop(qid, None)
        if arrival is None:
            return []
        self._inputs.pop(qid, None)
        self._home.pop(qid, None)
        self._held.pop(qid, None)
        self._lost_on.pop(qid, None)
        if self.cancel:
            self._cancels += self._useless(qid)
        answers = [Answer(qid, output, source, arrival, now, reason)]
        gid = self._group_of.get(qid)
        if gid is not None and source == "failed":
            answers += self._try_decode(gid, now)  # forgets the group once every query is done
        return answers

    def _useless(self, qid: int) -> list[Task]:
        """Tasks made useless by answering ``qid``: its own, or (ParM) its whole group's once
        every query of the group is answered (until then an original may still decode one)."""
        queries, extra = [qid], []
        gid = self._group_of.get(qid)
        if gid is not None:
            group = self._groups[gid]
            if not group.closed or any(q in self._arrival for q in group.query_ids):
                return []
            queries, extra = group.query_ids, [group.parity_task]
        ids = [t for q in queries for t in self._live.get(q, ())] + extra
        return [self._tasks[t] for t in ids if t in self._tasks]
