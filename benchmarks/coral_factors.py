"""Attribute the gap between our Homo/Coral ratios and the paper's, one data factor at a time.

Starting from the data of issue #21 (instances as sold, GPT-OSS in MXFP4, calibrated performance,
TP and stage-transfer costs), each variant switches ONE factor back to the pre-#21 data, and the
last one switches all six:

* ``old-prices``: a multi-GPU node costs N x the 1-GPU instance of its GPU in that region (where
  one is sold there; H100 and the AWS A100 nodes keep their prices: no 1-GPU instance is sold);
* ``bf16-weights``: GPT-OSS-20B / 120B weigh 2 bytes a parameter (41.8 / 234 GB), not MXFP4;
* ``roofline``: the uncalibrated roofline for every GPU (``perf.model: roofline``);
* ``no-comm``: no TP all-reduce, no stage-to-stage transfer time or NIC cap
  (``perf.communication: false``);
* ``nxgpu-sizes``: every GPU is offered as 1/2/4/8-GPU nodes wherever some size of it is sold;
  a size nobody sells costs N x the GPU's cheapest per-GPU price there, has PCIe, the smallest
  sold size's network, and as many GPUs available as that smallest sold size;
* ``node-local``: pipelines rated node by node, each stage node at its own step and batch (the
  rating before the lockstep fix, ``perf.pipeline_rating: node-local``), which overstates long
  mixed pipelines;
* ``all-old``: all six at once.

Each variant runs Coral and Homo (per-model best single node) through the simulator on the same
trace (seed 0) and prints Homo $/h / Coral $/h (core, extended) and Coral / Homo goodput
(scarce-extended, whose availability is re-derived from the variant's own Coral plan).
Run: ``python benchmarks/coral_factors.py [--scenarios core extended scarce-extended]
[--variants ...] [--max-nodes 3] [--duration 600]``; at Nmax 3 and 600 s it suits a shared
2-core machine (each changed performance factor rebuilds the template library once).
"""

from __future__ import annotations

import argparse
import time
from importlib import resources
from typing import Any

import yaml

from redundancy.coral.compare import SCARCE_HEADROOM, compare, scarce
from redundancy.coral.planner.catalog import default_catalog, load_scenario

PAPER = {"core": 1.62, "extended": 3.14, "scarce-extended": 7.64}
VARIANTS = ("new", "old-prices", "bf16-weights", "roofline", "no-comm", "nxgpu-sizes", "node-local",
            "all-old")  # fmt: skip
SIZES = (1, 2, 4, 8)


def _old_prices(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Multi-GPU instances repriced at N x the same region's 1-GPU instance of their GPU."""
    catalog = default_catalog()
    single: dict[tuple[str, str], float] = {}
    for inst in catalog.instances.values():
        if inst.gpus == 1:
            for region, price in inst.prices.items():
                key = (inst.gpu, region)
                single[key] = min(single.get(key, price), price)
    out = []
    for inst in catalog.instances.values():
        if inst.gpus > 1 and inst.gpu in spec["gpus"]:
            prices = {r: inst.gpus * single.get((inst.gpu, r), p / inst.gpus)
                      for r, p in inst.prices.items()}  # fmt: skip
            out.append(inst.model_dump() | {"prices": prices, "source": "N x 1-GPU"})
    return out


def _nxgpu_sizes(spec: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Invented instances for the sizes nobody sells, and the regions' availability for them."""
    catalog = default_catalog()
    instances, regions = [], []
    for region_name in spec["regions"]:
        sold = catalog.sold(region_name)
        region = catalog.regions[region_name]
        availability = dict(region.availability)
        for gpu in spec["gpus"]:
            have = [sold[f"{gpu}x{n}"] for n in SIZES if f"{gpu}x{n}" in sold]
            if not have:
                continue
            smallest = min(have, key=lambda i: i.gpus)
            per_gpu = min(i.prices[region_name] / i.gpus for i in have)
            gpus_offered = smallest.gpus * availability.get(smallest.config, 0)
            for n in spec.get("gpus_per_node", SIZES):
                if f"{gpu}x{n}" in sold or gpus_offered == 0:
                    continue
                instances.append({
                    "cloud": "invented", "type": f"{gpu}x{n}-{region_name}", "gpu": gpu,
                    "gpus": n, "interconnect": "PCIe" if n > 1 else "-",
                    "network_gbps": smallest.network_gbps,
                    "prices": {region_name: n * per_gpu}, "source": "N x per-GPU price",
                })  # fmt: skip
                availability[f"{gpu}x{n}"] = max(1, gpus_offered // n)
        regions.append({"name": region_name, "availability": availability})
    return instances, regions


def variant_spec(base: str, variant: str) -> dict[str, Any]:
    """The scenario dict of ``base`` (core/extended) with ``variant``'s factor(s) switched."""
    text = resources.files("redundancy.coral").joinpath("data", f"{base}.yaml").read_text()
    spec = yaml.safe_load(text)
    switched = set(VARIANTS[1:-1]) if variant == "all-old" else {variant}
    catalog: dict[str, list[dict[str, Any]]] = {"instances": [], "regions": [], "models": []}
    perf = dict(spec.get("perf", {}))
    if "old-prices" in switched:
        catalog["instances"] += _old_prices(spec)
    if "nxgpu-sizes" in switched:
        invented, regions = _nxgpu_sizes(spec)
        catalog["instances"] += invented
        catalog["regions"] += regions
    if "bf16-weights" in switched:
        models = default_catalog().models
        for name in spec["models"]:
            if models[name].weight_dtype != "bf16":
                catalog["models"].append(
                    models[name].model_dump() | {"weight_gb": None, "weight_dtype": "bf16"}
                )
    if "roofline" in switched:
        perf["model"] = "roofline"
    if "no-comm" in switched:
        perf["communication"] = False
    if "node-local" in switched:
        perf["pipeline_rating"] = "node-local"
    spec["catalog"] = {k: v for k, v in catalog.items() if v}
    spec["perf"] = perf
    return spec


def main() -> None:
    """Run every (scenario, variant) and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", nargs="+", default=["core", "extended", "scarce-extended"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--max-nodes", type=int, default=3)
    parser.add_argument("--duration", type=float, default=600.0)
    args = parser.parse_args()
    print("| scenario | variant | Coral $/h | Homo $/h | Coral tok/s | Homo tok/s | ratio | paper "
          "| wall s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        base = name.removeprefix("scarce-")
        for variant in args.variants:
            start = time.perf_counter()
            spec = variant_spec(base, variant) | {"max_nodes": args.max_nodes}
            scenario = load_scenario(spec)
            if name.startswith("scarce-"):
                scenario = scarce(scenario, SCARCE_HEADROOM[base])
            coral, homo = compare(scenario, ["coral", "homo"], args.duration, seed=0)
            if name.startswith("scarce-"):
                ratio = coral.goodput_tps / max(homo.goodput_tps, 1e-9)
            else:
                ratio = homo.cost_per_hour / coral.cost_per_hour
            wall = time.perf_counter() - start
            print(f"| {name} | {variant} | {coral.cost_per_hour:.2f} | {homo.cost_per_hour:.2f} | "
                  f"{coral.goodput_tps:.0f} | {homo.goodput_tps:.0f} | {ratio:.2f}x | "
                  f"{PAPER[name]:.2f}x | {wall:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
