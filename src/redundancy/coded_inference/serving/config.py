"""Typed settings of the coded-serving frontend: strategy, instance counts, latency and faults.

Times are in milliseconds in the config (what a person writes) and in seconds inside the
frontend and backends. Every field has a default, so the commands run with no arguments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StrategyName = Literal["none", "equal-resources", "cheap-backup", "parm"]
STRATEGIES: tuple[StrategyName, ...] = ("none", "equal-resources", "cheap-backup", "parm")
RoutingName = Literal["round-robin", "least-outstanding"]
BackgroundName = Literal["modelled", "cpu-hog"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencyConfig(_Strict):
    """Service time of an instance plus seeded heavy-tailed background-load delays.

    Each request takes ``service_ms`` (parity models too: same architecture; a cheap backup
    ``service_ms / k``) times a lognormal jitter; with probability ``slow_prob`` background load
    adds ``slow_scale_ms * Pareto(pareto_alpha)`` milliseconds, capped at ``max_slow_ms``.
    With ``hog_factor > 1`` each instance also has slow periods (a CPU hog sharing it): normal
    stretches of mean ``hog_gap_ms`` alternate with slow ones of mean ``hog_ms`` (both
    exponential, seeded per instance) in which requests run ``hog_factor`` times slower.

    Attributes
    ----------
    service_ms : float, default 10.0
        Service time of one request.
    jitter : float, default 0.1
        Lognormal sigma of the service time.
    slow_prob : float, default 0.02
        Probability that background load delays a request.
    slow_scale_ms : float, default 20.0
        Scale of that delay (times a Pareto draw).
    pareto_alpha : float, default 1.5
        Shape of the Pareto draw (smaller: heavier tail).
    max_slow_ms : float, default 2000.0
        Cap of one background delay.
    hog_factor : float, default 1.0
        Slowdown inside slow periods (1: no slow periods).
    hog_ms : float, default 200.0
        Mean length of a slow period.
    hog_gap_ms : float, default 4000.0
        Mean time between slow periods.

    Examples
    --------
    >>> LatencyConfig(service_ms=5.0).slow_prob
    0.02
    """

    service_ms: float = Field(10.0, gt=0.0, le=60_000.0)
    jitter: float = Field(0.1, ge=0.0, le=2.0, description="Lognormal sigma of service time.")
    slow_prob: float = Field(0.02, ge=0.0, le=1.0)
    slow_scale_ms: float = Field(20.0, ge=0.0, le=60_000.0)
    pareto_alpha: float = Field(1.5, gt=0.5, le=10.0)
    max_slow_ms: float = Field(2_000.0, gt=0.0, le=600_000.0)
    hog_factor: float = Field(1.0, ge=1.0, le=1_000.0, description="1: no slow periods.")
    hog_ms: float = Field(200.0, gt=0.0, le=600_000.0)
    hog_gap_ms: float = Field(4_000.0, gt=0.0, le=3_600_000.0)


class Crash(_Strict):
    """Instance ``instance`` stops at ``at_ms`` (queued work is lost), back at ``restart_ms``.

    Attributes
    ----------
    instance : int
        Index of the instance (0..total_instances-1).
    at_ms : float, default 0.0
        When it stops.
    restart_ms : float, optional
        When it is back (after ``at_ms``); None: never.

    Examples
    --------
    >>> Crash(instance=3, at_ms=100.0, restart_ms=600.0).restart_ms
    600.0
    """

    instance: int = Field(ge=0)
    at_ms: float = Field(0.0, ge=0.0)
    restart_ms: float | None = Field(None, description="None: the instance never comes back.")

    @model_validator(mode="after")
    def _order(self) -> Crash:
        if self.restart_ms is not None and self.restart_ms <= self.at_ms:
            raise ValueError(f"restart_ms={self.restart_ms} must be after at_ms={self.at_ms}")
        return self


class Slowdown(_Strict):
    """Instance ``instance`` runs ``factor`` times slower between ``start_ms`` and ``end_ms``.

    Attributes
    ----------
    instance : int
        Index of the instance (0..total_instances-1).
    start_ms : float
        Start of the window.
    end_ms : float
        End of the window (after ``start_ms``).
    factor : float
        Slowdown, in (1, 1000].

    Examples
    --------
    >>> Slowdown(instance=0, start_ms=0.0, end_ms=400.0, factor=20.0).factor
    20.0
    """

    instance: int = Field(ge=0)
    start_ms: float = Field(ge=0.0)
    end_ms: float
    factor: float = Field(gt=1.0, le=1_000.0)

    @model_validator(mode="after")
    def _order(self) -> Slowdown:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"end_ms={self.end_ms} must be after start_ms={self.start_ms}")
        return self


class FaultConfig(_Strict):
    """Injected faults on top of the background load.

    Attributes
    ----------
    crashes : tuple of Crash, default ()
        Instances that stop (and maybe come back).
    slowdowns : tuple of Slowdown, default ()
        Windows in which instances run slower.

    Examples
    --------
    >>> faults = FaultConfig(crashes=(Crash(instance=1, at_ms=50.0),))
    >>> len(faults.crashes), faults.slowdowns
    (1, ())
    """

    crashes: tuple[Crash, ...] = ()
    slowdowns: tuple[Slowdown, ...] = ()


class ServingConfig(_Strict):
    """One serving setup. Every strategy gets ``data_instances + data_instances / k`` instances.

    ``none`` and ``equal-resources`` load-balance over all of them (the latter also re-sends a
    query that has no answer after ``hedge_after_ms``); ``cheap-backup`` and ``parm`` keep
    ``data_instances`` deployed-model instances and spend the rest on cheap-model or parity-model
    instances. Their approximate answers wait until a query is ``approx_after_ms`` old (set it
    just above the normal service time), so they replace only late outputs. A ParM coding group
    not full ``group_timeout_ms`` after its first query is padded with zero queries.

    ``routing`` places primary queries, the same way for every strategy: ``round-robin``, or
    ``least-outstanding`` (the instance with the fewest unfinished tasks, ties in round-robin
    order, as a least-connections load balancer does; like one with passive health checks it
    skips an instance that lost a task, for every kind of task, for ``eject_ms``). With
    ``cancel``, queued work that can no longer change any answer is dropped before it runs,
    for every strategy alike: a query's other copy (hedge or original) or cheap backup once it
    is answered, and a ParM group's parity query and originals once every query of the group
    is answered.

    Every query is accounted for: a task lost on a crashed or unreachable instance is re-sent
    when nothing else can still answer its query, and a query without an answer
    ``deadline_ms`` after its arrival is answered with an explicit failure and its reason.

    ``background="cpu-hog"`` (real-time backends only) turns each ``Slowdown`` window into a
    real busy-loop process sharing the slowed instance's core, and instances burn their service
    time as CPU work, instead of multiplying it by the window's factor.

    Attributes
    ----------
    strategy : {"parm", "none", "equal-resources", "cheap-backup"}, default "parm"
        How the redundant instances are used.
    k : int, default 2
        Queries per coding group, 2..16.
    data_instances : int, default 8
        Deployed-model instances, a multiple of k.
    hedge_after_ms : float, default 20.0
        Equal-resources re-sends a query unanswered this long.
    approx_after_ms : float, default 12.0
        Hold approximate answers until the query is this old.
    group_timeout_ms : float, default 20.0
        Pad a coding group not full this long after its first query.
    routing : {"least-outstanding", "round-robin"}, default "least-outstanding"
        How primary queries are placed.
    cancel : bool, default True
        Drop queued work that can no longer change an answer.
    eject_ms : float, default 1000.0
        Least-outstanding skips an instance this long after it lost a task.
    deadline_ms : float, default 5000.0
        Fail a query unanswered this long.
    background : {"modelled", "cpu-hog"}, default "modelled"
        Slowdowns multiply service times, or (real-time backends) run real busy loops.
    rate_qps : float, default 400.0
        Poisson arrival rate.
    queries : int, default 2000
        Queries sent.
    seed : int, default 0
        Seeds arrivals, latencies and faults.
    latency : LatencyConfig
        Service times and background load.
    faults : FaultConfig
        Injected crashes and slowdowns.

    Raises
    ------
    pydantic.ValidationError
        If a field is out of range, ``data_instances`` is not a multiple of k, or a fault
        names an instance that does not exist.

    Examples
    --------
    >>> config = ServingConfig(strategy="parm", k=4, data_instances=8)
    >>> config.total_instances  # 8 deployed + 8 / 4 parity
    10
    """

    strategy: StrategyName = "parm"
    k: int = Field(2, ge=2, le=16)
    data_instances: int = Field(8, ge=2, le=256)
    hedge_after_ms: float = Field(20.0, gt=0.0, le=600_000.0)
    approx_after_ms: float = Field(
        12.0,
        ge=0.0,
        le=600_000.0,
        description="Hold approximate answers until this old.",
    )
    group_timeout_ms: float = Field(20.0, gt=0.0, le=600_000.0)
    routing: RoutingName = "least-outstanding"
    cancel: bool = True
    eject_ms: float = Field(1_000.0, ge=0.0, le=3_600_000.0)
    deadline_ms: float = Field(
        5_000.0, gt=0.0, le=3_600_000.0, description="Fail a query unanswered this long."
    )
    background: BackgroundName = "modelled"
    rate_qps: float = Field(400.0, gt=0.0, le=100_000.0)
    queries: int = Field(2_000, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0)
    latency: LatencyConfig = LatencyConfig()
    faults: FaultConfig = FaultConfig()

    @model_validator(mode="after")
    def _groups(self) -> ServingConfig:
        if self.data_instances % self.k:
            raise ValueError(
                f"data_instances={self.data_instances} must be a multiple of k={self.k} "
                "(one parity instance per k deployed instances)"
            )
        total = self.total_instances
        for fault in (*self.faults.crashes, *self.faults.slowdowns):
            if fault.instance >= total:
                raise ValueError(
                    f"fault on instance {fault.instance}; instances are 0..{total - 1}"
                )
        return self

    @property
    def total_instances(self) -> int:
        """Deployed plus redundant instances: the same for every strategy."""
        return self.data_instances + self.data_instances // self.k
