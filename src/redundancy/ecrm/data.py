"""Criteo-style data: a synthetic generator with a fixed random teacher, and a text-format loader.

Both give random access ``batch(step) -> (dense, sparse, labels)`` so that the checkpoint baseline
redoes exactly the lost iterations after a restore.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import torch

from redundancy.ecrm.config import DataConfig
from redundancy.errors import ConfigError, ParameterError
from redundancy.storage_io import atomic_open

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _hash_unit(idx: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random value in [-1, 1) per (index, salt), with no table to store."""
    h = idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt * 0xBF58476D + 1)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(29)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0


class SyntheticCriteo:
    """Zipf-distributed indices per table; labels ~ Bernoulli(sigmoid(teacher logit)).

    The teacher is fixed by the seed: a linear function of the dense features plus one weight per
    (table, index), so the DLRM can learn it and the loss falls measurably. ``batch(step)`` is
    deterministic in the seed and the step.

    Parameters
    ----------
    table_rows : list of int
        Rows of each embedding table.
    dense_features : int
        Dense features per sample.
    cfg : DataConfig
        Batch size, Zipf exponent, teacher scale and seed.

    Examples
    --------
    >>> source = SyntheticCriteo([100] * 26, 13, DataConfig(batch_size=4))
    >>> dense, sparse, labels = source.batch(0)
    >>> tuple(dense.shape), tuple(sparse.shape), tuple(labels.shape)
    ((4, 13), (4, 26), (4,))
    >>> torch.equal(source.batch(0)[1], sparse)  # random access: the same batch again
    True
    """

    def __init__(self, table_rows: list[int], dense_features: int, cfg: DataConfig) -> None:
        self.table_rows, self.dense_features, self.cfg = list(table_rows), dense_features, cfg
        rng = np.random.default_rng(cfg.seed)
        self.w_dense = rng.normal(size=dense_features) / np.sqrt(dense_features)
        self.mult = []
        for n in self.table_rows:
            m = int(rng.integers(1, max(n, 2))) | 1
            while gcd(m, n) != 1:
                m += 2
            self.mult.append(m)
        self.shift = [int(rng.integers(0, n)) for n in self.table_rows]

    def teacher_logit(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        """The fixed teacher's logit for a batch."""
        t = len(self.table_rows)
        emb = sum(_hash_unit(sparse[:, i], i + 1) for i in range(t)) * np.sqrt(3.0 / t)
        return self.cfg.teacher_scale * (dense @ self.w_dense + emb)

    def batch(self, step: int) -> Batch:
        """The batch of training step ``step`` (deterministic in seed and step)."""
        rng = np.random.default_rng([self.cfg.seed, step])
        b = self.cfg.batch_size
        dense = rng.normal(size=(b, self.dense_features))
        cols = []
        for n, m, s in zip(self.table_rows, self.mult, self.shift, strict=True):
            z = (rng.zipf(self.cfg.zipf_a, size=b) - 1) % n
            cols.append((z * m + s) % n)
        sparse = np.stack(cols, axis=1).astype(np.int64)
        p = 1.0 / (1.0 + np.exp(-self.teacher_logit(dense, sparse)))
        labels = (rng.random(b) < p).astype(np.float32)
        return (
            torch.from_numpy(dense.astype(np.float32)),
            torch.from_numpy(sparse),
            torch.from_numpy(labels),
        )


def write_criteo_text(path: Path, source: SyntheticCriteo, steps: int) -> int:
    """Write ``steps`` synthetic batches in Criteo Kaggle/Terabyte text format (atomically).

    Each line: label, 13 integer features, 26 categorical features as 8-digit hex, tab-separated
    (empty fields where Criteo has missing values: dense 0 and every 7th categorical of row 0).

    Parameters
    ----------
    path : Path
        The text file to write.
    source : SyntheticCriteo
        Where the batches come from (13 dense features, 26 tables, as Criteo).
    steps : int
        Batches to write.

    Returns
    -------
    int
        Lines written (steps times the batch size).

    Raises
    ------
    OSError
        If the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "day_0.txt"
    >>> write_criteo_text(path, SyntheticCriteo([100] * 26, 13, DataConfig(batch_size=4)), 2)
    8
    >>> len(path.read_text().splitlines()[0].split(chr(9)))  # tabs: label, 13 dense, 26 categorical
    40
    >>> path.unlink(); path.parent.rmdir()
    """
    lines = 0
    with atomic_open(Path(path)) as handle:
        for step in range(steps):
            dense, sparse, labels = source.batch(step)
            ints = np.floor(np.expm1(np.abs(dense.numpy()) * 2.0)).astype(np.int64)
            for i in range(len(labels)):
                d = ["" if (i == 0 and c == 0) else str(v) for c, v in enumerate(ints[i])]
                s = ["" if (i == 0 and c % 7 == 0) else f"{v:08x}" for c, v in enumerate(sparse[i])]
                handle.write(("\t".join([str(int(labels[i])), *d, *s]) + "\n").encode())
                lines += 1
    return lines


class CriteoText:
    """Random-access batches from a Criteo text file (Kaggle ``train.txt`` or a Terabyte day).

    Dense features become log(1 + max(x, 0)); a categorical hex value becomes int(hex) mod the
    table's rows; a missing value becomes 0 / index 0. Line offsets are indexed once;
    ``batch(step)`` reads lines [step * B, (step + 1) * B) modulo the file length.

    Parameters
    ----------
    path : Path
        The text file (tab-separated: label, dense features, categorical features in hex).
    table_rows : list of int
        Rows of each embedding table, one per categorical feature.
    batch_size : int
        Lines per batch.
    dense : int, default 13
        Dense features per line.

    Raises
    ------
    ParameterError
        If ``batch_size < 1``.
    ConfigError
        If the file cannot be read or has no complete line; from ``batch`` for a malformed
        line (naming it).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "day_0.txt"
    >>> source = SyntheticCriteo([100] * 26, 13, DataConfig(batch_size=4))
    >>> _ = write_criteo_text(path, source, steps=2)
    >>> criteo = CriteoText(path, [100] * 26, batch_size=4)
    >>> dense, sparse, labels = criteo.batch(0)
    >>> len(criteo), tuple(sparse.shape), labels.tolist() == source.batch(0)[2].tolist()
    (8, (4, 26), True)
    >>> path.unlink(); path.parent.rmdir()
    """

    def __init__(self, path: Path, table_rows: list[int], batch_size: int, dense: int = 13):
        self.path, self.table_rows = Path(path), list(table_rows)
        self.batch_size, self.dense = batch_size, dense
        if batch_size < 1:
            raise ParameterError(f"batch_size={batch_size} must be >= 1")
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read Criteo file {path}: {exc.strerror}") from None
        ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord("\n"))
        self.offsets = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else np.zeros(0, int)
        if len(self.offsets) == 0:
            raise ConfigError(f"Criteo file {path} has no complete lines")

    def __len__(self) -> int:
        return len(self.offsets)

    def parse(self, line: str, lineno: int) -> tuple[float, list[float], list[int]]:
        """One line -> (label, dense, sparse); ConfigError naming the line if malformed."""
        f = line.rstrip("\n").split("\t")
        want = 1 + self.dense + len(self.table_rows)
        if len(f) != want:
            raise ConfigError(f"{self.path}:{lineno}: {len(f)} fields, expected {want}")
        try:
            label = float(int(f[0]))
            dense = [float(np.log1p(max(int(v), 0))) if v else 0.0 for v in f[1 : 1 + self.dense]]
            cats = f[1 + self.dense :]
            sparse = [
                int(v, 16) % n if v else 0 for v, n in zip(cats, self.table_rows, strict=True)
            ]
        except ValueError as exc:
            raise ConfigError(f"{self.path}:{lineno}: {exc}") from None
        return label, dense, sparse

    def batch(self, step: int) -> Batch:
        """Lines [step * B, (step + 1) * B) modulo the file length."""
        n = len(self.offsets)
        idx = [(step * self.batch_size + i) % n for i in range(self.batch_size)]
        labels, dense, sparse = [], [], []
        with self.path.open("rb") as handle:
            for i in idx:
                handle.seek(int(self.offsets[i]))
                lab, d, s = self.parse(handle.readline().decode(), i + 1)
                labels.append(lab)
                dense.append(d)
                sparse.append(s)
        return (
            torch.tensor(dense, dtype=torch.float32),
            torch.tensor(sparse, dtype=torch.int64),
            torch.tensor(labels, dtype=torch.float32),
        )
