"""Secret sharing: Shamir over GF(2^8) and prime fields, and SNEAK dissemination over networks.

Shamir: :func:`split` a secret into n shares, :func:`combine` any k of them (:func:`recover`
also names bad shares). SNEAK: :func:`simulate` shares a secret over a :class:`Network` in which
the dealer reaches most participants only through others.

The names below load on first use, so importing the command line (``.cli``) stays cheap; heavy
parts (numpy for Shamir, networkx and the asyncio runtime for SNEAK) load only from their modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redundancy._lazy import lazy_exports

if TYPE_CHECKING:
    from redundancy.secret_sharing.network import Network
    from redundancy.secret_sharing.shamir import Recovery, combine, recover, split
    from redundancy.secret_sharing.shares import Share
    from redundancy.secret_sharing.sim import RunResult, simulate

_HOMES = {
    "Network": "network",
    "Recovery": "shamir",
    "RunResult": "sim",
    "Share": "shares",
    "combine": "shamir",
    "recover": "shamir",
    "simulate": "sim",
    "split": "shamir",
}
__all__ = [  # spelled out (not sorted(_HOMES)) so tools see the names the block above imports
    "Network",
    "Recovery",
    "RunResult",
    "Share",
    "combine",
    "recover",
    "simulate",
    "split",
]
_, __getattr__, __dir__ = lazy_exports(__name__, _HOMES)
