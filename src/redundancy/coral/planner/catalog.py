"""Typed catalogs (GPUs, instances as sold, models + SLOs, regions) and scenarios.

The embedded catalogs live in ``coral/data/*.yaml``: ``gpus.yaml`` (chip facts),
``instances.yaml`` (cloud instance types with their GPUs, interconnect, network bandwidth and
on-demand price per region, with sources), ``models.yaml`` (shapes and weight sizes as shipped)
and ``regions.yaml`` (availability). A scenario YAML names what to use from them and may add its
own GPUs, instances, models and regions in the same format (``catalog:`` section).
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redundancy.errors import ConfigError, ParameterError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GPU(_Strict):
    """One GPU type: memory (GB), bandwidth (TB/s), dense FP16 TFLOPS, SkyPilot name.

    ``rel_cost`` is Coral Table 1's cost relative to L4 (informational only).
    """

    name: str
    memory_gb: float = Field(gt=0)
    bandwidth_tbs: float = Field(gt=0)
    tflops: float = Field(gt=0)
    sky: str = ""
    rel_cost: float | None = Field(default=None, gt=0)


INTERCONNECTS = ("-", "PCIe", "NVLink", "NVSwitch")


class InstanceType(_Strict):
    """A cloud instance type as sold: its GPUs, links, network and $/h per region."""

    cloud: str
    type: str
    gpu: str
    gpus: int = Field(ge=1)
    interconnect: Literal["-", "PCIe", "NVLink", "NVSwitch"]
    network_gbps: float = Field(gt=0)
    prices: dict[str, float]
    source: str

    @model_validator(mode="after")
    def _valid(self) -> InstanceType:
        if (self.gpus == 1) != (self.interconnect == "-"):
            raise ValueError(f"{self.type}: interconnect '-' is for 1-GPU instances only")
        for region, price in self.prices.items():
            if price < 0:
                raise ValueError(f"{self.type}: price in {region} must be >= 0, got {price}")
        return self

    @property
    def config(self) -> str:
        """The node config it provides, e.g. ``L40Sx4``."""
        return f"{self.gpu}x{self.gpus}"


class SLO(_Strict):
    """Latency objective: time to first token (prefill) and time per output token (decode)."""

    prefill_ms: float = Field(gt=0)
    decode_ms: float = Field(gt=0)


class ModelSpec(_Strict):
    """A transformer's shape: enough to derive per-layer FLOPs, weight bytes and KV bytes."""

    name: str
    layers: int = Field(ge=1)
    hidden: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    params_b: float = Field(gt=0)
    active_params_b: float = Field(gt=0)
    bytes_per_param: float = Field(default=2.0, gt=0)  # when weight_gb is not given
    weight_dtype: str = "bf16"
    weight_gb: float | None = Field(default=None, gt=0)  # released checkpoint size (GB)
    kv_bytes: float = Field(default=2.0, gt=0)  # bytes per cached K/V element
    hf_id: str = ""  # Hugging Face repository, used in deployment commands
    slo: SLO

    @model_validator(mode="after")
    def _active_le_total(self) -> ModelSpec:
        if self.active_params_b > self.params_b:
            raise ValueError("active_params_b must be <= params_b")
        return self

    @property
    def weight_bytes(self) -> float:
        """Total weight bytes as shipped (checkpoint size, else parameters x bytes_per_param)."""
        if self.weight_gb is not None:
            return self.weight_gb * 1e9
        return self.params_b * 1e9 * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> float:
        """K and V bytes one token adds to the cache of ONE layer."""
        return 2 * self.kv_heads * self.head_dim * self.kv_bytes


class Region(_Strict):
    """A region (a cloud's, or a private pool): how many nodes of each config are available.

    Prices come from the instance types that list this region.
    """

    name: str
    availability: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _non_negative(self) -> Region:
        for key, value in self.availability.items():
            if value < 0:
                raise ValueError(f"availability of {key} must be >= 0, got {value}")
        return self


