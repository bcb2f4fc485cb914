"""Apply a conversion plan to initial (``ec``-format) stores, stripe by stripe.

The one loop behind the merge, split and general-regime conversions and their re-encode anchors:
read exactly the shards ``plan.reads`` names (each chunk checked against its stored CRC-32, zero-
padded to the widest member), compute ``plan.matrix`` on them, and write the new parities under
temporary names (renamed when complete); then hard-link the kept data shards. Callers commit by
writing their manifest last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from redundancy import gf256
from redundancy.convertible.algebra.access import ConversionPlan
from redundancy.convertible.stores.stripe_io import (
    BufferRing,
    ConvertReport,
    CountingReader,
    ParityWriter,
    Phases,
    clear_stale,
    crc_ok,
    list_shards,
    run_stripes,
)
from redundancy.erasure.codes import LinearCode
from redundancy.erasure.manifest import Manifest, ShardEntry
from redundancy.erasure.store import ShardReader, shard_relpath
from redundancy.errors import IntegrityError
from redundancy.storage_io import atomic_open


def run_plan(
    stores: Sequence[Path],
    loaded: Sequence[tuple[Manifest, object, LinearCode]],
    plan: ConversionPlan,
    out: Path,
    report: ConvertReport,
    allow_degraded: bool,
    progress: Callable[[int], None] | None,
    pipeline: bool,
) -> tuple[list[ShardEntry], Phases]:
    """Write ``plan``'s new parities into ``out`` and link the data shards; return the shards.

    ``loaded[t]`` is ``load_initial(stores[t])``; plan reads are (store index, shard index). A
    store may hold several members (a merged store converted again): each shard is read for its
    own length and zero-padded to the stripe's widest. Missing or corrupt shards are refused
    unless ``allow_degraded`` (then rebuilt from the store and listed in ``report.degraded``).
    Fills the report's byte counters; the returned phases time every step (callers add the
    manifest write).
    """
    size = loaded[0][0].stripe_size
    k_i = loaded[0][2].k
    stripes = max(m.stripes for m, _, _ in loaded)
    clear_stale(out)
    phases = Phases()
    counter = CountingReader(phases)
    inputs = BufferRing(len(plan.reads), size)
    outputs = BufferRing(len(plan.writes), size)
    with ExitStack() as stack:
        stack.callback(counter.close)
        readers = [
            ShardReader(s, m, code, stack) for s, (m, _, code) in zip(stores, loaded, strict=True)
        ]
        for t, idx in plan.reads:
            if not readers[t].usable(idx) and not allow_degraded:
                raise IntegrityError(
                    f"{stores[t]}: shard {idx} is {readers[t].states[idx]}; conversion refuses "
                    "(repair the store first, or allow degraded conversion)"
                )

        def lengths(stripe: int) -> list[int]:
            """Bytes of each shard read in ``stripe`` (0 past the end of its file)."""
            return [loaded[t][0].shard_chunk_length(stripe, idx, k_i) for t, idx in plan.reads]

        def width(stripe: int) -> int:
            return max(m.chunk_length(stripe, k_i) for m, _, _ in loaded)

        def regions(stripe: int) -> list[tuple[Path, int, int]]:
            return [
                (stores[t] / loaded[t][0].shards[idx].path, stripe * size, length)
                for (t, idx), length in zip(plan.reads, lengths(stripe), strict=True)
                if length
            ]

        def load(stripe: int) -> list[np.ndarray | None]:
            counter.prefetch(regions(stripe + 1) if stripe else regions(0) + regions(1))
            sizes = lengths(stripe)
            fetched: list[np.ndarray | None] = []
            buffers = inputs.get(stripe, width(stripe))
            for col, ((t, idx), buf) in enumerate(zip(plan.reads, buffers, strict=True)):
                buf[sizes[col] :] = 0
                entry = loaded[t][0].shards[idx]
                chunk = buf[: sizes[col]]
                good = not sizes[col] or (
                    readers[t].usable(idx)
                    and counter.read_into(stores[t] / entry.path, stripe * size, chunk)
                    and crc_ok(phases, chunk, entry.crc32[stripe])
                )
                fetched.append(buf if good else None)
            return fetched

        def compute(stripe: int, fetched: list[np.ndarray | None]) -> np.ndarray:
            wide = width(stripe)
            for col, (t, idx) in enumerate(plan.reads):
                if fetched[col] is None:
                    if not allow_degraded:
                        raise IntegrityError(
                            f"{stores[t]}: stripe {stripe} of shard {idx} fails its checksum; "
                            "conversion refuses (repair first, or allow degraded conversion)"
                        )
                    chunk = readers[t].rebuild(stripe, [idx], {})[idx]
                    fetched[col] = np.pad(chunk, (0, wide - chunk.size))
                    report.degraded.append(f"{stores[t]} shard {idx} stripe {stripe}")
            with phases.timed("compute"):
                return gf256.matmul_sparse(plan.matrix, fetched, out=outputs.get(stripe, wide))

        first_parity = len(stores) * k_i
        handles = [
            stack.enter_context(atomic_open(out / shard_relpath(first_parity + row)))
            for row in range(len(plan.writes))
        ]
        writer = ParityWriter(handles, 1, phases)
        run_stripes(stripes, load, compute, writer, progress, pipeline)
        with phases.timed("fsync"):
            stack.close()  # flush, fsync and rename the new parities
    report.bytes_read = counter.bytes_read + sum(r.bytes_read for r in readers)
    report.bytes_written = writer.bytes_written
    kept = [(s, m.shards[:k_i]) for s, (m, _, _) in zip(stores, loaded, strict=True)]
    return list_shards(kept, out, writer.crc32, report, phases), phases
