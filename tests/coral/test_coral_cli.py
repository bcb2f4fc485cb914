"""`redundancy coral plan` through the real command: bad input is one stderr line and exit 2, a
plan short of demand is exit 1 unless the scarce objective was asked for, and deploy artefacts
launch exactly the planned pipeline (parsed back)."""

import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import toy_spec

REDUNDANCY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "redundancy"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REDUNDANCY), "coral", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def write(tmp_path: Path, spec: dict, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def one_line_error(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"models": {"Toy-A": float("inf"), "Toy-B": 1.0}}, ["Toy-A", "inf", "finite"]),
        ({"models": {"Toy-A": float("nan"), "Toy-B": 1.0}}, ["Toy-A", "nan", "finite"]),
        ({"models": {"Toy-A": -1.0, "Toy-B": 1.0}}, ["Toy-A", "-1.0", ">= 0"]),
        ({"availability_scale": float("inf")}, ["availability_scale", "finite"]),
    ],
)
def test_bad_numbers_are_one_line_exit_2(tmp_path, change, needles):
    spec = toy_spec()
    spec.update(change)
    one_line_error(run("plan", str(write(tmp_path, spec)), cwd=tmp_path), 2, *needles)


def test_availability_key_typo_names_the_allowed_configs(tmp_path):
    spec = toy_spec(availability={"L40sx1": 2, "L4x1": 1})
    line = one_line_error(run("plan", str(write(tmp_path, spec)), cwd=tmp_path), 2, "'L40sx1'")
    assert "L40Sx1" in line and "L4x2" in line  # the allowed names


def test_region_with_empty_availability_is_refused(tmp_path):
    spec = toy_spec()
    spec["catalog"]["regions"][0]["availability"] = {}
    one_line_error(run("plan", str(write(tmp_path, spec)), cwd=tmp_path), 2, "toy-region", "empty")


