"""Linear erasure codes on byte shards and an erasure-coded file store with per-shard checksums.

Codes: :class:`ReedSolomon`, :class:`LRC` (maximally recoverable), built from a spec by
:func:`parse_code`. Store: :func:`encode_file` / :func:`encode_stream` write a store,
:func:`verify_store` and :func:`repair_store` check and mend it, :func:`decode_store` reads it.

The names below load on first use, so ``redundancy ec`` can build its command line without
importing numpy (``redundancy.erasure.cli`` imports the library inside its commands).
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_WHERE = {
    "LRC": "codes",
    "LinearCode": "codes",
    "ReedSolomon": "codes",
    "RepairPlan": "codes",
    "parse_code": "codes",
    "decode_store": "store",
    "encode_file": "store",
    "encode_stream": "store",
    "repair_store": "store",
    "verify_store": "store",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE)
