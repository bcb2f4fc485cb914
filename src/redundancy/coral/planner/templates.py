"""Stage 1: the serving-template library (model x node multiset -> best pipeline placement).

For every model, every multiset of node configs with at most ``max_nodes`` nodes and total memory
between the model's weights and ``memory_factor`` x weights is placed for every stage count; the
best stage count is kept (same resources, so the others are dominated). Lossless pruning: a
multiset whose best placement does not beat a split of its nodes into two smaller templates is
dropped (the split serves as much on the same nodes); its placement search starts above the
best split, so most such multisets cost a bound check or one DP. This subsumes dominance: with
V(M) = the best of M's placement and its splits, V grows with M, so a kept template beats every
strict sub-multiset and no kept template's node vector is >= another's with throughput <=
(``prune`` checks dominance directly). The library is cached on disk under a hash of everything
it depends on (models, configs, knobs, profile), not of prices or availability.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cached_property
from importlib import resources
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict

from redundancy.coral.planner.catalog import ModelSpec, Scenario
from redundancy.coral.planner.perf import ProfileTable, operating_tables
from redundancy.coral.planner.placement import in_threads, place_rows
from redundancy.errors import ConfigError
from redundancy.storage_io import atomic_write_bytes


class Stage(BaseModel):
    """One pipeline stage: data-parallel nodes (config -> count) that hold ``layers`` layers."""

    model_config = ConfigDict(frozen=True)
    nodes: dict[str, int]
    layers: int


class Template(BaseModel):
    """A serving template: a model on a node multiset with its best pipeline layout."""

    model_config = ConfigDict(frozen=True)
    model: str
    nodes: dict[str, int]
    stages: list[Stage]
    throughput: float  # requests/s within the SLO

    @cached_property
    def key(self) -> str:
        """Stable id: model plus the node multiset."""
        parts = "+".join(f"{n}*{c}" for c, n in sorted(self.nodes.items()))
        return f"{self.model}:{parts}"


class Library(BaseModel):
    """Templates per model, with the hash of the inputs they were built from."""

    key: str
    templates: dict[str, list[Template]]

    def all(self) -> list[Template]:
        """Every template, model by model."""
        return [t for items in self.templates.values() for t in items]


def multisets(model: ModelSpec, scenario: Scenario, tables: np.ndarray) -> Iterator[np.ndarray]:
    """Per size 1..Nmax, the config-index multisets worth placing: an (n, size) array of sorted
    indices (memory window, useful configs only); ``tables`` from ``perf.operating_tables``.

    A config that cannot hold even one layer adds nothing to any stage, so multisets containing it
    are dominated by the same multiset without it and are skipped (losslessly).
    """
    useful = np.array([ci for ci in range(len(scenario.configs)) if tables[1:, :, ci, 1].max() > 0])
    memory = np.array([c.count * c.gpu.memory_gb * 1e9 for c in scenario.configs])
    low, high = model.weight_bytes, scenario.memory_factor * model.weight_bytes
    for size in range(1, scenario.max_nodes + 1):
        combos = np.array(
            list(combinations_with_replacement(useful.tolist(), size)), dtype=np.int64
        )
        combos = combos.reshape(-1, size)
        total = memory[combos].sum(axis=1)
        yield combos[(low <= total) & (total <= high)]


@njit(cache=True)
def _code(indices: np.ndarray, base: int) -> int:
    """Integer id of a multiset given as sorted config indices (digits index + 1, base ``base``)."""
    code = 0
    for p in range(indices.shape[0]):
        code = code * base + indices[p] + 1
    return code


@njit(cache=True)
def _known(codes: np.ndarray, values: np.ndarray, code: int) -> float:
    at = np.searchsorted(codes, code)
    if at < codes.shape[0] and codes[at] == code:
        return values[at]
    return 0.0  # outside the memory window below: holds nothing


@njit(cache=True, nogil=True)
def _split_range(combos, base, codes, values, out, start, stop):
    """out[i] (i in start..stop-1) = the most two disjoint smaller multisets of ``combos[i]``
    serve together.

    ``codes`` (sorted) / ``values``: V of every smaller multiset in the window, V = the best of its
    own placement and of its splits (0 below the window: such nodes cannot hold the model).
    """
    size = combos.shape[1]
    left = np.empty(size, dtype=np.int64)
    right = np.empty(size, dtype=np.int64)
    for i in range(start, stop):
        row = combos[i]
        for mask in range(1, 2**size - 1):  # a split = which positions go left
            skip = False
            for p in range(1, size):  # equal configs: only a prefix of each run goes left
                if row[p] == row[p - 1] and (mask >> p) & 1 and not (mask >> (p - 1)) & 1:
                    skip = True
                    break
            if skip or not mask & 1:  # position 0 always left: each split once
                continue
            a = b = 0
            for p in range(size):
                if (mask >> p) & 1:
                    left[a] = row[p]
                    a += 1
                else:
                    right[b] = row[p]
                    b += 1
            value = _known(codes, values, _code(left[:a], base))
            value += _known(codes, values, _code(right[:b], base))
            out[i] = max(out[i], value)


def _split_values(
    combos: np.ndarray, base: int, codes: np.ndarray, values: np.ndarray, workers: int = 1
) -> np.ndarray:
    """For each multiset (sorted indices), the most two disjoint smaller ones serve together."""
    out = np.zeros(combos.shape[0])
    in_threads(_split_range, combos.shape[0], workers, combos, base, codes, values, out)
    return out


CHUNK = 8192  # multisets per parallel placement call


def model_templates(
    model: ModelSpec,
    scenario: Scenario,
    workers: int = 1,
    profile: ProfileTable | None = None,
    decompose: bool = True,
) -> list[Template]:
    """Positive-throughput templates of ``model``, placed smallest multisets first.

    With ``decompose``, a multiset is kept only if it beats every split into two smaller
    templates: its placement search starts above the best split (and stops at once when the
    bounds say it cannot beat it). ``workers`` threads share the work.
    """
    tables = operating_tables(model, scenario.configs, scenario.perf, scenario.max_nodes, profile)
    names = [c.name for c in scenario.configs]
    base = len(names) + 1
    if base**scenario.max_nodes >= 2**62:
        raise ConfigError(f"{len(names)} configs x max_nodes {scenario.max_nodes}: too many")
    codes, values = np.zeros(0, dtype=np.int64), np.zeros(0)
    templates = []
    for combos in multisets(model, scenario, tables):
        if not len(combos):
            continue
        floors = (
            _split_values(combos, base, codes, values, workers)
            if decompose
            else np.zeros(len(combos))
        )
        placed = np.zeros(len(combos))
        for at in range(0, len(combos), CHUNK):
            part = slice(at, at + CHUNK)
            rows = np.zeros((len(combos[part]), len(names)), dtype=np.int64)
            np.add.at(rows, (np.arange(len(rows))[:, None], combos[part]), 1)
            placed_rows = place_rows(rows, tables, floors[part], workers)
            best, stages, stage_counts, stage_layers = placed_rows
            placed[part] = best
            for i in np.flatnonzero(stages):
                used = stages[i]
                layout = (stage_counts[i, :used], stage_layers[i, :used])
                templates.append(_template(model.name, names, rows[i], float(best[i]), *layout))
        weights = base ** np.arange(combos.shape[1] - 1, -1, -1, dtype=np.int64)
        codes = np.concatenate([codes, (combos + 1) @ weights])
        values = np.concatenate([values, placed])
        order = np.argsort(codes, kind="stable")
        codes, values = codes[order], values[order]
    return templates


def _template(
    model: str,
    names: list[str],
    row: np.ndarray,
    value: float,
    counts: np.ndarray,
    layers: np.ndarray,
) -> Template:
    """A Template from the placement kernel's arrays (built without re-validation: hot path)."""
    per_stage, held = counts.tolist(), layers.tolist()
    order = sorted(range(len(held)), key=lambda s: (-held[s], per_stage[s]))
    stages = [
        Stage.model_construct(
            nodes={names[c]: n for c, n in enumerate(per_stage[s]) if n}, layers=held[s]
        )
        for s in order
    ]
    nodes = {names[c]: n for c, n in enumerate(row.tolist()) if n}
    return Template.model_construct(model=model, nodes=nodes, stages=stages, throughput=value)


