"""One HLS emitter per IR layer kind (maxpool, dense, conv, dwconv, avgpool, add, requant), registered in `EMITTERS`
(a global average pool gets its own kernel, `emit_avgpool`).

An emitter appends the layer's `LayerParams` (rendered by params.h.j2) and its `Stage`s (rendered by calls.j2)
to the design being built, reading its input stream(s) (`b.inputs`; `b.cur` is the first) and leaving its output
stream in `b.cur`. Widths, folding and threshold integers come from
the plan; emitters only reorder weights into the streaming layout (HWC feature maps, (kh, kw, ic) windows) and
fold them for SIMD x PE. To support a new layer kind, add a function here and a call macro in calls.j2.
"""

from __future__ import annotations

from math import gcd
from typing import Callable

import numpy as np

from a2qflow.hw.compiler import dsp
from a2qflow.hw.compiler.ir import (
    AddLayer,
    ConvLayer,
    DenseLayer,
    DepthwiseConvLayer,
    IntType,
    Layer,
    MaxPoolLayer,
    RequantLayer,
    Thresholds,
    conv_weights_ohwi,
    dense_weights_hwc,
    is_global_pool,
)
from a2qflow.hw.compiler.ir import identifier as ir_identifier
from a2qflow.hw.hls import unrolled as hls_unrolled
from a2qflow.hw.hls.design import DesignBuilder, LayerParams, fold_thresholds, fold_weights


def identifier(index: int, name: str) -> str:
    """The C++ namespace of layer `index` (params_<ns>.h): the layer's identifier, prefixed by its position."""
    return f"l{index}_{ir_identifier(name)}"


def emit_maxpool(b: DesignBuilder, ns: str, layer: MaxPoolLayer, last: bool) -> None:
    """Max pooling: a window over the HWC stream, `BEAT` elements per beat in and out."""
    cur = b.cur
    if len(cur.shape) != 3 or tuple(layer.in_shape) != cur.shape:
        raise b.error("ir.json", f"maxpool {layer.name} expects input {list(layer.in_shape)} but receives "
                                 f"{list(cur.shape)}")
    c, ih, iw = layer.in_shape
    _, oh, ow = layer.out_shape
    consts = [("C", c), ("IH", ih), ("IW", iw), ("KH", layer.kernel[0]), ("KW", layer.kernel[1]),
              ("SH", layer.stride[0]), ("SW", layer.stride[1]), ("OH", oh), ("OW", ow), ("BEAT", cur.beat)]
    b.design.layers.append(LayerParams(
        ns, "maxpool", f"Layer {layer.name}: maxpool {layer.kernel[0]}x{layer.kernel[1]} stride "
                       f"{layer.stride[0]}x{layer.stride[1]} on {c}x{ih}x{iw} {layer.dtype}",
        consts, [("data_t", layer.dtype)]))
    out = b.new_stream(layer.dtype, cur.beat, (c, oh, ow))
    b.add_stage("maxpool", f"{layer.name}: max pooling {ih}x{iw} -> {oh}x{ow}, {c} channels", out, ns)


def emit_dense(b: DesignBuilder, ns: str, layer: DenseLayer, last: bool) -> None:
    """Fully connected: columns permuted to HWC after a feature map; the stream re-beaten to SIMD if needed."""
    lp, cur, K = b.plans[layer.name], b.cur, layer.K
    if cur.elems != K:
        raise b.error("ir.json", f"dense layer {layer.name} has K={K} but receives {cur.elems} values "
                                 f"({list(cur.shape)})")
    if len(cur.shape) == 3:
        w = dense_weights_hwc(layer, cur.shape)
        order = f" (columns in HWC order of the CxHxW = {cur.shape[0]}x{cur.shape[1]}x{cur.shape[2]} input)"
    else:
        w, order = layer.weights, ""
    if cur.beat != lp.simd:
        out = b.new_stream(cur.elem, lp.simd, cur.shape)
        b.add_stage("convert_width", f"{layer.name}: {cur.beat} -> {lp.simd} values per beat", out,
                    in_beat=cur.beat, out_beat=lp.simd, elems=K)
    _emit_mac(b, ns, layer, last, w, order, rows=1, out_shape=(layer.out_channels,), consts=[])


