"""Accumulator bit-width bounds: the single source of truth for the training audit and the compiler plan.

Notation as in the A2Q papers: K dot-product length, N input bits, M weight bits, P signed accumulator bits,
q one output channel's integer weights, s = 1 if the input is signed. All functions are exact integer
arithmetic (no floating-point log2), so they can be trusted at the boundary.
"""

from __future__ import annotations

import numpy as np

from a2qflow.hw.compiler.ir import IntType, Model
from a2qflow.hw.errors import A2QFlowError

# The one accepted range of accumulator widths P, everywhere (config targets, --acc-bits, plan.json, backends):
# the golden model and its P-bit wrap emulation compute in int64, so 63 bits is the widest that stays exact.
ACC_BITS_MIN, ACC_BITS_MAX = 2, 63
ACC_BITS_RANGE = range(ACC_BITS_MIN, ACC_BITS_MAX + 1)


def signed_bits_for_range(lo: int, hi: int) -> int:
    """Smallest P such that [lo, hi] fits in a P-bit two's-complement integer (P >= 1)."""
    lo, hi = int(lo), int(hi)
    p = 1
    while lo < -(1 << (p - 1)) or hi > (1 << (p - 1)) - 1:
        p += 1
    return p


def _symmetric_bits(magnitude: int) -> int:
    """Smallest P with magnitude <= 2^(P-1) - 1 (the form both A2Q bounds take)."""
    p = 1
    while int(magnitude) > (1 << (p - 1)) - 1:
        p += 1
    return p


def input_magnitude_exponent(in_type: IntType) -> int:
    """N - s: 2^(N-s) bounds |x| for both signed and unsigned N-bit inputs (the A2Q papers' form)."""
    return in_type.bits - (1 if in_type.signed else 0)


def acc_bits_datatype(K: int, in_type: IntType, w_type: IntType) -> int:
    """Data-type bound: any M-bit weights, any N-bit inputs. P >= alpha + log2(1 + 2^-alpha) + 1 with
    alpha = log2(K) + N + M - 1 - s, i.e. the smallest P with K * 2^(M-1) * 2^(N-s) <= 2^(P-1) - 1."""
    return _symmetric_bits(K * (1 << (w_type.bits - 1)) * (1 << input_magnitude_exponent(in_type)))


def l1_norms(weights: np.ndarray) -> np.ndarray:
    """Per-output-channel ||q||_1 of a (C, K) integer matrix, as int64."""
    return np.abs(np.asarray(weights, dtype=np.int64)).sum(axis=1)


def l1_limit(P: int, in_type: IntType) -> float:
    """A2Q: the largest ||q||_1 for which P bits are safe, (2^(P-1) - 1) * 2^(s - N) (may be fractional)."""
    return ((1 << (P - 1)) - 1) / float(1 << input_magnitude_exponent(in_type))


def l1_limit_zero_centered(P: int, in_type: IntType) -> float:
    """A2Q+ (zero-centred q, unsigned x): ||q||_1 <= 2 * (2^(P-1) - 1) / (2^N - 1), about twice A2Q's room."""
    return 2.0 * ((1 << (P - 1)) - 1) / float((1 << in_type.bits) - 1)


def acc_bits_l1(weights: np.ndarray, in_type: IntType) -> int:
    """A2Q L1 bound on the actual weights: smallest P with max_c ||q_c||_1 * 2^(N-s) <= 2^(P-1) - 1."""
    w = np.asarray(weights, dtype=np.int64)
    if w.size == 0:
        return 1
    return _symmetric_bits(int(l1_norms(w).max()) << input_magnitude_exponent(in_type))


