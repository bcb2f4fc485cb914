"""Typed configuration for ECRM training, loadable from YAML/JSON; one clear error per field.

Every way of building a run (keyword fields, a YAML/JSON file, command-line flags over a preset or
a file) merges all its settings first and validates the result once, so a setting is checked
against the others it is given with, never against defaults it replaces. Errors name the setting
(or the flag that set it), the bad value and what is allowed, in one line.
"""

from __future__ import annotations

import copy
import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redundancy.errors import ConfigError, ParameterError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """DLRM shape: 13 dense features, one embedding table per sparse feature.

    Attributes
    ----------
    dense_features : int, default 13
        Dense (continuous) features, 1..1024.
    table_rows : list of int, default 26 tables of 2000 rows
        Rows of each embedding table (1 to 64 tables).
    dim : int, default 8
        Embedding dimension, also the bottom MLP's output width.
    bottom : list of int, default [32]
        Hidden widths of the bottom MLP (on the dense features).
    top : list of int, default [64, 32]
        Hidden widths of the top MLP (to one logit).

    Examples
    --------
    >>> config = ModelConfig(table_rows=[100, 200], dim=4)
    >>> config.dense_features, config.table_rows, config.top
    (13, [100, 200], [64, 32])
    """

    dense_features: int = Field(13, ge=1, le=1024)
    table_rows: list[Annotated[int, Field(ge=1, le=1_000_000_000)]] = Field(
        default_factory=lambda: [2000] * 26, min_length=1, max_length=64
    )
    dim: int = Field(8, ge=1, le=1024)
    bottom: list[int] = Field(default_factory=lambda: [32], max_length=8)
    top: list[int] = Field(default_factory=lambda: [64, 32], max_length=8)


class DataConfig(_Strict):
    """Synthetic Criteo-like data: Zipf indices, labels from a fixed random teacher.

    Attributes
    ----------
    batch_size : int, default 256
        Samples per training step.
    zipf_a : float, default 1.1
        Zipf exponent of the sparse indices, in (1, 5].
    teacher_scale : float, default 1.5
        Scale of the teacher's logit (larger: less noisy labels).
    seed : int, default 0
        Fixes the teacher and every batch.
    path : str, optional
        A Criteo text file to read instead of synthetic data.

    Examples
    --------
    >>> DataConfig(batch_size=64).zipf_a
    1.1
    """

    batch_size: int = Field(256, ge=1, le=1 << 20)
    zipf_a: float = Field(1.1, gt=1.0, le=5.0)
    teacher_scale: float = Field(1.5, gt=0.0, le=100.0)
    seed: int = Field(0, ge=0)
    path: str | None = Field(None, description="Criteo text file; synthetic data when unset")


class ServerConfig(_Strict):
    """Parameter-server layout and sparse optimizer.

    Attributes
    ----------
    num_servers : int, default 4
        Parameter servers, 1..256 (at least k + 1 with ECRM).
    k : int, default 2
        Data rows per stripe (one parity row each).
    redundancy : {"ecrm", "none"}, default "ecrm"
        Keep a parity row per stripe, or none.
    optimizer : {"adagrad", "sgd"}, default "adagrad"
        Optimizer of the embedding rows (Adagrad keeps k accumulators per parity row).
    lr : float, default 0.05
        Learning rate of the embedding rows.
    eps : float, default 1e-8
        Adagrad's epsilon.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the rows and parities (float64 makes recovery error 2^29 times smaller).
    rebuild_ranges : int, default 16
        Ranges a replacement server is rebuilt in.
    rebuild_window : int, default 2
        Ranges being rebuilt at once.
    call_timeout_s : float, default 30.0
        A server that does not answer within this many seconds counts as lost.
    init_std : float, default 0.05
        Standard deviation of the initial embedding rows.

    Raises
    ------
    pydantic.ValidationError
        If a field is out of range, or ECRM has fewer than k + 1 servers (use
        :func:`make_config` to get a ``ParameterError`` naming the setting instead).

    Examples
    --------
    >>> ServerConfig(num_servers=5, k=4).optimizer
    'adagrad'
    """

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
                f"servers.num_servers={self.num_servers} must be >= k+1={self.k + 1} for "
                f"servers.k={self.k} (a stripe's k data rows and its parity live on different "
                "servers)"
            )
        return self


