"""Stage 1: the serving-template library (model x node multiset -> best pipeline placement).

For every model, every multiset of node configs with at most ``max_nodes`` nodes and total memory
between the model's weights and ``memory_factor`` x weights is placed for every stage count; the
best stage count is kept (same resources, so the others are dominated). Two lossless prunings
follow: a multiset whose best placement does not beat a split of its nodes into two smaller
templates is dropped (the split serves as much on the same nodes), and so is a template whose node
vector is >= another's while its throughput is <=. The library is cached on disk under a hash of
everything it depends on (models, configs, knobs, profile), not of prices or availability.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations_with_replacement, product
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from redundancy.coral.catalog import ModelSpec, Scenario
from redundancy.coral.perf import ProfileTable, throughput_table
from redundancy.coral.placement import Placement, best_placement
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

    @property
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


def multisets(
    model: ModelSpec, scenario: Scenario, tables: np.ndarray
) -> Iterator[tuple[int, ...]]:
    """Config-index multisets worth placing, smallest first (memory window, useful configs only).

    A config that cannot hold even one layer adds nothing to any stage, so multisets containing it
    are dominated by the same multiset without it and are skipped (losslessly).
    """
    useful = [ci for ci in range(len(scenario.configs)) if tables[1:, ci, 1].max() > 0]
    memory = {
        ci: scenario.configs[ci].count * scenario.configs[ci].gpu.memory_gb * 1e9 for ci in useful
    }
    low, high = model.weight_bytes, scenario.memory_factor * model.weight_bytes
    for size in range(1, scenario.max_nodes + 1):
        for combo in combinations_with_replacement(useful, size):
            if low <= sum(memory[ci] for ci in combo) <= high:
                yield combo


def _split_value(combo: tuple[int, ...], best: dict[tuple[int, ...], float]) -> float:
    """Most throughput two disjoint smaller templates reach on ``combo``'s nodes (0 if none)."""
    distinct = sorted(set(combo))
    counts = [combo.count(ci) for ci in distinct]
    value = 0.0
    for part in product(*(range(n + 1) for n in counts)):
        rest = tuple(n - p for n, p in zip(counts, part, strict=True))
        if not any(part) or not any(rest) or part > rest:
            continue
        left = tuple(ci for ci, n in zip(distinct, part, strict=True) for _ in range(n))
        right = tuple(ci for ci, n in zip(distinct, rest, strict=True) for _ in range(n))
        value = max(value, best.get(left, 0.0) + best.get(right, 0.0))
    return value


def _capacity(tables: np.ndarray) -> np.ndarray:
    """cap[S, c] = max_j j * T_hat_j(c, S) / L; L * T <= sum of the nodes' cap bounds any T."""
    layers = tables.shape[2] - 1
    return (np.arange(layers + 1) * tables).max(axis=2) / layers


_WORKER: dict[str, np.ndarray] = {}


def _init_worker(tables: np.ndarray) -> None:
    _WORKER["tables"] = tables


def _place_chunk(chunk: list[tuple[int, ...]]) -> list[tuple[tuple[int, ...], Placement]]:
    tables = _WORKER["tables"]
    out = []
    for combo in chunk:
        distinct = sorted(set(combo))
        counts = [combo.count(ci) for ci in distinct]
        out.append((combo, best_placement(counts, tables[:, distinct, :])))
    return out


def _place_all(
    combos: list[tuple[int, ...]], pool: ProcessPoolExecutor | None
) -> list[tuple[tuple[int, ...], Placement]]:
    chunks = [combos[i : i + 256] for i in range(0, len(combos), 256)]
    parts = pool.map(_place_chunk, chunks) if pool else map(_place_chunk, chunks)
    return [r for part in parts for r in part]


def model_templates(
    model: ModelSpec,
    scenario: Scenario,
    workers: int = 1,
    profile: ProfileTable | None = None,
    decompose: bool = True,
) -> list[Template]:
    """Positive-throughput templates of ``model``, placed smallest multisets first.

    With ``decompose``, a multiset is kept only if it beats every split into two smaller templates,
    and is not even placed when the capacity bound says it cannot.
    """
    tables = throughput_table(model, scenario.configs, scenario.perf, scenario.max_nodes, profile)
    capacity = _capacity(tables)
    names = [c.name for c in scenario.configs]
    by_size: dict[int, list[tuple[int, ...]]] = {}
    for combo in multisets(model, scenario, tables):
        by_size.setdefault(len(combo), []).append(combo)
    best: dict[tuple[int, ...], float] = {}
    templates = []
    _init_worker(tables)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(tables,))
    try:
        for size in sorted(by_size):
            split = {c: _split_value(c, best) if decompose else 0.0 for c in by_size[size]}
            todo = [
                c
                for c in by_size[size]
                if not decompose or capacity[1 : size + 1, list(c)].sum(axis=1).max() > split[c]
            ]
            best.update(split)
            for combo, placement in _place_all(todo, pool):
                if placement.throughput > split[combo]:
                    best[combo] = placement.throughput
                    templates.append(_template(model.name, names, combo, placement))
    finally:
        if pool:
            pool.shutdown()
    return templates


def _template(model: str, names: list[str], combo: tuple[int, ...], placement: Placement):
    distinct = sorted(set(combo))
    stages = [
        Stage(nodes={names[distinct[i]]: n for i, n in enumerate(counts) if n}, layers=j)
        for counts, j in zip(placement.stage_counts, placement.stage_layers, strict=True)
    ]
    nodes = {names[ci]: combo.count(ci) for ci in distinct}
    return Template(model=model, nodes=nodes, stages=stages, throughput=placement.throughput)


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
LIBRARY_VERSION = 2


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
    """Templates of every model in ``scenario``: read from the cache, or built and then cached.

    ``pruned=False`` keeps every positive-throughput template (for checking that pruning is
    lossless); ``workers`` > 1 places multisets in that many processes.
    """
    path = cache_path(scenario, cache_dir, pruned)
    if profile:
        path = path.with_name(f"{path.stem}-{profile.digest()}.json")
    key = path.stem
    if use_cache and path.is_file():
        try:
            return Library.model_validate_json(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"template cache {path} is corrupt ({exc}); delete it") from None
    names = [c.name for c in scenario.configs]
    library = {}
    for model in scenario.models:
        items = model_templates(model, scenario, workers, profile, decompose=pruned)
        library[model.name] = prune(items, names) if pruned else items
    result = Library(key=key, templates=library)
    if use_cache:
        atomic_write_bytes(path, json.dumps(result.model_dump()).encode())
    return result
