"""Product-matrix regenerating codes (MBR, MSR) with eavesdropper and adversary security.

Repair one lost node by downloading d symbols per stripe (one from each of d helpers) instead of
the whole file as Reed-Solomon does; hide the data from any l watched nodes; survive b liars.

The names below load on first use, so ``import redundancy.regenerating.cli`` (what the command
line does to list commands) imports no numpy.
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_WHERE = {
    "RegenParams": "params",
    "RegeneratingCode": "code",
    "Report": "robust",
    "decode_file": "files",
    "encode_file": "files",
    "leakage": "security",
    "observation_matrix": "security",
    "repair_file": "files",
    "robust_decode": "robust",
    "robust_repair": "robust",
    "worst_leakage": "security",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE)
