"""Small random integer IR models for the HLS / C-sim tests (no training needed).

Thresholds are per-channel quantiles of the accumulators that random inputs produce, so every output level is
exercised; weights are random M-bit integers, so the exact bound is whatever they need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.ir import (
    Affine,
    ConvLayer,
    DenseLayer,
    InputQuant,
    IntType,
    MaxPoolLayer,
    Model,
    Thresholds,
    save_model,
)
from a2qflow.hw.compiler.plan import make_plan, save_plan
from a2qflow.hw.compiler.reference import accumulate, maxpool
from a2qflow.hw.config import Folding, FoldingConfig


def _thresholds(rng: np.random.Generator, acc: np.ndarray, out_type: IntType) -> Thresholds:
    """(C, L) ascending thresholds at quantiles of the observed accumulators (channel axis 1 of acc)."""
    levels = out_type.max - out_type.min
    a = np.moveaxis(acc, 1, 0).reshape(acc.shape[1], -1).astype(np.float64)
    q = np.quantile(a, np.linspace(0.05, 0.95, levels), axis=1).T  # (C, L)
    t = np.round(q + rng.integers(-1, 2, size=q.shape)).astype(np.int64)
    return Thresholds(np.sort(t, axis=1), out_type, out_type.min)


def _rand_inputs(rng: np.random.Generator, t: IntType, shape: tuple[int, ...], n: int = 64) -> np.ndarray:
    return rng.integers(t.min, t.max + 1, size=(n, *shape), dtype=np.int64)


def dense_model(seed: int = 0, sizes=(24, 16, 12, 10), in_type=IntType(4, False), w_bits: int = 4,
                act_type=IntType(3, False)) -> Model:
    """A chain of dense layers with multi-threshold activations and an affine last layer."""
    rng = np.random.default_rng(seed)
    w_type = IntType(w_bits, True)
    layers = []
    x = _rand_inputs(rng, in_type, (sizes[0],))
    cur_t = in_type
    for i, (k, c) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.integers(w_type.min, w_type.max + 1, size=(c, k), dtype=np.int64)
        last = i == len(sizes) - 2
        layer = DenseLayer(f"fc{i}", w, cur_t, w_type, Affine(np.ones(c), np.zeros(c)))
        acc = accumulate(layer, x)
        if last:
            layer.act = Affine(rng.uniform(0.01, 0.1, size=c), rng.normal(size=c))
        else:
            layer.act = _thresholds(rng, acc, act_type)
            x = (acc[..., None] >= layer.act.values).sum(-1) + act_type.min
            cur_t = act_type
        layers.append(layer)
    return Model("rand_mlp", (sizes[0],), InputQuant(1 / 15, 0, in_type), layers)


def conv_model(seed: int = 0, in_shape=(2, 8, 8), in_type=IntType(4, False), act_type=IntType(2, False)) -> Model:
    """conv 3x3 pad 1 -> maxpool 2x2 -> conv 3x3 stride 1 (no pad) -> dense (affine)."""
    rng = np.random.default_rng(seed)
    w_type = IntType(4, True)
    x = _rand_inputs(rng, in_type, in_shape)
    c0 = ConvLayer("conv0", rng.integers(-8, 8, size=(4, in_shape[0], 3, 3)), in_type, w_type,
                   Affine(np.ones(4), np.zeros(4)), in_shape=tuple(in_shape), pad=(1, 1, 1, 1))
    acc = accumulate(c0, x)
    c0.act = _thresholds(rng, acc, act_type)
    x = (np.moveaxis(acc, 1, -1)[..., None] >= c0.act.values).sum(-1)
    x = np.moveaxis(x, -1, 1) + act_type.min
    p0 = MaxPoolLayer("pool0", c0.out_shape, (2, 2), (2, 2), act_type)
    x = maxpool(x, p0)
    c1 = ConvLayer("conv1", rng.integers(-8, 8, size=(6, 4, 3, 3)), act_type, w_type,
                   Affine(np.ones(6), np.zeros(6)), in_shape=p0.out_shape, stride=(1, 1), pad=(0, 1, 0, 1))
    acc = accumulate(c1, x)
    c1.act = _thresholds(rng, acc, act_type)
    x = (np.moveaxis(acc, 1, -1)[..., None] >= c1.act.values).sum(-1)
    x = np.moveaxis(x, -1, 1) + act_type.min
    k = int(np.prod(c1.out_shape))
    fc = DenseLayer("fc", rng.integers(-8, 8, size=(5, k)), act_type, w_type,
                    Affine(rng.uniform(0.01, 0.1, size=5), rng.normal(size=5)))
    return Model("rand_cnn", tuple(in_shape), InputQuant(1 / 15, 0, in_type), [c0, p0, c1, fc])


def write_build(model: Model, build: Path, acc_bits: int | None = None, allow_unsafe: bool = False,
                folding: dict[str, tuple[int, int]] | None = None, default=(8, 4)) -> Path:
    """save_model + make_plan/save_plan into `build` (the BUILD-folder contract)."""
    fold = FoldingConfig(default=Folding(simd=default[0], pe=default[1]),
                         layers={n: Folding(simd=s, pe=p) for n, (s, p) in (folding or {}).items()})
    save_model(model, build)
    save_plan(make_plan(model, acc_bits=acc_bits, allow_unsafe=allow_unsafe, folding=fold), build)
    return build


def random_inputs(model: Model, n: int, seed: int = 1) -> np.ndarray:
    t = model.input_quant.dtype
    return np.random.default_rng(seed).integers(t.min, t.max + 1, size=(n, *model.input_shape), dtype=np.int64)
