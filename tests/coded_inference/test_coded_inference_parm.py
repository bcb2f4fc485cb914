"""ParM end to end on MNIST-5k (quick, seeded): the parity model beats default prediction."""

import pytest
import torch

from redundancy.coded_inference.codes import AdditionEncoder
from redundancy.coded_inference.config import OptimConfig, ParmConfig
from redundancy.coded_inference.data import load_data
from redundancy.coded_inference.evaluation import CodedAccuracy, markdown, write_results
from redundancy.coded_inference.models import build_model
from redundancy.coded_inference.pipeline import load_bundle, run_parm, save_bundle, score
from redundancy.coded_inference.training import train_parity_model
from redundancy.errors import ParameterError

torch.set_num_threads(1)
QUICK = dict(deployed=OptimConfig(epochs=6), parity=OptimConfig(epochs=8), groups_per_epoch=2)


@pytest.fixture(scope="module")
def mnist():
    return load_data()


@pytest.fixture(scope="module")
def parm_k2(mnist):
    torch.manual_seed(0)
    return run_parm(ParmConfig(k=2, **QUICK), data=mnist)


def test_parity_model_beats_default_prediction_by_a_wide_margin(parm_k2):
    parm, cheap, default = parm_k2.results
    assert parm.available >= 0.85
    # stated margin: degraded accuracy at least 5x chance (10 classes) and 35 points above the
    # default-prediction baseline; the deployed model's class is rebuilt in >= 80% of erasures
    assert parm.degraded >= 0.5
    assert parm.degraded >= default.degraded + 0.35
    assert parm.reconstruction >= 0.8
    assert cheap.degraded > default.degraded
    assert parm.overall(0.5) > default.overall(0.5) + 0.15


def test_bundle_round_trip_gives_the_same_scores_and_refuses_another_k(parm_k2, mnist, tmp_path):
    save_bundle(parm_k2, tmp_path / "b.pt")
    code, cheap, config = load_bundle(tmp_path / "b.pt", k=2)
    assert config == parm_k2.config
    assert score(code, cheap, mnist) == parm_k2.results
    with pytest.raises(ParameterError, match="k=2"):
        load_bundle(tmp_path / "b.pt", k=4)
    paths = write_results(parm_k2.results, tmp_path, "t")
    assert all(p.stat().st_size > 0 for p in paths)
    assert "ParM (addition, k=2)" in markdown(parm_k2.results)


def test_checkpoint_resume_continues_where_it_stopped(parm_k2, tmp_path):
    deployed, data = parm_k2.code.deployed, parm_k2.data
    x, x_val = data.x_train[:600], data.x_train[600:800]
    encoder = AdditionEncoder(2, data.input_shape)
    ckpt = tmp_path / "p.ckpt"
    torch.manual_seed(1)
    first = build_model("base-mlp", data.input_shape, 10)
    short = OptimConfig(epochs=2, patience=50)
    train_parity_model(deployed, first, encoder, x, x_val, short, checkpoint=ckpt)
    resumed = train_parity_model(
        deployed,
        first,
        encoder,
        x,
        x_val,
        short.model_copy(update={"epochs": 4}),
        checkpoint=ckpt,
        resume=True,
    )
    assert resumed.resumed_from == 2 and len(resumed.val_score) == 4
    with pytest.raises(ParameterError, match="checkpoint"):
        train_parity_model(
            deployed,
            first,
            AdditionEncoder(3, data.input_shape),
            x,
            x_val,
            short,
            checkpoint=ckpt,
            resume=True,
        )


def test_early_stopping_stops_a_stalled_run(parm_k2):
    deployed, data = parm_k2.code.deployed, parm_k2.data
    frozen = OptimConfig(epochs=30, lr=1e-12, patience=1)  # no progress: stop after 2 epochs
    history = train_parity_model(
        deployed,
        build_model("base-mlp", data.input_shape, 10),
        AdditionEncoder(2, data.input_shape),
        data.x_train[:200],
        data.x_train[200:300],
        frozen,
    )
    assert history.stopped_early and len(history.val_score) < 30


def test_parity_model_for_wrong_image_shape_is_refused(parm_k2):
    with pytest.raises(ParameterError, match="do not fit"):
        train_parity_model(
            parm_k2.code.deployed,
            build_model("base-mlp", (1, 28, 28), 10),
            AdditionEncoder(2, (1, 8, 8)),
            torch.zeros(10, 1, 28, 28),
            torch.zeros(4, 1, 28, 28),
            OptimConfig(epochs=1),
        )


def test_overall_accuracy_is_the_mix_of_available_and_degraded():
    result = CodedAccuracy("m", 0.9, 0.5, 0.6)
    assert result.overall(0.0) == 0.9 and result.overall(1.0) == 0.5
    assert abs(result.overall(0.25) - 0.8) < 1e-12
    with pytest.raises(ParameterError, match="f="):
        result.overall(1.5)
