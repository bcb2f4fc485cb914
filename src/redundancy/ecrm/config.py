"""Typed configuration for ECRM training, loadable from YAML/JSON; one clear error per field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redundancy.errors import ConfigError, ParameterError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """DLRM shape: 13 dense features, one embedding table per sparse feature."""

    dense_features: int = Field(13, ge=1, le=1024)
    table_rows: list[int] = Field(default_factory=lambda: [2000] * 26, min_length=1, max_length=64)
    dim: int = Field(8, ge=1, le=1024)
    bottom: list[int] = Field(default_factory=lambda: [32], max_length=8)
    top: list[int] = Field(default_factory=lambda: [64, 32], max_length=8)

    @model_validator(mode="after")
    def _rows_positive(self) -> ModelConfig:
        for i, n in enumerate(self.table_rows):
            if n < 1:
                raise ValueError(f"table_rows[{i}]={n} must be >= 1")
        return self


class DataConfig(_Strict):
    """Synthetic Criteo-like data: Zipf indices, labels from a fixed random teacher."""

    batch_size: int = Field(256, ge=1, le=1 << 20)
    zipf_a: float = Field(1.1, gt=1.0, le=5.0)
    teacher_scale: float = Field(1.5, gt=0.0, le=100.0)
    seed: int = Field(0, ge=0)
    path: str | None = Field(None, description="Criteo text file; synthetic data when unset")


class ServerConfig(_Strict):
    """Parameter-server layout and sparse optimizer."""

    num_servers: int = Field(4, ge=1, le=256)
    k: int = Field(2, ge=1, le=64)
    redundancy: Literal["ecrm", "none"] = "ecrm"
    optimizer: Literal["sgd", "adagrad"] = "adagrad"
    lr: float = Field(0.05, gt=0.0, le=100.0)
    eps: float = Field(1e-8, ge=0.0, le=1.0)
    dtype: Literal["float32", "float64"] = "float32"
    rebuild_ranges: int = Field(16, ge=1, le=1_000_000, description="ranges a rebuild runs in")
    rebuild_window: int = Field(2, ge=1, le=1024, description="ranges being rebuilt at once")
    call_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    init_std: float = Field(0.05, ge=0.0, le=10.0)

    @model_validator(mode="after")
    def _placement_fits(self) -> ServerConfig:
        if self.redundancy == "ecrm" and self.num_servers < self.k + 1:
            raise ValueError(
                f"num_servers={self.num_servers} must be >= k+1={self.k + 1} "
                "(a stripe's k data rows and its parity live on different servers)"
            )
        return self


class TrainConfig(_Strict):
    """One training run: mode, length, injected failure and the checkpoint baseline's knobs."""

    mode: Literal["ecrm", "checkpoint", "none"] = "ecrm"
    steps: int = Field(200, ge=1, le=10_000_000)
    fail_at: int | None = Field(None, ge=0, description="step at which a server is killed")
    fail_server: int = Field(0, ge=0)
    mtbf_s: float = Field(600.0, gt=0.0, description="mean time between failures for Young")
    checkpoint_interval_steps: int | None = Field(
        None, ge=1, description="fixed checkpoint interval; Young's formula when unset"
    )
    checkpoint_dir: str | None = Field(None, description="kept if set, else a temp folder")
    use_ray: bool = False
    dense_lr: float = Field(0.05, gt=0.0, le=100.0)
    torch_seed: int = Field(0, ge=0)
    torch_threads: int = Field(1, ge=1, le=1024, description="intra-op threads of the worker")
    window: int = Field(10, ge=1, description="steps per throughput sample")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    servers: ServerConfig = Field(default_factory=ServerConfig)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.fail_server >= self.servers.num_servers:
            raise ValueError(
                f"fail_server={self.fail_server} out of range "
                f"(allowed: 0..{self.servers.num_servers - 1})"
            )
        if self.fail_at is not None and self.fail_at >= self.steps:
            raise ValueError(f"fail_at={self.fail_at} must be < steps={self.steps}")
        return self


def _message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    return f"{where}: {err['msg']}"


def make_config(**fields: object) -> TrainConfig:
    """Build a TrainConfig from keyword fields; bad values raise ParameterError naming the field."""
    try:
        return TrainConfig.model_validate(fields)
    except ValidationError as exc:
        raise ParameterError(_message(exc)) from None


def load_config(path: Path) -> TrainConfig:
    """Load a TrainConfig from a YAML or JSON file (ConfigError if it does not parse/validate)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raw = json.loads(text)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"config {path} does not parse: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must hold a mapping at the top level")
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"config {path}: {_message(exc)}") from None


def with_overrides(cfg: TrainConfig, overrides: dict[str, object]) -> TrainConfig:
    """Copy of ``cfg`` with dotted keys replaced (``{"servers.k": 4}``); ``None`` values skipped."""
    raw = cfg.model_dump()
    for key, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = raw
        for p in parents:
            node = node[p]
        node[leaf] = value
    return make_config(**raw)


CLI_DEFAULT = {"steps": 200, "fail_at": 100}

QUICK = {
    "steps": 40,
    "fail_at": 20,
    "model": {"table_rows": [500] * 26, "dim": 8},
    "data": {"batch_size": 64},
}
