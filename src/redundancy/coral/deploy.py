"""Deployment artefacts for a plan: one SkyPilot task per pipeline stage plus a launch script.

A replica (an ``Instance``) with S stages runs as ONE ``vllm serve`` over a Ray cluster of S
nodes: ``--pipeline-parallel-size S``, ``--tensor-parallel-size`` = GPUs per node and the layer
split in ``VLLM_PP_LAYER_PARTITION``. Each stage gets its own SkyPilot task (``num_nodes: 1``,
its own instance type and accelerators), so a heterogeneous pipeline launches exactly the
planned nodes; the stage-0 task starts the Ray head and runs ``vllm serve`` once the other
stages have joined, the others join as Ray workers (``launch.sh`` passes the head's IP).

vLLM cannot run (``unsupported``): stages with different GPU counts (one TP size for all stages),
a stage of several data-parallel nodes (one pipeline = one node per stage; that needs a router
across vLLM servers), and prefill/decode disaggregation. Such replicas are refused, naming why.
"""

from __future__ import annotations

import shlex

import yaml

from redundancy.coral.planner.catalog import Scenario
from redundancy.coral.schema import Instance, Plan
from redundancy.errors import ParameterError

RAY_PORT = 6379


def _count(config: str) -> int:
    return int(config.rsplit("x", 1)[1])


def _gpu(config: str) -> str:
    return config.rsplit("x", 1)[0]


def unsupported(instance: Instance) -> list[str]:
    """Why one ``vllm serve`` cannot run this replica (empty when it can)."""
    reasons = []
    for index, stage in enumerate(instance.stages):
        nodes = sum(stage.nodes.values())
        if nodes > 1:
            reasons.append(
                f"stage {index} has {nodes} data-parallel nodes (vLLM runs one node per pipeline "
                "stage; data parallelism inside a stage needs a router across servers)"
            )
    sizes = sorted({_count(n) for s in instance.stages for n in s.nodes})
    if len(sizes) > 1:
        reasons.append(f"stages use different GPU counts {sizes} (vLLM has one TP size for all)")
    if instance.prefill_nodes:
        reasons.append("prefill/decode disaggregation is not a single vLLM pipeline")
    return reasons


def partition(instance: Instance) -> str:
    """``VLLM_PP_LAYER_PARTITION``: layers per stage, in pipeline order."""
    return ",".join(str(s.layer_end - s.layer_start) for s in instance.stages)


def vllm_command(instance: Instance, hf_id: str) -> str:
    """The ``vllm serve`` command line (with its layer-partition environment variable)."""
    tp = _count(next(iter(instance.stages[0].nodes)))
    backend = " --distributed-executor-backend ray" if len(instance.stages) > 1 else ""
    return (
        f"VLLM_PP_LAYER_PARTITION={partition(instance)} vllm serve {shlex.quote(hf_id)} "
        f"--pipeline-parallel-size {len(instance.stages)} --tensor-parallel-size {tp}{backend}"
    )


def _hf_id(instance: Instance, scenario: Scenario) -> str:
    spec = next((m for m in scenario.models if m.name == instance.model), None)
    return spec.hf_id if spec and spec.hf_id else instance.model


def stage_tasks(instance: Instance, name: str, scenario: Scenario) -> list[dict]:
    """One SkyPilot task per stage of a replica vLLM can run; ParameterError naming the reason
    when it cannot."""
    reasons = unsupported(instance)
    if reasons:
        raise ParameterError(f"replica {name} ({instance.template}) cannot be deployed with vLLM: "
                             + "; ".join(reasons))  # fmt: skip
    region = instance.region
    chips = {c.name: c.gpu for c in scenario.configs}
    hf_id = _hf_id(instance, scenario)
    stages = len(instance.stages)
    tasks = []
    for index, stage in enumerate(instance.stages):
        config = next(iter(stage.nodes))
        sold = scenario.instance_type(region, config)
        cloud_region = region.split("-", 1)[1] if region.startswith(sold.cloud + "-") else region
        head = index == 0
        if stages == 1:
            run = vllm_command(instance, hf_id)
        elif head:
            run = (
                f"ray start --head --port {RAY_PORT} && "
                f"python -c 'import ray, time; ray.init(); "
                f"[time.sleep(5) for _ in iter(lambda: len(ray.nodes()) < {stages}, False)]' && "
                + vllm_command(instance, hf_id)
            )
        else:
            run = f"ray start --address $HEAD_IP:{RAY_PORT} --block"
        accelerator = chips[config].sky or _gpu(config)
        tasks.append({
            "name": f"{name}-stage{index}",
            "num_nodes": 1,
            "resources": {
                "cloud": sold.cloud,
                "region": cloud_region,
                "instance_type": sold.type,
                "accelerators": f"{accelerator}:{_count(config)}",
            },
            "envs": {
                "MODEL": hf_id,
                "CORAL_STAGE": index,
                "CORAL_LAYERS": f"{stage.layer_start}-{stage.layer_end}",
                "VLLM_PP_LAYER_PARTITION": partition(instance),
                **({} if head else {"HEAD_IP": ""}),
            },
            "run": run,
        })  # fmt: skip
    return tasks


