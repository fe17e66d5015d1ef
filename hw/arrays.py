"""User-supplied arrays (test inputs and labels as .npy files): read safely and checked before any use.

Why: a .npy header is a claim. A header that says shape (1e12, 64) makes np.load allocate terabytes, an object
array runs pickle, NaN inputs quantize to garbage that a later check blames on the integer range, and float or
string labels silently score 0 % accuracy. Everything here is one-line A2QFlowError naming the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2qflow.hw.errors import A2QFlowError

MAX_NPY_BYTES = 2 << 30  # 2 GiB: far above any test set this flow simulates
_KINDS = "biuf"  # bool, signed / unsigned integer, float


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header without reading the data; refuses what np.load must not see."""
    from numpy.lib import format as npy_format

    try:
        with open(path, "rb") as f:
            major, _ = npy_format.read_magic(f)
            if major == 1:
                shape, _, dtype = npy_format.read_array_header_1_0(f)
            elif major in (2, 3):
                shape, _, dtype = npy_format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {major}")
            offset = f.tell()
    except (ValueError, OSError, SyntaxError, TypeError) as e:
        raise A2QFlowError(f"{path}: not a .npy array file ({str(e).splitlines()[0][:120] if str(e) else e!r}); "
                           "save it with numpy.save") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in _KINDS:
        raise A2QFlowError(f"{path}: dtype {dtype} is not a plain number array (object, string and structured "
                           "arrays are refused); save float or integer data")
    return tuple(int(s) for s in shape), dtype, offset


def load_npy(path: Path | str, what: str = "--inputs") -> np.ndarray:
    """Load a .npy file after checking its header: plain numeric dtype, a size the file really holds, under the cap.

    Floats must be finite. Args: `what` names the option or role in messages (e.g. "--labels").
    """
    path = Path(path)
    if not path.is_file():
        raise A2QFlowError(f"{what} {path}: file not found")
    shape, dtype, offset = read_npy_header(path)
    count = int(np.prod(shape, dtype=object)) if shape else 1
    nbytes = count * dtype.itemsize
    if nbytes > MAX_NPY_BYTES:
        raise A2QFlowError(f"{what} {path}: header claims shape {list(shape)} ({nbytes} bytes), over the "
                           f"{MAX_NPY_BYTES >> 30} GiB limit; pass a smaller array")
    size = path.stat().st_size
    if size - offset < nbytes:
        raise A2QFlowError(f"{what} {path}: header claims shape {list(shape)} {dtype} ({nbytes} bytes) but the file "
                           f"holds {size - offset} bytes of data; the file is truncated or its header is wrong")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise A2QFlowError(f"{what} {path}: cannot read ({str(e).splitlines()[0][:120]})") from None
    check_finite(x, f"{what} {path}")
    return x


def check_finite(x: np.ndarray, source: str) -> None:
    """Float data must be finite: NaN / inf has no quantized value (numpy would turn it into INT64_MIN)."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise A2QFlowError(f"{source}: {int(bad.sum())} NaN / inf value(s) (first at index {list(first)}); "
                               "inputs must be finite numbers")


def check_labels(labels: np.ndarray, n: int, classes: int | None, source: str) -> np.ndarray:
    """Labels as int64 (n,): one integer class index in [0, classes) per input. Anything else is one line.

    Float labels are accepted only when every value is a whole number (e.g. saved as float64 by mistake).
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise A2QFlowError(f"{source}: shape {list(y.shape)}, expected ({n},): one class index per input")
    if y.dtype.kind in "iub":
        yi = y.astype(np.int64)
    elif y.dtype.kind == "f":
        check_finite(y, source)
        if not np.array_equal(y, np.round(y)):
            raise A2QFlowError(f"{source}: labels must be whole class indices; got fractional values such as "
                               f"{y[y != np.round(y)][0]!r}")
        yi = y.astype(np.int64)
    else:
        raise A2QFlowError(f"{source}: dtype {y.dtype}: labels must be integer class indices")
    if yi.size and (yi.min() < 0 or (classes is not None and yi.max() >= classes)):
        top = f"{classes - 1}" if classes is not None else "the number of classes - 1"
        raise A2QFlowError(f"{source}: labels span [{yi.min()}, {yi.max()}]; class indices must be in 0..{top}")
    return yi
