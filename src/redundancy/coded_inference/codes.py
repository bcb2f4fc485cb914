"""ParM's hand-designed code: addition / concatenation encoders and the subtraction decoder.

A coding group is k queries (B, k, C, H, W); the encoder turns it into one parity query
(B, C, H, W) of the deployed model's input shape, so the parity model can share its architecture.
The decoder rebuilds one missing output: F^(X_j) = F_P(P) - sum_{i != j} F(X_i).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from redundancy.errors import DecodeError, ParameterError, check_range

ENCODER_NAMES = ("addition", "concatenation")


class Encoder(ABC):
    """Base of the encoders: validates a group of k queries of the expected image shape."""

    name = "encoder"

    def __init__(self, k: int, input_shape: tuple[int, int, int]) -> None:
        self.k = check_range("k", k, 2, 64)
        self.input_shape = tuple(int(s) for s in input_shape)

    def check_group(self, group: torch.Tensor) -> torch.Tensor:
        """Return ``group`` as (B, k, C, H, W); a wrong k or image shape is a ParameterError."""
        if group.ndim == 4:
            group = group.unsqueeze(0)
        if group.ndim != 5 or group.shape[1] != self.k:
            raise ParameterError(
                f"a coding group must be (B, k={self.k}, C, H, W), got {tuple(group.shape)}"
            )
        if tuple(group.shape[2:]) != self.input_shape:
            raise ParameterError(
                f"queries have shape {tuple(group.shape[2:])}, encoder expects {self.input_shape}"
            )
        return group

    @abstractmethod
    def encode(self, group: torch.Tensor) -> torch.Tensor:
        """The parity query (B, C, H, W) for a group (B, k, C, H, W) or (k, C, H, W)."""


class AdditionEncoder(Encoder):
    """ParM's addition encoder: the parity query is P = sum_i X_i, for any k.

    Parameters
    ----------
    k : int
        Queries per coding group, 2..64.
    input_shape : tuple of int
        (C, H, W) of one query.

    Raises
    ------
    ParameterError
        From the constructor for k out of range; from ``encode`` for a group of the wrong k or
        image shape.

    Examples
    --------
    >>> encoder = AdditionEncoder(2, (1, 2, 2))
    >>> group = torch.stack([torch.ones(1, 2, 2), torch.full((1, 2, 2), 2.0)])  # (k, C, H, W)
    >>> encoder.encode(group)
    tensor([[[[3., 3.],
              [3., 3.]]]])
    """

    name = "addition"

    def encode(self, group: torch.Tensor) -> torch.Tensor:
        return self.check_group(group).sum(dim=1)


class ConcatenationEncoder(Encoder):
    """ParM's concatenation encoder: the k images shrunk and tiled into one image.

    k = 2: both images shrunk to H x W/2, side by side; k = 4: shrunk to quadrants.

    Parameters
    ----------
    k : {2, 4}
        Queries per coding group.
    input_shape : tuple of int
        (C, H, W) of one query, at least 2x2.

    Raises
    ------
    ParameterError
        If k is not 2 or 4, or the images are smaller than 2x2; from ``encode`` for a group of
        the wrong k or image shape.

    Examples
    --------
    >>> encoder = ConcatenationEncoder(2, (1, 2, 2))
    >>> group = torch.stack([torch.ones(1, 2, 2), torch.zeros(1, 2, 2)])
    >>> encoder.encode(group)
    tensor([[[[1., 0.],
              [1., 0.]]]])
    """

    name = "concatenation"

    def __init__(self, k: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(k, input_shape)
        if self.k not in (2, 4):
            raise ParameterError(f"k={k} is not allowed for concatenation (allowed: 2 or 4)")
        _, h, w = self.input_shape
        if h < 2 or w < 2:
            raise ParameterError(f"concatenation needs images of at least 2x2, got {h}x{w}")

    def encode(self, group: torch.Tensor) -> torch.Tensor:
        group = self.check_group(group)
        b, k, c, h, w = group.shape
        flat = group.reshape(b * k, c, h, w)
        if k == 2:
            small = functional.interpolate(flat, size=(h, w // 2), mode="area").reshape(
                b, 2, c, h, -1
            )
            out = torch.cat([small[:, 0], small[:, 1]], dim=3)
        else:
            small = functional.interpolate(flat, size=(h // 2, w // 2), mode="area")
            small = small.reshape(b, 4, c, h // 2, w // 2)
            top = torch.cat([small[:, 0], small[:, 1]], dim=3)
            bottom = torch.cat([small[:, 2], small[:, 3]], dim=3)
            out = torch.cat([top, bottom], dim=2)
        # odd H or W: pad the last row / column with zeros back to the deployed input size
        return functional.pad(out, (0, w - out.shape[3], 0, h - out.shape[2]))


def make_encoder(name: str, k: int, input_shape: tuple[int, int, int]) -> Encoder:
    """Build an encoder by name.

    Parameters
    ----------
    name : {"addition", "concatenation"}
        Which encoder.
    k : int
        Queries per coding group.
    input_shape : tuple of int
        (C, H, W) of one query.

    Returns
    -------
    Encoder
        An :class:`AdditionEncoder` or :class:`ConcatenationEncoder`.

    Raises
    ------
    ParameterError
        If the name is unknown or k does not suit the encoder.

    Examples
    --------
    >>> make_encoder("concatenation", 4, (1, 28, 28)).name
    'concatenation'
    """
    if name == "addition":
        return AdditionEncoder(k, input_shape)
    if name == "concatenation":
        return ConcatenationEncoder(k, input_shape)
    raise ParameterError(f"encoder={name!r} is unknown (allowed: {', '.join(ENCODER_NAMES)})")


def subtraction_decode(
    parity_output: torch.Tensor, outputs: Sequence[torch.Tensor | None]
) -> torch.Tensor:
    """Rebuild the one missing output of a group: parity output minus the available ones.

    Parameters
    ----------
    parity_output : torch.Tensor
        F_P(P), the parity model's output for the group's parity query.
    outputs : sequence of torch.Tensor or None
        The k deployed outputs, None for the one missing.

    Returns
    -------
    torch.Tensor
        F_P(P) - sum of the available outputs: the estimate of the missing output.

    Raises
    ------
    DecodeError
        If not exactly one output is missing.
    ParameterError
        If an output's shape differs from the parity output's.

    Examples
    --------
    >>> subtraction_decode(torch.tensor([5.0, 7.0]), [None, torch.tensor([2.0, 3.0])])
    tensor([3., 4.])
    """
    missing = [i for i, o in enumerate(outputs) if o is None]
    if len(missing) != 1:
        raise DecodeError(
            f"subtraction decoding rebuilds exactly one missing output; {len(missing)} of "
            f"{len(outputs)} are missing"
        )
    rebuilt = parity_output.clone()
    for out in outputs:
        if out is not None:
            if out.shape != parity_output.shape:
                raise ParameterError(
                    f"output shape {tuple(out.shape)} differs from the parity output's "
                    f"{tuple(parity_output.shape)}"
                )
            rebuilt = rebuilt - out
    return rebuilt


def decode_all_erasures(parity_output: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """Vectorised decoding of every single-erasure case: (B, k, classes) reconstructions.

    Entry [b, j] is what the decoder returns for group b when output j is the missing one.
    """
    total = outputs.sum(dim=1, keepdim=True)
    return parity_output.unsqueeze(1) - (total - outputs)


class ParityCode:
    """A deployed model, its parity model and the encoder they were trained with, for one k.

    This is the unit a serving frontend needs: ``encode`` a full group into its parity query,
    run ``parity_output``, and ``decode`` whichever one data output did not come back.

    Parameters
    ----------
    deployed : torch.nn.Module
        The deployed model F (put in eval mode).
    parity : torch.nn.Module
        The parity model F_P, trained so F_P(encode(X)) approximates sum_i F(X_i).
    encoder : Encoder
        The encoder the parity model was trained with; it fixes k.

    Raises
    ------
    ParameterError
        From ``decode`` for a group whose size is not k.

    Examples
    --------
    A linear model without bias is its own perfect parity model for the addition code:

    >>> _ = torch.manual_seed(0)
    >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))
    >>> code = ParityCode(linear, linear, AdditionEncoder(2, (1, 2, 2)))
    >>> queries = torch.rand(2, 1, 2, 2)
    >>> parity_output = code.parity_output(code.encode(queries))
    >>> second = code.outputs(queries[1:])
    >>> rebuilt = code.decode(parity_output, [None, second])
    >>> torch.allclose(rebuilt, code.outputs(queries[:1]), atol=1e-6)
    True
    """

    def __init__(self, deployed: nn.Module, parity: nn.Module, encoder: Encoder) -> None:
        self.deployed = deployed.eval()
        self.parity = parity.eval()
        self.encoder = encoder

    @property
    def k(self) -> int:
        """Queries per coding group."""
        return self.encoder.k

    def encode(self, group: torch.Tensor) -> torch.Tensor:
        """Parity query (B, C, H, W) for a group (B, k, C, H, W)."""
        return self.encoder.encode(group)

    @torch.no_grad()
    def parity_output(self, parity_query: torch.Tensor) -> torch.Tensor:
        """The parity model's output F_P(P)."""
        return self.parity(parity_query)

    @torch.no_grad()
    def outputs(self, queries: torch.Tensor) -> torch.Tensor:
        """The deployed model's outputs F(X) for a batch of queries."""
        return self.deployed(queries)

    def decode(
        self, parity_output: torch.Tensor, outputs: Sequence[torch.Tensor | None]
    ) -> torch.Tensor:
        """Reconstruct the single missing output among k ``outputs`` (None marks it)."""
        if len(outputs) != self.k:
            raise ParameterError(
                f"this parity model was trained for k={self.k}; got a group of {len(outputs)}"
            )
        return subtraction_decode(parity_output, outputs)