def _window_geometry(b: DesignBuilder, layer: ConvLayer) -> list[tuple[str, int]]:
    """Constants of a sliding window over the layer's (C, H, W) input, after checking the stream's shape."""
    cur = b.cur
    if len(cur.shape) != 3 or tuple(layer.in_shape) != cur.shape:
        raise b.error("ir.json", f"{layer.kind} {layer.name} expects input {list(layer.in_shape)} but receives "
                                 f"{list(cur.shape)}")
    ic, ih, iw = layer.in_shape
    kh, kw = layer.kernel
    _, oh, ow = layer.out_shape
    t, l_, bt, r = layer.pad
    return [("IC", ic), ("IH", ih), ("IW", iw), ("KH", kh), ("KW", kw), ("SH", layer.stride[0]),
            ("SW", layer.stride[1]), ("PT", t), ("PL", l_), ("PB", bt), ("PR", r), ("OH", oh), ("OW", ow),
            ("IN_BEAT", cur.beat)]


def emit_conv(b: DesignBuilder, ns: str, layer: ConvLayer, last: bool) -> None:
    """Convolution: a sliding-window generator emitting (kh, kw, ic) windows into a matrix-vector unit."""
    lp, cur = b.plans[layer.name], b.cur
    consts = _window_geometry(b, layer)
    ic, ih, iw = layer.in_shape
    kh, kw = layer.kernel
    oc, oh, ow = layer.out_shape
    win = b.new_stream(cur.elem, lp.simd, (layer.K,))
    b.add_stage("sliding_window", f"{layer.name}: sliding window {kh}x{kw} over {ic}x{ih}x{iw}, pad "
                                  f"{list(layer.pad)}", win, ns)
    _emit_mac(b, ns, layer, last, conv_weights_ohwi(layer),
              " (columns in (kh, kw, ic) order, as the sliding window emits them)", rows=oh * ow,
              out_shape=(oc, oh, ow), consts=consts)


def emit_depthwise(b: DesignBuilder, ns: str, layer: DepthwiseConvLayer, last: bool) -> None:
    """Depthwise convolution and average pooling (a depthwise layer with all-ones UINT1 weights: its accumulator is
    the window sum): a depthwise sliding window (PE channels x SIMD window positions per beat) into a
    vector-vector unit with K = KH * KW per channel."""
    lp, cur = b.plans[layer.name], b.cur
    consts = _window_geometry(b, layer)
    c, ih, iw = layer.in_shape
    kh, kw = layer.kernel
    _, oh, ow = layer.out_shape
    win = b.new_stream(cur.elem, lp.pe * lp.simd, (c * oh * ow * layer.K,))
    b.add_stage("dw_sliding_window", f"{layer.name}: depthwise window {kh}x{kw} over {c}x{ih}x{iw}, pad "
                                     f"{list(layer.pad)}, {lp.pe} channels x {lp.simd} positions per beat", win, ns)
    what = "window sum (all-ones weights)" if layer.kind == "avgpool" else "depthwise"
    _emit_mac(b, ns, layer, last, layer.weight_matrix(), f" ((kh, kw) order; {what})", rows=oh * ow,
              out_shape=(c, oh, ow), consts=consts, unit="vvau")


def emit_avgpool(b: DesignBuilder, ns: str, layer: DepthwiseConvLayer, last: bool) -> None:
    """Average pooling: a global pool (is_global_pool: the window is the whole unpadded frame) on its own
    accumulator kernel, any other window as a depthwise layer with all-ones weights (`emit_depthwise`)."""
    (emit_global_pool if is_global_pool(layer) else emit_depthwise)(b, ns, layer, last)