def deploy_files(instance: Instance, name: str, scenario: Scenario) -> dict[str, str]:
    """File name -> text: ``<name>-stage<s>.yaml`` per stage and ``<name>-launch.sh``.

    Parameters
    ----------
    instance : Instance
        One replica of a plan that ``unsupported`` does not refuse.
    name : str
        Replica name (file and cluster prefix).
    scenario : Scenario
        Where the instance types, regions and the model's Hugging Face id come from.

    Returns
    -------
    dict of str to str
        One SkyPilot task per stage and the launch script.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> from redundancy.coral.planner.plan import plan
    >>> scenario = load_scenario("core").model_copy(update={"max_nodes": 3})
    >>> replica = plan(scenario).instances[0]
    >>> unsupported(replica), sorted(deploy_files(replica, "phi0", scenario))
    ([], ['phi0-launch.sh', 'phi0-stage0.yaml'])
    """
    tasks = stage_tasks(instance, name, scenario)
    files = {f"{t['name']}.yaml": yaml.safe_dump(t, sort_keys=False) for t in tasks}
    lines = ["#!/bin/sh", "set -eu", f"# {instance.model} replica {name}: {instance.template}"]
    lines.append(f"sky launch -y -d -c {tasks[0]['name']} {tasks[0]['name']}.yaml")
    if len(tasks) > 1:
        lines.append(f"HEAD_IP=$(sky status --ip {tasks[0]['name']})")
        for task in tasks[1:]:
            lines.append(f"sky launch -y -d -c {task['name']} --env HEAD_IP=$HEAD_IP "
                         f"{task['name']}.yaml")  # fmt: skip
    files[f"{name}-launch.sh"] = "\n".join(lines) + "\n"
    return files


def explain(result: Plan) -> list[str]:
    """One line per instance: why it is there (what it serves, at what price per req/s).

    What ``redundancy coral explain plan.json`` prints: first one line per model, then one per
    instance (its vLLM pipeline partition or why vLLM cannot run it), then the plan's notes.

    Parameters
    ----------
    result : Plan
        A plan.

    Returns
    -------
    list of str
        The lines, without newlines.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> from redundancy.coral.planner.plan import plan
    >>> result = plan(load_scenario({"models": {"Phi4-14B": 3.0}, "gpus": ["L40S"],
    ...                              "gpus_per_node": [1], "regions": ["aws-us-east-2"]}))
    >>> print("\\n".join(explain(result)[:2]))
    Phi4-14B: 2 replica(s), $3.72/h, 3.00/3 req/s served
      #0 Phi4-14B in aws-us-east-2: Phi4-14B:1*L40Sx1 gives 2.95 req/s for $1.86/h ($0.631 per
      req/s); 1 stage(s): VLLM_PP_LAYER_PARTITION=40, PP 1
    """
    lines = []
    for m in result.models:
        share = f"{m.served_rps:.2f}/{m.demand_rps:g} req/s served"
        lines.append(f"{m.model}: {m.replicas} replica(s), ${m.cost_per_hour:.2f}/h, {share}")
    for i, inst in enumerate(result.instances):
        per = inst.price_per_hour / inst.throughput_rps
        reasons = unsupported(inst)
        how = ("vLLM cannot run it: " + "; ".join(reasons)) if reasons else (
            f"VLLM_PP_LAYER_PARTITION={partition(inst)}, PP {len(inst.stages)}"
        )  # fmt: skip
        lines.append(
            f"  #{i} {inst.model} in {inst.region}: {inst.template} gives "
            f"{inst.throughput_rps:.2f} req/s for ${inst.price_per_hour:.2f}/h (${per:.3f} per "
            f"req/s); {len(inst.stages)} stage(s): {how}"
        )
    for note in result.notes:
        lines.append(f"note: {note}")
    return lines
