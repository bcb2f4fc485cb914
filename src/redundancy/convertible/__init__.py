"""Convertible codes: change a stored code's parameters at the lowest access and bandwidth cost.

Bounds: a :class:`Conversion` (merge, split or general) and its :func:`costs` (:class:`Costs`);
an :class:`LRCMerge` and its :func:`lrc_bandwidth_bound`. Constructions: a
:class:`ConvertibleFamily` of two MDS codes with access-optimal :func:`merge_plan` and
:func:`split_plan` (each a :class:`ConversionPlan`); bandwidth-optimal :class:`PiggybackMerge`
(MDS) and :class:`LRCGlobalMerge` (LRC global parities).

The names below load on first use, so ``import redundancy.convertible.cli`` (what the command line
does to list commands) imports no numpy.
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_WHERE = {
    "Conversion": "algebra.bounds",
    "ConversionPlan": "algebra.access",
    "ConvertibleFamily": "algebra.access",
    "Costs": "algebra.bounds",
    "LRCGlobalMerge": "algebra.lrc",
    "LRCMerge": "algebra.bounds",
    "PiggybackMerge": "algebra.piggyback",
    "costs": "algebra.bounds",
    "lrc_bandwidth_bound": "algebra.bounds",
    "merge_plan": "algebra.access",
    "split_plan": "algebra.access",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE)
