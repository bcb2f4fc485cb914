"""Typed configuration for parity-model (ParM) and learned-code runs, loadable from YAML/JSON.

Defaults are the quick, embedded setting (MNIST-5k, Base-MLP, k = 2) that every CLI command runs
with no arguments; the paper's optimiser settings (Adam, lr 1e-3, weight decay 1e-5) are the
defaults for every trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redundancy.errors import ConfigError

DatasetName = Literal["mnist5k", "fashion", "digits", "cifar10"]
ModelName = Literal["base-mlp", "small-cnn", "resnet18", "linear"]
EncoderName = Literal["addition", "concatenation"]
LearnedEncoderName = Literal["mlp", "conv"]
LossName = Literal["kl", "mse", "ce"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Which data set to load and how much of it."""

    dataset: DatasetName = "mnist5k"
    root: Path | None = Field(None, description="Folder for fashion / cifar10 files.")
    max_train: int | None = Field(None, ge=10)
    max_test: int | None = Field(None, ge=10)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    seed: int = Field(0, ge=0)


class OptimConfig(_Strict):
    """Adam settings, batch size and early stopping shared by every trainer."""

    epochs: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-5, ge=0.0, le=1.0)
    patience: int = Field(5, ge=1, description="Epochs without validation gain before stopping.")


class ParmConfig(_Strict):
    """One ParM experiment: data, deployed model, code parameters and the three trainers."""

    data: DataConfig = DataConfig()
    model: ModelName = "base-mlp"
    k: int = Field(2, ge=2, le=16)
    encoder: EncoderName = "addition"
    deployed: OptimConfig = OptimConfig(epochs=15)
    parity: OptimConfig = OptimConfig(epochs=30)
    groups_per_epoch: int = Field(4, ge=1, le=100, description="Random groupings per epoch.")
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _concat_k(self) -> ParmConfig:
        if self.encoder == "concatenation" and self.k not in (2, 4):
            raise ValueError(f"k={self.k} is not allowed with concatenation (allowed: 2 or 4)")
        return self


class LearnedCodeConfig(_Strict):
    """One learned-code experiment (r = 1 parity through the frozen deployed model)."""

    data: DataConfig = DataConfig()
    model: ModelName = "base-mlp"
    k: int = Field(2, ge=2, le=8)
    r: Literal[1] = 1
    encoder: LearnedEncoderName = "mlp"
    loss: LossName = "kl"
    hidden_factor: float = Field(1.0, gt=0.0, le=4.0, description="Encoder width / (k d).")
    deployed: OptimConfig = OptimConfig(epochs=15)
    code: OptimConfig = OptimConfig(epochs=30)
    seed: int = Field(0, ge=0)


C = TypeVar("C", bound=BaseModel)


def load_config(path: Path, cls: type[C]) -> C:
    """Read a YAML or JSON file into ``cls``; a missing file or a bad field is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: does not parse: {exc}") from None
    return parse_config(raw or {}, cls, source=str(path))


def parse_config(
    raw: object, cls: type[C], source: str = "config", labels: dict[str, str] | None = None
) -> C:
    """Validate a mapping into ``cls``; the error names the field, the bad value and the rule.

    ``labels`` maps dotted field names to what the user typed (e.g. ``{"rate_qps": "--rate"}``),
    so a command-line error names the flag instead of the field.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(raw).__name__}")
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        field = ".".join(str(p) for p in first["loc"])
        if not field:
            raise ConfigError(f"{source}: {message}") from None
        name = (labels or {}).get(field, f"field {field}")
        value = first.get("input")
        shown = f"={value!r}" if isinstance(value, int | float | str) else ""
        raise ConfigError(f"{source}: {name}{shown}: {message}") from None


def quick_variant(config: C) -> C:
    """The same experiment at a small scale (few epochs, capped data) that runs in seconds."""
    updates: dict[str, object] = {
        "data": config.data.model_copy(
            update={"max_train": min(config.data.max_train or 4000, 4000)}
        ),
        "deployed": config.deployed.model_copy(update={"epochs": min(config.deployed.epochs, 6)}),
    }
    trainer = "parity" if isinstance(config, ParmConfig) else "code"
    updates[trainer] = getattr(config, trainer).model_copy(
        update={"epochs": min(getattr(config, trainer).epochs, 8)}
    )
    if isinstance(config, LearnedCodeConfig):
        updates["hidden_factor"] = min(config.hidden_factor, 0.25)
    return config.model_copy(update=updates)
