"""Discrete-event simulation of a planner serving a trace: re-planning, routing, engines, metrics.

Every ``epoch_s`` the planner is called with the availability in force and the demand (declared, or
observed over the last epoch) and the counts now running; instances the new plan keeps stay, extra
ones stop accepting and drain (they are paid until their last request finishes), new ones are paid
from launch but accept requests only after ``init_delay_s``. A coordinator routes each model's
requests over its accepting instances by smooth weighted round-robin (weights = planned req/s).
Routing never depends on engine state, so each instance is then simulated on its own
(``engine.run_engine``). A request meets the SLO when TTFT <= prefill SLO and time per output token
<= decode SLO; goodput counts the output tokens of such requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from redundancy.coral.planner.catalog import Scenario
from redundancy.coral.planner.perf import ProfileTable
from redundancy.coral.schema import Instance, Plan
from redundancy.coral.sim.availability import AvailabilityTrace, constant_availability
from redundancy.coral.sim.engine import DONE, NO_INSTANCE, EngineModel, engine_model, run_engine
from redundancy.coral.sim.workload import Trace
from redundancy.errors import ParameterError

Planner = Callable[[Scenario, dict[tuple[str, str], int]], Plan]


class SimConfig(BaseModel):
    """Knobs of a simulation run.

    Attributes
    ----------
    epoch_s : float, default 360.0
        Seconds between re-plans (each epoch the planner sees the availability then).
    init_delay_s : float, default 60.0
        Seconds from launching an instance (paid from then) until it accepts requests.
    max_queue_s : float, default 60.0
        A request waiting longer than this for an instance is dropped.
    window_s : float, default 60.0
        Width in seconds of the windows the time series are reported in.
    observed_demand : bool, default False
        Plan for the last epoch's observed arrival rate instead of the declared demand.
    admission : float or None, default None
        Admit a model's requests at most at this fraction of its accepting instances' planned
        req/s (token bucket) and reject the rest; None admits everything.
    burst_s : float, default 10.0
        Seconds of admitted rate the token bucket holds.

    Examples
    --------
    >>> config = SimConfig(epoch_s=600, admission=1.2)
    >>> config.epoch_s, config.admission, config.burst_s
    (600.0, 1.2, 10.0)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    epoch_s: float = Field(default=360.0, gt=0)
    init_delay_s: float = Field(default=60.0, ge=0)
    max_queue_s: float = Field(default=60.0, gt=0)
    window_s: float = Field(default=60.0, gt=0)
    observed_demand: bool = False  # plan for last epoch's arrival rate instead of the declared one
    # Admission control at the router: admit a model's requests at most at this fraction of its
    # accepting instances' planned req/s (token bucket, ``burst_s`` seconds of it); the rest are
    # rejected (dropped). None admits everything.
    admission: float | None = Field(default=None, gt=0)
    burst_s: float = Field(default=10.0, gt=0)


@dataclass
class Running:
    """An instance's life: launch (paid from), ready (accepts from), stop (accepts until)."""

    instance: Instance
    launch: float
    ready: float
    stop: float = np.inf
    end: float = 0.0  # last finish (or stop) once simulated

    @property
    def key(self) -> tuple[str, str]:
        """(region, template) as the allocation ILP names it."""
        return (self.instance.region, self.instance.template)


