"""Integer-only golden model of the IR: int64 accumulators, optionally wrapped to each layer's width.

This is the model every other executor is compared against (QONNX execution, C-sim, RTL sim). In wrap mode each
MAC layer's accumulator is reduced modulo 2^P (two's complement), exactly what an `ap_int<P>` or a P-bit Verilog
register computes whatever the summation order, and an overflow event is one output whose P-bit value differs
from the wide one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from a2qflow.hw.arrays import check_finite
from a2qflow.hw.compiler.bounds import wrap
from a2qflow.hw.compiler.ir import INPUT, Affine, ConvLayer, Layer, MaxPoolLayer, Model, Thresholds
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.errors import A2QFlowError


@dataclass
class LayerStats:
    """What one MAC layer saw over a batch: accumulations, overflow events and the wide range reached."""

    outputs: int = 0
    overflow_events: int = 0
    acc_min: int = 0
    acc_max: int = 0


@dataclass
class GoldenRun:
    acc: np.ndarray  # last layer's accumulators (N, C) as the hardware holds them (wrapped in wrap mode)
    logits: np.ndarray  # acc * scale + bias (float64), or the last activation's integers if it ends in thresholds
    stats: dict[str, LayerStats] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)  # every layer's output (run(..., keep=True))

    @property
    def overflow_events(self) -> int:
        return sum(s.overflow_events for s in self.stats.values())


def im2col(x: np.ndarray, layer: ConvLayer) -> np.ndarray:
    """(N, C, H, W) -> (N, OH, OW, C*KH*KW) patches in (ic, kh, kw) order, zero padded."""
    t, l, b, r = layer.pad
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))
    kh, kw = layer.kernel
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))  # N, C, H', W', kh, kw
    win = win[:, :, :: layer.stride[0], :: layer.stride[1]]
    n, c, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, oh, ow, c * kh * kw)


def depthwise_windows(x: np.ndarray, layer: ConvLayer) -> np.ndarray:
    """(N, C, H, W) -> (N, C, OH, OW, KH*KW) per-channel windows in (kh, kw) order, zero padded."""
    t, l, b, r = layer.pad
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))
    win = sliding_window_view(xp, layer.kernel, axis=(2, 3))[:, :, :: layer.stride[0], :: layer.stride[1]]
    return win.reshape(*win.shape[:4], -1)


def accumulate(layer: Layer, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Wide (int64) accumulators: (N, C) for dense, (N, C, OH, OW) for conv / depthwise / pool, the input's shape
    for add (x + y, each shifted) and requant (x itself)."""
    if layer.kind == "add":
        ka, kb = layer.shifts
        return (x.astype(np.int64) << ka) + (y.astype(np.int64) << kb)
    if layer.kind == "requant":
        return x.astype(np.int64)
    w = layer.weight_matrix().astype(np.int64)
    if layer.kind == "dense":
        return x.reshape(x.shape[0], -1).astype(np.int64) @ w.T
    if layer.kind in ("dwconv", "avgpool"):
        return np.einsum("nchwk,ck->nchw", depthwise_windows(x.astype(np.int64), layer), w)
    cols = im2col(x.astype(np.int64), layer)
    return (cols @ w.T).transpose(0, 3, 1, 2)


def apply_thresholds(acc: np.ndarray, act: Thresholds, values: np.ndarray) -> np.ndarray:
    """out = out_base + #{l : acc >= T[c, l]}, channel axis 1."""
    a = np.moveaxis(acc, 1, -1)[..., None]
    count = (a >= values).sum(axis=-1)
    return np.moveaxis(count, -1, 1).astype(np.int64) + act.out_base


def maxpool(x: np.ndarray, layer: MaxPoolLayer) -> np.ndarray:
    win = sliding_window_view(x, layer.kernel, axis=(2, 3))[:, :, :: layer.stride[0], :: layer.stride[1]]
    return win.max(axis=(-1, -2))


