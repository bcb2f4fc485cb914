"""Product-matrix regenerating codes (MBR, MSR) with eavesdropper and adversary security.

Repair one lost node by downloading d symbols per stripe (one from each of d helpers) instead of
the whole file as Reed-Solomon does; hide the data from any l watched nodes; survive b liars.
"""

from redundancy.regenerating.code import RegeneratingCode
from redundancy.regenerating.files import decode_file, encode_file, repair_file
from redundancy.regenerating.params import RegenParams
from redundancy.regenerating.robust import Report, robust_decode, robust_repair
from redundancy.regenerating.security import leakage, observation_matrix, worst_leakage

__all__ = [
    "RegenParams",
    "RegeneratingCode",
    "Report",
    "decode_file",
    "encode_file",
    "leakage",
    "observation_matrix",
    "repair_file",
    "robust_decode",
    "robust_repair",
    "worst_leakage",
]
