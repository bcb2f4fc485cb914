"""The calibrated performance model against measured vLLM per-layer times (Helix's artifact):
held-out rows within 15% median error per node and phase, and the planner's own timing functions
reproduce measured rows."""

from pathlib import Path

import numpy as np
import pytest

from redundancy.coral.planner.calibration import (
    NODES,
    load_measurements,
    predict_ms,
    shipped_calibration,
    split,
)
from redundancy.coral.planner.catalog import NodeConfig, PerfParams, default_catalog
from redundancy.coral.planner.perf import (
    LayerShape,
    NodeRates,
    roofline_decode_ms,
    roofline_prefill_ms,
)

PROFILES = Path(__file__).resolve().parents[3] / "shared" / "data" / "helix-profiles" / "llama2_70b"
needs_data = pytest.mark.skipif(not PROFILES.is_dir(), reason="helix-profiles not present")


@needs_data
def test_shipped_calibration_predicts_held_out_rows_within_15_percent():
    """The shipped parameters were fitted on the even rows; the odd rows and the whole 4-GPU T4
    node (a node size the fit never saw) are predicted here."""
    calibration = shipped_calibration()
    _, test = split(load_measurements(PROFILES))
    measured = np.array([r.ms for r in test])
    error = np.abs(
        predict_ms(test, calibration.smooth, calibration.gpus, calibration.links["PCIe"]) / measured
        - 1
    )
    for node in NODES:
        for phase in ("decode", "prefill"):
            mine = [i for i, r in enumerate(test) if r.node == node and r.phase == phase]
            assert np.median(error[mine]) <= 0.15, (node, phase, np.median(error[mine]))


@needs_data
@pytest.mark.parametrize("node", list(NODES))
def test_planner_timing_matches_measured_rows(node):
    """``perf``'s decode/prefill functions (what the planner and simulator use) on LLaMA-2 70B at
    a negligible context reproduce every measured row of ``node``: median error <= 15% per phase
    (all rows, fitted and held out)."""
    rows = [r for r in load_measurements(PROFILES) if r.node == node]
    catalog = default_catalog()
    gpu, count, link = NODES[node]
    config = NodeConfig(gpu=catalog.gpus[gpu], count=count, interconnect=link)
    model = catalog.models["Llama2-70B"]
    for phase in ("decode", "prefill"):
        mine = [r for r in rows if r.phase == phase]
        ours = []
        for row in mine:
            if phase == "decode":
                perf = PerfParams(input_tokens=1, output_tokens=1)
                shape = LayerShape.of(model, perf)
                ours.append(float(roofline_decode_ms(shape, NodeRates.of(config, perf), perf,
                                                     row.tokens)))  # fmt: skip
            else:
                perf = PerfParams(input_tokens=row.tokens, output_tokens=1)
                shape = LayerShape.of(model, perf)
                ours.append(roofline_prefill_ms(shape, NodeRates.of(config, perf), perf))
        error = np.abs(np.array(ours) / np.array([r.ms for r in mine]) - 1)
        assert np.median(error) <= 0.15, (node, phase, np.median(error))
    assert NodeRates.of(config, PerfParams()).source.startswith("calibrated")


def test_unmeasured_gpus_fall_back_to_the_roofline_and_are_flagged():
    catalog = default_catalog()
    l40s = NodeConfig(gpu=catalog.gpus["L40S"], count=1)
    assert NodeRates.of(l40s, PerfParams()).source == "roofline"
    a100 = NodeConfig(gpu=catalog.gpus["A100-80"], count=1)
    assert "A100-40" in NodeRates.of(a100, PerfParams()).source  # same chip, measured
    roof = NodeRates.of(NodeConfig(gpu=catalog.gpus["L4"], count=1), PerfParams(model="roofline"))
    assert roof.source == "roofline"
