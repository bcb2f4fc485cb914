"""Learned codes on scikit-learn digits (seconds): they rebuild far more than default prediction."""

import pytest
import torch

from redundancy.coded_inference.config import DataConfig, LearnedCodeConfig, OptimConfig
from redundancy.coded_inference.learned import LearnedCode, erased_loss
from redundancy.coded_inference.pipeline import load_learned, run_learned, save_learned
from redundancy.errors import DecodeError, ParameterError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def learned_k2():
    torch.manual_seed(0)
    config = LearnedCodeConfig(
        data=DataConfig(dataset="digits"),
        k=2,
        deployed=OptimConfig(epochs=30),
        code=OptimConfig(epochs=40, patience=8),
    )
    return run_learned(config)


def test_learned_code_beats_default_prediction(learned_k2):
    code, default = learned_k2.results
    assert code.available >= 0.85
    # stated margin: at least 5x chance and 40 points above the default prediction
    assert code.degraded >= 0.5 and code.degraded >= default.degraded + 0.4
    assert code.reconstruction >= 0.5


def test_serving_api_and_bundle_round_trip(learned_k2, tmp_path):
    code, deployed = learned_k2.code, learned_k2.deployed
    x = learned_k2.data.x_test[:2]
    with torch.no_grad():
        outputs = deployed(x)
        parity_out = deployed(code.encode(x.unsqueeze(0)).flatten(0, 1))
    rebuilt = code.reconstruct(parity_out, [outputs[0], None])
    assert rebuilt.shape == (10,)
    with pytest.raises(DecodeError):
        code.reconstruct(parity_out, [None, None])
    with pytest.raises(ParameterError, match="k=2"):
        code.reconstruct(parity_out, [None, outputs[0], outputs[1]])
    save_learned(learned_k2, tmp_path / "l.pt")
    again, _, config = load_learned(tmp_path / "l.pt", k=2)
    assert config == learned_k2.config
    assert torch.allclose(again.reconstruct(parity_out, [outputs[0], None]), rebuilt)
    with pytest.raises(ParameterError, match="k=2"):
        load_learned(tmp_path / "l.pt", k=5)


@pytest.mark.parametrize("encoder", ["mlp", "conv"])
def test_encoders_make_one_parity_image_for_k5(encoder):
    code = LearnedCode(5, (1, 8, 8), 10, encoder=encoder)
    assert code.encode(torch.rand(3, 5, 1, 8, 8)).shape == (3, 1, 1, 8, 8)
    with pytest.raises(ParameterError):
        code.encode(torch.rand(3, 2, 1, 8, 8))


@pytest.mark.parametrize("loss", ["kl", "mse", "ce"])
def test_losses_vanish_only_on_a_perfect_rebuild(loss):
    target = torch.tensor([[8.0, -8.0, -8.0]])
    labels = torch.tensor([0])
    assert erased_loss(target, target, labels, loss) < 1e-3
    assert erased_loss(-target, target, labels, loss) > 1.0


def test_bad_learned_code_parameters_are_refused():
    with pytest.raises(ParameterError, match="k=9"):
        LearnedCode(9, (1, 8, 8), 10)
    with pytest.raises(ParameterError, match="encoder"):
        LearnedCode(2, (1, 8, 8), 10, encoder="rnn")
    with pytest.raises(ParameterError, match="loss"):
        erased_loss(torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long), "l1")
