"""Range-by-range rebuild of a lost server: what peers export, how the replacement decodes it,
and the replacement's own installer thread (so training never waits for a rebuild).

A peer exports, for one range of stripes, only what the lost server ``q`` needs: the data rows of
stripes ``q`` belongs to, the parity (and the one Adagrad accumulator of q's position) of stripes
where ``q`` holds a data row, and the data accumulators of stripes whose parity ``q`` holds.
The replacement decodes a lost data row as P - (other rows) and a lost parity as the sum of rows.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

import torch

from redundancy.ecrm.layout import StripeLayout
from redundancy.errors import DecodeError


def range_window(
    lay: StripeLayout,
    data_stripes: torch.Tensor,
    parity_stripes: torch.Tensor,
    r: int,
    range_stripes: int,
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(data slots, parity slots, first stripe, end stripe) of one server within range ``r``."""
    n, k = lay.num_servers, lay.k
    a, b = r * range_stripes, (r + 1) * range_stripes
    cand = torch.arange((a // n) * k, min(-(-b // n) * k, lay.data_slots))
    st = data_stripes[cand]
    dslots = cand[(st >= a) & (st < b)]
    pc = torch.arange(a // n, min(-(-b // n), lay.parity_slots))
    pst = parity_stripes[pc]
    return dslots, pc[(pst >= a) & (pst < b)], a, b


def position_of(lay: StripeLayout, server: int, stripes: torch.Tensor) -> torch.Tensor:
    """Position of ``server``'s data row in each stripe, or -1 where it holds none."""
    j = (server - 1 - stripes) % lay.num_servers
    return torch.where(j < lay.k, j, torch.full_like(j, -1))


def export_for(store: Any, r: int, lost: int) -> dict:
    """What healthy ``store`` sends towards rebuilding server ``lost``'s range ``r`` (copies)."""
    lay = store.layout
    dslots, pslots, _, _ = range_window(
        lay, store.data_stripes, store.parity_stripes, r, store.spec.range_stripes
    )
    ds = store.data_stripes[dslots]
    lost_parity = ds % lay.num_servers == lost
    keep = lost_parity | (position_of(lay, lost, ds) >= 0)
    out = {"d_s": ds[keep], "d_j": store.data_pos[dslots[keep]], "d": store.data[dslots[keep]]}
    ps = store.parity_stripes[pslots]
    jq = position_of(lay, lost, ps)
    pk = jq >= 0
    out.update({"p_s": ps[pk], "p": store.parity[pslots[pk]]})
    if store.adagrad:
        acc_slots = dslots[lost_parity]
        out.update(
            {
                "a_s": ds[lost_parity],
                "a_j": store.data_pos[acc_slots],
                "a": store.data_acc[acc_slots],
                "pa": store.parity_acc[pslots[pk], jq[pk]],
            }
        )
    return out


def decode(store: Any, r: int, exports: list[dict]) -> dict:
    """The replacement's rows and optimizer state for range ``r`` from the peers' exports."""
    lay, spec = store.layout, store.spec
    dslots, pslots, a, b = range_window(
        lay, store.data_stripes, store.parity_stripes, r, spec.range_stripes
    )
    k, dim, dtype, m = lay.k, spec.dim, store.data.dtype, b - a
    d_rows = torch.zeros(m, k, dim, dtype=dtype)
    d_have = torch.zeros(m, k, dtype=torch.bool)
    p_rows = torch.zeros(m, dim, dtype=dtype)
    p_have = torch.zeros(m, dtype=torch.bool)
    d_acc = torch.zeros(m, k, dim, dtype=dtype) if store.adagrad else None
    p_acc = torch.zeros(m, dim, dtype=dtype) if store.adagrad else None
    for ex in exports:
        s, j = ex["d_s"] - a, ex["d_j"]
        d_rows[s, j], d_have[s, j] = ex["d"], True
        ps = ex["p_s"] - a
        p_rows[ps], p_have[ps] = ex["p"], True
        if store.adagrad:
            d_acc[ex["a_s"] - a, ex["a_j"]] = ex["a"]
            p_acc[ps] = ex["pa"]
    s, j = store.data_stripes[dslots] - a, store.data_pos[dslots]
    if len(s) and not (bool(p_have[s].all()) and bool((d_have[s].sum(1) == k - 1).all())):
        raise DecodeError(f"range {r}: parity or a sibling row is lost too (2 failures)")
    ps = store.parity_stripes[pslots] - a
    if len(ps) and not bool(d_have[ps].all()):
        raise DecodeError(f"range {r}: a data row of a parity stripe is lost too")
    out = {
        "dslots": dslots,
        "pslots": pslots,
        "data": p_rows[s] - d_rows[s].sum(1),
        "parity": d_rows[ps].sum(1),
    }
    if store.adagrad:
        out["data_acc"], out["parity_acc"] = p_acc[s], d_acc[ps]
    return out


def _resolve(item: Any) -> Any:
    """An export given as a value, or as a Ray ObjectRef (fetched here, off the actor's queue)."""
    ray = sys.modules.get("ray")
    if ray is not None and isinstance(item, ray.ObjectRef):
        return ray.get(item)
    return item


class Installer:
    """The replacement's background thread: fetch exports, decode, install, one range at a time."""

    def __init__(self, install: Callable[[int, list[dict]], None]) -> None:
        self._install = install
        self._queue: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="ecrm-rebuild", daemon=True)
        self._thread.start()

    def submit(self, r: int, exports: list) -> None:
        self._queue.put((r, exports))

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            r, exports = item
            if self.error is not None:
                continue
            try:
                self._install(r, [_resolve(e) for e in exports])
            except BaseException as exc:  # surfaced to the coordinator via ShardStore.ready_mask
                self.error = exc

    def close(self) -> None:
        self._queue.put(None)
