"""Synthetic ranking data (no ranking set ships offline) and CSV loading for the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redundancy.errors import ParameterError, check_range


def make_ranking(
    n_queries: int = 200, docs_per_query: int = 20, n_features: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, relevance 0..4, group sizes): relevance is a noisy nonlinear function of X, binned."""
    check_range("n_queries", n_queries, 1)
    check_range("docs_per_query", docs_per_query, 1)
    check_range("n_features", n_features, 5)
    rng = np.random.default_rng(seed)
    n = n_queries * docs_per_query
    X = rng.normal(size=(n, n_features))
    query_shift = np.repeat(rng.normal(scale=0.5, size=n_queries), docs_per_query)
    score = (
        np.sin(X[:, 0] * X[:, 1])
        + 0.5 * X[:, 2] ** 2
        + np.where(X[:, 3] > 0, X[:, 4], -X[:, 4])
        + query_shift
        + rng.normal(scale=0.5, size=n)
    )
    y = np.digitize(score, np.quantile(score, [0.5, 0.75, 0.9, 0.97])).astype(np.float64)
    return X, y, np.full(n_queries, docs_per_query, dtype=np.int64)


def read_csv(
    path: Path, target: str, *, require_target: bool = True
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Numeric CSV with a header row -> (X, y, feature names); ``target`` names the y column.

    With ``require_target=False`` a CSV without the ``target`` column gives ``y = None``.
    ``path`` ``-`` reads the CSV from stdin.

    Raises
    ------
    ParameterError
        The file cannot be read, is not a numeric table with a header, or lacks ``target``.
    """
    import csv
    import io
    import sys

    try:
        if str(path) == "-":
            rows = list(csv.reader(io.StringIO(sys.stdin.read(), newline="")))
        else:
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = getattr(exc, "strerror", None) or "not a CSV text file"
        raise ParameterError(f"cannot read {path}: {reason}") from None
    if len(rows) < 2:
        raise ParameterError(f"{path} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if target not in header and require_target:
        raise ParameterError(f"--target {target!r} is not a column of {path} (columns: {header})")
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=np.float64)
    except ValueError as exc:
        raise ParameterError(f"{path} must contain only numbers below the header: {exc}") from exc
    if data.ndim != 2 or data.shape[1] != len(header):
        raise ParameterError(f"{path}: every row must have {len(header)} values")
    if target not in header:
        return data, None, header
    j = header.index(target)
    return np.delete(data, j, axis=1), data[:, j], [h for i, h in enumerate(header) if i != j]