def prune(
    templates: list[Template], configs: list[str], keep: set[str] = frozenset()
) -> list[Template]:
    """Drop templates whose node vector is >= another's while their throughput is <= (lossless).

    Templates named in ``keep`` (e.g. currently running) survive regardless.
    """
    if not templates:
        return []
    index = {c: i for i, c in enumerate(configs)}
    vectors = np.zeros((len(templates), len(configs)), dtype=np.int64)
    for row, template in enumerate(templates):
        for name, n in template.nodes.items():
            vectors[row, index[name]] = n
    order = sorted(
        range(len(templates)), key=lambda i: (-templates[i].throughput, vectors[i].sum(), i)
    )
    frontier: list[int] = []
    kept = []
    for i in order:
        if frontier and np.any(np.all(vectors[frontier] <= vectors[i], axis=1)):
            if templates[i].key in keep:
                kept.append(i)
            continue
        frontier.append(i)
        kept.append(i)
    return [templates[i] for i in sorted(kept, key=lambda i: templates[i].key)]


# Bump when the performance model or the template search changes: old caches are then ignored.
LIBRARY_VERSION = 5
MEMORY_LIBRARIES = 2  # libraries kept in memory per process (most recently used)
_memory: dict[Path, Library] = {}


def default_cache_dir() -> Path:
    """``$REDUNDANCY_CACHE/coral`` or ``~/.cache/redundancy/coral``."""
    root = os.environ.get("REDUNDANCY_CACHE") or Path.home() / ".cache" / "redundancy"
    return Path(root) / "coral"


