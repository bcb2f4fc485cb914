"""Selector, profiles, fault injection and the CLI."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from redundancy.abft import protect as protect_module
from redundancy.abft import zoo
from redundancy.abft.bench import time_strategies
from redundancy.abft.gemm import GemmShape
from redundancy.abft.inject import campaign, flip_bit
from redundancy.abft.profile import KNOWN_PROFILES, get_profile, load_profile, measure_profile
from redundancy.abft.protect import protect
from redundancy.abft.selector import plan, predict
from redundancy.abft.timing import LayerTimer, layer_inputs_of, layer_key
from redundancy.errors import ConfigError, ParameterError

T4 = KNOWN_PROFILES["T4"]


class _TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)  # low AI: K = 27, N = 32, huge M
        self.head = nn.Linear(2048, 2048)  # high AI at a large batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x).mean() + self.head(torch.ones(2048, 2048)).mean()


def test_selector_tiled_for_low_ai_global_for_high_ai() -> None:
    plans = {p.name: p for p in plan(_TwoLayers(), torch.randn(1, 3, 128, 128), T4, mode="paper")}
    assert plans["stem"].intensity < T4.ridge() < plans["head"].intensity
    assert plans["stem"].scheme == "tiled"
    assert plans["head"].scheme == "global"
    costed = {p.name: p for p in plan(_TwoLayers(), torch.randn(1, 3, 128, 128), T4, mode="cost")}
    assert costed["stem"].scheme == "tiled"
    # the roofline: global's extra traffic grows like MK + MN + KN, tiled's extra compute like
    # MNK / tile, so global wins once the GEMM is compute bound enough
    big = GemmShape("linear", 2**15, 2**15, 2**15, 1, 2**30, 2**30, 2**30, 4)
    _, overhead = predict(big, T4, "float32", 32)
    assert big.intensity > T4.ridge() and overhead["global"] < overhead["tiled"]


def test_measured_selector_picks_cheapest_scheme_per_layer_from_timing_table() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Linear(16, 4))
    x = torch.randn(3, 8)
    fake = {
        "0": {"none": 1.0, "global": 1.5, "tiled": 1.2},
        "2": {"none": 1.0, "global": 1.1, "tiled": 1.3},
        "3": {"none": 1.0, "global": 2.0, "tiled": 1.9},
    }
    plans = plan(model, x, T4, mode="measured", timings=fake)
    assert {p.name: p.scheme for p in plans} == {"0": "tiled", "2": "global", "3": "tiled"}
    assert plans[1].measured_s == fake["2"]
    # the paper's rule and the roofline ignore the table: tiny layers are all bandwidth bound
    assert {p.scheme for p in plan(model, x, T4, mode="paper", timings=fake)} == {"tiled"}
    with pytest.raises(ParameterError, match="timings"):
        plan(model, x, T4, mode="measured", timings={"0": fake["0"]})
    with pytest.raises(ParameterError, match="mode"):
        plan(model, x, T4, mode="guess")  # type: ignore[arg-type]


def test_layer_timer_times_each_shape_once_and_protect_follows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    x = torch.randn(1, 3, 8, 8)
    timer = LayerTimer(rounds=2, min_sample_s=0.0)
    first = timer.measure(model, x)
    assert set(first) == {"0", "2"} and set(first["0"]) == {"none", "global", "tiled"}
    assert all(v > 0 for t in first.values() for v in t.values())
    assert len(timer.cache) == 2
    assert timer.measure(model, x) == first and len(timer.cache) == 2  # cached, not re-timed
    assert layer_key(model[0], x, 32) != layer_key(model[0], torch.randn(2, 3, 8, 8), 32)
    # the choice itself, on timings we set: per layer the cheaper scheme (layer 0 tiled,
    # layer 2 global), then the fastest end to end of that mix, global-only and tiled-only
    per_layer = {
        "0": {"none": 1, "global": 3, "tiled": 2},
        "2": {"none": 1, "global": 2, "tiled": 3},
    }
    modules = dict(model.named_modules())
    timer.cache = {
        layer_key(modules[name], seen, 32): per_layer[name]
        for name, seen in layer_inputs_of(model, x).items()
    }
    end_to_end: dict[str, float] = {}

    def fake_time_models(models: dict, *_args: object) -> dict[str, list[float]]:
        return {name: [end_to_end[name]] for name in models}

    monkeypatch.setattr(protect_module, "time_models", fake_time_models)
    for fastest, expected in (
        ("mixed", {"0": "tiled", "2": "global"}),
        ("global", {"0": "global", "2": "global"}),
        ("tiled", {"0": "tiled", "2": "tiled"}),
    ):
        end_to_end.clear()
        end_to_end.update({"mixed": 2.0, "global": 2.0, "tiled": 2.0, fastest: 1.0})
        protected = protect(model, T4, x, timer=timer)
        assert protected.schemes() == expected, fastest
        with torch.no_grad():
            assert torch.equal(protected(x), model(x))
    with pytest.raises(ParameterError, match="rounds"):
        LayerTimer(rounds=0)


def test_time_strategies_reports_medians_noise_and_clean_checks() -> None:
    model = zoo.build("dlrm", 0.25)
    t = time_strategies(model, zoo.example_input("dlrm", 2), T4, repeats=3)
    assert set(t.seconds) == {"global", "tiled", "guided", "replication"}
    assert t.unprotected > 0 and t.noise >= 0
    assert t.false_positives == 0 and 0 <= t.max_clean_ratio < 0.1
    with pytest.raises(ParameterError, match="repeats"):
        time_strategies(model, zoo.example_input("dlrm", 2), T4, repeats=0)


def test_guided_protect_uses_plan_and_stays_exact() -> None:
    model = zoo.build("resnet50", 0.25)
    x = zoo.example_input("resnet50", 1, size=32)
    protected = protect(model, T4, x, selector="cost")
    chosen = {p.name: p.scheme for p in protected.plans}
    assert protected.schemes() == chosen
    with torch.no_grad():
        assert torch.equal(protected(x), model(x))
    assert protected.report() == []


def test_profiles_known_measured_and_files(tmp_path: Path) -> None:
    assert get_profile("H100").ridge("float16") == pytest.approx(989e12 / 3350e9)
    measured = measure_profile("cpu", size=64, repeats=1)
    assert measured.bandwidth > 0 and measured.peak("float32") > 0
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(T4.model_dump()))
    assert load_profile(path) == T4
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "bandwidth": -1}')
    with pytest.raises(ConfigError, match=r"bad\.json"):
        load_profile(bad)
    with pytest.raises(ParameterError, match="not known"):
        get_profile("Z80")


def test_flip_bit_roundtrip_and_sign() -> None:
    t = torch.tensor([1.5, -2.0])
    flip_bit(t, 0, 31)
    assert t[0] == -1.5
    flip_bit(t, 0, 31)
    flip_bit(t, 1, 23)
    assert t[1] == -4.0
    with pytest.raises(ParameterError, match="bit"):
        flip_bit(t, 0, 32)
    with pytest.raises(ParameterError, match="index"):
        flip_bit(t, 2, 0)


@pytest.mark.parametrize("strategy", ["global", "tiled"])
def test_high_exponent_flips_in_weights_and_outputs_detected(strategy: str) -> None:
    model = zoo.build("dlrm", 0.25)
    x = zoo.example_input("dlrm", 4)
    protected = protect(model, strategy=strategy)
    for target in ("weight", "output"):
        result = campaign(protected, x, target, bits=[30], trials=15, seed=1)  # type: ignore[arg-type]
        assert result.false_positives == 0
        assert result.total().coverage == 1.0
    layer = protected.layers["2"]
    flip_bit(layer.weight.data, 5, 30)  # |w| < 2: the exponent MSB makes it ~1e38
    protected(x)
    assert [d.layer for d in protected.report()] == ["2"]


def test_activation_flips_are_invisible_to_abft_and_replication_misses_weights() -> None:
    model = zoo.build("dlrm", 0.25)
    x = zoo.example_input("dlrm", 2)
    tiled = campaign(protect(model, strategy="tiled"), x, "activation", [30], trials=10)
    assert tiled.total().detected == 0 and tiled.total().corrupted > 0
    replica = protect(model, strategy="replication")
    assert campaign(replica, x, "weight", [30], trials=10).total().detected == 0
    assert campaign(replica, x, "output", [0, 30], trials=10).total().coverage == 1.0
    with pytest.raises(ParameterError, match="target"):
        campaign(replica, x, "memory", [30])  # type: ignore[arg-type]
