"""Build the template libraries of the embedded core scenario (Nmax 3, the CLI's default, and the
paper's 6) and write them into ``src/redundancy/coral/data/libraries`` so a fresh install's first
``redundancy coral plan`` loads them instead of compiling the placement kernels.

Run after any change to the performance model, catalog or template search (the file names carry
the same key as the user cache, so stale files are never used, only not found):
``python benchmarks/coral_ship_templates.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.templates import build_library, cache_path

OUT = Path(__file__).resolve().parents[1] / "src" / "redundancy" / "coral" / "data" / "libraries"


def main() -> None:
    """Build and write."""
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("templates-*.json"):
        old.unlink()
    for max_nodes in (3, 6):
        scenario = load_scenario("core").model_copy(update={"max_nodes": max_nodes})
        library = build_library(scenario, use_cache=False)
        path = OUT / cache_path(scenario).name
        path.write_text(json.dumps(library.model_dump(), separators=(",", ":")))
        print(f"core Nmax={max_nodes}: {len(library.all())} templates -> {path}")


if __name__ == "__main__":
    main()
