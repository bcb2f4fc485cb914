"""Deployment artefacts for a plan: ``vllm serve`` commands and SkyPilot task YAML per instance.

vLLM runs one model per server with ``--pipeline-parallel-size S`` and the layer split in
``VLLM_PP_LAYER_PARTITION``; it assumes one tensor-parallel size for all stages and one node per
stage, so stages with several data-parallel nodes or mixed GPU counts are flagged in the YAML.
"""

from __future__ import annotations

import yaml

from redundancy.coral.catalog import Catalog, default_catalog
from redundancy.coral.plan import Instance, Plan


def _tp_size(instance: Instance) -> int:
    return min(int(name.rsplit("x", 1)[1]) for s in instance.stages for name in s.nodes)


def _hf_id(model: str, catalog: Catalog) -> str:
    spec = catalog.models.get(model)
    return spec.hf_id if spec and spec.hf_id else model


def vllm_command(instance: Instance, catalog: Catalog | None = None) -> str:
    """The ``vllm serve`` command line (with its layer-partition environment variable)."""
    catalog = catalog or default_catalog()
    partition = ",".join(str(s.layer_end - s.layer_start) for s in instance.stages)
    return (
        f'VLLM_PP_LAYER_PARTITION="{partition}" vllm serve {_hf_id(instance.model, catalog)} '
        f"--pipeline-parallel-size {len(instance.stages)} "
        f"--tensor-parallel-size {_tp_size(instance)}"
    )


def unsupported(instance: Instance) -> list[str]:
    """What this instance needs that one ``vllm serve`` cannot express."""
    notes = []
    for index, stage in enumerate(instance.stages):
        if sum(stage.nodes.values()) > 1:
            notes.append(f"stage {index}: {sum(stage.nodes.values())} data-parallel nodes (router)")
    sizes = {int(n.rsplit("x", 1)[1]) for s in instance.stages for n in s.nodes}
    if len(sizes) > 1:
        notes.append(f"stages use different GPU counts {sorted(sizes)} (per-stage TP size)")
    return notes


def skypilot_task(instance: Instance, name: str, catalog: Catalog | None = None) -> str:
    """A SkyPilot task YAML launching this instance's nodes in its region."""
    accelerators = sorted({n for s in instance.stages for n in s.nodes})
    task = {
        "name": name,
        "num_nodes": sum(sum(s.nodes.values()) for s in instance.stages),
        "resources": {
            "region": instance.region.split("-", 1)[1],
            "cloud": instance.region.split("-", 1)[0],
            "any_of": [{"accelerators": a.replace("x", ":")} for a in accelerators],
        },
        "envs": {
            "MODEL": _hf_id(instance.model, catalog or default_catalog()),
            "VLLM_PP_LAYER_PARTITION": ",".join(
                str(s.layer_end - s.layer_start) for s in instance.stages
            ),
        },
        "run": vllm_command(instance, catalog),
    }
    notes = unsupported(instance)
    if notes:
        task["coral_unsupported_by_vllm"] = notes
    return yaml.safe_dump(task, sort_keys=False)


def explain(result: Plan) -> list[str]:
    """One line per instance: why it is there (what it serves, at what price per req/s)."""
    lines = []
    for m in result.models:
        share = f"{m.served_rps:.2f}/{m.demand_rps:g} req/s served"
        lines.append(f"{m.model}: {m.replicas} replica(s), ${m.cost_per_hour:.2f}/h, {share}")
    for i, inst in enumerate(result.instances):
        per = inst.price_per_hour / inst.throughput_rps
        lines.append(
            f"  #{i} {inst.model} in {inst.region}: {inst.template} gives "
            f"{inst.throughput_rps:.2f} req/s for ${inst.price_per_hour:.2f}/h (${per:.3f} per "
            f"req/s); {len(inst.stages)} stage(s): {vllm_command(inst)}"
        )
    return lines
