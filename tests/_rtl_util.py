"""Small random IR models for the RTL tests: a dense chain and a conv -> maxpool -> dense net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _hls_util import random_inputs
from _hls_util import write_build as hls_write_build

from a2qflow.hw.compiler.ir import (
    Affine,
    ConvLayer,
    DenseLayer,
    InputQuant,
    IntType,
    MaxPoolLayer,
    Model,
    Thresholds,
)

U4, S4, U2, S3 = IntType(4, False), IntType(4, True), IntType(2, False), IntType(3, True)


def _thresholds(rng, c: int, n: int, spread: int, out_type: IntType, out_base: int) -> Thresholds:
    return Thresholds(np.sort(rng.integers(-spread, spread, (c, n)), axis=1), out_type, out_base)


def dense_chain(seed: int = 0) -> Model:
    """12 -> 8 -> 6 -> 5: unsigned 4-bit input, a signed-output hidden layer and a signed-input last layer."""
    rng = np.random.default_rng(seed)
    l0 = DenseLayer("fc0", rng.integers(-8, 8, (8, 12)), U4, S4, _thresholds(rng, 8, 15, 150, U4, 0))
    l1 = DenseLayer("fc1", rng.integers(-8, 8, (6, 8)), U4, S4, _thresholds(rng, 6, 7, 200, S3, -4))
    l2 = DenseLayer("fc.out", rng.integers(-4, 4, (5, 6)), S3, IntType(3, True),
                    Affine(rng.random(5), rng.random(5)))
    return Model("dense_chain", (12,), InputQuant(1 / 15, 0, U4), [l0, l1, l2])


def conv_net(seed: int = 0) -> Model:
    """1x6x6 -> conv 3x3 pad 1 (4 ch) -> maxpool 2x2 -> conv 3x3 stride 2 pad (1,0,1,1) (6x2x1) -> dense -> 3 logits."""
    rng = np.random.default_rng(seed)
    c0 = ConvLayer("conv0", rng.integers(-8, 8, (4, 1, 3, 3)), U4, S4, _thresholds(rng, 4, 3, 80, U2, 0),
                   (1, 6, 6), (1, 1), (1, 1, 1, 1))
    p0 = MaxPoolLayer("pool0", (4, 6, 6), (2, 2), (2, 2), U2)
    c1 = ConvLayer("conv1", rng.integers(-4, 4, (6, 4, 3, 3)), U2, IntType(3, True),
                   _thresholds(rng, 6, 3, 30, U2, 0), (4, 3, 3), (2, 2), (1, 0, 1, 1))
    fc = DenseLayer("fc0", rng.integers(-8, 8, (3, 12)), U2, S4,
                    Affine(rng.random(3), rng.random(3)))
    return Model("conv_net", (1, 6, 6), InputQuant(1 / 15, 0, U4), [c0, p0, c1, fc])


def write_build(build: Path, model: Model, acc_bits: int | None = None, allow_unsafe: bool = False,
                folding: dict[str, tuple[int, int]] | None = None) -> Path:
    """Save ir.json / ir.npz / plan.json for `model` into `build` (as `a2qflow compile` would): _hls_util's
    write_build with the RTL tests' default folding, SIMD 4 and PE 2."""
    return hls_write_build(model, build, acc_bits, allow_unsafe, folding, default=(4, 2))


def random_and_worst_case_inputs(model, n: int, seed: int) -> np.ndarray:
    """Random full-range inputs plus, for a dense first layer, the worst-case vectors that reach its bounds."""
    from a2qflow.hw.compiler.bounds import worst_case_inputs

    x = random_inputs(model, n, seed)
    first = model.layers[0]
    if first.kind == "dense":
        hi, lo = worst_case_inputs(first.weight_matrix(), first.in_type)
        x = np.concatenate([x, hi, lo])
    return x
