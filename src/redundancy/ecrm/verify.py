"""Whole-table views of the servers' shards, to check the stripe invariants (klauspost's Verify).

``assemble`` puts every server's slots back into global order; ``parity_residual`` is the largest
|parity - sum of its data rows| (0 up to float rounding when the code is consistent).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from redundancy.ecrm.layout import StripeLayout


@dataclass
class GlobalView:
    """Rows, parities and optimizer state in global order (stripes x k x dim)."""

    data: torch.Tensor
    parity: torch.Tensor | None
    data_acc: torch.Tensor | None
    parity_acc: torch.Tensor | None

    def rows(self, total_rows: int) -> torch.Tensor:
        """Embedding rows 0..total_rows-1 as one (rows, dim) table."""
        return self.data.reshape(-1, self.data.shape[-1])[:total_rows]


def assemble(layout: StripeLayout, states: list[dict]) -> GlobalView:
    """Combine ``ShardStore.state_dict()`` of every server into global order."""
    stripes = layout.periods * layout.num_servers
    dim = states[0]["data"].shape[1]
    dtype = states[0]["data"].dtype
    data = torch.zeros(stripes, layout.k, dim, dtype=dtype)
    adagrad = "data_acc" in states[0]
    data_acc = torch.zeros_like(data) if adagrad else None
    parity = torch.zeros(stripes, dim, dtype=dtype) if layout.parity else None
    parity_acc = torch.zeros_like(data) if adagrad and layout.parity else None
    for q, st in enumerate(states):
        s, j = layout.data_slot_stripes(q)
        data[s, j] = st["data"]
        if adagrad:
            data_acc[s, j] = st["data_acc"]
        if layout.parity:
            ps = layout.parity_slot_stripes(q)
            parity[ps] = st["parity"]
            if adagrad:
                parity_acc[ps] = st["parity_acc"]
    return GlobalView(data, parity, data_acc, parity_acc)


def parity_residual(layout: StripeLayout, states: list[dict]) -> float:
    """Measure how far the parities are from the sums of their stripes' data rows.

    Parameters
    ----------
    layout : StripeLayout
        The placement the shards follow (with parity).
    states : list of dict
        ``ShardStore.state_dict()`` of every server, in server order.

    Returns
    -------
    float
        max |parity - sum of data rows| over all stripes, and over Adagrad's accumulator
        copies (0 up to float rounding when the code is consistent).

    Examples
    --------
    >>> from redundancy.ecrm.shard import ShardSpec, ShardStore
    >>> layout = StripeLayout(total_rows=12, k=2, num_servers=3)
    >>> spec = ShardSpec(layout, dim=4, optimizer="sgd", dtype="float64")
    >>> states = [ShardStore(spec, server).state_dict() for server in range(3)]
    >>> parity_residual(layout, states) < 1e-12
    True
    """
    view = assemble(layout, states)
    worst = float((view.parity - view.data.sum(1)).abs().max())
    if view.parity_acc is not None:
        worst = max(worst, float((view.parity_acc - view.data_acc).abs().max()))
    return worst