def cache_path(scenario: Scenario, cache_dir: Path | None = None, pruned: bool = True) -> Path:
    """Where the library of ``scenario`` is cached."""
    key = f"{scenario.template_key()}-v{LIBRARY_VERSION}" + ("" if pruned else "-full")
    return (cache_dir or default_cache_dir()) / f"templates-{key}.json"


def build_library(
    scenario: Scenario,
    *,
    workers: int = 1,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    pruned: bool = True,
    profile: ProfileTable | None = None,
) -> Library:
    """Templates of every model in ``scenario``: from memory, the disk cache, or built and cached.

    Parameters
    ----------
    scenario : Scenario
        Models, node configs and knobs (``max_nodes``, ``memory_factor``, ``perf``).
    workers : int, default 1
        Threads placing multisets.
    cache_dir : Path, optional
        Cache folder (default ``default_cache_dir()``).
    use_cache : bool, default True
        Read and write the disk cache and keep the library in memory.
    pruned : bool, default True
        Keep only templates that beat every split of their nodes (lossless).
    profile : ProfileTable, optional
        Measured per-layer times replacing the performance model where present.

    Returns
    -------
    Library
        Per model, its templates (node multiset, stages with layers, req/s).

    Raises
    ------
    ConfigError
        A corrupt cache file, or too many configs for ``max_nodes``.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> scenario = load_scenario("core").model_copy(update={"max_nodes": 3})
    >>> library = build_library(scenario)  # shipped with the package: no build
    >>> len(library.all())
    167
    >>> sorted(library.templates)
    ['GPT-OSS-20B', 'Phi4-14B', 'Qwen3-32B']
    >>> [(t.nodes, len(t.stages)) for t in library.templates["Qwen3-32B"]][:2]
    [({'L40Sx4': 1}, 1), ({'L40Sx8': 1}, 1)]

    Libraries of the embedded core scenario ship with the package (``coral/data/libraries``,
    written by ``benchmarks/coral_ship_templates.py``, same key): a fresh install's first plan of
    it compiles no kernel. With ``use_cache`` the library is also kept in memory per process
    (keyed by the cache path, so by the same inputs): re-plans in a simulation do not re-read
    it. Treat it as read-only.

    ``pruned=False`` keeps every positive-throughput template (for checking that pruning is
    lossless); ``workers`` > 1 places multisets on that many threads.
    """
    path = cache_path(scenario, cache_dir, pruned)
    if profile:
        path = path.with_name(f"{path.stem}-{profile.digest()}.json")
    if use_cache and path in _memory:
        _memory[path] = _memory.pop(path)  # most recently used last
        return _memory[path]
    shipped = resources.files("redundancy.coral").joinpath("data", "libraries", path.name)
    if use_cache and (path.is_file() or shipped.is_file()):
        source = path if path.is_file() else shipped
        try:
            result = Library.model_validate_json(source.read_text())
        except ValueError as exc:
            raise ConfigError(f"template cache {source} is corrupt ({exc}); delete it") from None
    else:
        library = {}
        for model in scenario.models:
            library[model.name] = model_templates(model, scenario, workers, profile, pruned)
        result = Library(key=path.stem, templates=library)
        if use_cache:
            atomic_write_bytes(path, json.dumps(result.model_dump()).encode())
    if use_cache:
        _memory[path] = result
        while len(_memory) > MEMORY_LIBRARIES:
            del _memory[next(iter(_memory))]
    return result
