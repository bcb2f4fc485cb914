"""Convertible codes: change a stored code's parameters at the lowest access and bandwidth cost."""

from redundancy.convertible.access import ConversionPlan, ConvertibleFamily, merge_plan, split_plan
from redundancy.convertible.bounds import Conversion, Costs, LRCMerge, costs, lrc_bandwidth_bound
from redundancy.convertible.lrc import LRCGlobalMerge
from redundancy.convertible.piggyback import PiggybackMerge

__all__ = [
    "Conversion",
    "ConversionPlan",
    "ConvertibleFamily",
    "Costs",
    "LRCGlobalMerge",
    "LRCMerge",
    "PiggybackMerge",
    "costs",
    "lrc_bandwidth_bound",
    "merge_plan",
    "split_plan",
]