class TrainConfig(_Strict):
    """One training run: mode, length, injected failure and the checkpoint baseline's knobs.

    Build one with :func:`make_config`, :func:`load_config` or :func:`with_overrides`, which
    turn a bad setting into one error naming it.

    Attributes
    ----------
    mode : {"ecrm", "checkpoint", "none"}, default "ecrm"
        Erasure-coded embedding tables, checkpoint and roll back, or no fault tolerance.
    steps : int, default 200
        Training steps.
    fail_at : int, optional
        Step at which a server is killed (0..steps-1; none: no failure).
    fail_server : int, default 0
        Which server is killed.
    mtbf_s : float, default 600.0
        Mean time between failures, for Young's checkpoint interval.
    checkpoint_interval_steps : int, optional
        A fixed checkpoint interval instead of Young's.
    checkpoint_dir : str, optional
        Where checkpoints go (kept); a temporary folder when unset.
    use_ray : bool, default False
        Run each server as a Ray actor process (a kill is a real SIGKILL).
    dense_lr : float, default 0.05
        Adagrad learning rate of the dense MLPs.
    torch_seed : int, default 0
        Seeds the dense model.
    torch_threads : int, default 1
        Intra-op threads of the worker.
    window : int, default 10
        Steps per throughput sample.
    model : ModelConfig
        The DLRM's shape.
    data : DataConfig
        The training data.
    servers : ServerConfig
        The parameter servers.

    Raises
    ------
    pydantic.ValidationError
        If a field is out of range or inconsistent (``fail_server`` or ``fail_at`` outside the
        run).

    Examples
    --------
    >>> config = TrainConfig(steps=30, fail_at=15)
    >>> config.mode, config.servers.k, len(config.model.table_rows)
    ('ecrm', 2, 26)
    """

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
                f"fail_server={self.fail_server} is out of range "
                f"(allowed: 0..{self.servers.num_servers - 1} with {self.servers.num_servers} "
                "servers)"
            )
        if self.fail_at is not None and self.fail_at >= self.steps:
            raise ValueError(
                f"fail_at={self.fail_at} must be a step of the run (allowed with "
                f"steps={self.steps}: 0..{self.steps - 1}, or none for no failure)"
            )
        return self


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping of settings",
    "dict_type": "a mapping of settings",
}
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _where(loc: tuple) -> str:
    """``("model", "table_rows", 3)`` -> ``model.table_rows[3]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _constraints(loc: tuple) -> list:
    """The annotated-types constraints (Ge, Le, ...) of the setting at ``loc``."""
    node: object = TrainConfig
    found: list = []
    for part in loc:
        if isinstance(part, int):  # an item of a list: its item annotation's constraints
            args = typing.get_args(node)
            node, found = (args[0] if args else None), []
            if typing.get_origin(node) is Annotated:
                node, *extra = typing.get_args(node)
                found = [m for e in extra for m in getattr(e, "metadata", [e])]
            continue
        fields = getattr(node, "model_fields", None)
        if not fields or part not in fields:
            return []
        node, found = fields[part].annotation, list(fields[part].metadata)
    return found


def _allowed(loc: tuple, fallback: str) -> str:
    """The whole allowed range of a numeric setting, e.g. ``1..1024`` or ``> 0.0``."""
    low = high = None
    for c in _constraints(loc):
        if isinstance(c, annotated_types.Ge):
            low = f">= {c.ge}"
        elif isinstance(c, annotated_types.Gt):
            low = f"> {c.gt}"
        elif isinstance(c, annotated_types.Le):
            high = f"<= {c.le}"
        elif isinstance(c, annotated_types.Lt):
            high = f"< {c.lt}"
    if low and high and low.startswith(">=") and high.startswith("<="):
        return f"{low[3:]}..{high[3:]}"
    return " and ".join(b for b in (low, high) if b) or fallback


def _label(loc: tuple, labels: Mapping[str, str]) -> str:
    """The flag that set the setting at ``loc`` (or one of its parents), else its dotted name."""
    names = [str(p) for p in loc if not isinstance(p, int)]
    for cut in range(len(names), 0, -1):
        label = labels.get(".".join(names[:cut]))
        if label:
            return label
    return _where(loc) or "config"


def describe_error(error: Mapping, labels: Mapping[str, str] | None = None) -> str:
    """One pydantic error in the user's terms: the setting (or flag), its value, what is allowed.

    Parameters
    ----------
    error : Mapping
        One item of ``ValidationError.errors()``.
    labels : Mapping[str, str], optional
        Dotted setting name -> the flag that set it (``{"model.dim": "--dim"}``), so the message
        names what the user typed.

    Returns
    -------
    str
        A one-line message without pydantic's boilerplate.

    Examples
    --------
    >>> from pydantic import ValidationError
    >>> try:
    ...     TrainConfig.model_validate({"model": {"dim": 0}})
    ... except ValidationError as exc:
    ...     print(describe_error(exc.errors()[0], {"model.dim": "--dim"}))
    --dim=0 is out of range (allowed: 1..1024)
    """
    loc = tuple(error["loc"])
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "value_error":  # the cross-setting checks above already speak the user's terms
        return str(ctx.get("error", error["msg"])).removeprefix("Value error, ")
    name = _label(loc, labels or {})
    if kind == "extra_forbidden":
        return f"{name} is not a setting (check the spelling against TrainConfig)"
    if kind == "missing":
        return f"{name} is required"
    if kind == "literal_error":
        return f"{name}={value!r} is not allowed (use {ctx.get('expected', 'a listed value')})"
    if kind in _BOUNDS:
        return f"{name}={value!r} is out of range (allowed: {_allowed(loc, error['msg'])})"
    if kind in ("too_short", "too_long"):
        low = ctx.get("min_length", 0) if kind == "too_short" else 0
        high = ctx.get("max_length", "") if kind == "too_long" else ""
        limit = f"at least {low}" if kind == "too_short" else f"at most {high}"
        return f"{name} has {ctx.get('actual_length')} items (allowed: {limit})"
    if kind in _EXPECTED:
        return f"{name}={value!r} is not {_EXPECTED[kind]}"
    return f"{name}={value!r}: {error['msg']}"


def _validate(
    raw: Mapping[str, object],
    *,
    labels: Mapping[str, str] | None = None,
    source: Path | None = None,
) -> TrainConfig:
    """Validate merged settings once; a flag's error is a ParameterError, a file's a ConfigError."""
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = describe_error(error, labels)
        from_flag = labels and _label(tuple(error["loc"]), labels).startswith("-")
        if source is not None and not from_flag:
            raise ConfigError(f"config {source}: {message}") from None
        raise ParameterError(message) from None


def make_config(**fields: object) -> TrainConfig:
    """Build and validate a TrainConfig from keyword settings (nested ones as mappings).

    Parameters
    ----------
    **fields
        Any TrainConfig settings, e.g. ``steps=40, servers={"k": 4, "num_servers": 5}``.

    Returns
    -------
    TrainConfig
        The validated configuration.

    Raises
    ------
    ParameterError
        A setting is out of range or inconsistent with another; the message names it.

    Examples
    --------
    >>> make_config(steps=30, fail_at=10).fail_at
    10
    >>> make_config(steps=30, fail_at=30)
    Traceback (most recent call last):
    ...
    redundancy.errors.ParameterError: fail_at=30 must be a step of the run (allowed ... 0..29, ...)
    """
    return _validate(fields)


def read_config_file(path: Path) -> dict:
    """The settings mapping of a YAML (``.yaml``/``.yml``) or JSON file, parsed, not validated.

    Raises
    ------
    ConfigError
        The file cannot be read, does not parse, or does not hold a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a text file"
        raise ConfigError(f"cannot read config {path}: {reason}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            try:
                raw = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise ValueError(str(exc)) from None
        else:
            raw = json.loads(text)
    except (ValueError, ImportError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"config {path} does not parse: {first}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must hold a mapping of settings at the top level")
    return raw


def load_config(path: Path) -> TrainConfig:
    """Load a TrainConfig from a YAML or JSON file.

    Parameters
    ----------
    path : Path
        A ``.yaml``/``.yml`` file, or JSON for any other suffix; omitted settings keep their
        defaults.

    Returns
    -------
    TrainConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        The file cannot be read or parsed, or a setting in it is invalid (the message names it).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "run.json"
    >>> _ = path.write_text('{"steps": 40, "servers": {"k": 4, "num_servers": 5}}')
    >>> config = load_config(path)
    >>> config.steps, config.servers.k
    (40, 4)
    >>> path.unlink(); path.parent.rmdir()
    """
    return _validate(read_config_file(path), source=Path(path))


def _set(raw: dict, key: str, value: object) -> None:
    """Set a dotted key (``servers.k``) in a nested settings mapping."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def with_overrides(
    cfg: TrainConfig | Mapping[str, object],
    overrides: Mapping[str, object],
    *,
    labels: Mapping[str, str] | None = None,
    source: Path | None = None,
) -> TrainConfig:
    """Settings with dotted keys replaced (``{"servers.k": 4}``), validated once, together.

    Parameters
    ----------
    cfg : TrainConfig or Mapping
        The base: a config, or a raw settings mapping (a preset, a parsed file).
    overrides : Mapping[str, object]
        Dotted setting -> value; every value given is applied (``None`` included, which unsets
        optional settings such as ``fail_at``). Leave a key out to keep the base's value.
    labels : Mapping[str, str], optional
        Dotted setting -> the flag that set it, so errors name the flag.
    source : Path, optional
        The file the base came from; errors in settings that came from it are ConfigErrors.

    Returns
    -------
    TrainConfig
        The validated configuration.

    Raises
    ------
    ParameterError, ConfigError
        The merged settings are invalid; the message names the setting or flag and the range.

    Examples
    --------
    >>> with_overrides(make_config(steps=200, fail_at=100), {"steps": 30, "fail_at": 10}).steps
    30
    """
    raw = cfg.model_dump() if isinstance(cfg, TrainConfig) else copy.deepcopy(dict(cfg))
    for key, value in overrides.items():
        _set(raw, key, value)
    return _validate(raw, labels=labels, source=source)


def fail_midway(steps: object) -> int | None:
    """The presets' failure step: halfway through the run (``None`` if ``steps`` is not an int)."""
    return steps // 2 if isinstance(steps, int) and not isinstance(steps, bool) else None


CLI_DEFAULT: dict[str, object] = {"steps": 200}

QUICK: dict[str, object] = {
    "steps": 40,
    "model": {"table_rows": [500] * 26, "dim": 8},
    "data": {"batch_size": 64},
}
