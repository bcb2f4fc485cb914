"""Template search: the floor-aware placement, lossless pruning and the allocation's floors."""

from itertools import product

import numpy as np
import pytest
from conftest import toy_spec

from redundancy.coral.planner.allocation import covering_floors
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.placement import best_placement, place_above
from redundancy.coral.planner.templates import build_library, cache_path, prune


@pytest.mark.parametrize("seed", range(8))
def test_place_above_finds_the_best_placement_iff_it_beats_the_floor(seed):
    rng = np.random.default_rng(seed)
    configs, layers = int(rng.integers(1, 4)), int(rng.integers(3, 9))
    tables = np.zeros((4, configs, layers + 1))
    for stages in range(1, 4):  # a tighter per-stage budget never helps
        cut = rng.integers(1, layers + 1, size=configs)
        for c in range(configs):
            tables[stages, c, 1 : cut[c] + 1] = (
                rng.uniform(1, 5) / np.arange(1, cut[c] + 1) / stages
            )
    counts = rng.integers(1, 3, size=configs)
    best = best_placement(counts, tables)
    for floor in (0.0, best.throughput * 0.9, best.throughput, best.throughput * 1.1):
        found = place_above(counts, tables, floor)
        if best.throughput > floor * (1 + 1e-9):
            assert found.throughput == pytest.approx(best.throughput, rel=1e-12)
        else:
            assert found.throughput == 0.0


@pytest.mark.parametrize("max_nodes", [3, 4, 5])
def test_pruned_library_is_a_dominance_free_subset_of_the_full_one(max_nodes):
    scenario = load_scenario(toy_spec(max_nodes=max_nodes))
    rates = {
        t.key: t.throughput for t in build_library(scenario, use_cache=False, pruned=False).all()
    }
    library = build_library(scenario, use_cache=False)
    assert len(library.all()) < len(rates)
    names = [c.name for c in scenario.configs]
    for templates in library.templates.values():
        for template in templates:
            assert template.throughput == pytest.approx(rates[template.key], rel=1e-12)
        assert {t.key for t in prune(templates, names)} == {t.key for t in templates}


@pytest.mark.parametrize("seed", range(6))
def test_covering_floors_never_exceed_the_cheapest_cover_using_each_option(seed):
    rng = np.random.default_rng(seed)
    cost, rate = rng.uniform(1, 5, size=4), rng.uniform(0.5, 3, size=4)
    demand = float(rng.uniform(2, 8))
    floors = covering_floors(cost, rate, demand, steps=64)
    best = np.full(4, np.inf)
    for counts in product(range(8), repeat=4):
        x = np.array(counts)
        if x @ rate >= demand:
            for j in np.flatnonzero(x):
                best[j] = min(best[j], x @ cost)
    assert np.all(floors <= best + 1e-9)
    assert np.all(floors >= cost)


def test_library_is_kept_in_memory_across_replans(tmp_path):
    """A second plan in the same process reuses the library (no disk read), keyed by its inputs:
    availability/demand changes share it, a different Nmax does not."""
    scenario = load_scenario(toy_spec())
    first = build_library(scenario, cache_dir=tmp_path)
    cached = cache_path(scenario, tmp_path)
    assert cached.is_file()
    cached.write_text("not json")  # a disk read would now raise
    changed = scenario.model_copy(update={"demand": {"Toy-A": 5.0, "Toy-B": 0.5}})
    assert build_library(changed, cache_dir=tmp_path) is first
    bigger = scenario.model_copy(update={"max_nodes": 4})
    assert build_library(bigger, cache_dir=tmp_path) is not first
    fresh = build_library(scenario, cache_dir=tmp_path, use_cache=False)
    assert fresh is not first
    assert {t.key: t.throughput for t in fresh.all()} == {t.key: t.throughput for t in first.all()}


def test_shipped_core_library_is_current_and_exact():
    """The core library shipped for a fresh install's first plan (no kernel compile) has the
    current key and equals a fresh build (regenerate: benchmarks/coral_ship_templates.py)."""
    from importlib import resources

    from redundancy.coral.planner.templates import Library, cache_path

    scenario = load_scenario("core").model_copy(update={"max_nodes": 3})
    shipped = resources.files("redundancy.coral").joinpath(
        "data", "libraries", cache_path(scenario).name
    )
    assert shipped.is_file(), "stale shipped library: run benchmarks/coral_ship_templates.py"
    loaded = Library.model_validate_json(shipped.read_text())
    fresh = build_library(scenario, use_cache=False)
    as_set = lambda lib: {(t.key, round(t.throughput, 9)) for t in lib.all()}  # noqa: E731
    assert as_set(loaded) == as_set(fresh)
