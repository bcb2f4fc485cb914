"""ECRM: erasure-coded embedding tables for fault-tolerant DLRM training.

Embedding rows are striped k at a time across parameter servers with one parity row (the sum) per
stripe, so losing a server costs neither a pause nor the work since a checkpoint: its rows are
served degraded (parity minus the others) while a replacement is rebuilt range by range.

Build a :class:`TrainConfig` (:func:`make_config`, :func:`load_config`), run it with
:class:`Trainer` (or ``redundancy.ecrm.train.train``, which also releases the servers) and read
the :class:`TrainResult`. ``train`` and ``compare`` are not exported here: those names are taken
by their modules.

The names below load on first use, so ``import redundancy.ecrm.cli`` (what the command line does
to list commands) imports no torch; Ray is imported only when a run asks for it.
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_WHERE = {
    "CriteoText": "data",
    "DLRM": "model",
    "DataConfig": "config",
    "ModelConfig": "config",
    "ServerConfig": "config",
    "ServerUnavailable": "cluster",
    "StripeLayout": "layout",
    "SyntheticCriteo": "data",
    "TrainConfig": "config",
    "TrainResult": "train",
    "Trainer": "train",
    "load_config": "config",
    "make_config": "config",
    "parity_residual": "verify",
    "with_overrides": "config",
    "write_criteo_text": "data",
    "young_interval": "train",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE)