def emit_global_pool(b: DesignBuilder, ns: str, layer: DepthwiseConvLayer, last: bool) -> None:
    """Global average pool: global_pool (pool.hpp), C per-channel ACC_BITS sums of the frame's N = H * W pixels,
    then the thresholds, with no line buffer (FINN's GlobalAccPool). It takes the producer's beat width (re-beaten
    only when it does not divide C) and gives the same width, so the plan's SIMD / PE do not apply: the loop reads
    each pixel once, N * C / BEAT cycles at II = 1, and writes during the last pixel."""
    lp = b.plans[layer.name]
    _window_geometry(b, layer)  # checks the input shape
    _expect_input(b, layer)
    c, ih, iw = layer.in_shape
    beat = b.convert(b.cur, gcd(c, b.cur.beat), f"{layer.name} input").beat
    consts = [("K", layer.K), ("C", c), ("N", ih * iw), ("BEAT", beat), ("PE", beat), ("ACC_BITS", lp.acc_bits)]
    params = LayerParams(ns, layer.kind, "", consts, [("in_t", layer.in_type), ("weight_t", layer.w_type)],
                         acc_bits=lp.acc_bits)
    out_elem, act_note = _emit_activation(b, params, layer, last, pe=beat)
    params.types.append(("out_t", out_elem))
    params.header = (f"Layer {layer.name}: global avgpool {ih}x{iw}, C={c}, per-channel sums of {ih * iw} "
                     f"{layer.in_type} pixels, {beat} channels per beat; {_widths_note(lp)}; {act_note}")
    b.design.layers.append(params)
    out = b.new_stream(out_elem, beat, tuple(layer.out_shape))
    b.add_stage("global_pool", f"{layer.name}: global average pool {ih}x{iw}, {c} channels, {beat} per beat, "
                               f"ACC_BITS={lp.acc_bits} ({ih * iw * c // beat} cycles, no line buffer)", out, ns,
                mac_index=len(b.design.mac_names))
    b.design.mac_names.append(layer.name)


def emit_add(b: DesignBuilder, ns: str, layer: AddLayer, last: bool) -> None:
    """Residual add of two streams: acc = (a << KA) + (b << KB) at ACC_BITS, then thresholds; both inputs are
    re-beaten to the layer's PE."""
    a, c = b.inputs
    for s in (a, c):
        if tuple(s.shape) != tuple(layer.in_shape) or s.elem != layer.in_type:
            raise b.error("ir.json", f"add {layer.name} expects two {layer.in_type} inputs of shape "
                                     f"{list(layer.in_shape)} but receives {s.elem} {list(s.shape)}")
    pe = b.plans[layer.name].pe
    a = b.convert(a, pe, f"{layer.name} input {layer.inputs[0]}")
    c = b.convert(c, pe, f"{layer.name} input {layer.inputs[1]}")
    b.cur = a
    _emit_elementwise(b, ns, layer, last, [("KA", layer.shifts[0]), ("KB", layer.shifts[1])], inp2=c,
                      what=f"({layer.inputs[0]} << {layer.shifts[0]}) + ({layer.inputs[1]} << {layer.shifts[1]})")


def emit_requant(b: DesignBuilder, ns: str, layer: RequantLayer, last: bool) -> None:
    """Standalone requantization: thresholds on the integer itself (acc = x at ACC_BITS)."""
    if tuple(b.cur.shape) != tuple(layer.in_shape) or b.cur.elem != layer.in_type:
        raise b.error("ir.json", f"requant {layer.name} expects {layer.in_type} {list(layer.in_shape)} but "
                                 f"receives {b.cur.elem} {list(b.cur.shape)}")
    b.cur = b.convert(b.cur, b.plans[layer.name].pe, f"{layer.name} input")
    _emit_elementwise(b, ns, layer, last, [], inp2=None, what=f"requantize {layer.inputs[0]}")


