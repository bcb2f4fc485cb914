"""Typed catalogs (GPUs, models + SLOs, regions with prices and availability) and scenarios.

The embedded catalogs live in ``coral/data/*.yaml``; a scenario YAML names what to use from them and
may add its own GPUs, models and regions in the same format (``catalog:`` section).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redundancy.errors import ConfigError, ParameterError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GPU(_Strict):
    """One GPU type: memory (GB), bandwidth (TB/s), dense FP16 TFLOPS, cost relative to L4."""

    name: str
    memory_gb: float = Field(gt=0)
    bandwidth_tbs: float = Field(gt=0)
    tflops: float = Field(gt=0)
    rel_cost: float = Field(gt=0)


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
    bytes_per_param: float = Field(default=2.0, gt=0)
    hf_id: str = ""  # Hugging Face repository, used in deployment commands
    slo: SLO

    @model_validator(mode="after")
    def _active_le_total(self) -> ModelSpec:
        if self.active_params_b > self.params_b:
            raise ValueError("active_params_b must be <= params_b")
        return self

    @property
    def weight_bytes(self) -> float:
        """Total weight bytes."""
        return self.params_b * 1e9 * self.bytes_per_param


class Region(_Strict):
    """A cloud region: price per GPU-hour by GPU type, node price overrides, node availability."""

    name: str
    gpu_hour_price: dict[str, float]
    node_prices: dict[str, float] = Field(default_factory=dict)
    availability: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _non_negative(self) -> Region:
        for key, value in {**self.gpu_hour_price, **self.node_prices}.items():
            if value < 0:
                raise ValueError(f"price of {key} must be >= 0, got {value}")
        for key, value in self.availability.items():
            if value < 0:
                raise ValueError(f"availability of {key} must be >= 0, got {value}")
        return self


class NodeConfig(_Strict):
    """A node: ``count`` GPUs of one type, tensor/expert parallel inside the node."""

    gpu: GPU
    count: int = Field(ge=1)

    @property
    def name(self) -> str:
        """Config name as used in catalogs, e.g. ``L40Sx4``."""
        return f"{self.gpu.name}x{self.count}"


class PerfParams(_Strict):
    """Efficiency factors and workload shape of the roofline performance model."""

    eta_compute: float = Field(default=0.5, gt=0, le=1)
    eta_bandwidth: float = Field(default=0.8, gt=0, le=1)
    tp_efficiency: float = Field(default=0.9, gt=0, le=1)
    memory_utilisation: float = Field(default=0.9, gt=0, le=1)
    step_overhead_ms: float = Field(default=0.0, ge=0)
    input_tokens: int = Field(default=750, ge=1)
    output_tokens: int = Field(default=240, ge=1)
    max_batch: int = Field(default=256, ge=1)


class Catalog(_Strict):
    """GPUs, models and regions by name."""

    gpus: dict[str, GPU]
    models: dict[str, ModelSpec]
    regions: dict[str, Region]

    def merged(self, extra: dict[str, Any]) -> Catalog:
        """A copy with the user's GPUs/models/regions (catalog format) added or replaced."""
        gpus = dict(self.gpus) | {g.name: g for g in _parse_list(GPU, extra.get("gpus", []))}
        models = dict(self.models) | {
            m.name: m for m in _parse_list(ModelSpec, extra.get("models", []))
        }
        regions = dict(self.regions) | {
            r.name: r for r in _parse_list(Region, extra.get("regions", []))
        }
        return Catalog(gpus=gpus, models=models, regions=regions)


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
    scarce_objective: Literal["fair", "goodput"] = "fair"  # when demand cannot be met
    allocation_time_s: float | None = Field(default=None, gt=0)  # None: solve exactly
    catalog: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


class Scenario(_Strict):
    """A resolved scenario: model specs with demands, node configs, regions (all validated)."""

    name: str
    models: list[ModelSpec]
    demand: dict[str, float]
    configs: list[NodeConfig]
    regions: list[Region]
    max_nodes: int
    memory_factor: float
    churn_factor: float
    perf: PerfParams
    scarce_objective: Literal["fair", "goodput"] = "fair"
    allocation_time_s: float | None = Field(default=None, gt=0)

    def price(self, region: Region, config: NodeConfig) -> float:
        """Price per hour of one node of ``config`` in ``region``."""
        if config.name in region.node_prices:
            return region.node_prices[config.name]
        return config.count * region.gpu_hour_price[config.gpu.name]

    def offered(self, region: Region, config: NodeConfig) -> bool:
        """Whether ``region`` sells ``config`` (has a price for its GPU type)."""
        return config.gpu.name in region.gpu_hour_price or config.name in region.node_prices

    def template_key(self) -> str:
        """Hash of everything Stage 1 depends on (models, configs, knobs); prices are excluded."""
        payload = {
            "models": [m.model_dump() for m in self.models],
            "configs": [c.model_dump() for c in self.configs],
            "max_nodes": self.max_nodes,
            "memory_factor": self.memory_factor,
            "perf": self.perf.model_dump(),
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _parse_list(kind: type[_Strict], items: list[dict[str, Any]]) -> list[Any]:
    try:
        return [kind.model_validate(item) for item in items]
    except ValidationError as exc:
        raise ConfigError(f"invalid {kind.__name__}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']}"


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
    """The embedded catalog (coral/data/gpus.yaml, models.yaml, regions.yaml)."""
    gpus = _parse_list(GPU, _read_yaml(_data_text("gpus.yaml"), "gpus.yaml")["gpus"])
    models = _parse_list(ModelSpec, _read_yaml(_data_text("models.yaml"), "models.yaml")["models"])
    regions = _parse_list(Region, _read_yaml(_data_text("regions.yaml"), "regions.yaml")["regions"])
    return Catalog(
        gpus={g.name: g for g in gpus},
        models={m.name: m for m in models},
        regions={r.name: r for r in regions},
    )


EMBEDDED_SCENARIOS = ("core", "extended")


def load_scenario(source: str | Path | dict[str, Any] = "core") -> Scenario:
    """Resolve a scenario: an embedded name (``core``, ``extended``), a YAML path, or a dict."""
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


def resolve(spec: ScenarioSpec, catalog: Catalog) -> Scenario:
    """Look every name up in ``catalog``; unknown names and bad demands raise naming the field."""
    for name in spec.models:
        if name not in catalog.models:
            raise ConfigError(f"unknown model {name!r}; known: {sorted(catalog.models)}")
    for name, demand in spec.models.items():
        if demand < 0:
            raise ParameterError(f"demand of {name} = {demand} is out of range (allowed: >= 0)")
    for name in spec.gpus:
        if name not in catalog.gpus:
            raise ConfigError(f"unknown GPU {name!r}; known: {sorted(catalog.gpus)}")
    for name in spec.regions:
        if name not in catalog.regions:
            raise ConfigError(f"unknown region {name!r}; known: {sorted(catalog.regions)}")
    for count in spec.gpus_per_node:
        if count not in (1, 2, 4, 8):
            raise ParameterError(f"gpus_per_node={count} is out of range (allowed: 1, 2, 4, 8)")
    configs = [
        NodeConfig(gpu=catalog.gpus[g], count=n)
        for g in spec.gpus
        for n in sorted(set(spec.gpus_per_node))
    ]
    regions = []
    for name in spec.regions:
        region = catalog.regions[name]
        scaled = {
            k: int(v * spec.availability_scale + 1e-9) for k, v in region.availability.items()
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
    )
