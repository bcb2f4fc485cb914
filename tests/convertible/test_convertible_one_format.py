"""One store format and chained conversions (issue 23, items 2-3).

A store `redundancy convert encode` wrote, and a merged store `convert run` wrote, are read by
`redundancy ec verify/repair/decode`; the target is named at run time; a merged store is converted
again (rs:6,3 x2 -> rs:12,3, then x2 -> rs:24,3), each step reading exactly its access bound
(bytes counted here by wrapping ``os.preadv``), and every original file comes back byte-exact.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import decode_any, encode_store
from redundancy.erasure import store as ec_store
from redundancy.errors import ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))
STRIPE = 1024


def _files(tmp: Path, sizes: list[int], seed: int = 5) -> list[Path]:
    rng = np.random.default_rng(seed)
    files = []
    for t, size in enumerate(sizes):
        path = tmp / f"file{t}.bin"
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        files.append(path)
    return files


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "ec", *args], capture_output=True, text=True, check=False)


class PreadvCounter:
    """Bytes returned by ``os.preadv`` while active (the conversion engine's only data reads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        real = os.preadv

        def counted(fd, buffers, offset, *rest):
            got = real(fd, buffers, offset, *rest)
            self.bytes += got
            return got

        monkeypatch.setattr(os, "preadv", counted)


def test_initial_store_is_read_by_ec_commands(tmp_path):
    (source,) = _files(tmp_path, [9_000])
    subprocess.run(
        [CLI, "convert", "encode", str(source), "--code", "rs:6,3", "--out", str(tmp_path / "st")],
        check=True,
        capture_output=True,
    )
    store = tmp_path / "st"
    assert _ec("verify", str(store)).returncode == 0
    lost = [store / ec_store.shard_relpath(i) for i in (1, 7)]
    originals = [p.read_bytes() for p in lost]
    for path in lost:
        path.unlink()
    assert _ec("verify", str(store)).returncode == 1
    out = _ec("decode", str(store), "--out", str(tmp_path / "back.bin"))
    assert out.returncode == 0, out.stderr
    assert _sha(tmp_path / "back.bin") == _sha(source)
    assert _ec("repair", str(store)).returncode == 0
    assert [p.read_bytes() for p in lost] == originals
    assert _ec("verify", str(store)).returncode == 0


def test_initial_store_with_a_forged_parity_matrix_is_refused(tmp_path):
    (source,) = _files(tmp_path, [3_000])
    encode_store(source, tmp_path / "st", "grs:4,2:8,2", stripe_size=STRIPE)
    path = tmp_path / "st" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["parity_matrix"][0][0] ^= 1  # still MDS-shaped, but not the grs code the spec names
    path.write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="parity_matrix is not the initial code"):
        convert_stores([tmp_path / "st", tmp_path / "st"], tmp_path / "m")


def test_merged_store_is_read_by_ec_commands(tmp_path):
    files = _files(tmp_path, [7_000, 2_500])  # unequal: the shorter member's shards are shorter
    stores = []
    for t, source in enumerate(files):
        encode_store(source, tmp_path / f"s{t}", "grs:4,2:8,2", stripe_size=STRIPE)
        stores.append(tmp_path / f"s{t}")
    merged = tmp_path / "m"
    convert_stores(stores, merged)
    assert _ec("verify", str(merged)).returncode == 0  # convertible.json is not a stray file
    lost = [merged / ec_store.shard_relpath(i) for i in (5, 9)]  # member 1's data, a parity
    originals = [p.read_bytes() for p in lost]
    for path in lost:
        path.unlink()
    report = json.loads(_ec("verify", "--json", str(merged)).stdout)
    assert report["status"] == "damaged" and report["damaged"] == [5, 9]
    one = _ec("decode", str(merged), "--member", "file1.bin", "--out", str(tmp_path / "one.bin"))
    assert one.returncode == 0, one.stderr
    assert _sha(tmp_path / "one.bin") == _sha(files[1])
    every = _ec("decode", str(merged), "--out", str(tmp_path / "all"))
    assert every.returncode == 0, every.stderr
    for source in files:
        assert _sha(tmp_path / "all" / source.name) == _sha(source)
    assert _ec("repair", str(merged)).returncode == 0
    assert [p.read_bytes() for p in lost] == originals
    assert _ec("verify", str(merged)).returncode == 0
    unknown = _ec("decode", str(merged), "--member", "nope.bin", "--out", str(tmp_path / "x"))
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    stdout = _ec("decode", str(merged), "--out", "-")
    assert stdout.returncode == 2 and stdout.stdout == ""