class NodeConfig(_Strict):
    """A node: ``count`` GPUs of one type, tensor/expert parallel inside the node.

    ``interconnect`` and ``network_gbps`` are the weakest over the instances that sell it.
    """

    gpu: GPU
    count: int = Field(ge=1)
    interconnect: Literal["-", "PCIe", "NVLink", "NVSwitch"] = "-"
    network_gbps: float = Field(default=10.0, gt=0)

    @property
    def name(self) -> str:
        """Config name as used in catalogs, e.g. ``L40Sx4``."""
        return f"{self.gpu.name}x{self.count}"


class PerfParams(_Strict):
    """Performance model and workload shape.

    ``model``: "calibrated" (default) uses the per-GPU factors fitted to measured vLLM times
    (``coral/data/calibration.yaml``) where a GPU has them and the roofline with the efficiencies
    below elsewhere; "roofline" uses the roofline for every GPU.
    ``pipeline_points`` / ``pipeline_step_ratio``: a pipeline of S >= 2 stages is rated at one
    per-stage step budget shared by all its stages (its stages run in lockstep), tried on a
    geometric grid of ``points`` budgets from ``decode_ms / S`` down to the fastest step any
    stage of ceil(L / S) layers can take, with ratio ``ratio`` (wider if ``points`` do not
    reach it: ``perf.step_budgets``); the planned rate is at most one grid ratio below the
    pipeline's best shared budget. ``pipeline_rating: node-local`` restores the rating before
    issue #21's fix (each stage node at its own step and batch, which overstates long mixed
    pipelines; for attributing the comparison's ratios).
    ``communication``: charge tensor-parallel all-reduces inside a node and the activation
    transfer (time and NIC cap) between pipeline stages (default); False leaves both out, as the
    model did before issue #21 (for attributing the comparison's ratios factor by factor).
    """

    model: Literal["calibrated", "roofline"] = "calibrated"
    communication: bool = True
    eta_compute: float = Field(default=0.5, gt=0, le=1)
    eta_bandwidth: float = Field(default=0.8, gt=0, le=1)
    tp_efficiency: float = Field(default=0.9, gt=0, le=1)
    memory_utilisation: float = Field(default=0.9, gt=0, le=1)
    step_overhead_ms: float = Field(default=0.0, ge=0)
    input_tokens: int = Field(default=750, ge=1)
    output_tokens: int = Field(default=240, ge=1)
    max_batch: int = Field(default=256, ge=1)
    pipeline_points: int = Field(default=128, ge=1, le=1024)
    pipeline_step_ratio: float = Field(default=1.03, gt=1, le=4)
    pipeline_rating: Literal["lockstep", "node-local"] = "lockstep"


class Catalog(_Strict):
    """GPUs, instance types, models and regions by name."""

    gpus: dict[str, GPU]
    models: dict[str, ModelSpec]
    regions: dict[str, Region]
    instances: dict[str, InstanceType]  # by "cloud/type"

    def merged(self, extra: dict[str, Any]) -> Catalog:
        """A copy with the user's GPUs, instances, models, regions added or replaced."""
        unknown = set(extra) - {"gpus", "models", "regions", "instances"}
        if unknown:
            raise ConfigError(f"catalog section(s) {sorted(unknown)} are unknown (allowed: gpus, "
                              "instances, models, regions)")  # fmt: skip
        gpus = dict(self.gpus) | {g.name: g for g in _parse_list(GPU, extra.get("gpus", []))}
        models = dict(self.models) | {
            m.name: m for m in _parse_list(ModelSpec, extra.get("models", []))
        }
        regions = dict(self.regions) | {
            r.name: r for r in _parse_list(Region, extra.get("regions", []))
        }
        instances = dict(self.instances) | {
            f"{i.cloud}/{i.type}": i for i in _parse_list(InstanceType, extra.get("instances", []))
        }
        return Catalog(gpus=gpus, models=models, regions=regions, instances=instances)

    def sold(self, region: str) -> dict[str, InstanceType]:
        """Node config name -> the cheapest instance type selling it in ``region``."""
        best: dict[str, InstanceType] = {}
        for inst in self.instances.values():
            if region in inst.prices and inst.gpu in self.gpus:
                held = best.get(inst.config)
                if held is None or inst.prices[region] < held.prices[region]:
                    best[inst.config] = inst
        return best


