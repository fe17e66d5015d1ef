"""Hand-made integer IR graphs with every layer kind, for backend tests that must not depend on the frontend.

Each builder returns a `Model` with seeded random integer weights and thresholds spread over each channel's
reachable accumulator range (so outputs use every level and nothing is constant). Shapes are small enough for
C-sim and Verilator in seconds. The golden model (`hw.compiler.reference.run`) is the reference for all of them.
"""

from __future__ import annotations

import numpy as np

from a2qflow.hw.compiler.bounds import channel_ranges
from a2qflow.hw.compiler.ir import (
    INPUT,
    AddLayer,
    Affine,
    AvgPoolLayer,
    ConvLayer,
    DenseLayer,
    DepthwiseConvLayer,
    InputQuant,
    IntType,
    MaxPoolLayer,
    Model,
    RequantLayer,
    Thresholds,
)

U4, S4 = IntType(4, False), IntType(4, True)


def thresholds(weights: np.ndarray, in_type: IntType, out_type: IntType, rng: np.random.Generator,
               spread: float = 0.35) -> Thresholds:
    """Ascending integer thresholds per channel inside the middle `spread` of its exact accumulator range."""
    lo, hi = channel_ranges(weights, in_type)
    levels = out_type.max - out_type.min
    mid, half = (lo + hi) / 2.0, np.maximum((hi - lo) * spread / 2.0, levels)
    steps = np.sort(rng.uniform(-1.0, 1.0, (len(lo), levels)), axis=1)
    values = np.floor(mid[:, None] + steps * half[:, None]).astype(np.int64)
    return Thresholds(values, out_type, out_type.min)


def _affine(c: int, rng: np.random.Generator) -> Affine:
    return Affine(rng.uniform(0.01, 0.05, c), rng.normal(0.0, 0.1, c))


def _conv(name, rng, c_in, c_out, hw, k=3, pad=1, stride=1, inputs=(), out=U4, in_type=U4) -> ConvLayer:
    w = rng.integers(-7, 8, (c_out, c_in, k, k))
    wm = w.reshape(c_out, -1)
    return ConvLayer(name, w, in_type, S4, thresholds(wm, in_type, out, rng), (c_in, hw[0], hw[1]),
                     (stride, stride), (pad, pad, pad, pad), inputs=tuple(inputs))


def residual_model(seed: int = 0, c: int = 4, hw: tuple[int, int] = (6, 6)) -> Model:
    """stem conv -> [conv -> conv] + requantized skip -> add -> global avg pool -> dense (float logits).

    The skip branch forks from the stem's output, goes through a standalone requantization, and joins the main
    branch in an add whose inputs share one type (a residual block with a shared QuantIdentity)."""
    rng = np.random.default_rng(seed)
    stem = _conv("stem", rng, 1, c, hw)
    c0 = _conv("block_conv0", rng, c, c, hw)
    c1 = _conv("block_conv1", rng, c, c, hw, out=S4)
    skip = RequantLayer("block_skip", U4, thresholds(np.ones((c, 1), np.int64), U4, S4, rng, spread=1.0),
                        (c, *hw), inputs=("stem",))
    add_w = np.tile([1, 1], (c, 1))
    add = AddLayer("block_add", S4, thresholds(add_w, S4, U4, rng), (c, *hw), (0, 0),
                   inputs=("block_conv1", "block_skip"))
    gap = AvgPoolLayer("gap", np.ones((c, 1, *hw), np.int64), U4, IntType(1, False),
                       thresholds(np.ones((c, hw[0] * hw[1]), np.int64), U4, U4, rng), (c, *hw), hw)
    fc = DenseLayer("fc", rng.integers(-7, 8, (10, c)), U4, S4, _affine(10, rng))
    return Model("residual", (1, *hw), InputQuant(1 / 15, 0, U4), [stem, c0, c1, skip, add, gap, fc])