@pytest.mark.parametrize("name", ["../escape.bin", "/etc/passwd", "a/b", "", ".."])
def test_merged_store_member_names_must_be_plain(tmp_path, name):
    files = _files(tmp_path, [3_000, 3_000])
    stores = []
    for t, source in enumerate(files):
        encode_store(source, tmp_path / f"s{t}", "grs:4,2:8,2", stripe_size=STRIPE)
        stores.append(tmp_path / f"s{t}")
    convert_stores(stores, tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["members"][0]["file_name"] = name
    path.write_text(json.dumps(manifest))
    (tmp_path / "out").mkdir()
    for command in (["verify"], ["decode", "--out", str(tmp_path / "out")]):
        result = _ec(*command, str(tmp_path / "m"))
        assert result.returncode == 2 and "file_name" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "escape.bin").exists()


def test_target_chosen_at_run_time_and_chained_on_stores(tmp_path, monkeypatch):
    sizes = [6 * STRIPE * 3] * 4  # 3 full stripes per file: every shard is 3 KiB
    files = _files(tmp_path, sizes)
    stores = []
    for t, source in enumerate(files):  # encoded naming another target: the run chooses
        encode_store(source, tmp_path / f"s{t}", "grs:6,3:18,3", stripe_size=STRIPE)
        stores.append(tmp_path / f"s{t}")
    shard = 3 * STRIPE
    counter = PreadvCounter(monkeypatch)
    first = [tmp_path / "m01", tmp_path / "m23"]
    for pair, out in zip((stores[:2], stores[2:]), first, strict=True):
        before = counter.bytes
        convert_stores(pair, out, to="rs:12,3")
        assert counter.bytes - before == 2 * 3 * shard  # bound: r_F = 3 parities per codeword
    with pytest.raises(ParameterError, match="--to"):
        convert_stores(first, tmp_path / "m", to=None)  # a merged store has no recorded target
    before = counter.bytes
    report = convert_stores(first, tmp_path / "m", to="rs:24,3", retire=True)
    assert counter.bytes - before == 2 * 3 * shard == report.bytes_read
    assert not (first[0] / "convertible.json").exists()  # retired after the commit
    final = tmp_path / "m"
    outs = decode_any(final, tmp_path / "back")
    assert [_sha(p) for p in outs] == [_sha(f) for f in files]
    for i in (0, 13, 25):  # any 3 of the 27 shards may go
        (final / ec_store.shard_relpath(i)).unlink()
    every = _ec("decode", str(final), "--out", str(tmp_path / "ec-back"))
    assert every.returncode == 0, every.stderr
    assert [_sha(tmp_path / "ec-back" / f.name) for f in files] == [_sha(f) for f in files]


def test_chained_merge_of_unequal_files_recovers_every_byte(tmp_path):
    files = _files(tmp_path, [5_000, 18_000, 700, 12_345], seed=9)
    stores = []
    for t, source in enumerate(files):
        encode_store(source, tmp_path / f"s{t}", "grs:6,3:12,3", stripe_size=STRIPE)
        stores.append(tmp_path / f"s{t}")
    convert_stores(stores[:2], tmp_path / "a")
    convert_stores(stores[2:], tmp_path / "b")
    convert_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "m", to="rs:24,3")
    assert _ec("verify", str(tmp_path / "m")).returncode == 0
    (tmp_path / "m" / ec_store.shard_relpath(13)).unlink()  # file2's only data shard with bytes
    outs = decode_any(tmp_path / "m", tmp_path / "back")
    assert [_sha(p) for p in outs] == [_sha(f) for f in files]
