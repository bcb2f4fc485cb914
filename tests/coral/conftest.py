"""Shared fixtures: a private template cache and a tiny two-model scenario."""

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Keep template caches out of the user's home."""
    monkeypatch.setenv("REDUNDANCY_CACHE", str(tmp_path / "cache"))


def toy_spec(demand_a: float = 2.0, demand_b: float = 1.0, availability=None, **extra) -> dict:
    """Two small models on L4/L40S nodes of 1-2 GPUs in one region."""
    availability = availability or {"L4x1": 2, "L40Sx1": 1, "L4x2": 1}
    spec = {
        "name": "toy",
        "models": {"Toy-A": demand_a, "Toy-B": demand_b},
        "gpus": ["L4", "L40S"],
        "gpus_per_node": [1, 2],
        "regions": ["toy-region"],
        "max_nodes": 3,
        "churn_factor": 0.0,
        "catalog": {
            "models": [
                {"name": "Toy-A", "layers": 6, "hidden": 2048, "kv_heads": 4, "head_dim": 64,
                 "params_b": 7, "active_params_b": 7, "slo": {"prefill_ms": 1500, "decode_ms": 80}},
                {"name": "Toy-B", "layers": 4, "hidden": 4096, "kv_heads": 8, "head_dim": 128,
                 "params_b": 12, "active_params_b": 12,
                 "slo": {"prefill_ms": 1500, "decode_ms": 80}},
            ],
            "instances": [
                {"cloud": "toy", "type": f"{gpu.lower()}-{n}", "gpu": gpu, "gpus": n,
                 "interconnect": "PCIe" if n > 1 else "-", "network_gbps": 25,
                 "prices": {"toy-region": n * price}, "source": "test"}
                for gpu, price in (("L4", 0.8), ("L40S", 2.2)) for n in (1, 2)
            ],
            "regions": [{"name": "toy-region", "availability": availability}],
        },
    }  # fmt: skip
    spec.update(extra)
    return spec
