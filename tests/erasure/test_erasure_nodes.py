"""A store spread over several roots: a lost root, a read-only root, a replaced node, URLs, and
hostile manifests that try to direct writes into roots the user never named."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pytest

from redundancy import storage_io
from redundancy.erasure import store
from redundancy.errors import DecodeError, IntegrityError, ParameterError

CLI = [sys.executable, "-m", "redundancy.cli"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True)


def make_file(folder: Path, size: int = 50_000) -> Path:
    source = folder / "f.bin"
    source.write_bytes(np.random.default_rng(7).integers(0, 256, size, np.uint8).tobytes())
    return source


def roots(tmp: Path, count: int) -> list[str]:
    return [str(tmp / f"disk{i}" / "st") for i in range(count)]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_shard_lands_under_its_own_root_and_every_root_opens_the_store(tmp_path):
    source = make_file(tmp_path)
    nodes = roots(tmp_path, 5)
    store.encode_file(source, tmp_path / "st", "rs:3,2", stripe_size=4000, nodes=nodes)
    for i, root in enumerate(nodes):
        assert sorted(p.name for p in Path(root).rglob("*.bin")) == [f"shard-{i:03d}.bin"]
    primary = json.loads((tmp_path / "st" / "manifest.json").read_text())
    assert primary["nodes"] == [f"../disk{i}/st" for i in range(5)]  # relative to its folder
    copy = json.loads((Path(nodes[3]) / "manifest.json").read_text())
    assert copy["nodes"][3] == "." and copy["nodes"][0] == "../../disk0/st"
    for opened in (tmp_path / "st", *nodes):
        out = tmp_path / f"out-{Path(opened).parent.name}.bin"
        store.decode_store(opened, out)
        assert out.read_bytes() == source.read_bytes()


def test_a_whole_root_removed_mid_way_is_named_decoded_around_and_replaced(tmp_path):
    source = make_file(tmp_path)
    nodes = roots(tmp_path, 5)
    store.encode_file(source, tmp_path / "st", "rs:3,2", stripe_size=4000, nodes=nodes)
    lost = Path(nodes[1]).parent
    subprocess.run(["rm", "-rf", str(lost)], check=True)  # the disk fails
    report = store.verify_store(tmp_path / "st")
    assert report.missing_roots == [1] and report.damaged == [1] and report.recoverable
    result = run_cli("ec", "verify", "st", "--json", cwd=tmp_path)
    document = json.loads(result.stdout)
    assert result.returncode == 1 and document["missing_roots"] == [1]
    decoded = run_cli("ec", "decode", "disk4/st", "--out", "back.bin", cwd=tmp_path)
    assert decoded.returncode == 0 and "node 1 root" in decoded.stderr
    assert sha(tmp_path / "back.bin") == sha(source)
    # Repair refuses to recreate the root the manifest names (the user did not name it)...
    refused = run_cli("ec", "repair", "st", cwd=tmp_path)
    assert refused.returncode == 2 and "--replace 1=" in refused.stderr
    assert not lost.exists()
    # ...and rebuilds the node onto a new root when told, updating every manifest copy.
    new_root = tmp_path / "spare" / "st"
    fixed = run_cli("ec", "repair", "st", "--replace", f"1={new_root}", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert (new_root / "node-001" / "shard-001.bin").is_file()
    for opened in (tmp_path / "st", Path(nodes[0]), new_root):
        manifest = json.loads((opened / "manifest.json").read_text())
        resolved = (opened / manifest["nodes"][1]).resolve()
        assert resolved == new_root.resolve()
        assert store.verify_store(opened).healthy
    assert not lost.exists()


def test_a_read_only_root_fails_encode_cleanly_and_a_replace_onto_it_changes_nothing(
    tmp_path, monkeypatch
):
    source = make_file(tmp_path)
    nodes = roots(tmp_path, 5)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    real_mkstemp = storage_io.tempfile.mkstemp

    def refuse_in_locked(*args, **kwargs):  # also when the tests run as root
        if str(kwargs.get("dir", "")).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(kwargs["dir"]))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(storage_io.tempfile, "mkstemp", refuse_in_locked)
    try:
        with pytest.raises(ParameterError, match=r"cannot write .*Permission denied"):
            store.encode_file(
                source, tmp_path / "bad", "rs:3,2", stripe_size=4000, nodes=[*nodes[:4], locked]
            )
        left = [p for p in tmp_path.rglob("*") if p.is_file() and p != source]
        assert left == []  # no shard, no temporary, no manifest anywhere
        store.encode_file(source, tmp_path / "st", "rs:3,2", stripe_size=4000, nodes=nodes)
        before = {p: p.read_bytes() for p in tmp_path.rglob("manifest.json")}
        with pytest.raises(ParameterError, match="Permission denied"):
            store.repair_store(tmp_path / "st", replace={2: str(locked / "st")})
        assert {p: p.read_bytes() for p in tmp_path.rglob("manifest.json")} == before
    finally:
        locked.chmod(0o755)


def test_memory_urls_as_roots_with_a_local_primary(tmp_path):
    source = make_file(tmp_path, 20_000)
    nodes = [f"memory://h20-nodes/d{i}" for i in range(4)]
    fs = fsspec.filesystem("memory")
    try:
        store.encode_file(source, tmp_path / "st", "lrc:2,1,1", stripe_size=3000, nodes=nodes)
        manifest = json.loads((tmp_path / "st" / "manifest.json").read_text())
        assert manifest["nodes"] == nodes  # a URL is recorded as a URL
        fs.rm("/h20-nodes/d0", recursive=True)
        report = store.verify_store(tmp_path / "st")
        assert report.missing_roots == [0] and report.recoverable
        store.decode_store(nodes[2], tmp_path / "out.bin")
        assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
        store.repair_store(tmp_path / "st", replace={0: "memory://h20-nodes/spare"})
        assert store.verify_store(tmp_path / "st").healthy
        assert store.verify_store("memory://h20-nodes/spare").healthy
    finally:
        if fs.exists("/h20-nodes"):
            fs.rm("/h20-nodes", recursive=True)


def test_two_roots_lost_beyond_the_code_is_exit_3_naming_both(tmp_path):
    source = make_file(tmp_path)
    nodes = roots(tmp_path, 5)
    store.encode_file(source, tmp_path / "st", "rs:3,2", stripe_size=4000, nodes=nodes)
    for i in (0, 2, 4):
        subprocess.run(["rm", "-rf", str(Path(nodes[i]).parent)], check=True)
    with pytest.raises(DecodeError, match=r"on node 0 at .*disk0"):
        store.decode_store(tmp_path / "st", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    result = run_cli("ec", "decode", "st", "--out", "o.bin", cwd=tmp_path)
    assert result.returncode == 3 and result.stderr.count("error") == 1


# --------------------------------------------------------------------------- hostile manifests
def hostile(tmp_path: Path, target: Path) -> Path:
    """A store whose manifest records a root the user never named (e.g. a victim folder)."""
    source = make_file(tmp_path)
    nodes = roots(tmp_path, 5)
    store.encode_file(source, tmp_path / "st", "rs:3,2", stripe_size=4000, nodes=nodes)
    path = tmp_path / "st" / "manifest.json"
    document = json.loads(path.read_text())
    document["nodes"][1] = str(target)
    path.write_text(json.dumps(document))
    return tmp_path / "st"


@pytest.mark.parametrize("relative", [False, True])
def test_a_manifest_cannot_direct_repair_into_an_unnamed_root(tmp_path, relative):
    victim = tmp_path / "home" / ".ssh"
    victim.mkdir(parents=True)
    (victim / "authorized_keys").write_text("mine\n")
    recorded = "../home/.ssh" if relative else victim
    st = hostile(tmp_path, recorded)
    result = run_cli("ec", "repair", "st", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "outside the manifest's folder" in result.stderr
    assert sorted(p.name for p in victim.rglob("*")) == ["authorized_keys"]
    with pytest.raises(ParameterError):
        store.repair_store(st, only=[1])
    assert sorted(p.name for p in victim.rglob("*")) == ["authorized_keys"]


def test_a_planted_manifest_in_the_victim_root_with_another_store_id_does_not_open_it(tmp_path):
    victim = tmp_path / "victim"
    st = hostile(tmp_path, victim)
    victim.mkdir()
    planted = json.loads((st / "manifest.json").read_text())
    planted["store_id"] = "0" * 32
    (victim / "manifest.json").write_text(json.dumps(planted))
    with pytest.raises(ParameterError, match="--replace 1="):
        store.repair_store(st)
    assert sorted(p.name for p in victim.rglob("*")) == ["manifest.json"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["nodes"].__setitem__(0, "http://169.254.169.254/latest"), "node 0"),
        (lambda d: d["nodes"].__setitem__(0, "a\nb"), "node 0"),
        (lambda d: d["nodes"].__setitem__(0, "../a/./b"), "node 0"),
        (lambda d: d["shards"][2].__setitem__("node", 9), "shard 2 node 9"),
        (lambda d: d["shards"][2].__setitem__("node", None), "shard 2 node None"),
        (lambda d: d.__setitem__("nodes", []), "nodes"),
        (lambda d: d.__setitem__("store_id", "../x"), "store_id"),
    ],
)
def test_malformed_node_records_are_refused_before_any_read(tmp_path, edit, message):
    st = hostile(tmp_path, tmp_path / "disk1" / "st")
    path = st / "manifest.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(IntegrityError, match=message):
        store.verify_store(st)
    result = run_cli("ec", "decode", "st", "--out", "o.bin", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert not (tmp_path / "o.bin").exists()


def test_cli_encode_with_a_placement_file_and_bad_node_lists(tmp_path):
    make_file(tmp_path)
    (tmp_path / "place.txt").write_text("# one root per line\nd0\nd1  # a comment\nd2\n")
    result = run_cli(
        "ec", "encode", "f.bin", "--code", "rs:4,2", "--nodes-file", "place.txt", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "up to 2 shards share a root" in result.stderr
    assert sorted(p.name for p in (tmp_path / "d1").rglob("*.bin")) == [
        "shard-001.bin",
        "shard-004.bin",
    ]
    twice = run_cli("ec", "encode", "f.bin", "--out", "x", "--nodes", "a,b,a", cwd=tmp_path)
    assert twice.returncode == 2 and "twice" in twice.stderr
    bad = run_cli("ec", "repair", "f.bin.ec", "--replace", "one=/x", cwd=tmp_path)
    assert bad.returncode == 2 and "NODE=ROOT" in bad.stderr
    single = make_file(tmp_path / "s") if (tmp_path / "s").mkdir() is None else None
    store.encode_file(single, tmp_path / "s" / "st", "rs:2,1")
    flat = run_cli("ec", "repair", "s/st", "--replace", "0=elsewhere", cwd=tmp_path)
    assert flat.returncode == 2 and "one root" in flat.stderr


def test_an_inside_root_that_is_a_symlink_leading_out_is_not_writable(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    st = hostile(tmp_path, "inner")  # recorded inside the manifest's folder...
    (st / "inner").symlink_to(victim, target_is_directory=True)  # ...but a link out of it
    with pytest.raises(ParameterError, match="--replace 1="):
        store.repair_store(st)
    assert list(victim.iterdir()) == []
