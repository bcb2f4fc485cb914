"""Stripe placement: which server and local slot hold each embedding row and each parity row.

Rows of all tables share one global id space (table offsets). Row r belongs to stripe s = r // k at
position j = r % k. Stripe s keeps its parity on server s mod n and its data row j on server
(s + 1 + j) mod n, so the k + 1 members of a stripe sit on k + 1 different servers and parity
rotates RAID-5 style. On server q, data row (s, j) lives in slot (s // n) * k + j and parity of
stripe s (when s mod n == q) in slot s // n: dense local arrays with no lookup tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from redundancy.errors import ParameterError, check_range


@dataclass(frozen=True)
class StripeLayout:
    """Placement of ``total_rows`` rows in stripes of ``k`` over ``num_servers`` servers.

    Parameters
    ----------
    total_rows : int
        Rows of all embedding tables together (global ids 0..total_rows-1).
    k : int
        Data rows per stripe.
    num_servers : int
        Parameter servers (at least k + 1 with parity).
    parity : bool, default True
        Keep one parity row per stripe.

    Raises
    ------
    ParameterError
        If a count is below 1, or there are fewer than k + 1 servers with parity.

    Examples
    --------
    Stripe s keeps its parity on server s mod n and data row j on server (s + 1 + j) mod n:

    >>> layout = StripeLayout(total_rows=10, k=2, num_servers=4)
    >>> servers, slots = layout.data_location(torch.arange(4))  # rows 0..3: stripes 0 and 1
    >>> servers.tolist(), slots.tolist()
    ([1, 2, 2, 3], [0, 1, 0, 1])
    >>> layout.parity_location(torch.tensor([0, 1]))[0].tolist()
    [0, 1]
    """

    total_rows: int
    k: int
    num_servers: int
    parity: bool = True

    def __post_init__(self) -> None:
        check_range("total_rows", self.total_rows, 1)
        check_range("k", self.k, 1)
        check_range("num_servers", self.num_servers, 1)
        if self.parity and self.num_servers < self.k + 1:
            raise ParameterError(
                f"num_servers={self.num_servers} must be >= k+1={self.k + 1} for parity placement"
            )

    @property
    def num_stripes(self) -> int:
        return -(-self.total_rows // self.k)

    @property
    def periods(self) -> int:
        """Stripe periods of length num_servers (each server holds k data + 1 parity per period)."""
        return -(-self.num_stripes // self.num_servers)

    @property
    def data_slots(self) -> int:
        return self.periods * self.k

    @property
    def parity_slots(self) -> int:
        return self.periods if self.parity else 0

    def check_rows(self, rows: torch.Tensor) -> None:
        """Raise ParameterError if any global row id is outside 0..total_rows-1."""
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= self.total_rows):
            raise ParameterError(f"row ids must lie in 0..{self.total_rows - 1}")

    def data_location(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(server, local data slot) of each global row id."""
        s, j = rows // self.k, rows % self.k
        n = self.num_servers
        return (s + 1 + j) % n, (s // n) * self.k + j

    def parity_location(self, stripes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(server, local parity slot) of each stripe id."""
        return stripes % self.num_servers, stripes // self.num_servers

    def data_slot_stripes(self, server: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For every data slot of ``server``: its stripe id and position (vectorised inverse)."""
        slots = torch.arange(self.data_slots)
        j = slots % self.k
        stripes = (slots // self.k) * self.num_servers + (server - 1 - j) % self.num_servers
        return stripes, j

    def parity_slot_stripes(self, server: int) -> torch.Tensor:
        """Stripe id of every parity slot of ``server``."""
        return torch.arange(self.parity_slots) * self.num_servers + server

    def range_of_stripes(self, stripes: torch.Tensor, range_stripes: int) -> torch.Tensor:
        """Index of the rebuild range each stripe falls into."""
        return stripes // range_stripes

    def num_ranges(self, range_stripes: int) -> int:
        return -(-(self.periods * self.num_servers) // range_stripes)
