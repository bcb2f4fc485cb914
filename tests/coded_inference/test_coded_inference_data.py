"""Data loaders (on generated files where the real ones are not shipped), configs, models."""

import gzip
import json
import pickle
import struct

import numpy as np
import pytest
import torch

from redundancy.coded_inference.config import (
    LearnedCodeConfig,
    ParmConfig,
    load_config,
    parse_config,
    quick_variant,
)
from redundancy.coded_inference.data import (
    fashion_available,
    from_torch_datasets,
    load_cifar10,
    load_data,
    load_digits,
    load_fashion,
    read_idx,
)
from redundancy.coded_inference.models import (
    build_model,
    check_compatible,
    load_model,
)
from redundancy.errors import ConfigError, IntegrityError, ParameterError

torch.set_num_threads(1)


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_digits_are_scaled_images_with_a_seeded_split():
    data = load_digits(seed=3)
    assert data.input_shape == (1, 8, 8) and data.n_classes == 10
    assert len(data.x_test) == 360 and len(data.x_train) == 1797 - 360
    assert float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) <= 1.0
    assert torch.equal(load_digits(seed=3).y_test, data.y_test)
    train, x_val, y_val = data.split_validation(0.2, seed=0)
    assert len(x_val) + len(train.x_train) == len(data.x_train) and len(y_val) == len(x_val)


def test_idx_round_trip_and_fashion_layout(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28))
    labels = np.arange(7) % 10
    for name, arr in [
        ("train-images-idx3-ubyte.gz", images),
        ("t10k-images-idx3-ubyte.gz", images),
        ("train-labels-idx1-ubyte.gz", labels),
        ("t10k-labels-idx1-ubyte.gz", labels),
    ]:
        _write_idx(tmp_path / name, arr)
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    assert fashion_available(tmp_path)
    data = load_fashion(tmp_path)
    assert data.x_train.shape == (7, 1, 28, 28)
    assert torch.allclose(data.x_train[0, 0] * 255, torch.tensor(images[0], dtype=torch.float32))


def test_idx_with_bad_magic_or_size_is_refused(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as handle:
        handle.write(b"\x01\x02\x03\x04")
    with pytest.raises(IntegrityError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as handle:
        handle.write(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"abc")
    with pytest.raises(IntegrityError, match="holds 3"):
        read_idx(short)


def test_missing_fashion_is_a_clear_config_error(tmp_path):
    with pytest.raises(ConfigError, match="dataset-fashion-mnist"):
        load_fashion(tmp_path)


@pytest.mark.skipif(not fashion_available(), reason="Debian dataset-fashion-mnist not installed")
def test_installed_fashion_mnist_is_the_full_set():
    data = load_fashion()
    assert data.x_train.shape == (60000, 1, 28, 28) and len(data.y_test) == 10000
    assert sorted(torch.unique(data.y_train).tolist()) == list(range(10))


def test_cifar10_pickle_batches(tmp_path):
    rng = np.random.default_rng(1)
    for name, n in [("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 5)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, n)),
        }
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    data = load_cifar10(tmp_path)
    assert data.x_train.shape == (10, 3, 32, 32) and data.x_test.shape == (5, 3, 32, 32)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10))}))
    with pytest.raises(IntegrityError):
        load_cifar10(tmp_path)
    with pytest.raises(ConfigError, match=r"data\.root"):
        load_data(ParmConfig().data.model_copy(update={"dataset": "cifar10"}))


def test_user_torch_datasets():
    train = [(torch.rand(1, 4, 4), i % 3) for i in range(9)]
    test = [(torch.rand(1, 4, 4), i % 3) for i in range(3)]
    data = from_torch_datasets(train, test, n_classes=3)
    assert data.input_shape == (1, 4, 4) and data.y_train.tolist()[:3] == [0, 1, 2]
    with pytest.raises(ParameterError, match="labels"):
        from_torch_datasets(train, test, n_classes=2)


def test_configs_load_from_yaml_and_json_and_name_bad_fields(tmp_path):
    (tmp_path / "a.yaml").write_text("k: 4\nencoder: concatenation\nparity:\n  epochs: 3\n")
    config = load_config(tmp_path / "a.yaml", ParmConfig)
    assert config.k == 4 and config.parity.epochs == 3 and config.parity.lr == 1e-3
    (tmp_path / "b.json").write_text(json.dumps({"k": 5, "loss": "ce"}))
    assert load_config(tmp_path / "b.json", LearnedCodeConfig).loss == "ce"
    with pytest.raises(ConfigError, match="concatenation"):
        parse_config({"k": 3, "encoder": "concatenation"}, ParmConfig)
    with pytest.raises(ConfigError, match=r"field parity\.lr"):
        parse_config({"parity": {"lr": -1}}, ParmConfig)
    with pytest.raises(ConfigError, match="field k"):
        parse_config({"k": 1}, ParmConfig)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml", ParmConfig)
    assert quick_variant(ParmConfig()).parity.epochs <= 8


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("base-mlp", (1, 28, 28)),
        ("small-cnn", (1, 28, 28)),
        ("small-cnn", (3, 32, 32)),
        ("linear", (1, 8, 8)),
        ("resnet18", (3, 32, 32)),
    ],
)
def test_models_map_images_to_class_scores(name, shape):
    model = build_model(name, shape, 10)
    check_compatible(model, shape, 10)


def test_base_mlp_is_784_200_100_10():
    widths = [
        m.out_features
        for m in build_model("base-mlp", (1, 28, 28), 10).modules()
        if isinstance(m, torch.nn.Linear)
    ]
    assert widths == [200, 100, 10]


def test_mismatched_model_and_data_shapes_are_refused():
    with pytest.raises(ParameterError, match="does not accept"):
        check_compatible(build_model("base-mlp", (1, 28, 28), 10), (1, 8, 8), 10)
    with pytest.raises(ParameterError, match="classes"):
        check_compatible(build_model("base-mlp", (1, 8, 8), 10), (1, 8, 8), 3)
    with pytest.raises(ParameterError, match="allowed"):
        build_model("vgg", (1, 8, 8), 10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_user_models_from_state_dict_and_torchscript(tmp_path):
    model = build_model("linear", (1, 8, 8), 10)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt", "linear", (1, 8, 8), 10)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
    torch.jit.save(torch.jit.trace(model, x), str(tmp_path / "m.ts"))
    assert torch.allclose(load_model(tmp_path / "m.ts")(x), model(x))
    with pytest.raises(ConfigError, match="does not fit"):
        load_model(tmp_path / "m.pt", "base-mlp", (1, 8, 8), 10)
    with pytest.raises(ConfigError, match="TorchScript"):
        load_model(tmp_path / "m.pt")