def _emit_elementwise(b: DesignBuilder, ns: str, layer: AddLayer | RequantLayer, last: bool,
                      consts: list[tuple[str, int]], inp2, what: str) -> None:
    """Parameters and stage of an element-wise MAC layer (add, requant): PE elements per beat, thresholds."""
    lp = b.plans[layer.name]
    elems = int(np.prod(layer.in_shape))
    consts = [("ELEMS", elems), ("C", layer.out_channels), ("PE", lp.pe), ("ACC_BITS", lp.acc_bits)] + consts
    params = LayerParams(ns, layer.kind, "", consts, [("in_t", layer.in_type)], acc_bits=lp.acc_bits)
    out_elem, act_note = _emit_activation(b, params, layer, last)
    params.types.append(("out_t", out_elem))
    params.header = (f"Layer {layer.name}: {layer.kind}, {what}, {layer.in_type} inputs, shape "
                     f"{list(layer.in_shape)}; {_widths_note(lp)}; {act_note}")
    b.design.layers.append(params)
    out = b.new_stream(out_elem, lp.pe, tuple(layer.in_shape))
    b.add_stage(layer.kind, f"{layer.name}: {what}, {layer.out_channels} channels, PE={lp.pe}, "
                            f"ACC_BITS={lp.acc_bits} ({elems // lp.pe} cycles)", out, ns, inp2=inp2,
                mac_index=len(b.design.mac_names))
    b.design.mac_names.append(layer.name)


def _widths_note(lp) -> str:
    return (f"ACC_BITS={lp.acc_bits} (exact bound {lp.acc_bits_exact}, L1 {lp.acc_bits_l1}, data type "
            f"{lp.acc_bits_datatype}{', UNSAFE: below the exact bound' if lp.unsafe else ''})")


def _expect_input(b: DesignBuilder, layer: Layer) -> None:
    """The layer's declared input type must be what the stream in front of it carries (ir.json is inconsistent
    otherwise: a hand-edited or foreign file)."""
    if layer.in_type != b.cur.elem:
        raise b.error("ir.json", f"layer {layer.name} expects {layer.in_type} inputs but the previous stage "
                                 f"produces {b.cur.elem}")


def _emit_mac(b: DesignBuilder, ns: str, layer: DenseLayer | ConvLayer, last: bool, w: np.ndarray, order: str,
              rows: int, out_shape: tuple[int, ...], consts: list[tuple[str, int]], unit: str = "mvau") -> None:
    """The dot-product unit shared by dense, conv (mvau) and depthwise / pool (vvau): ACC_BITS accumulators, then
    thresholds or raw out."""
    lp = b.plans[layer.name]
    simd, pe, acc_bits, K, C = lp.simd, lp.pe, lp.acc_bits, layer.K, layer.out_channels
    _expect_input(b, layer)
    consts = [("K", K), ("C", C), ("SIMD", simd), ("PE", pe), ("ROWS", rows), ("ACC_BITS", acc_bits)] + consts
    params = LayerParams(ns, layer.kind, "", consts, [("in_t", layer.in_type), ("weight_t", layer.w_type)],
                         weights=fold_weights(w, simd, pe), weight_order=order, acc_bits=acc_bits,
                         weight_rom_bits=layer.w_type.bits + (0 if layer.w_type.signed else 1))
    out_elem, act_note = _emit_activation(b, params, layer, last)
    params.types.append(("out_t", out_elem))
    params.header = (f"Layer {layer.name}: {layer.kind}, K={K}, C={C}, {layer.in_type} inputs x {layer.w_type} "
                     f"weights; {_widths_note(lp)}; {act_note}")
    b.design.layers.append(params)
    out = b.new_stream(out_elem, pe, out_shape)
    if lp.architecture == "unrolled":  # constant-weight unrolled dense layer (dense_unrolled.hpp)
        hls_unrolled.add_stage(b, ns, lp, out)
    elif lp.dsp_lanes > 1 and unit == "mvau":  # dsp_lanes channels per multiplier (hw/compiler/dsp.py)
        _pack_weights(params, layer, lp, w)
        b.add_stage("mvau_packed", f"{layer.name}: {C} channels x K={K}, SIMD={simd} PE={pe}, ACC_BITS={acc_bits}, "
                                   f"{lp.dsp_lanes} lanes per multiplier ({lp.dsp_family}) "
                                   f"({(C // pe) * (K // simd) * rows} cycles)", out, ns,
                    mac_index=len(b.design.mac_names))
    else:
        b.add_stage(unit, f"{layer.name}: {C} channels x K={K}, SIMD={simd} PE={pe}, ACC_BITS={acc_bits} "
                          f"({(C // pe) * (K // simd) * rows} cycles)", out, ns, mac_index=len(b.design.mac_names))
    b.design.mac_names.append(layer.name)