def depthwise_model(seed: int = 0, c: int = 4, hw: tuple[int, int] = (6, 6)) -> Model:
    """conv -> depthwise 3x3 (padded) -> pointwise 1x1 -> avg pool 2x2 stride 2 -> flatten -> dense."""
    rng = np.random.default_rng(seed)
    stem = _conv("stem", rng, 2, c, hw)
    wd = rng.integers(-7, 8, (c, 1, 3, 3))
    dw = DepthwiseConvLayer("dw", wd, U4, S4, thresholds(wd.reshape(c, -1), U4, U4, rng), (c, *hw), (1, 1),
                            (1, 1, 1, 1))
    pw = _conv("pw", rng, c, c, hw, k=1, pad=0)
    pool = AvgPoolLayer("pool", np.ones((c, 1, 2, 2), np.int64), U4, IntType(1, False),
                        thresholds(np.ones((c, 4), np.int64), U4, U4, rng), (c, *hw), (2, 2))
    k = c * (hw[0] // 2) * (hw[1] // 2)
    fc = DenseLayer("fc", rng.integers(-7, 8, (5, k)), U4, S4, _affine(5, rng))
    return Model("depthwise", (2, *hw), InputQuant(1 / 15, 0, U4), [stem, dw, pw, pool, fc])


def conv1d_model(seed: int = 0, c: int = 3, length: int = 12) -> Model:
    """A 1-D network as the IR holds it: (C, 1, L) tensors, (1, k) kernels, 1-D max pool, dense."""
    rng = np.random.default_rng(seed)
    w0 = rng.integers(-7, 8, (4, c, 1, 3))
    c0 = ConvLayer("conv0", w0, S4, S4, thresholds(w0.reshape(4, -1), S4, U4, rng), (c, 1, length), (1, 1),
                   (0, 1, 0, 1))
    pool = MaxPoolLayer("pool0", (4, 1, length), (1, 2), (1, 2), U4)
    w1 = rng.integers(-7, 8, (4, 4, 1, 3))
    c1 = ConvLayer("conv1", w1, U4, S4, thresholds(w1.reshape(4, -1), U4, U4, rng), (4, 1, length // 2), (1, 1),
                   (0, 0, 0, 0))
    fc = DenseLayer("fc", rng.integers(-7, 8, (3, 4 * (length // 2 - 2))), U4, S4, _affine(3, rng))
    return Model("conv1d", (c, 1, length), InputQuant(1 / 7, 0, S4), [c0, pool, c1, fc])


def dense_residual_model(seed: int = 0, k: int = 8) -> Model:
    """An MLP with a skip: fc0 forks into fc1 and a requant, joined by an add (shift 1 on one branch), then fc2."""
    rng = np.random.default_rng(seed)
    w0 = rng.integers(-7, 8, (6, k))
    fc0 = DenseLayer("fc0", w0, U4, S4, thresholds(w0, U4, U4, rng))
    w1 = rng.integers(-7, 8, (6, 6))
    fc1 = DenseLayer("fc1", w1, U4, S4, thresholds(w1, U4, U4, rng))
    skip = RequantLayer("skip", U4, thresholds(np.ones((6, 1), np.int64), U4, U4, rng, spread=1.0), (6,),
                        inputs=("fc0",))
    add = AddLayer("add", U4, thresholds(np.tile([2, 1], (6, 1)), U4, U4, rng), (6,), (1, 0), inputs=("fc1", "skip"))
    fc2 = DenseLayer("fc2", rng.integers(-7, 8, (4, 6)), U4, S4, _affine(4, rng))
    return Model("dense_residual", (k,), InputQuant(1 / 15, 0, U4), [fc0, fc1, skip, add, fc2])


def input_fork_model(seed: int = 0) -> Model:
    """The model input read by two layers: conv (main) and requant (skip), joined by an add, then a dense layer."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-7, 8, (2, 2, 3, 3))
    conv = ConvLayer("conv", w, U4, S4, thresholds(w.reshape(2, -1), U4, U4, rng), (2, 4, 4), (1, 1), (1, 1, 1, 1))
    skip = RequantLayer("skip", U4, thresholds(np.ones((2, 1), np.int64), U4, U4, rng, spread=1.0), (2, 4, 4),
                        inputs=(INPUT,))
    add = AddLayer("add", U4, thresholds(np.tile([1, 1], (2, 1)), U4, U4, rng), (2, 4, 4), inputs=("conv", "skip"))
    fc = DenseLayer("fc", rng.integers(-7, 8, (3, 32)), U4, S4, Affine(np.ones(3), np.zeros(3)))
    return Model("input_fork", (2, 4, 4), InputQuant(1 / 15, 0, U4), [conv, skip, add, fc])


def three_reader_model(seed: int = 0) -> Model:
    """fc0 read by three layers (a chain of two duplicators): fc1, and two requants feeding two adds in turn."""
    rng = np.random.default_rng(seed)
    w0, w1 = rng.integers(-7, 8, (4, 6)), rng.integers(-7, 8, (4, 4))
    fc0 = DenseLayer("fc0", w0, U4, S4, thresholds(w0, U4, U4, rng))
    fc1 = DenseLayer("fc1", w1, U4, S4, thresholds(w1, U4, U4, rng))
    r1 = RequantLayer("r1", U4, thresholds(np.ones((4, 1), np.int64), U4, U4, rng, spread=1.0), (4,), ("fc0",))
    r2 = RequantLayer("r2", U4, thresholds(np.ones((4, 1), np.int64), U4, U4, rng, spread=1.0), (4,), ("fc0",))
    a1 = AddLayer("a1", U4, thresholds(np.tile([1, 1], (4, 1)), U4, U4, rng), (4,), (0, 0), ("fc1", "r1"))
    a2 = AddLayer("a2", U4, thresholds(np.tile([1, 2], (4, 1)), U4, U4, rng), (4,), (0, 1), ("a1", "r2"))
    fc2 = DenseLayer("fc2", rng.integers(-7, 8, (3, 4)), U4, S4, Affine(np.ones(3), np.zeros(3)))
    return Model("three_readers", (6,), InputQuant(1 / 15, 0, U4), [fc0, fc1, r1, r2, a1, a2, fc2])


def first_layer_model(kind: str, seed: int = 0) -> Model:
    """A new-kind layer reading the model input (so saturating / worst-case inputs reach its exact range), then a
    dense layer with float logits."""
    rng = np.random.default_rng(seed)
    if kind == "add":  # a * 2 + b on signed inputs: [-24, 21] needs exactly 6 bits
        first = AddLayer("first", S4, thresholds(np.tile([2, 1], (3, 1)), S4, U4, rng), (3, 2, 2), (1, 0),
                         (INPUT, INPUT))
        shape, iq, out = (3, 2, 2), S4, (3, 2, 2)
    elif kind == "requant":  # UINT4 [0, 15] needs exactly 5 signed bits
        first = RequantLayer("first", U4, thresholds(np.ones((3, 1), np.int64), U4, U4, rng, spread=1.0), (3, 2, 2))
        shape, iq, out = (3, 2, 2), U4, (3, 2, 2)
    elif kind == "dwconv":  # unpadded 3x3 depthwise
        w = rng.integers(-7, 8, (2, 1, 3, 3))
        first = DepthwiseConvLayer("first", w, U4, S4, thresholds(w.reshape(2, -1), U4, U4, rng), (2, 4, 4))
        shape, iq, out = (2, 4, 4), U4, (2, 2, 2)
    elif kind == "global_avgpool_signed":  # global 3x3 on 4 INT4 channels, 4 per input beat: sum [-72, 63]
        first = AvgPoolLayer("first", np.ones((4, 1, 3, 3), np.int64), S4, IntType(1, False),
                             thresholds(np.ones((4, 9), np.int64), S4, U4, rng), (4, 3, 3), (3, 3))
        shape, iq, out = (4, 3, 3), S4, first.out_shape
    else:  # avgpool 2x2 stride 2 (window sum [0, 60]) or global 4x4 ([0, 240])
        k = (2, 2) if kind == "avgpool" else (4, 4)
        first = AvgPoolLayer("first", np.ones((2, 1, *k), np.int64), U4, IntType(1, False),
                             thresholds(np.ones((2, k[0] * k[1]), np.int64), U4, U4, rng), (2, 4, 4), k)
        shape, iq, out = (2, 4, 4), U4, first.out_shape
    fc = DenseLayer("fc", rng.integers(-7, 8, (3, int(np.prod(out)))), U4, S4, Affine(np.ones(3), np.zeros(3)))
    return Model(f"first_{kind}", shape, InputQuant(1 / 15, 0, iq), [first, fc])


def saturating_chain_model(seed: int = 0) -> Model:
    """input (2, 4, 4) U4 -> add(x, x) shifts (1, 0) -> requant -> depthwise 3x3 (positive weights, unpadded) ->
    global avg pool 2x2 -> dense. All-max inputs drive every layer to the top of its exact range: each threshold layer's
    thresholds lie inside its reachable range, so it outputs its maximum level, and every weight is >= 0."""
    rng = np.random.default_rng(seed)
    c, hw = 2, (4, 4)
    add = AddLayer("add", U4, thresholds(np.tile([2, 1], (c, 1)), U4, U4, rng), (c, *hw), (1, 0),
                   inputs=(INPUT, INPUT))
    req = RequantLayer("req", U4, thresholds(np.ones((c, 1), np.int64), U4, U4, rng, spread=1.0), (c, *hw))
    wd = rng.integers(1, 8, (c, 1, 3, 3))
    dw = DepthwiseConvLayer("dw", wd, U4, S4, thresholds(wd.reshape(c, -1), U4, U4, rng), (c, *hw))
    pool = AvgPoolLayer("pool", np.ones((c, 1, 2, 2), np.int64), U4, IntType(1, False),
                        thresholds(np.ones((c, 4), np.int64), U4, U4, rng), (c, 2, 2), (2, 2))
    fc = DenseLayer("fc", rng.integers(-7, 8, (3, c)), U4, S4, _affine(3, rng))
    return Model("saturating", (c, *hw), InputQuant(1 / 15, 0, U4), [add, req, dw, pool, fc])


ALL = {"residual": residual_model, "depthwise": depthwise_model, "conv1d": conv1d_model,
       "dense_residual": dense_residual_model}
__all__ = ["ALL", "INPUT", "S4", "U4", "thresholds", "residual_model", "depthwise_model", "conv1d_model",
           "dense_residual_model", "input_fork_model", "three_reader_model", "first_layer_model",
           "saturating_chain_model"]
