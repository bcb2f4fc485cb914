"""The erasure-coded store against the physical limit of the same work on the same disk.

In one run, for RS(10,4) and LRC(12,2,2) on one file:
- ``ec encode`` vs a plain copy that reads the file and writes the same number of bytes
  (n/k x the file) into n files, each fsync'd (no coding, no checksums);
- ``ec decode`` with one data shard lost vs ``cp`` of the file then ``sync`` of the copy;
- ``ec verify`` vs reading every shard (``cat`` to /dev/null).

Inputs are evicted from the page cache before every run (posix_fadvise on those files only), so
reads come from the disk. Every command runs as its own process (ours through the real CLI,
interpreter start included), ``--repeats`` interleaved pairs of ours and its baseline
(alternating which runs first), reported as medians; the peak RSS of each of our commands is read
from wait4. The load average is printed before and after: numbers from a loaded machine are not
the disk's limit.

Run: .venv/bin/python benchmarks/erasure_store_bench.py [--quick] [--size-mib N] [--dir DIR]
(default 1 GiB; --quick 64 MiB). DIR (default $BENCH_TMP or /tmp) must be on the disk to measure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redundancy.convertible.stores.stripe_io import drop_cache

CODES = {"rs:10,4": (10, 14), "lrc:12,2,2": (12, 16)}
CLI = [sys.executable, "-m", "redundancy.cli", "ec"]

# The baseline for encode: read the file stripe by stripe (1 MiB per shard, as ec encode does)
# and write each shard's share of the bytes, plus as many bytes again for every parity file,
# then fsync every file. No numpy, no coding, no checksums.
PLAIN_COPY = """
import os, sys
source, folder, k, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
block = 1 << 20
outputs = [open(os.path.join(folder, f"part-{i:03d}"), "wb", buffering=0) for i in range(n)]
buffer = bytearray(k * block)
view = memoryview(buffer)
with open(source, "rb", buffering=0) as reader:
    while True:
        got = reader.readinto(buffer)
        if not got:
            break
        piece = -(-got // k)
        for i in range(n):
            start = (i % k) * piece
            outputs[i].write(view[start : start + piece])
for out in outputs:
    os.fsync(out.fileno())
    out.close()
"""


def run_timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of ``command`` as a child process; raise if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # verify exits 1 on a damaged store, which we do not make here
        raise RuntimeError(f"{command} exited {code}: {process.stderr.read().decode()}")
    process.stderr.close()
    return seconds, usage.ru_maxrss / 1024


CACHED = False  # --cached: leave files in the page cache between runs


def evict(paths: list[Path]) -> None:
    """Drop these (fsync'd) files from the page cache, so the next run reads them from disk.

    posix_fadvise(DONTNEED) touches only the named files: other users of the machine keep
    their cache (no global drop_caches).
    """
    if not CACHED:
        drop_cache(paths)


def one_run(command: list[str], cwd: Path, before: list[str] | None, cold) -> tuple[float, float]:
    """One timed run of ``command``: ``before`` runs and ``cold`` files are evicted, untimed."""
    if before:
        subprocess.run(before, cwd=cwd, check=True)
    evict(list(cold))
    return run_timed(command, cwd)


def paired(ours: dict, base: dict, cwd: Path, repeats: int) -> tuple[list, list, float]:
    """Interleaved runs of our command and its baseline: their times and our peak RSS.

    Each repeat runs both, alternating which goes first (ABBA), so slow drifts of the machine
    (this VM's kernel copies swing up to 2x between minutes) fall on both sides of a ratio.
    ``ours``/``base``: keyword arguments of :func:`one_run` (command, before, cold).
    """
    ours_times, base_times, peak = [], [], 0.0
    for repeat in range(repeats):
        order = (
            (("ours", ours), ("base", base))
            if repeat % 2 == 0
            else (("base", base), ("ours", ours))
        )
        for side, spec in order:
            seconds, rss = one_run(cwd=cwd, **spec)
            if side == "ours":
                ours_times.append(seconds)
                peak = max(peak, rss)
            else:
                base_times.append(seconds)
    return ours_times, base_times, peak


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 24)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            handle.write(block[: min(len(block), size - written)])
            written += len(block)
        os.fsync(handle.fileno())


def startup_seconds(folder: Path, repeats: int) -> float:
    """What every command costs before any data moves: ``ec verify`` of an empty file's store
    (median of ``repeats`` runs)."""
    empty = folder / "empty.bin"
    empty.write_bytes(b"")
    subprocess.run([*CLI, "encode", str(empty), "--out", "empty.ec"], cwd=folder, check=True)
    command = [*CLI, "verify", "empty.ec"]
    return statistics.median(run_timed(command, folder)[0] for _ in range(repeats))


def measure(folder: Path, size: int, repeats: int) -> tuple[list[list[str]], float]:
    source = folder / "input.bin"
    make_file(source, size)
    startup = startup_seconds(folder, repeats)
    rows = []
    mb = size / 1e6
    for spec, (k, n) in CODES.items():
        store, parts = folder / f"store-{spec.replace(':', '-')}", folder / "plain"
        parts.mkdir(exist_ok=True)
        runs = {}
        runs["encode"] = paired(
            {
                "command": [*CLI, "encode", str(source), "--code", spec, "--out", str(store)],
                "before": ["rm", "-rf", str(store)],
                "cold": [source],
            },
            {
                "command": [
                    sys.executable,
                    "-c",
                    PLAIN_COPY,
                    str(source),
                    str(parts),
                    str(k),
                    str(n),
                ],
                "before": None,
                "cold": [source],
            },
            folder,
            repeats,
        )
        shards = sorted(str(p) for p in store.rglob("shard-*.bin"))
        runs["verify"] = paired(
            {"command": [*CLI, "verify", str(store)], "before": None, "cold": shards},
            {
                "command": ["sh", "-c", 'cat "$@" > /dev/null', "cat", *shards],
                "before": None,
                "cold": shards,
            },
            folder,
            repeats,
        )
        shard0 = shards[0]
        saved = folder / "shard0.saved"
        shutil.copyfile(shard0, saved)
        Path(shard0).unlink()
        runs["decode"] = paired(
            {
                "command": [*CLI, "decode", str(store), "--out", "decoded.bin"],
                "before": ["rm", "-f", "decoded.bin"],
                "cold": shards[1:],
            },
            {
                "command": ["sh", "-c", f"cp '{source}' copy.bin && sync copy.bin"],
                "before": ["rm", "-f", "copy.bin"],
                "cold": [source],
            },
            folder,
            repeats,
        )
        same = _same(source, folder / "decoded.bin")
        shutil.move(saved, shard0)
        shutil.rmtree(parts)
        for name, key, base_name in (
            ("encode", "encode", f"plain copy into {n} files + fsync"),
            ("decode (1 data shard lost)", "decode", "cp + sync"),
            ("verify", "verify", f"cat {n} shards > /dev/null"),
        ):
            ours_times, base_times, rss = runs[key]
            ours, base = statistics.median(ours_times), statistics.median(base_times)
            ratios = sorted(b / o for o, b in zip(ours_times, base_times, strict=True))
            rows.append(
                [
                    spec,
                    name,
                    f"{mb / ours:.0f}",
                    f"{mb / base:.0f}",
                    base_name,
                    f"{statistics.median(ratios):.2f}",
                    f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
                    _less_startup(base, ours, startup),
                    f"{rss:.0f}",
                ]
            )
        rows[-2][1] += "" if same else " (OUTPUT DIFFERS)"
        shutil.rmtree(store)
    return rows, startup


def _less_startup(base: float, ours: float, startup: float) -> str:
    """Ratio with our fixed start-up subtracted; '-' when the start-up is most of the run."""
    if ours - startup < 0.25 * ours:
        return "-"
    return f"{base / (ours - startup):.2f}"


def _same(a: Path, b: Path) -> bool:
    with a.open("rb") as x, b.open("rb") as y:
        while True:
            left, right = x.read(1 << 22), y.read(1 << 22)
            if left != right:
                return False
            if not left:
                return True


def hash_profile(folder: Path, size: int, repeats: int) -> None:
    """In-process decode (one data shard lost, cold cache) with and without the SHA-256 check:
    wall time, the hash thread's busy time and the main loop's wait for it."""
    from redundancy.erasure import store
    from redundancy.erasure.store import decode as decode_module
    from redundancy.erasure.store import shards as shards_module
    from redundancy.errors import DecodeError

    source = folder / "input.bin"
    make_file(source, size)
    store.encode_file(source, folder / "p.ec", "rs:10,4")
    shards = sorted(str(p) for p in (folder / "p.ec").rglob("shard-*.bin"))
    Path(shards[0]).unlink()
    real_hash = shards_module.BackgroundHash

    class TimedHash(real_hash):
        busy = waited = 0.0

        def update(self, data) -> None:
            start = time.perf_counter()
            self.wait()
            TimedHash.waited += time.perf_counter() - start

            def digest(chunk=data) -> None:
                began = time.perf_counter()
                self._digest.update(chunk)
                TimedHash.busy += time.perf_counter() - began

            self._pending = self._worker.submit(digest)

    class NoHash(real_hash):
        def update(self, data) -> None:
            pass

    print("| run | with SHA-256 s | hash busy s | loop waits on hash s | without hash s |")
    print("|---|---|---|---|---|")
    for run in range(repeats):
        times = []
        for variant in (TimedHash, NoHash):
            TimedHash.busy = TimedHash.waited = 0.0
            decode_module.BackgroundHash = variant
            evict(shards[1:])
            (folder / "out.bin").unlink(missing_ok=True)
            start = time.perf_counter()
            # without the hash the digest check fails (DecodeError), after all the work
            with contextlib.suppress(DecodeError):
                store.decode_store(folder / "p.ec", folder / "out.bin")
            times.append(time.perf_counter() - start)
            if variant is TimedHash:
                busy, wait = TimedHash.busy, TimedHash.waited
        print(f"| {run + 1} | {times[0]:.2f} | {busy:.2f} | {wait:.2f} | {times[1]:.2f} |")
    decode_module.BackgroundHash = real_hash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="64 MiB file (seconds)")
    parser.add_argument("--size-mib", type=int, default=None, help="file size (default 1024)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=os.environ.get("BENCH_TMP"), help="folder on the disk")
    parser.add_argument("--cached", action="store_true", help="keep inputs in the page cache")
    parser.add_argument(
        "--hash-profile", action="store_true", help="in-process decode with/without the SHA-256"
    )
    args = parser.parse_args()
    global CACHED
    CACHED = args.cached
    size = (args.size_mib or (64 if args.quick else 1024)) << 20
    if args.hash_profile:
        print(f"file {size >> 20} MiB, rs:10,4, load average {os.getloadavg()[0]:.2f} (1 min)")
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            hash_profile(Path(tmp), size, args.repeats)
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows, startup = measure(Path(tmp), size, args.repeats)
    load_after = os.getloadavg()
    print(
        f"file {size >> 20} MiB, {args.repeats} interleaved pairs (median), {os.cpu_count()} "
        f"cores; load average "
        f"before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min)\n"
    )
    print(f"command start-up (ec verify of an empty file's store): {startup:.2f} s\n")
    header = ["code", "operation", "ours MB/s", "baseline MB/s", "baseline", "ratio"]
    header += ["ratio range"]
    header += ["ratio less start-up", "RSS MiB"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        "\nMB/s are of the original file (median times); ratio = median over the pairs of "
        "ours / baseline throughput (>= 0.8 is the goal), its range over the pairs, and the "
        "median ratio with our command's fixed start-up subtracted ('-' where the start-up is "
        "most of the run: use a larger file); RSS is the peak resident memory of our CLI "
        "process (goal < 150 MiB). Inputs are evicted from the page cache before every run "
        "(posix_fadvise) unless --cached."
    )


if __name__ == "__main__":
    main()