def channel_ranges(weights: np.ndarray, in_type: IntType) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel exact accumulator range over all inputs in [xmin, xmax]^K (FINN's worst case):
    hi = sum(q>0)*xmax + sum(q<0)*xmin, lo = sum(q>0)*xmin + sum(q<0)*xmax."""
    w = np.asarray(weights, dtype=np.int64)
    pos = np.where(w > 0, w, 0).sum(axis=1)
    neg = np.where(w < 0, w, 0).sum(axis=1)
    hi = pos * in_type.max + neg * in_type.min
    lo = pos * in_type.min + neg * in_type.max
    return lo, hi


def worst_case_inputs(weights: np.ndarray, in_type: IntType) -> tuple[np.ndarray, np.ndarray]:
    """(C, K) input vectors that reach each channel's hi and lo exactly (used to prove the bound is tight)."""
    w = np.asarray(weights, dtype=np.int64)
    x_hi = np.where(w > 0, in_type.max, in_type.min).astype(np.int64)
    x_lo = np.where(w > 0, in_type.min, in_type.max).astype(np.int64)
    return x_hi, x_lo


def acc_bits_exact(weights: np.ndarray, in_type: IntType) -> int:
    """Smallest signed width holding [min_c lo_c, max_c hi_c]: what the hardware needs, and no less."""
    lo, hi = channel_ranges(weights, in_type)
    if lo.size == 0:
        return 1
    return signed_bits_for_range(int(lo.min()), int(hi.max()))


def wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to `bits` (what an ap_int<bits> / Verilog reg does)."""
    v = np.asarray(values, dtype=np.int64)
    if bits >= 64:
        return v
    m = np.int64(1) << np.int64(bits)
    half = np.int64(1) << np.int64(bits - 1)
    return ((v + half) % m) - half


def first_layer_worst_case_inputs(model: Model) -> np.ndarray:
    """Whole inputs that drive the first layer reading the model input to each channel's exact hi and lo.

    Dense: `worst_case_inputs` reshaped to the input shape (2C inputs). Conv / depthwise / pool: each channel's
    worst-case window placed at the first output position whose window lies fully inside the (unpadded) image,
    zeros elsewhere (zero is inside every input type, and only that window matters for that output); a depthwise
    or pool channel's window sits in its own input channel. Add / requant (elementwise): all-max and all-min.
    """
    from a2qflow.hw.compiler.ir import INPUT

    layer = next(l for l in model.layers if INPUT in l.inputs)
    if layer.kind in ("add", "requant"):
        t = layer.in_type
        return np.stack([np.full(model.input_shape, t.max), np.full(model.input_shape, t.min)]).astype(np.int64)
    if layer.kind not in ("dense", "conv", "dwconv", "avgpool"):
        raise A2QFlowError(f"model {model.name}: the first layer {layer.name} is a {layer.kind}; worst-case inputs "
                           "are defined for a layer with an accumulator")
    x_hi, x_lo = worst_case_inputs(layer.weight_matrix(), layer.in_type)
    vecs = np.concatenate([x_hi, x_lo])
    if layer.kind == "dense":
        return vecs.reshape((-1, *model.input_shape))
    return _place_windows(layer, vecs)


def _place_windows(layer, vecs: np.ndarray) -> np.ndarray:
    """Images (len(vecs), IC, H, W) with each window vector at the first fully-inside output position."""
    ic, ih, iw = layer.in_shape
    kh, kw = layer.kernel
    t, l_, _, _ = layer.pad
    sh, sw = layer.stride
    oh, ow = layer.out_shape[1:]
    oy = next((o for o in range(oh) if o * sh - t >= 0 and o * sh - t + kh <= ih), None)
    ox = next((o for o in range(ow) if o * sw - l_ >= 0 and o * sw - l_ + kw <= iw), None)
    if oy is None or ox is None:
        raise A2QFlowError(f"{layer.kind} {layer.name}: no output position has its {kh}x{kw} window inside the image")
    y0, x0 = oy * sh - t, ox * sw - l_
    imgs = np.zeros((len(vecs), ic, ih, iw), dtype=np.int64)
    if layer.kind == "conv":
        imgs[:, :, y0:y0 + kh, x0:x0 + kw] = vecs.reshape(-1, ic, kh, kw)
        return imgs
    C = layer.out_channels
    for i, v in enumerate(vecs):  # depthwise / pool: row i drives channel i % C from its own input channel
        imgs[i, i % C, y0:y0 + kh, x0:x0 + kw] = v.reshape(kh, kw)
    return imgs
