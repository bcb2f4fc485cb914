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
    """A ParityCode (deployed + parity model + encoder) and a cheap backup model."""

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
    """Models saved by ``redundancy parm train`` (``bundle.pt``)."""
    from redundancy.coded_inference.pipeline import load_bundle

    code, cheap, _ = load_bundle(Path(path), k)
    return ServingModels(code, cheap.eval())


def quick_models(k: int = 2, dataset: str = "digits", seed: int = 0, *, progress: bool = False):
    """Train a small ParM setup in seconds (deployed, parity, cheap) and return it with its data.

    The embedded default of the serving commands: 8x8 digits, Base-MLP, addition code; with
    ``progress`` the trainers show bars on stderr.
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
