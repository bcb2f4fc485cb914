"""ABFT: intensity-guided algorithm-based fault tolerance for neural-network inference.

``redundancy.abft.protect.protect`` returns a :class:`ProtectedModel`: a copy of a PyTorch model
whose Linear and Conv2d layers check their own outputs with checksums (global, tiled or
replication, chosen per layer from the layer's arithmetic intensity and a
:class:`DeviceProfile`); :func:`campaign` injects bit flips to measure what the checks catch.
Model builders for experiments are in ``redundancy.abft.zoo``. (``protect`` is not exported
here: the name is taken by its module, ``redundancy.abft.protect``.)

The names below load on first use, so ``import redundancy.abft.cli`` (what the command line
does to list commands) imports no torch.
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_WHERE = {
    "CampaignResult": "inject",
    "DeviceProfile": "profile",
    "LayerPlan": "selector",
    "ProtectedModel": "protect",
    "SilentDataCorruption": "schemes",
    "ThresholdConfig": "thresholds",
    "campaign": "inject",
    "get_profile": "profile",
    "load_profile": "profile",
    "measure_profile": "profile",
    "plan": "selector",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE)