def run(model: Model, x_int: np.ndarray, acc_bits: dict[str, int] | None = None, keep: bool = False) -> GoldenRun:
    """Execute the IR on integer inputs (N, *input_shape).

    keep=True returns every layer's output tensor in `values` (a layer-by-layer comparison needs them).

    acc_bits None: ideal int64 accumulators. acc_bits {layer: P}: wrap each listed MAC layer to P bits and use the
    thresholds fitted to P (`fit_thresholds`), exactly as the generated hardware does.
    """
    x = np.asarray(x_int)
    if x.shape[1:] != tuple(model.input_shape):
        raise A2QFlowError(f"inputs have shape {x.shape[1:]} per sample; model {model.name!r} expects "
                           f"{tuple(model.input_shape)}")
    iq = model.input_quant.dtype
    if x.size and (x.min() < iq.min or x.max() > iq.max):
        raise A2QFlowError(f"inputs span [{x.min()}, {x.max()}], outside the model's input type {iq}; quantize "
                           "them with model.input_quant.quantize() first")
    values = {INPUT: x.astype(np.int64)}
    stats: dict[str, LayerStats] = {}
    for layer in model.layers:
        ins = [values[n] for n in layer.inputs]
        values[layer.name] = _run_layer(layer, ins, acc_bits, stats)
    out = values[model.layers[-1].name]
    out = out.reshape(out.shape[0], -1)
    kept = {k: v for k, v in values.items() if k != INPUT} if keep else {}
    return GoldenRun(acc=out, logits=logits(model, out), stats=stats, values=kept)


def _run_layer(layer: Layer, ins: list[np.ndarray], acc_bits: dict[str, int] | None,
               stats: dict[str, LayerStats]) -> np.ndarray:
    """One layer on its input tensors: the pool's max, or the accumulator (wrapped to its P in wrap mode) and the
    activation. Returns the layer's output tensor (the accumulator itself when it ends in the float Affine)."""
    if isinstance(layer, MaxPoolLayer):
        return maxpool(ins[0], layer)
    wide = accumulate(layer, *ins)
    bits = None if acc_bits is None else acc_bits.get(layer.name)
    acc = wide if bits is None else wrap(wide, bits)
    stats[layer.name] = LayerStats(
        outputs=int(wide.size), overflow_events=int((acc != wide).sum()),
        acc_min=int(wide.min()) if wide.size else 0, acc_max=int(wide.max()) if wide.size else 0)
    if not isinstance(layer.act, Thresholds):
        return acc
    values = layer.act.values
    if bits is not None:
        values, _ = fit_thresholds(values, layer.weight_matrix(), layer.in_type, bits)
    return apply_thresholds(acc, layer.act, values)


def logits(model: Model, out: np.ndarray) -> np.ndarray:
    """What the hardware's outputs (N, C) mean: acc * scale + bias when the model ends in the off-chip Affine,
    else the last activation's integers. Every executor (golden, C-sim, RTL) derives top-1 from this."""
    return logits_of(model.layers[-1], out)


def logits_of(layer: Layer, out: np.ndarray) -> np.ndarray:
    """A layer's (N, C) outputs as floats: acc * scale + bias for the off-chip Affine, else the integers."""
    if isinstance(getattr(layer, "act", None), Affine):
        return out * np.asarray(layer.act.scale, dtype=np.float64) + np.asarray(layer.act.bias, dtype=np.float64)
    return out.astype(np.float64)


def prepare_inputs(model: Model, x: np.ndarray, source: str = "inputs") -> np.ndarray:
    """Integer inputs (N, *input_shape) for the golden model and both simulators, so all see the same integers.

    Float arrays are quantized with the model's input quantizer; (N, prod) flat arrays are reshaped; integer arrays
    must lie in the input type. Anything else is a one-line error naming `source` and the expected shape.
    """
    x = np.asarray(x)
    shape = tuple(model.input_shape)
    if x.ndim >= 1 and x.shape[1:] != shape:
        squeezed = tuple(d for d in x.shape[1:] if d != 1) == tuple(d for d in shape if d != 1)
        if (x.ndim == 2 and x.shape[1] == int(np.prod(shape))) or (x.ndim > 2 and squeezed):
            x = x.reshape((x.shape[0], *shape))  # flat rows, or (N, C, L) for a 1-D model's (C, 1, L)
        else:
            raise A2QFlowError(f"{source}: shape {list(x.shape)} does not fit model {model.name!r}: expected a "
                               f"non-empty (N, {', '.join(map(str, shape))}) or (N, {int(np.prod(shape))})")
    if x.ndim < 2 or x.shape[0] == 0:
        raise A2QFlowError(f"{source}: shape {list(x.shape)}: expected a non-empty batch (N, "
                           f"{', '.join(map(str, shape))})")
    if np.issubdtype(x.dtype, np.floating):
        check_finite(x, source)  # NaN / inf has no quantized value (it would turn into INT64_MIN)
        return model.input_quant.quantize(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise A2QFlowError(f"{source}: dtype {x.dtype} is neither float (quantized with the model's input "
                           "quantizer) nor integer")
    t = model.input_quant.dtype
    if x.min() < t.min or x.max() > t.max:
        raise A2QFlowError(f"{source}: integer inputs span [{x.min()}, {x.max()}], outside the model's input type "
                           f"{t}; pass float inputs to quantize them")
    return x.astype(np.int64)