class ScenarioSpec(_Strict):
    """What a scenario YAML holds: which models (with demand in req/s), GPUs, regions, knobs."""

    name: str = "custom"
    models: dict[str, float]
    gpus: list[str]
    gpus_per_node: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    regions: list[str]
    max_nodes: int = Field(default=6, ge=1, le=8)
    memory_factor: float = Field(default=12.0, gt=0)
    churn_factor: float = Field(default=0.1, ge=0)
    availability_scale: float = Field(default=1.0, ge=0)
    perf: PerfParams = Field(default_factory=PerfParams)
    # When demand cannot be met; None: "fair", and a plan short of demand is an error (exit 1).
    scarce_objective: Literal["fair", "goodput"] | None = None
    allocation_time_s: float | None = Field(default=None, gt=0)  # None: solve exactly
    catalog: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


class Scenario(_Strict):
    """A resolved scenario: model specs with demands, node configs, regions (all validated).

    Built by :func:`load_scenario` from a scenario YAML (a :class:`ScenarioSpec`) and the
    catalogs; adjust a copy with ``scenario.model_copy(update={...})``.

    Attributes
    ----------
    name : str
        The scenario's name (``"core"``, ``"extended"``, ``"custom"``...).
    models : list of ModelSpec
        The models to serve, with their shapes and SLOs.
    demand : dict of str to float
        Model name -> demand in requests per second.
    configs : list of NodeConfig
        The node configurations (GPU type x GPUs per node) the planner may buy.
    regions : list of Region
        The regions, each with how many nodes of each config are available.
    max_nodes : int
        Most nodes in one replica's pipeline (Nmax, 1..8).
    memory_factor : float
        Stage 1 places node multisets holding between the model's weights and
        ``memory_factor`` x its weights.
    churn_factor : float
        Share of an hour's price charged for each node launched beyond the previous plan's.
    perf : PerfParams
        Performance model and workload shape.
    scarce_objective : {"fair", "goodput"} or None, default None
        What to maximise when demand cannot be met; None is "fair", and a plan short of
        demand is then an error.
    allocation_time_s : float or None, default None
        Time limit of each allocation solve in seconds (None: solve exactly).
    offers : dict, default {}
        Region name -> config name -> the cheapest instance type selling it there.

    Examples
    --------
    >>> scenario = load_scenario({"models": {"Phi4-14B": 3.0}, "gpus": ["L40S"],
    ...                           "gpus_per_node": [1], "regions": ["aws-us-east-2"]})
    >>> scenario.demand, [c.name for c in scenario.configs], scenario.max_nodes
    ({'Phi4-14B': 3.0}, ['L40Sx1'], 6)
    >>> scenario.price(scenario.regions[0], scenario.configs[0])
    1.861
    """

    name: str
    models: list[ModelSpec]
    demand: dict[str, float]
    configs: list[NodeConfig]
    regions: list[Region]
    max_nodes: int
    memory_factor: float
    churn_factor: float
    perf: PerfParams
    scarce_objective: Literal["fair", "goodput"] | None = None  # None: fair, not asked for
    allocation_time_s: float | None = Field(default=None, gt=0)
    offers: dict[str, dict[str, InstanceType]] = Field(default_factory=dict)  # region -> config

    def price(self, region: Region, config: NodeConfig) -> float:
        """Price per hour of one node of ``config`` in ``region`` (its cheapest instance)."""
        return self.offers[region.name][config.name].prices[region.name]

    def offered(self, region: Region, config: NodeConfig) -> bool:
        """Whether ``region`` sells ``config`` (some instance type with a price there)."""
        return config.name in self.offers.get(region.name, {})

    def instance_type(self, region: str, config: str) -> InstanceType:
        """The instance type a node of ``config`` is bought as in ``region``."""
        return self.offers[region][config]

    def _default_perf_knobs(self) -> set[str]:
        later = {"communication": True, "pipeline_rating": "lockstep"}
        return {name for name, value in later.items() if getattr(self.perf, name) == value}

    def template_key(self) -> str:
        """Hash of everything Stage 1 depends on (models, configs, knobs); prices are excluded."""
        payload = {
            "models": [m.model_dump() for m in self.models],
            "configs": [c.model_dump() for c in self.configs],
            "max_nodes": self.max_nodes,
            "memory_factor": self.memory_factor,
            # Knobs at their defaults that came later are left out: caches keyed before stay valid.
            "perf": self.perf.model_dump(exclude=self._default_perf_knobs()),
            "calibration": _calibration_digest() if self.perf.model == "calibrated" else "",
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _calibration_digest() -> str:
    from redundancy.coral.planner.calibration import shipped_calibration

    return shipped_calibration().digest()


def _parse_list(kind: type[_Strict], items: list[dict[str, Any]]) -> list[Any]:
    try:
        return [kind.model_validate(item) for item in items]
    except ValidationError as exc:
        raise ConfigError(f"invalid {kind.__name__}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    if err["type"] == "finite_number":
        return f"{where} = {err['input']} is out of range (allowed: a finite number)"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must hold a mapping at the top level")
    return data


def _data_text(name: str) -> str:
    return resources.files("redundancy.coral").joinpath("data", name).read_text()


def default_catalog() -> Catalog:
    """The embedded catalog (coral/data/gpus.yaml, instances.yaml, models.yaml, regions.yaml)."""
    gpus = _parse_list(GPU, _read_yaml(_data_text("gpus.yaml"), "gpus.yaml")["gpus"])
    models = _parse_list(ModelSpec, _read_yaml(_data_text("models.yaml"), "models.yaml")["models"])
    regions = _parse_list(Region, _read_yaml(_data_text("regions.yaml"), "regions.yaml")["regions"])
    instances = _parse_list(
        InstanceType, _read_yaml(_data_text("instances.yaml"), "instances.yaml")["instances"]
    )
    return Catalog(
        gpus={g.name: g for g in gpus},
        models={m.name: m for m in models},
        regions={r.name: r for r in regions},
        instances={f"{i.cloud}/{i.type}": i for i in instances},
    )


EMBEDDED_SCENARIOS = ("core", "extended")


def load_scenario(source: str | Path | dict[str, Any] = "core") -> Scenario:
    """Resolve a scenario: an embedded name (``core``, ``extended``), a YAML path, or a dict.

    Parameters
    ----------
    source : str, Path or dict, default "core"
        An embedded scenario name, a YAML file, or the same content as a dict (models with
        demand in req/s, GPUs, node sizes, regions, knobs, and an optional ``catalog:`` of extra
        GPUs/instances/models/regions).

    Returns
    -------
    Scenario
        Models with their demand, the node configs sold in the scenario's regions, prices and
        availability, all validated.

    Raises
    ------
    ConfigError
        Unknown scenario, unreadable or malformed file, unknown names.
    ParameterError
        A number out of range (negative or non-finite demand, a node size not in 1/2/4/8).

    Examples
    --------
    >>> scenario = load_scenario("core")
    >>> sorted(scenario.demand.items())
    [('GPT-OSS-20B', 10.0), ('Phi4-14B', 10.0), ('Qwen3-32B', 10.0)]
    >>> [c.name for c in scenario.configs][:3]
    ['L40Sx1', 'L40Sx4', 'L40Sx8']
    >>> small = load_scenario({"models": {"Phi4-14B": 3.0}, "gpus": ["L40S"], "gpus_per_node": [1],
    ...                        "regions": ["aws-us-east-2"], "max_nodes": 2})
    >>> small.regions[0].availability
    {'L40Sx1': 8}
    """
    if isinstance(source, dict):
        data, origin = source, "scenario"
    elif str(source) in EMBEDDED_SCENARIOS:
        data, origin = _read_yaml(_data_text(f"{source}.yaml"), f"{source}.yaml"), str(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(
                f"scenario {str(source)!r} is neither a file nor one of {EMBEDDED_SCENARIOS}"
            )
        data, origin = _read_yaml(path.read_text(), str(path)), str(path)
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_first_error(exc)}") from None
    return resolve(spec, default_catalog().merged(spec.catalog))


_LINK_ORDER = {name: rank for rank, name in enumerate(INTERCONNECTS)}


def _check_number(field: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ParameterError(f"{field} = {value} is out of range (allowed: a finite number >= 0)")


def resolve(spec: ScenarioSpec, catalog: Catalog) -> Scenario:
    """Look every name up in ``catalog``; unknown names and bad numbers raise naming the field.

    Node configs are the scenario's GPU x count pairs that some scenario region sells; every
    availability key of a scenario region must be a config sold there.
    """
    for name, demand in spec.models.items():
        if name not in catalog.models:
            raise ConfigError(
                f"unknown model {name!r} (allowed: {', '.join(sorted(catalog.models))})"
            )
        _check_number(f"demand of {name}", demand)
    for name in spec.gpus:
        if name not in catalog.gpus:
            raise ConfigError(f"unknown GPU {name!r} (allowed: {', '.join(sorted(catalog.gpus))})")
    for name in spec.regions:
        if name not in catalog.regions:
            raise ConfigError(
                f"unknown region {name!r} (allowed: {', '.join(sorted(catalog.regions))})"
            )
    for count in spec.gpus_per_node:
        if count not in (1, 2, 4, 8):
            raise ParameterError(f"gpus_per_node={count} is out of range (allowed: 1, 2, 4, 8)")
    _check_number("availability_scale", spec.availability_scale)
    offers = {r: catalog.sold(r) for r in spec.regions}
    configs = []
    for g in spec.gpus:
        for n in sorted(set(spec.gpus_per_node)):
            selling = [offers[r][f"{g}x{n}"] for r in spec.regions if f"{g}x{n}" in offers[r]]
            if selling:
                link = min((i.interconnect for i in selling), key=_LINK_ORDER.__getitem__)
                network = min(i.network_gbps for i in selling)
                configs.append(NodeConfig(gpu=catalog.gpus[g], count=n, interconnect=link,
                                          network_gbps=network))  # fmt: skip
    if not configs:
        raise ConfigError(f"no region of {spec.regions} sells nodes of {spec.gpus} with "
                          f"{spec.gpus_per_node} GPUs: nothing to plan with")  # fmt: skip
    wanted = {c.name for c in configs}
    regions = []
    for name in spec.regions:
        region = catalog.regions[name]
        for key in region.availability:
            if key not in offers[name]:
                raise ConfigError(
                    f"region {name}: availability key {key!r} is not a node config sold there "
                    f"(allowed: {', '.join(sorted(offers[name]))})"
                )
        if not any(c in region.availability for c in wanted):  # explicit zeros are allowed
            raise ConfigError(
                f"region {name} lists no availability for the scenario's node configs "
                f"(availability {region.availability or 'empty'}; allowed keys: "
                f"{', '.join(sorted(wanted & set(offers[name])))})"
            )
        scaled = {
            k: int(v * spec.availability_scale + 1e-9)
            for k, v in region.availability.items()
            if k in wanted
        }
        regions.append(region.model_copy(update={"availability": scaled}))
    return Scenario(
        name=spec.name,
        models=[catalog.models[m] for m in spec.models],
        demand=dict(spec.models),
        configs=configs,
        regions=regions,
        max_nodes=spec.max_nodes,
        memory_factor=spec.memory_factor,
        churn_factor=spec.churn_factor,
        perf=spec.perf,
        scarce_objective=spec.scarce_objective,
        allocation_time_s=spec.allocation_time_s,
        offers={r: {c: i for c, i in offers[r].items() if c in wanted} for r in spec.regions},
    )
