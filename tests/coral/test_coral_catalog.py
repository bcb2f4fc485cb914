"""Catalogs and scenarios: embedded data loads, user additions work, bad input is named."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import toy_spec
from typer.testing import CliRunner

from redundancy.coral.catalog import default_catalog, load_scenario
from redundancy.coral.cli import app
from redundancy.coral.perf import load_profile, throughput_table
from redundancy.coral.plan import Plan, plan
from redundancy.errors import ConfigError, ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script


def test_embedded_catalog_and_scenarios():
    catalog = default_catalog()
    assert {"H100", "A100", "L40S", "L4", "A10G"} <= set(catalog.gpus)
    assert catalog.models["Qwen3-235B"].slo.decode_ms == 120
    assert len(load_scenario("core").configs) == 12
    extended = load_scenario("extended")
    assert len(extended.configs) == 20 and len(extended.models) == 6
    assert load_scenario("core").template_key() != extended.template_key()


@pytest.mark.parametrize(
    ("change", "error", "named"),
    [
        ({"models": {"NoSuchModel": 1}}, ConfigError, "NoSuchModel"),
        ({"gpus": ["B200"]}, ConfigError, "B200"),
        ({"regions": ["mars-1"]}, ConfigError, "mars-1"),
        ({"models": {"Toy-A": -1.0}}, ParameterError, "demand of Toy-A"),
        ({"gpus_per_node": [3]}, ParameterError, "gpus_per_node"),
        ({"max_nodes": 0}, ConfigError, "max_nodes"),
    ],
)
def test_bad_scenarios_name_the_field(change, error, named):
    with pytest.raises(error, match=named):
        load_scenario(toy_spec(**change))


def test_malformed_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("models: {Phi4-14B: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(path)


def test_slo_tighter_than_any_node_is_named():
    spec = toy_spec()
    spec["catalog"]["models"][0]["slo"] = {"prefill_ms": 1500, "decode_ms": 0.01}
    with pytest.raises(ParameterError, match="SLO of Toy-A"):
        plan(load_scenario(spec))


def test_profile_table_replaces_the_roofline(tmp_path):
    scenario = load_scenario(toy_spec())
    model = scenario.models[0]
    csv = tmp_path / "profile.csv"
    csv.write_text(
        "model,node,batch_size,decode_ms_per_layer,prefill_ms_per_layer\n"
        "Toy-A,L4x1,1,1.0,5.0\nToy-A,L4x1,64,2.0,5.0\n"
    )
    profile = load_profile(csv)
    base = throughput_table(model, scenario.configs, scenario.perf, 2)
    measured = throughput_table(model, scenario.configs, scenario.perf, 2, profile)
    l4 = [c.name for c in scenario.configs].index("L4x1")
    assert not np.allclose(base[:, l4], measured[:, l4])
    others = [i for i in range(len(scenario.configs)) if i != l4]
    assert np.allclose(base[:, others], measured[:, others])
    (tmp_path / "bad.csv").write_text("model,node\nx,y\n")
    with pytest.raises(ConfigError, match="missing column"):
        load_profile(tmp_path / "bad.csv")


def test_throughput_is_monotone_and_memory_bound():
    scenario = load_scenario("core")
    table = throughput_table(scenario.models[2], scenario.configs, scenario.perf, 3)
    assert np.all(np.diff(table[1:, :, 1:], axis=2) <= 1e-12)
    l4 = [c.name for c in scenario.configs].index("L4x1")
    assert table[1, l4, -1] == 0  # 65 GB of Qwen3-32B weights do not fit one 24 GB L4


def test_cli_plan_explain_templates(tmp_path):
    runner = CliRunner()
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", "--out", str(out), "--deploy", str(tmp_path / "sky")])
    assert result.exit_code == 0, result.output
    saved = Plan.load(out)
    assert saved.mode == "min_cost" and all(m.unmet_rps == 0 for m in saved.models)
    assert len(list((tmp_path / "sky").glob("*.yaml"))) == len(saved.instances)
    explained = runner.invoke(app, ["explain", str(out)])
    assert explained.exit_code == 0 and "VLLM_PP_LAYER_PARTITION" in explained.output
    shown = runner.invoke(app, ["templates", "show", "--top", "1"])
    assert shown.exit_code == 0 and "req/s" in shown.output


def test_cli_bad_input_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {Nope: 1}\ngpus: [L4]\nregions: [aws-us-east-2]\n")
    env = {"REDUNDANCY_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for args in (["plan", str(bad)], ["plan", "--max-nodes", "0"]):
        run = subprocess.run([CLI, "coral", *args], capture_output=True, text=True, env=env)
        assert run.returncode == 2, run.stderr
        assert "error" in run.stderr
