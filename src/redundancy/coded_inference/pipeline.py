"""End-to-end ParM experiment: data -> deployed model -> cheap backup -> parity model -> scores.

``run_parm`` is what the CLI, ``reproduce`` and the benchmark call; ``save_bundle`` /
``load_bundle`` keep a trained (deployed, parity, cheap) triple in one file that a serving
frontend can load into a ``ParityCode``.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from redundancy.coded_inference.codes import ParityCode, make_encoder
from redundancy.coded_inference.config import LearnedCodeConfig, OptimConfig, ParmConfig
from redundancy.coded_inference.data import ImageData, load_data
from redundancy.coded_inference.evaluation import (
    CodedAccuracy,
    cheap_backup_baseline,
    default_prediction_baseline,
    evaluate_parity_code,
)
from redundancy.coded_inference.learned import (
    LearnedCode,
    evaluate_learned_code,
    train_learned_code,
)
from redundancy.coded_inference.models import build_cheap_model, build_model, check_compatible
from redundancy.coded_inference.training import (
    TrainHistory,
    fit_classifier,
    predict_logits,
    train_parity_model,
)
from redundancy.errors import ConfigError, IntegrityError, ParameterError
from redundancy.storage_io import atomic_write_bytes

BUNDLE_FORMAT = "redundancy-parm/1"


@dataclass
class ParmRun:
    """A trained ParM setup and its scores against the two baselines."""

    config: ParmConfig
    data: ImageData
    code: ParityCode
    cheap: nn.Module
    results: list[CodedAccuracy]
    histories: dict[str, TrainHistory] = field(default_factory=dict)


def train_deployed(
    data: ImageData,
    model: nn.Module,
    optim: OptimConfig,
    *,
    val_fraction: float,
    seed: int,
    progress: bool = False,
    label: str = "deployed model",
) -> TrainHistory:
    """Train a classifier on ``data`` with a seeded validation split for early stopping."""
    check_compatible(model, data.input_shape, data.n_classes)
    torch.manual_seed(seed)
    train, x_val, y_val = data.split_validation(val_fraction, seed)
    return fit_classifier(
        model,
        train.x_train,
        train.y_train,
        x_val,
        y_val,
        optim,
        seed=seed,
        progress=progress,
        label=label,
    )


def _frozen_deployed(
    config: ParmConfig | LearnedCodeConfig,
    data: ImageData,
    deployed: nn.Module | None,
    histories: dict[str, TrainHistory],
    progress: bool,
) -> nn.Module:
    """The given deployed model (checked against the data) or a newly trained one, frozen."""
    if deployed is None:
        deployed = build_model(config.model, data.input_shape, data.n_classes)
        histories["deployed"] = train_deployed(
            data,
            deployed,
            config.deployed,
            val_fraction=config.data.val_fraction,
            seed=config.seed,
            progress=progress,
        )
    else:
        check_compatible(deployed, data.input_shape, data.n_classes)
    deployed.eval()
    for p in deployed.parameters():
        p.requires_grad_(False)
    return deployed


def run_parm(
    config: ParmConfig | None = None,
    *,
    data: ImageData | None = None,
    deployed: nn.Module | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> ParmRun:
    """Run a ParM experiment: train the deployed model, the cheap backup and the parity model.

    A given ``deployed`` model is used as is (frozen); otherwise one of ``config.model`` is
    trained. The parity model always has ``config.model``'s architecture. The result is scored
    against two baselines: the cheap backup and the default prediction.

    Parameters
    ----------
    config : ParmConfig, optional
        The experiment (default ``ParmConfig()``: MNIST-5k, Base-MLP, k = 2, addition).
    data : ImageData, optional
        Use these images instead of loading ``config.data``.
    deployed : torch.nn.Module, optional
        An already trained deployed model (checked against the data, then frozen).
    checkpoint_dir : Path, optional
        Save the parity model's training state here after every epoch.
    resume : bool, default False
        Continue the parity model's training from ``checkpoint_dir``.
    progress : bool, default False
        Show progress bars on stderr.

    Returns
    -------
    ParmRun
        The config, data, :class:`ParityCode`, cheap backup, the three scores
        (:class:`CodedAccuracy`) and the training histories.

    Raises
    ------
    ConfigError
        If the data set cannot be loaded.
    ParameterError
        If ``deployed`` does not fit the data, or the checkpoint was written for another code.

    Examples
    --------
    >>> from redundancy.coded_inference import ImageData, OptimConfig
    >>> _ = torch.manual_seed(0)
    >>> data = ImageData(  # random 4x4 images, 3 classes: a stand-in that trains in a blink
    ...     "toy", torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,)),
    ...     torch.rand(32, 1, 4, 4), torch.randint(0, 3, (32,)), n_classes=3,
    ... )
    >>> one_epoch = OptimConfig(epochs=1)
    >>> run = run_parm(ParmConfig(model="linear", deployed=one_epoch, parity=one_epoch), data=data)
    >>> run.code.k, [result.method for result in run.results]
    (2, ['ParM (addition, k=2)', 'cheap backup', 'default prediction'])
    """
    config = config or ParmConfig()
    data = data or load_data(config.data)
    torch.manual_seed(config.seed)
    encoder = make_encoder(config.encoder, config.k, data.input_shape)
    histories: dict[str, TrainHistory] = {}
    val_fraction, seed = config.data.val_fraction, config.seed
    deployed = _frozen_deployed(config, data, deployed, histories, progress)
    cheap = build_cheap_model(data.input_shape, data.n_classes, config.k)
    histories["cheap"] = train_deployed(
        data,
        cheap,
        config.deployed,
        val_fraction=val_fraction,
        seed=seed,
        progress=progress,
        label="cheap backup",
    )
    parity = build_model(config.model, data.input_shape, data.n_classes)
    train, x_val, _ = data.split_validation(val_fraction, seed)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / "parity.ckpt"
    histories["parity"] = train_parity_model(
        deployed,
        parity,
        encoder,
        train.x_train,
        x_val,
        config.parity,
        groups_per_epoch=config.groups_per_epoch,
        seed=seed,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
    )
    code = ParityCode(deployed, parity, encoder)
    return ParmRun(config, data, code, cheap, score(code, cheap, data, seed), histories)


def score(
    code: ParityCode, cheap: nn.Module, data: ImageData, seed: int = 0
) -> list[CodedAccuracy]:
    """ParM, cheap backup and default prediction on the test split."""
    deployed_logits = predict_logits(code.deployed, data.x_test)
    return [
        evaluate_parity_code(code, data.x_test, data.y_test, seed=seed),
        cheap_backup_baseline(predict_logits(cheap, data.x_test), deployed_logits, data.y_test),
        default_prediction_baseline(data.y_train, deployed_logits, data.y_test),
    ]


def save_bundle(run: ParmRun, path: Path) -> None:
    """Write the deployed, parity and cheap models with their code parameters (atomically).

    Parameters
    ----------
    run : ParmRun
        What :func:`run_parm` returned.
    path : Path
        The bundle file; :func:`load_bundle` reads it back.

    Raises
    ------
    OSError
        If the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from redundancy.coded_inference import ImageData, OptimConfig
    >>> _ = torch.manual_seed(0)
    >>> data = ImageData(  # random 4x4 images, 3 classes: a stand-in that trains in a blink
    ...     "toy", torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,)),
    ...     torch.rand(32, 1, 4, 4), torch.randint(0, 3, (32,)), n_classes=3,
    ... )
    >>> one_epoch = OptimConfig(epochs=1)
    >>> run = run_parm(ParmConfig(model="linear", deployed=one_epoch, parity=one_epoch), data=data)
    >>> path = Path(tempfile.mkdtemp()) / "parm.pt"
    >>> save_bundle(run, path)
    >>> code, cheap, config = load_bundle(path)
    >>> code.k, config.model
    (2, 'linear')
    >>> path.unlink(); path.parent.rmdir()
    """
    buffer = io.BytesIO()
    torch.save(
        {
            "format": BUNDLE_FORMAT,
            "config": run.config.model_dump(mode="json"),
            "input_shape": list(run.data.input_shape),
            "n_classes": run.data.n_classes,
            "deployed": run.code.deployed.state_dict(),
            "parity": run.code.parity.state_dict(),
            "cheap": run.cheap.state_dict(),
        },
        buffer,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_bundle(path: Path, k: int | None = None) -> tuple[ParityCode, nn.Module, ParmConfig]:
    """Load a bundle written by :func:`save_bundle`.

    Parameters
    ----------
    path : Path
        The bundle file (only tensors are unpickled).
    k : int, optional
        The group size the caller expects; it must match the bundle's.

    Returns
    -------
    code : ParityCode
        Deployed model, parity model and encoder, in eval mode.
    cheap : torch.nn.Module
        The cheap backup model.
    config : ParmConfig
        The configuration the bundle was trained with.

    Raises
    ------
    ConfigError
        If the file does not exist.
    IntegrityError
        If it is not a ParM bundle.
    ParameterError
        If ``k`` differs from the bundle's.

    Examples
    --------
    >>> import tempfile
    >>> from redundancy.coded_inference import ImageData, OptimConfig
    >>> _ = torch.manual_seed(0)
    >>> data = ImageData(  # random 4x4 images, 3 classes: a stand-in that trains in a blink
    ...     "toy", torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,)),
    ...     torch.rand(32, 1, 4, 4), torch.randint(0, 3, (32,)), n_classes=3,
    ... )
    >>> one_epoch = OptimConfig(epochs=1)
    >>> run = run_parm(ParmConfig(model="linear", deployed=one_epoch, parity=one_epoch), data=data)
    >>> path = Path(tempfile.mkdtemp()) / "parm.pt"
    >>> save_bundle(run, path)
    >>> load_bundle(path, k=4)
    Traceback (most recent call last):
    ...
    redundancy.errors.ParameterError: the parity model in ... was trained for k=2, not k=4
    >>> path.unlink(); path.parent.rmdir()
    """
    raw = _read(path, BUNDLE_FORMAT, "redundancy parm train")
    config = ParmConfig.model_validate(raw["config"])
    if k is not None and k != config.k:
        raise ParameterError(f"the parity model in {path} was trained for k={config.k}, not k={k}")
    shape, n_classes = tuple(raw["input_shape"]), int(raw["n_classes"])
    deployed = build_model(config.model, shape, n_classes)
    parity = copy.deepcopy(deployed)
    cheap = build_cheap_model(shape, n_classes, config.k)
    for module, key in ((deployed, "deployed"), (parity, "parity"), (cheap, "cheap")):
        module.load_state_dict(raw[key])
        module.eval()
    return (
        ParityCode(deployed, parity, make_encoder(config.encoder, config.k, shape)),
        cheap,
        config,
    )


@dataclass
class LearnedRun:
    """A trained learned code, the deployed model it wraps, and its scores."""

    config: LearnedCodeConfig
    data: ImageData
    deployed: nn.Module
    code: LearnedCode
    results: list[CodedAccuracy]
    histories: dict[str, TrainHistory] = field(default_factory=dict)


def run_learned(
    config: LearnedCodeConfig | None = None,
    *,
    data: ImageData | None = None,
    deployed: nn.Module | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> LearnedRun:
    """Run a learned-code experiment: train (or reuse) the deployed model, then a code around it.

    Parameters
    ----------
    config : LearnedCodeConfig, optional
        The experiment (default ``LearnedCodeConfig()``: MNIST-5k, Base-MLP, k = 2, MLP
        encoder, KL loss).
    data : ImageData, optional
        Use these images instead of loading ``config.data``.
    deployed : torch.nn.Module, optional
        An already trained deployed model (checked against the data, then frozen).
    checkpoint_dir : Path, optional
        Save the code's training state here after every epoch.
    resume : bool, default False
        Continue the code's training from ``checkpoint_dir``.
    progress : bool, default False
        Show progress bars on stderr.

    Returns
    -------
    LearnedRun
        The config, data, deployed model, :class:`LearnedCode`, the scores of the code and of
        the default prediction (:class:`CodedAccuracy`) and the training histories.

    Raises
    ------
    ConfigError
        If the data set cannot be loaded.
    ParameterError
        If ``deployed`` does not fit the data, or the checkpoint was written for another code.

    Examples
    --------
    >>> from redundancy.coded_inference import ImageData, OptimConfig
    >>> _ = torch.manual_seed(0)
    >>> data = ImageData(  # random 4x4 images, 3 classes: a stand-in that trains in a blink
    ...     "toy", torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,)),
    ...     torch.rand(32, 1, 4, 4), torch.randint(0, 3, (32,)), n_classes=3,
    ... )
    >>> one_epoch = OptimConfig(epochs=1)
    >>> config = LearnedCodeConfig(model="linear", deployed=one_epoch, code=one_epoch)
    >>> run = run_learned(config, data=data)
    >>> [result.method for result in run.results]
    ['learned code (mlp, k=2)', 'default prediction']
    """
    config = config or LearnedCodeConfig()
    data = data or load_data(config.data)
    torch.manual_seed(config.seed)
    histories: dict[str, TrainHistory] = {}
    val_fraction, seed = config.data.val_fraction, config.seed
    deployed = _frozen_deployed(config, data, deployed, histories, progress)
    code = LearnedCode(
        config.k,
        data.input_shape,
        data.n_classes,
        encoder=config.encoder,
        r=config.r,
        hidden_factor=config.hidden_factor,
    )
    train, x_val, _ = data.split_validation(val_fraction, seed)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / "learned.ckpt"
    histories["code"] = train_learned_code(
        code,
        deployed,
        train.x_train,
        train.y_train,
        x_val,
        config.code,
        loss=config.loss,
        seed=seed,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
    )
    deployed_logits = predict_logits(deployed, data.x_test)
    results = [
        evaluate_learned_code(code, deployed, data.x_test, data.y_test, seed=seed),
        default_prediction_baseline(data.y_train, deployed_logits, data.y_test),
    ]
    return LearnedRun(config, data, deployed, code, results, histories)


LEARNED_FORMAT = "redundancy-learned-code/1"


def save_learned(run: LearnedRun, path: Path) -> None:
    """Write the deployed model and the learned encoder/decoder with their config (atomically)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "format": LEARNED_FORMAT,
            "config": run.config.model_dump(mode="json"),
            "input_shape": list(run.data.input_shape),
            "n_classes": run.data.n_classes,
            "deployed": run.deployed.state_dict(),
            "code": run.code.state_dict(),
        },
        buffer,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_learned(
    path: Path, k: int | None = None
) -> tuple[LearnedCode, nn.Module, LearnedCodeConfig]:
    """Load (learned code, deployed model, config); ``k`` if given must match the code's."""
    raw = _read(path, LEARNED_FORMAT, "redundancy parm learned train")
    config = LearnedCodeConfig.model_validate(raw["config"])
    if k is not None and k != config.k:
        raise ParameterError(f"the learned code in {path} was trained for k={config.k}, not k={k}")
    shape, n_classes = tuple(raw["input_shape"]), int(raw["n_classes"])
    deployed = build_model(config.model, shape, n_classes)
    deployed.load_state_dict(raw["deployed"])
    code = LearnedCode(
        config.k,
        shape,
        n_classes,
        encoder=config.encoder,
        r=config.r,
        hidden_factor=config.hidden_factor,
    )
    code.load_state_dict(raw["code"])
    return code.eval(), deployed.eval(), config


def _read(path: Path, expected: str, command: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (run `{command}` first)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types on a corrupt file
        raise IntegrityError(f"{path} is not a {expected} file: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != expected:
        raise IntegrityError(f"{path} is not a {expected} file")
    return raw