def _pack_weights(params: LayerParams, layer: DenseLayer | ConvLayer, lp, w: np.ndarray) -> None:
    """mvau_packed's weight table: weights[g][nf*SF + sf][s], the packed operand of group g (hw/compiler/dsp.py)."""
    lanes, simd, pe, acc_bits = lp.dsp_lanes, lp.simd, lp.pe, lp.acc_bits
    nf, sf, groups = layer.out_channels // pe, layer.K // simd, -(-pe // lanes)
    packed = dsp.pack_channels(w, pe, lanes, acc_bits)  # (nf, groups, K)
    aw = dsp.packed_operand_bits(lanes, acc_bits, dsp.weight_operand_bits(layer.w_type.bits, w))
    params.weights = packed.reshape(nf, groups, sf, simd).transpose(1, 0, 2, 3).reshape(groups, nf * sf, simd)
    params.weight_rom_bits, params.weight_rows = aw, "GROUPS"
    params.constants += [("LANES", lanes), ("GROUPS", groups), ("AW", aw)]
    params.header += f"; {lanes} lanes per multiplier ({lp.dsp_family}: {lp.dsp_proof})"


def _emit_activation(b: DesignBuilder, params: LayerParams, layer: DenseLayer | ConvLayer, last: bool,
                     pe: int | None = None) -> tuple[IntType, str]:
    """Thresholds from the plan (fitted once to ACC_BITS) or, for the last layer only, raw accumulators out; the
    thresholds are folded for `pe` channels per beat (the plan's PE unless the kernel gives another width)."""
    lp = b.plans[layer.name]
    if not isinstance(layer.act, Thresholds):
        if not last:
            raise b.error("ir.json", f"layer {layer.name} ends in a float affine but is not the last layer; only the "
                                     "last layer may leave the integer domain")
        return IntType(lp.acc_bits, True), "raw accumulators out (affine off-chip)"
    values, thr_bits = lp.thresholds, lp.thr_bits
    if values is None or values.shape[0] != layer.out_channels:
        raise b.error("plan.npz", f"layer {layer.name} has no thresholds for its {layer.out_channels} channels; "
                                  "re-run `a2qflow compile`")
    if values.shape[1] == 0:
        raise b.error("ir.npz", f"layer {layer.name} has no thresholds (L = 0)")
    params.constants += [("THR_BITS", thr_bits), ("L", int(values.shape[1])), ("OUT_BASE", int(layer.act.out_base))]
    params.thresholds = fold_thresholds(values, pe or lp.pe)
    return layer.act.out_type, f"{values.shape[1]} thresholds x {thr_bits} bits -> {layer.act.out_type}"


Emitter = Callable[[DesignBuilder, str, Layer, bool], None]
EMITTERS: dict[str, Emitter] = {"maxpool": emit_maxpool, "dense": emit_dense, "conv": emit_conv,
                                 "dwconv": emit_depthwise, "avgpool": emit_avgpool, "add": emit_add,
                                 "requant": emit_requant}