def test_plan_short_of_demand_exits_1_unless_scarce_objective(tmp_path):
    path = write(tmp_path, toy_spec(demand_a=500.0, availability={"L4x1": 1, "L40Sx1": 1}))
    short = run("plan", str(path), cwd=tmp_path)
    line = one_line_error(short, 1, "serves less than the demand", "Toy-A", "--scarce-objective")
    assert "/500 req/s" in line
    accepted = run("plan", str(path), "--scarce-objective", "goodput", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr


def test_deploy_artefacts_match_the_plan(tmp_path):
    spec = toy_spec(demand_a=2.0, demand_b=1.0, availability={"L4x1": 4, "L40Sx1": 2, "L4x2": 2})
    path = write(tmp_path, spec)
    out, deploy = tmp_path / "plan.json", tmp_path / "sky"
    result = run("plan", str(path), "--out", str(out), "--deploy", str(deploy), cwd=tmp_path)
    from redundancy.coral.deploy import unsupported
    from redundancy.coral.schema import Plan

    plan = Plan.load(out)
    assert plan.instances
    for i, inst in enumerate(plan.instances):
        name = f"{i:03d}-{inst.model.lower()}"
        reasons = unsupported(inst)
        tasks = sorted(deploy.glob(f"{name}-stage*.yaml"))
        if reasons:
            assert not tasks and "cannot run" in result.stderr
            continue
        assert len(tasks) == len(inst.stages)
        start = 0
        for s, (stage, task_path) in enumerate(zip(inst.stages, tasks, strict=True)):
            task = yaml.safe_load(task_path.read_text())
            ((config, n),) = stage.nodes.items()
            gpu, count = config.rsplit("x", 1)
            assert n == 1 and task["num_nodes"] == 1
            assert task["resources"]["accelerators"] == f"{gpu}:{count}"
            assert task["resources"]["instance_type"] == f"{gpu.lower()}-{count}"
            assert (
                task["envs"]["CORAL_LAYERS"]
                == f"{start}-{start + (stage.layer_end - stage.layer_start)}"
            )
            start = stage.layer_end
            partition = ",".join(str(x.layer_end - x.layer_start) for x in inst.stages)
            assert task["envs"]["VLLM_PP_LAYER_PARTITION"] == partition
            if s == 0:
                assert f"--pipeline-parallel-size {len(inst.stages)}" in task["run"]
                assert f"--tensor-parallel-size {count}" in task["run"]
        assert start == sum(x.layer_end - x.layer_start for x in inst.stages)
        assert (deploy / f"{name}-launch.sh").read_text().count("sky launch") == len(inst.stages)


def _instance(stages: list[tuple[dict[str, int], int]]):
    from redundancy.coral.schema import Instance, PlannedStage

    planned, start = [], 0
    for nodes, layers in stages:
        planned.append(PlannedStage(nodes=nodes, layer_start=start, layer_end=start + layers))
        start += layers
    return Instance(model="Toy-A", region="toy-region", template="t", stages=planned,
                    throughput_rps=1.0, price_per_hour=1.0)  # fmt: skip


def test_heterogeneous_pipeline_launches_one_node_per_stage_of_its_type():
    from redundancy.coral.deploy import deploy_files
    from redundancy.coral.planner.catalog import load_scenario

    scenario = load_scenario(toy_spec())
    inst = _instance([({"L40Sx1": 1}, 3), ({"L4x1": 1}, 2), ({"L4x1": 1}, 1)])
    files = deploy_files(inst, "r0", scenario)
    tasks = [yaml.safe_load(files[f"r0-stage{s}.yaml"]) for s in range(3)]
    assert [t["resources"]["instance_type"] for t in tasks] == ["l40s-1", "l4-1", "l4-1"]
    assert [t["resources"]["accelerators"] for t in tasks] == ["L40S:1", "L4:1", "L4:1"]
    assert [t["num_nodes"] for t in tasks] == [1, 1, 1]
    assert [t["envs"]["CORAL_LAYERS"] for t in tasks] == ["0-3", "3-5", "5-6"]
    assert all(t["envs"]["VLLM_PP_LAYER_PARTITION"] == "3,2,1" for t in tasks)
    head = tasks[0]["run"]
    assert "ray start --head" in head and "--pipeline-parallel-size 3" in head
    assert "--tensor-parallel-size 1" in head and "VLLM_PP_LAYER_PARTITION=3,2,1" in head
    assert all("--address $HEAD_IP" in t["run"] for t in tasks[1:])
    launch = files["r0-launch.sh"]
    assert launch.count("sky launch") == 3 and "HEAD_IP=$(sky status --ip r0-stage0)" in launch


@pytest.mark.parametrize(
    ("stages", "reason"),
    [
        ([({"L4x1": 2}, 3), ({"L40Sx1": 1}, 3)], "data-parallel"),
        ([({"L4x2": 1}, 3), ({"L40Sx1": 1}, 3)], "different GPU counts"),
    ],
)
def test_what_vllm_cannot_run_is_refused_with_the_reason(stages, reason):
    from redundancy.coral.deploy import deploy_files
    from redundancy.coral.planner.catalog import load_scenario
    from redundancy.errors import ParameterError

    with pytest.raises(ParameterError, match=reason):
        deploy_files(_instance(stages), "r1", load_scenario(toy_spec()))


def test_vllm_only_plans_deploy_every_replica():
    """With --vllm-only every planned replica is one `vllm serve` pipeline (checked by the
    deploy writer's independent rules) and the plan still meets demand."""
    from redundancy.coral.deploy import unsupported
    from redundancy.coral.planner.catalog import load_scenario
    from redundancy.coral.planner.plan import plan

    scenario = load_scenario("core").model_copy(update={"max_nodes": 3})
    full, runnable = plan(scenario), plan(scenario, vllm_only=True)
    assert any(unsupported(i) for i in full.instances)  # the unrestricted optimum needs them
    assert runnable.instances and not any(unsupported(i) for i in runnable.instances)
    assert all(m.unmet_rps == 0 for m in runnable.models)
    assert runnable.cost_per_hour >= full.cost_per_hour - 1e-9
