"""Erasure-coded file store: a file becomes n shard files (one folder per storage node).

Data streams stripe by stripe, so memory stays bounded (about n x stripe_size) whatever the file
size. Every shard chunk carries a CRC-32 in the manifest: a corrupt chunk is identified and treated
as an erasure, never decoded into the output, and the whole file's SHA-256 is checked before the
output is renamed into place. Every write is atomic (temporary name, then rename).

Modules: ``encode`` (file or stream -> store), ``decode`` (store -> file), ``check`` (verify and
repair), ``shards`` (shard paths, reports, the checked shard reader they share).
"""

from redundancy.erasure.manifest import load_manifest
from redundancy.erasure.store.check import repair_store, verify_store
from redundancy.erasure.store.decode import (
    StoredFile,
    decode_store,
    decode_target,
    missing_roots,
    stored_files,
)
from redundancy.erasure.store.encode import encode_file, encode_stream
from redundancy.erasure.store.shards import (
    DEFAULT_STRIPE_SIZE,
    RepairReport,
    ShardReader,
    ShardStatus,
    VerifyReport,
    shard_relpath,
)

__all__ = [
    "DEFAULT_STRIPE_SIZE",
    "RepairReport",
    "ShardReader",
    "ShardStatus",
    "StoredFile",
    "VerifyReport",
    "decode_store",
    "decode_target",
    "encode_file",
    "encode_stream",
    "load_manifest",
    "missing_roots",
    "repair_store",
    "shard_relpath",
    "stored_files",
    "verify_store",
]
