"""A manifest may carry its code as ``parity_matrix`` (stores of other systems, e.g. convertible
codes): untrusted, so its shape, range and MDS property are checked before anything is read."""

import hashlib
import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redundancy.erasure import store
from redundancy.erasure.manifest import load_manifest
from redundancy.errors import IntegrityError, RedundancyError

CLI = str(Path(sys.executable).with_name("redundancy"))


def _gf_mul(a: int, b: int) -> int:
    """GF(2^8) multiply mod x^8 + x^4 + x^3 + x^2 + 1, written here (independent of gf256)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a = (a << 1) ^ (0x11D if a & 0x80 else 0)
        b >>= 1
    return out


def _gf_inverse(a: int) -> int:
    return next(b for b in range(1, 256) if _gf_mul(a, b) == 1)


# Cauchy matrix 1 / (x_i + y_j) over GF(2^8), x = (1, 2), y = (4, 5, 6): every square submatrix
# of a Cauchy matrix is nonsingular, so [I_3; P] is MDS (inverses by brute force, above).
CAUCHY = [[_gf_inverse(x ^ y) for y in (4, 5, 6)] for x in (1, 2)]


def test_cauchy_table_is_right():
    for i, x in enumerate((1, 2)):
        for j, y in enumerate((4, 5, 6)):
            assert _gf_mul(CAUCHY[i][j], x ^ y) == 1


def _custom_store(tmp: Path) -> tuple[bytes, Path]:
    """A store of 'custom:3,2' encoded here with CAUCHY (shards written by this test)."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 3 * 500, dtype=np.uint8)
    source = tmp / "f.bin"
    source.write_bytes(data.tobytes())
    store.encode_file(source, tmp / "st", "rs:3,2", stripe_size=500)  # layout, then overwrite
    rows = data.reshape(3, 500)
    for j, coefficients in enumerate(CAUCHY):
        parity = np.zeros(500, dtype=np.uint8)
        for i, c in enumerate(coefficients):
            parity ^= np.array([_gf_mul(c, int(v)) for v in rows[i]], dtype=np.uint8)
        (tmp / "st" / store.shard_relpath(3 + j)).write_bytes(parity.tobytes())
    path = tmp / "st" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["code"] = "custom:3,2"
    manifest["parity_matrix"] = CAUCHY
    for j in range(2):
        chunk = (tmp / "st" / store.shard_relpath(3 + j)).read_bytes()
        manifest["shards"][3 + j]["crc32"] = [zlib.crc32(chunk)]
    path.write_text(json.dumps(manifest))
    return source.read_bytes(), tmp / "st"


def _edit(root: Path, change) -> None:
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_parity_matrix_store_decodes_after_losing_any_two_data_shards(tmp_path):
    original, root = _custom_store(tmp_path)
    for lost in ((0, 1), (1, 2), (0, 2)):
        work = tmp_path / f"w{lost[0]}{lost[1]}"
        shutil.copytree(root, work)
        for i in lost:
            (work / store.shard_relpath(i)).unlink()
        result = subprocess.run(
            [CLI, "ec", "decode", str(work), "--out", str(work / "out.bin")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert (
            hashlib.sha256((work / "out.bin").read_bytes()).digest()
            == hashlib.sha256(original).digest()
        )


@pytest.mark.parametrize(
    ("matrix", "words"),
    [
        ([[1, 2, 3]], "rows"),  # 1 row but 2 parity shards listed -> k would be 4 != 3 entries
        ([[1, 2], [3, 4]], "entries"),
        ([[1, 2, 3], [4, 5, 256]], "0..255"),
        ([[1, 2, 3], [4, -1, 6]], "0..255"),
        ([[1, 2, 3], [4, 0, 6]], "not MDS"),
        ([[1, 2, 3], [2, 4, 6]], "not MDS"),  # row 2 = 2 x row 1: every 2x2 minor singular
        ([], "rows"),
    ],
)
def test_bad_parity_matrix_refused_with_exit_2(tmp_path, matrix, words):
    _, root = _custom_store(tmp_path)
    _edit(root, lambda m: m.update(parity_matrix=matrix))
    with pytest.raises(IntegrityError, match="parity_matrix"):
        load_manifest(root)
    for command in ("verify", "repair", "decode"):
        result = subprocess.run([CLI, "ec", command, str(root)], capture_output=True, text=True)
        assert result.returncode == 2, (command, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr


FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
matrices = st.lists(
    st.lists(st.integers(-2, 300) | st.sampled_from([0, 1, *CAUCHY[0], *CAUCHY[1]]), max_size=4),
    max_size=4,
) | st.sampled_from([None, "x", 3, [[1.5, 2, 3], [1, 2, 3]], [["a"]], [[True, 1, 2]]])


@FUZZ
@given(matrix=matrices)
def test_fuzzed_parity_matrix_gives_the_file_or_a_project_error(tmp_path, matrix):
    if not (tmp_path / "p").exists():  # one store per test run, copied for every example
        (tmp_path / "p").mkdir()
        _custom_store(tmp_path / "p")
    original = (tmp_path / "p" / "f.bin").read_bytes()
    pristine = tmp_path / "p" / "st"
    work = tmp_path / "w"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    _edit(work, lambda m: m.update(parity_matrix=matrix))
    out = tmp_path / "out.bin"
    out.unlink(missing_ok=True)
    try:
        store.decode_store(work, out)
    except RedundancyError:
        assert not out.exists()
        return
    assert out.read_bytes() == original
