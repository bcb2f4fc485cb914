"""Catalogs and scenarios: embedded data loads, user additions work, bad input is named."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import toy_spec
from typer.testing import CliRunner

from redundancy.coral.cli import app
from redundancy.coral.planner.catalog import default_catalog, load_scenario
from redundancy.coral.planner.perf import load_profile, throughput_table
from redundancy.coral.planner.plan import plan
from redundancy.coral.schema import Plan
from redundancy.errors import ConfigError, ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script


def test_embedded_catalog_and_scenarios():
    catalog = default_catalog()
    assert {"H100", "A100-80", "A100-40", "L40S", "L4", "A10G", "V100", "T4"} <= set(catalog.gpus)
    assert catalog.models["Qwen3-235B"].slo.decode_ms == 120
    core = load_scenario("core")
    # AWS sells g5/g6/g6e with 1, 4 or 8 GPUs: no 2-GPU nodes.
    assert sorted(c.name for c in core.configs) == sorted(
        f"{g}x{n}" for g in ("L40S", "L4", "A10G") for n in (1, 4, 8)
    )
    extended = load_scenario("extended")
    names = {c.name for c in extended.configs}
    assert "L4x2" in names and "H100x1" not in names and len(extended.models) == 6
    gcp = next(r for r in extended.regions if r.name == "gcp-us-central1")
    assert not any(extended.offered(gcp, c) for c in extended.configs if c.gpu.name == "L40S")
    assert core.template_key() != extended.template_key()


def test_nodes_are_priced_as_sold_not_n_times_one_gpu():
    core = load_scenario("core")
    ohio = core.regions[0]
    configs = {c.name: c for c in core.configs}
    # AWS list prices (instances.yaml): g6e.xlarge, g6e.12xlarge, g6.48xlarge.
    assert core.price(ohio, configs["L40Sx1"]) == pytest.approx(1.861)
    assert core.price(ohio, configs["L40Sx4"]) == pytest.approx(10.493)
    assert core.price(ohio, configs["L4x8"]) == pytest.approx(13.3504)
    assert core.price(ohio, configs["L4x8"]) > 8 * core.price(ohio, configs["L4x1"]) * 2
    assert configs["L4x8"].interconnect == "PCIe" and configs["L40Sx1"].interconnect == "-"


def test_models_as_shipped():
    models = default_catalog().models
    # GPT-OSS ships MXFP4 experts: 13.8 GB / 65.3 GB of safetensors, not 2 bytes a parameter.
    assert models["GPT-OSS-20B"].weight_bytes == pytest.approx(13.8e9)
    assert models["GPT-OSS-120B"].weight_bytes == pytest.approx(65.3e9)
    assert models["Qwen3-32B"].weight_bytes == pytest.approx(65.6e9)
    # K and V, kv_heads x head_dim each, BF16: Llama-3-70B 8 x 128 x 2 x 2 bytes per layer.
    assert models["Llama3-70B"].kv_bytes_per_token == 4096


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
    result = runner.invoke(app, ["plan", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = Plan.load(out)
    assert saved.mode == "min_cost" and all(m.unmet_rps == 0 for m in saved.models)
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
