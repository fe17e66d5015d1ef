"""Golden model: int64 arithmetic equal to a naive reference, and wrap mode that counts real overflows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.bounds import acc_bits_exact, channel_ranges, worst_case_inputs
from a2qflow.hw.compiler.ir import Affine, ConvLayer, DenseLayer, InputQuant, IntType, MaxPoolLayer, Model, Thresholds
from a2qflow.hw.errors import A2QFlowError

U4, S4, U3 = IntType(4, False), IntType(4, True), IntType(3, False)


def _naive_conv(x, w, stride, pad):
    """Direct 6-loop convolution with integer zero padding (independent of im2col)."""
    n, c, h, wd = x.shape
    oc, ic, kh, kw = w.shape
    t, l, b, r = pad
    xp = np.zeros((n, c, h + t + b, wd + l + r), dtype=np.int64)
    xp[:, :, t:t + h, l:l + wd] = x
    oh, ow = (h + t + b - kh) // stride[0] + 1, (wd + l + r - kw) // stride[1] + 1
    out = np.zeros((n, oc, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            for o in range(oc):
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3))
    return out


def _cnn(rng) -> Model:
    conv = ConvLayer("conv0", rng.integers(-8, 8, (3, 2, 3, 3)), U4, S4,
                     Thresholds(np.sort(rng.integers(-150, 150, (3, 7)), axis=1), U3, 0), (2, 7, 6), (2, 1),
                     (1, 0, 2, 1))
    pool = MaxPoolLayer("pool0", conv.out_shape, (2, 2), (1, 2), U3)
    c, h, w = pool.out_shape
    fc = DenseLayer("fc0", rng.integers(-8, 8, (5, c * h * w)), U3, S4, Affine(rng.random(5), rng.random(5)))
    return Model("cnn", (2, 7, 6), InputQuant(1 / 15, 0, U4), [conv, pool, fc])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_int64_golden_equals_naive_reference(seed):
    rng = np.random.default_rng(seed)
    m = _cnn(rng)
    conv, pool, fc = m.layers
    x = rng.integers(0, 16, (4, 2, 7, 6))
    acc = _naive_conv(x, conv.weights, conv.stride, conv.pad)
    assert np.array_equal(reference.accumulate(conv, x), acc)
    level = (acc[..., None] >= conv.act.values[None, :, None, None, :]).sum(-1)  # out_base 0
    pooled = np.zeros((4,) + pool.out_shape, dtype=np.int64)
    for i in range(pool.out_shape[1]):
        for j in range(pool.out_shape[2]):
            pooled[:, :, i, j] = level[:, :, i:i + 2, 2 * j:2 * j + 2].max(axis=(2, 3))
    logits = pooled.reshape(4, -1) @ fc.weights.T * fc.act.scale + fc.act.bias
    res = reference.run(m, x)
    assert np.allclose(res.logits, logits, rtol=0, atol=1e-12)
    assert res.overflow_events == 0 and res.stats["conv0"].acc_max == acc.max()


def test_thresholds_count_with_out_base():
    act = Thresholds(np.array([[-1, 0, 5], [2, 2, 9]]), IntType(2, True), -2)
    acc = np.array([[-2, 2], [0, 9], [5, 1]])
    out = reference.apply_thresholds(acc, act, act.values)
    assert out.tolist() == [[-2, 0], [0, 1], [1, -2]]


def _dense(rng, C=6, K=20):
    w = rng.integers(-8, 8, (C, K))
    return DenseLayer("fc", w, U4, S4, Affine(np.ones(C), np.zeros(C)))


def test_wrap_mode_at_exact_bits_changes_nothing_and_one_bit_less_overflows():
    rng = np.random.default_rng(7)
    layer = _dense(rng)
    m = Model("m", (20,), InputQuant(1 / 15, 0, U4), [layer])
    P = acc_bits_exact(layer.weights, U4)
    x_hi, x_lo = worst_case_inputs(layer.weights, U4)
    x = np.concatenate([x_hi, x_lo, rng.integers(0, 16, (50, 20))])
    wide = reference.run(m, x)
    at_p = reference.run(m, x, {"fc": P})
    assert at_p.overflow_events == 0 and np.array_equal(at_p.acc, wide.acc)
    below = reference.run(m, x, {"fc": P - 1})
    lim = 1 << (P - 2)
    expected = int(((wide.acc < -lim) | (wide.acc > lim - 1)).sum())  # values outside the P-1 bit range
    assert below.overflow_events == expected > 0
    assert below.stats["fc"].overflow_events == expected and below.stats["fc"].outputs == x.shape[0] * 6
    ok = (wide.acc >= -lim) & (wide.acc <= lim - 1)
    assert np.array_equal(below.acc[ok], wide.acc[ok])
    assert np.all((below.acc >= -lim) & (below.acc <= lim - 1))
    assert np.all((below.acc - wide.acc) % (1 << (P - 1)) == 0), "wrapped values must be congruent mod 2^P"


def test_wrap_mode_uses_fitted_thresholds_and_counts_per_layer():
    rng = np.random.default_rng(8)
    w = rng.integers(-8, 8, (4, 16))
    lo, hi = channel_ranges(w, U4)
    thr = np.sort(rng.integers(lo.min() - 50, hi.max() + 50, (4, 15)), axis=1)
    l0 = DenseLayer("l0", w, U4, S4, Thresholds(thr, U4, 0))
    l1 = _dense(rng, C=3, K=4)
    l1.name = "l1"
    m = Model("m", (16,), InputQuant(1 / 15, 0, U4), [l0, l1])
    x = rng.integers(0, 16, (40, 16))
    P0 = acc_bits_exact(w, U4)
    exact = reference.run(m, x)
    fitted = reference.run(m, x, {"l0": P0, "l1": 32})
    assert np.array_equal(exact.logits, fitted.logits), "fitting thresholds to P_exact must not change results"
    assert set(fitted.stats) == {"l0", "l1"} and fitted.overflow_events == 0


def test_bad_inputs_are_one_line_errors():
    m = Model("m", (20,), InputQuant(1 / 15, 0, U4), [_dense(np.random.default_rng(9))])
    with pytest.raises(A2QFlowError, match=r"shape \(19,\) per sample; model 'm' expects \(20,\)"):
        reference.run(m, np.zeros((2, 19), dtype=np.int64))
    with pytest.raises(A2QFlowError, match="outside the model's input type UINT4.*quantize"):
        reference.run(m, np.full((2, 20), 16))
