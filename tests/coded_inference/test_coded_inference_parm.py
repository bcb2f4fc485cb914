"""ParM end to end on MNIST-5k (quick, seeded): the parity model beats default prediction."""

import pytest
import torch

from redundancy.coded_inference.codes import AdditionEncoder
from redundancy.coded_inference.config import DataConfig, OptimConfig, ParmConfig
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


def _parity_run(digits, epochs, init_seed, *, checkpoint=None, resume=False):
    """Train a small parity model on digits; the parity model's initial weights come from
    ``init_seed`` (so a fresh model only matches a stopped run if the checkpoint is loaded)."""
    torch.manual_seed(0)
    deployed = build_model("linear", digits.input_shape, 10).eval()
    torch.manual_seed(init_seed)
    parity = build_model("base-mlp", digits.input_shape, 10)
    history = train_parity_model(
        deployed,
        parity,
        AdditionEncoder(2, digits.input_shape),
        digits.x_train[:400],
        digits.x_train[400:500],
        OptimConfig(epochs=epochs, patience=50, batch_size=64),
        seed=3,
        checkpoint=checkpoint,
        resume=resume,
    )
    return parity, history


def test_checkpoint_resume_into_a_fresh_model_matches_an_uninterrupted_run(tmp_path):
    digits = load_data(DataConfig(dataset="digits"))
    ckpt = tmp_path / "p.ckpt"
    whole, whole_history = _parity_run(digits, 4, init_seed=1)
    _parity_run(digits, 2, init_seed=1, checkpoint=ckpt)  # stopped after epoch 2
    # a fresh process: a new model with other initial weights, resumed from the file
    resumed, history = _parity_run(digits, 4, init_seed=99, checkpoint=ckpt, resume=True)
    assert history.resumed_from == 2
    assert history.val_score == whole_history.val_score  # the same 4 scores, to the bit
    assert history.train_loss == whole_history.train_loss
    for name, weight in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], weight), name
    with pytest.raises(ParameterError, match="checkpoint"):
        train_parity_model(
            build_model("linear", digits.input_shape, 10),
            build_model("base-mlp", digits.input_shape, 10),
            AdditionEncoder(3, digits.input_shape),
            digits.x_train[:400],
            digits.x_train[400:500],
            OptimConfig(epochs=4),
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
