"""The models a serving run needs: deployed, parity and cheap backup, from a bundle or trained.

``ServingModels`` is what both backends load into their instances: the role of an instance picks
its model (``for_role``); the frontend gets ``code`` to encode parity queries and decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from redundancy.coded_inference.codes import ParityCode
from redundancy.coded_inference.serving.frontend import Role


@dataclass
class ServingModels:
    """A ParityCode (deployed + parity model + encoder) and a cheap backup model.

    Parameters
    ----------
    code : ParityCode
        Deployed model, parity model and encoder.
    cheap : torch.nn.Module
        The cheap backup model.

    Examples
    --------
    >>> from redundancy.coded_inference.codes import AdditionEncoder
    >>> deployed = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> parity = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> cheap = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> models = ServingModels(ParityCode(deployed, parity, AdditionEncoder(2, (1, 4, 4))), cheap)
    >>> models.k, models.for_role("parity") is parity
    (2, True)
    >>> tuple(models.run("deployed", torch.zeros(1, 1, 4, 4)).shape)
    (3,)
    """

    code: ParityCode
    cheap: nn.Module

    @property
    def k(self) -> int:
        """Queries per coding group."""
        return self.code.k

    def for_role(self, role: Role) -> nn.Module:
        """The model an instance of ``role`` runs."""
        if role == "deployed":
            return self.code.deployed
        if role == "parity":
            return self.code.parity
        return self.cheap.eval()

    @torch.no_grad()
    def run(self, role: Role, inputs: torch.Tensor) -> torch.Tensor:
        """One request through the role's model: (1, C, H, W) -> (n_classes,)."""
        return self.for_role(role)(inputs).squeeze(0)


def from_bundle(path: Path, k: int | None = None) -> ServingModels:
    """Load the models saved by ``redundancy parm train`` (``bundle.pt``).

    Parameters
    ----------
    path : Path
        The bundle (see :func:`redundancy.coded_inference.save_bundle`).
    k : int, optional
        The group size expected; it must match the bundle's.

    Returns
    -------
    ServingModels
        The bundle's deployed, parity and cheap models.

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
    >>> from redundancy.coded_inference import ImageData, OptimConfig, ParmConfig
    >>> from redundancy.coded_inference import run_parm, save_bundle
    >>> _ = torch.manual_seed(0)
    >>> data = ImageData(
    ...     "toy", torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,)),
    ...     torch.rand(32, 1, 4, 4), torch.randint(0, 3, (32,)), n_classes=3,
    ... )
    >>> one_epoch = OptimConfig(epochs=1)
    >>> config = ParmConfig(model="linear", deployed=one_epoch, parity=one_epoch)
    >>> path = Path(tempfile.mkdtemp()) / "bundle.pt"
    >>> save_bundle(run_parm(config, data=data), path)
    >>> from_bundle(path, k=2).k
    2
    >>> path.unlink(); path.parent.rmdir()
    """
    from redundancy.coded_inference.pipeline import load_bundle

    code, cheap, _ = load_bundle(Path(path), k)
    return ServingModels(code, cheap.eval())


def quick_models(k: int = 2, dataset: str = "digits", seed: int = 0, *, progress: bool = False):
    """Train a small ParM setup in seconds (deployed, parity, cheap) and return it with its data.

    The embedded default of the serving commands: 8x8 digits, Base-MLP, addition code, 6 and 8
    epochs.

    Parameters
    ----------
    k : int, default 2
        Queries per coding group.
    dataset : str, default "digits"
        The data set (see :class:`~redundancy.coded_inference.DataConfig`).
    seed : int, default 0
        Seeds the data split and the training.
    progress : bool, default False
        Show progress bars on stderr.

    Returns
    -------
    models : ServingModels
        The trained deployed, parity and cheap models.
    data : ImageData
        The data they were trained on (its test split makes good queries).

    Raises
    ------
    ConfigError
        If the data set cannot be loaded.

    Examples
    --------
    Training takes seconds to tens of seconds, so this example is not run by the doctests:

    >>> models, data = quick_models(k=2)  # doctest: +SKIP
    >>> models.k, data.name  # doctest: +SKIP
    (2, 'digits')
    """
    from redundancy.coded_inference.config import DataConfig, OptimConfig, ParmConfig
    from redundancy.coded_inference.pipeline import run_parm

    config = ParmConfig(
        data=DataConfig(dataset=dataset),  # type: ignore[arg-type]
        k=k,
        deployed=OptimConfig(epochs=6),
        parity=OptimConfig(epochs=8),
        seed=seed,
    )
    run = run_parm(config, progress=progress)
    return ServingModels(run.code, run.cheap.eval()), run.data
