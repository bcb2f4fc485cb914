"""Hostile convertible stores: names stay inside, sizes are sane, outputs are never replaced.

Each store kind (merged, split, general, layered LRC) is built small, then its manifest is edited
the way an attacker (or a damaged disk) would, and decode / conversion must refuse with the
project's error before writing anything outside the chosen output.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from redundancy.cli import run as cli_run
from redundancy.convertible.spec import lrc_family_spec, parse_lrc
from redundancy.convertible.stores.decode import decode
from redundancy.convertible.stores.general import GENERAL_NAME
from redundancy.convertible.stores.layered import LAYERED_NAME, encode_layered_store
from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import MERGED_NAME, encode_store
from redundancy.convertible.stores.split import SPLIT_NAME
from redundancy.erasure.codes import parse_code
from redundancy.erasure.store import shard_relpath
from redundancy.errors import IntegrityError, ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))
STRIPE = 256
LRC_SPEC = "lrc-cvt:6,1,3,1:12,2,3,1"


def _files(tmp: Path, sizes: list[int]) -> list[Path]:
    rng = np.random.default_rng(sum(sizes))
    paths = []
    for t, size in enumerate(sizes):
        paths.append(tmp / f"f{t}.bin")
        paths[-1].write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return paths


def merged_store(tmp: Path) -> tuple[Path, list[Path]]:
    """Two (6,4) stores merged into one (10,8) store: `convertible.json`."""
    files = _files(tmp, [1500, 900])
    stores = []
    for t, src in enumerate(files):
        encode_store(src, tmp / f"s{t}", "grs:4,2:8,2", stripe_size=STRIPE)
        stores.append(tmp / f"s{t}")
    convert_stores(stores, tmp / "store")
    return tmp / "store", files


def split_store(tmp: Path) -> tuple[Path, list[Path]]:
    """One (10,8) store split into two (6,4) codewords: `split.json`."""
    (src,) = _files(tmp, [2100])
    encode_store(src, tmp / "s0", "grs:8,2:4,2", stripe_size=STRIPE)
    convert_stores([tmp / "s0"], tmp / "store")
    return tmp / "store", [src]


def general_store(tmp: Path) -> tuple[Path, list[Path]]:
    """Four (5,3) stores converted into three (6,4) codewords, general regime: `general.json`."""
    files = _files(tmp, [700, 650, 600, 500])
    for t, src in enumerate(files):
        encode_store(src, tmp / f"s{t}", "grs:3,2:4,2", stripe_size=STRIPE)
    convert_stores([tmp / f"s{t}" for t in range(4)], tmp / "store")
    return tmp / "store", files


def layered_store(tmp: Path) -> tuple[Path, list[Path]]:
    """Two LRC (6,1,3,1) stores merged into one (12,2,3,1): `layered.json` (stage final)."""
    files = _files(tmp, [1200, 1200])
    for t, src in enumerate(files):
        encode_layered_store(src, tmp / f"s{t}", LRC_SPEC, stripe_size=3 * 64)
    convert_stores([tmp / "s0", tmp / "s1"], tmp / "store")
    return tmp / "store", files


KINDS = {
    MERGED_NAME: merged_store,
    SPLIT_NAME: split_store,
    GENERAL_NAME: general_store,
    LAYERED_NAME: layered_store,
}


def _edit(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _members(document: dict) -> list[dict]:
    return document["members"] if "members" in document else [document["member"]]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --------------------------------------------------------------------------- names and paths
HOSTILE_NAMES = ["../escaped.bin", "sub/escaped.bin", "", "a\x00b", ".", "..", "a\\b"]


@pytest.mark.parametrize("kind", [MERGED_NAME, GENERAL_NAME, LAYERED_NAME])
@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "ABSOLUTE"])
def test_member_file_name_must_be_a_plain_name(tmp_path, kind, name):
    store, _ = KINDS[kind](tmp_path)
    if name == "ABSOLUTE":
        name = str(tmp_path / "absolute.bin")

    def hostile(document: dict) -> None:
        _members(document)[0]["file_name"] = name

    _edit(store / kind, hostile)
    before = _tree(tmp_path)
    (tmp_path / "out").mkdir()
    with pytest.raises(IntegrityError, match="file name"):
        decode(store, tmp_path / "out" / "x")
    assert _tree(tmp_path) == before | {"out"}  # nothing written anywhere


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("path", ["../outside.bin", "/etc/passwd", "node-000/../../x", "a\x00b"])
def test_shard_path_must_stay_inside_the_store(tmp_path, kind, path):
    store, _ = KINDS[kind](tmp_path)
    (tmp_path / "outside.bin").write_bytes(b"\0" * 4096)

    def hostile(document: dict) -> None:
        document["shards"][1]["path"] = path

    _edit(store / kind, hostile)
    with pytest.raises(IntegrityError, match=r"path|inside"):
        decode(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", list(KINDS))
def test_duplicate_shard_paths_refused(tmp_path, kind):
    store, _ = KINDS[kind](tmp_path)

    def duplicate(document: dict) -> None:
        document["shards"][1]["path"] = document["shards"][0]["path"]

    _edit(store / kind, duplicate)
    with pytest.raises(IntegrityError, match="share the path"):
        decode(store, tmp_path / "out")


def test_symlinked_shard_folder_is_neither_read_nor_deleted_by_retire(tmp_path):
    """A shard folder that links out of the store: retire would delete the file it points to."""
    files = _files(tmp_path, [1500, 900])
    for t, src in enumerate(files):
        encode_store(src, tmp_path / f"s{t}", "grs:4,2:8,2", stripe_size=STRIPE)
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "s0" / "node-000").rename(elsewhere)
    (tmp_path / "s0" / "node-000").symlink_to(elsewhere)
    with pytest.raises(IntegrityError, match="outside"):
        convert_stores([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m", retire=True)
    assert (elsewhere / "shard-000.bin").is_file()
    assert not (tmp_path / "m" / MERGED_NAME).exists()


def test_symlinked_node_folder_of_a_layered_store_is_refused(tmp_path):
    store, _ = layered_store(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (store / "node-003").rename(elsewhere)
    (store / "node-003").symlink_to(elsewhere)
    with pytest.raises(IntegrityError, match="outside"):
        decode(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- absurd sizes
def test_absurd_stripe_size_refused_even_when_consistent(tmp_path):
    """One-stripe stores: a huge stripe_size contradicts nothing else, yet must be refused
    before a conversion sizes its buffers by it."""
    files = _files(tmp_path, [600, 600])
    for t, src in enumerate(files):
        encode_layered_store(src, tmp_path / f"s{t}", LRC_SPEC, stripe_size=3 * 64)
        _edit(tmp_path / f"s{t}" / LAYERED_NAME, lambda d: d.update(stripe_size=3 << 40))
    with pytest.raises(IntegrityError, match="stripe_size"):
        convert_stores([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        (MERGED_NAME, "stripe_size", 1 << 50),
        (MERGED_NAME, "stripes", 10**12),
        (SPLIT_NAME, "stripe_size", 1 << 40),
        (GENERAL_NAME, "stripes", 10**9),
        (LAYERED_NAME, "stripe_size", 3 << 40),
        (LAYERED_NAME, "last_chunk", 3 << 40),
    ],
)
def test_absurd_declared_sizes_refused_before_any_write(tmp_path, kind, field, value):
    store, _ = KINDS[kind](tmp_path)

    def absurd(document: dict) -> None:
        document[field] = value

    _edit(store / kind, absurd)
    with pytest.raises(IntegrityError):
        decode(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", [MERGED_NAME, GENERAL_NAME])
def test_member_size_must_match_its_stripes(tmp_path, kind):
    store, _ = KINDS[kind](tmp_path)

    def absurd(document: dict) -> None:
        document["members"][0]["file_size"] = 10**15

    _edit(store / kind, absurd)
    with pytest.raises(IntegrityError, match="stripes"):
        decode(store, tmp_path / "out")


# --------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("kind", list(KINDS))
def test_decode_never_replaces_a_file_without_force_and_uses_the_umask_mode(tmp_path, kind):
    store, files = KINDS[kind](tmp_path)
    out = tmp_path / ("out.bin" if kind == SPLIT_NAME else "out")
    written = decode(store, out)
    assert [p.read_bytes() for p in written] == [f.read_bytes() for f in files]
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in written} == {0o666 & ~umask}
    written[0].write_bytes(b"the user's own file")
    with pytest.raises(ParameterError, match="--force"):
        decode(store, out)
    assert written[0].read_bytes() == b"the user's own file"
    assert decode(store, out, force=True)[0].read_bytes() == files[0].read_bytes()


def test_cli_decode_to_stdout_and_exit_codes(tmp_path):
    (src,) = _files(tmp_path, [3000])
    encode_store(src, tmp_path / "one", "grs:4,2:8,2", stripe_size=STRIPE)
    done = subprocess.run(
        [CLI, "convert", "decode", str(tmp_path / "one"), "-"], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == src.read_bytes()
    assert not (tmp_path / "-").exists()
    (tmp_path / "m").mkdir()
    store, _ = merged_store(tmp_path / "m")
    several = subprocess.run([CLI, "convert", "decode", str(store), "-"], capture_output=True)
    assert several.returncode == 2 and several.stdout == b""
    assert len(several.stderr.decode().strip().splitlines()) == 1
    (store / MERGED_NAME).write_text(
        (store / MERGED_NAME).read_text().replace('"f0.bin"', '"../escaped.bin"')
    )
    hostile = subprocess.run(
        [CLI, "convert", "decode", str(store), str(tmp_path / "o")], capture_output=True, text=True
    )
    assert hostile.returncode == 2, hostile.stderr
    assert len(hostile.stderr.strip().splitlines()) == 1 and "Traceback" not in hostile.stderr
    assert not (tmp_path / "escaped.bin").exists() and not (tmp_path / "o").exists()
    for index in range(10):  # every shard gone: well formed, but not recoverable
        (store / shard_relpath(index)).unlink()
    (store / MERGED_NAME).write_text(
        (store / MERGED_NAME).read_text().replace('"../escaped.bin"', '"f0.bin"')
    )
    assert cli_run(["convert", "decode", str(store), str(tmp_path / "o")]) == 3
    assert not list((tmp_path / "o").glob("*"))


# --------------------------------------------------------------------------- one code grammar
@pytest.mark.parametrize("spec", ["lrc:6,2,1", "lrc:12,2,2", "lrc:12,4,2", "lrc:8,1,3"])
def test_lrc_spec_means_what_ec_means(spec):
    """`lrc:K,L,G` read by convert names the same code shape as erasure's own parser builds."""
    reference = parse_code(spec)  # erasure: K data, L local groups, G global parities
    k, g, r = parse_lrc(spec, "code")
    assert k == reference.k
    assert reference.n - reference.k == len(reference.local_groups) + g
    assert {len(group) - 1 for group in reference.local_groups} == {r}  # data per group


def test_cli_lrc_grammar_shared_with_ec(tmp_path):
    (src,) = _files(tmp_path, [2000])
    code = ["--code", "lrc:6,2,1", "--to", "lrc:12,4,2", "--out", str(tmp_path / "st")]
    done = subprocess.run([CLI, "convert", "encode", str(src), *code], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "st" / LAYERED_NAME).read_text())["code"] == lrc_family_spec(
        "lrc:6,2,1", "lrc:12,4,2"
    )
    old = ["--code", "lrc:6,1,3,1", "--to", "lrc:12,2,3,1", "--out", str(tmp_path / "o")]
    bad = subprocess.run([CLI, "convert", "encode", str(src), *old], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "lrc:K,L,G" in bad.stderr
    costs = subprocess.run(
        [CLI, "convert", "lrc-cost", "--code", "lrc:6,2,1", "--to", "lrc:12,4,2", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    # Hand-computed bound: lam [g_I + (k + l k / r)(g_F - g_I) / (g_F + l)] = 2 [1 + 8/3] = 22/3.
    assert json.loads(costs.stdout)["shard_units_read"]["lrc_bound"] == "7 1/3"