@dataclass
class SimResult:
    """Per-request outcomes, the fleet's history, and summaries."""

    scenario: Scenario
    trace: Trace
    duration_s: float
    ttft: np.ndarray
    tpot: np.ndarray
    status: np.ndarray
    met: np.ndarray
    fleet: list[Running]
    plan_seconds: list[float]
    window_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> float:
        """Dollars paid over the run (provisioning, initialisation and draining included)."""
        return sum(
            r.instance.price_per_hour * (min(r.end, self.duration_s) - r.launch) / 3600
            for r in self.fleet
        )

    @property
    def cost_per_hour(self) -> float:
        """Average $/h over the run."""
        return self.cost * 3600 / self.duration_s

    def per_model(self) -> dict[str, dict[str, float]]:
        """Requests, completed, dropped, SLO attainment, goodput and throughput (tokens/s)."""
        out = {}
        for index, name in enumerate(self.trace.models):
            mine = self.trace.model == index
            tokens = self.trace.output_tokens[mine]
            done = self.status[mine] == DONE
            met = self.met[mine]
            count = int(mine.sum())
            out[name] = {
                "requests": count,
                "completed": int(done.sum()),
                "dropped": count - int(done.sum()),
                "attainment": float(met.mean()) if count else 1.0,
                "goodput_tps": float(tokens[met].sum()) / self.duration_s,
                "throughput_tps": float(tokens[done].sum()) / self.duration_s,
            }
        return out

    def goodput(self) -> float:
        """SLO-meeting output tokens per second, all models."""
        return float(self.trace.output_tokens[self.met].sum()) / self.duration_s

    def attainment(self) -> float:
        """Fraction of all requests that met their SLO."""
        return float(self.met.mean()) if len(self.met) else 1.0

    def timeline(self) -> dict[str, np.ndarray]:
        """Per window: start time, $/h, goodput (tokens/s) and attainment per model (by arrival)."""
        starts = np.arange(0.0, self.duration_s, self.window_s)
        edges = np.append(starts, self.duration_s)
        width = np.diff(edges)
        cost = np.zeros(len(starts))
        for r in self.fleet:
            overlap = np.clip(np.minimum(edges[1:], min(r.end, self.duration_s)) - starts, 0, None)
            overlap -= np.clip(np.minimum(edges[1:], r.launch) - starts, 0, None)
            cost += r.instance.price_per_hour * np.clip(overlap, 0, None) / width
        bucket = np.minimum((self.trace.arrival // self.window_s).astype(int), len(starts) - 1)
        out = {"t": starts, "cost_per_hour": cost}
        for index, name in enumerate(self.trace.models):
            mine = self.trace.model == index
            tokens = np.where(self.met & mine, self.trace.output_tokens, 0)
            out[f"goodput:{name}"] = np.bincount(bucket, tokens, len(starts)) / width
            total = np.bincount(bucket[mine], minlength=len(starts))
            good = np.bincount(bucket[mine & self.met], minlength=len(starts))
            out[f"attainment:{name}"] = np.where(total > 0, good / np.maximum(total, 1), 1.0)
        return out


def _smooth_wrr(weights: np.ndarray, current: np.ndarray) -> int:
    current += weights
    pick = int(np.argmax(current))
    current[pick] -= weights.sum()
    return pick


def _route(
    trace: Trace, fleet: list[Running], config: SimConfig, until: float = np.inf
) -> list[list[int]]:
    """Request indices per fleet member (smooth WRR over the model's accepting instances).

    Only requests arriving before ``until`` are routed; the assignment of those never depends on
    members launched later, so routing a prefix early gives the same answer as routing it all.
    With ``config.admission`` a token bucket per model and interval admits at most that fraction
    of the planned req/s; requests it rejects are routed nowhere.
    """
    assigned: list[list[int]] = [[] for _ in fleet]
    for index, name in enumerate(trace.models):
        members = [i for i, r in enumerate(fleet) if r.instance.model == name]
        changes = sorted({fleet[i].ready for i in members} | {fleet[i].stop for i in members})
        requests = np.flatnonzero((trace.model == index) & (trace.arrival < until))
        cursor = 0
        bounds = [-np.inf, *changes, np.inf]
        for lo, hi in pairwise(bounds):
            end = cursor + int(np.searchsorted(trace.arrival[requests[cursor:]], hi, side="left"))
            active = [i for i in members if fleet[i].ready <= max(lo, 0) < fleet[i].stop]
            if active and end > cursor:
                weights = np.array([fleet[i].instance.throughput_rps for i in active])
                current = np.zeros(len(active))
                rate = (config.admission or 0.0) * weights.sum()
                level, last = rate * config.burst_s, trace.arrival[requests[cursor]]
                for req in requests[cursor:end]:
                    if config.admission is not None:
                        now = trace.arrival[req]
                        level = min(rate * config.burst_s, level + (now - last) * rate)
                        last = now
                        if level < 1.0:
                            continue
                        level -= 1.0
                    assigned[active[_smooth_wrr(weights, current)]].append(int(req))
            cursor = end
    return assigned


def _demand(scenario: Scenario, trace: Trace, t: float, epoch_s: float, observed: bool):
    if not observed or t == 0:
        return dict(scenario.demand)
    recent = (trace.arrival >= t - epoch_s) & (trace.arrival < t)
    counts = np.bincount(trace.model[recent], minlength=len(trace.models))
    rates = {m: counts[i] / epoch_s for i, m in enumerate(trace.models)}
    return {m: float(rates.get(m, 0.0)) for m in scenario.demand}


Outcomes = dict[int, tuple[np.ndarray, ...]]  # fleet index -> (requests, ttft, tpot, status)


class _Serving:
    """Runs fleet members' engines (once each, caching timing models per template)."""

    def __init__(self, scenario, trace, config, duration, profile) -> None:
        self.scenario, self.trace, self.config = scenario, trace, config
        self.duration, self.profile = duration, profile
        self.engines: dict[tuple[str, str], EngineModel] = {}
        self.done: Outcomes = {}

    def serve(self, fleet: list[Running], members: list[int], until: float = np.inf) -> None:
        """Simulate ``members`` (all stopped before ``until``, or the whole run) and set ``end``."""
        members = [i for i in members if i not in self.done]
        if not members:
            return
        routed = _route(self.trace, fleet, self.config, until)
        trace = self.trace
        for i in members:
            member = fleet[i]
            if member.key not in self.engines:
                self.engines[member.key] = engine_model(
                    member.instance, self.scenario, self.profile
                )
            idx = np.asarray(routed[i], dtype=np.int64)
            member.end = member.stop if member.stop < np.inf else self.duration
            a, b, finish, s = run_engine(
                self.engines[member.key], trace.arrival[idx], trace.input_tokens[idx],
                trace.output_tokens[idx], member.ready, self.config.max_queue_s,
            )  # fmt: skip
            self.done[i] = (idx, a, b, s)
            if np.isfinite(finish).any():
                member.end = max(member.end, float(np.nanmax(finish)))


def _held(fleet: list[Running], t: float) -> dict[tuple[str, str], int]:
    """Nodes per (region, config) held at ``t`` by instances stopped earlier and still draining."""
    held: dict[tuple[str, str], int] = {}
    for r in fleet:
        if r.stop < t < r.end:
            groups = [s.nodes for s in r.instance.stages] + [r.instance.prefill_nodes]
            for nodes in groups:
                for config, n in nodes.items():
                    key = (r.instance.region, config)
                    held[key] = held.get(key, 0) + n
    return held


def _without(scenario: Scenario, held: dict[tuple[str, str], int]) -> Scenario:
    regions = []
    for region in scenario.regions:
        avail = {
            c: max(0, n - held.get((region.name, c), 0)) for c, n in region.availability.items()
        }
        regions.append(region.model_copy(update={"availability": avail}))
    return scenario.model_copy(update={"regions": regions})


def _replan(scenario, trace, planner, availability, config, duration, serving: _Serving):
    fleet: list[Running] = []
    seconds: list[float] = []
    cache: dict[tuple, Plan] = {}
    for t in np.arange(0.0, duration, config.epoch_s):
        stopped = [i for i, r in enumerate(fleet) if r.stop <= t]
        serving.serve(fleet, stopped, float(t))
        held = _held(fleet, float(t))
        now = _without(availability.apply(scenario, float(t)), held)
        demand = _demand(scenario, trace, float(t), config.epoch_s, config.observed_demand)
        now = now.model_copy(update={"demand": demand})
        live = [r for r in fleet if r.stop == np.inf]
        previous: dict[tuple[str, str], int] = {}
        for r in live:
            previous[r.key] = previous.get(r.key, 0) + 1
        key = (
            tuple(sorted(availability.at(float(t)).items())),
            tuple(sorted(held.items())),
            tuple(sorted(demand.items())),
            tuple(sorted(previous.items())),
        )
        start = time.perf_counter()
        if key not in cache:
            cache[key] = planner(now, previous)
        seconds.append(time.perf_counter() - start)
        wanted: dict[tuple[str, str], list[Instance]] = {}
        for inst in cache[key].instances:
            wanted.setdefault((inst.region, inst.template), []).append(inst)
        for r in live:
            if wanted.get(r.key):
                wanted[r.key].pop()
            else:
                r.stop = float(t)
        delay = config.init_delay_s if t > 0 else 0.0
        for items in wanted.values():
            fleet += [Running(inst, float(t), float(t) + delay) for inst in items]
    return fleet, seconds


def simulate(
    scenario: Scenario,
    trace: Trace,
    planner: Planner,
    availability: AvailabilityTrace | None = None,
    config: SimConfig | None = None,
    duration_s: float | None = None,
    profile: ProfileTable | None = None,
) -> SimResult:
    """Replay ``trace`` against the plans ``planner`` makes each epoch; measure cost, goodput.

    Instances still draining at a re-plan hold their nodes: the planner sees the availability
    minus those.

    Parameters
    ----------
    scenario : Scenario
        What is served on what.
    trace : Trace
        Requests (``synthetic_trace`` or ``load_trace``); its models must be the scenario's.
    planner : callable
        ``(scenario, running counts) -> Plan``, e.g. ``baselines.planners.PLANNERS["coral"]``.
    availability : AvailabilityTrace, optional
        Nodes available over time (default: the scenario's, constant).
    config : SimConfig, optional
        Re-plan interval, start-up delay, queue timeout, admission control.
    duration_s : float, optional
        Simulated time (default: the trace's length, at least one epoch).
    profile : ProfileTable, optional
        Measured per-layer times replacing the performance model in the engines.

    Returns
    -------
    SimResult
        Per-request TTFT, TPOT and status, the fleet's history, $/h, goodput, SLO attainment.

    Raises
    ------
    ParameterError
        Trace models not in the scenario, non-positive duration.

    Examples
    --------
    >>> from redundancy.coral.baselines.planners import PLANNERS
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> from redundancy.coral.sim.workload import synthetic_trace
    >>> scenario = load_scenario("core").model_copy(update={"max_nodes": 3})
    >>> result = simulate(scenario, synthetic_trace(scenario.demand, 300), PLANNERS["homo"])
    >>> round(result.cost_per_hour, 2), bool(result.attainment() > 0.9)
    (30.29, True)
    """
    config = config or SimConfig()
    unknown = set(trace.models) - set(scenario.demand)
    if unknown:
        raise ParameterError(f"trace models {sorted(unknown)} are not in the scenario")
    duration = float(duration_s or max(trace.duration, config.epoch_s))
    if duration <= 0:
        raise ParameterError(f"duration_s = {duration} is out of range (allowed: > 0)")
    availability = availability or constant_availability(scenario)
    serving = _Serving(scenario, trace, config, duration, profile)
    fleet, seconds = _replan(scenario, trace, planner, availability, config, duration, serving)
    serving.serve(fleet, list(range(len(fleet))))
    n = len(trace)
    ttft, tpot = np.full(n, np.nan), np.full(n, np.nan)
    status = np.full(n, NO_INSTANCE, dtype=np.int8)
    for idx, a, b, s in serving.done.values():
        ttft[idx], tpot[idx], status[idx] = a, b, s
    lookup = {m.name: m.slo for m in scenario.models}
    prefill = np.array([lookup[m].prefill_ms / 1e3 for m in trace.models])[trace.model]
    decode = np.array([lookup[m].decode_ms / 1e3 for m in trace.models])[trace.model]
    with np.errstate(invalid="ignore"):
        met = (status == DONE) & (ttft <= prefill + 1e-9) & (tpot <= decode + 1e-9)
    return SimResult(
        scenario, trace, duration, ttft, tpot, status, met, fleet, seconds, config.window_s
    )
