"""Generate the RTL backend's design for a BUILD folder: BUILD/rtl/ with Verilog, memory files and a manifest.

The datapath mirrors the HLS templates: per MAC layer a SIMD x PE multiply array at full product width, an adder
tree and accumulator at the plan's acc_bits, and multi-thresholds at thr_bits read from memories. Widths and folding
come only from plan.json; threshold integers come from the plan (fitted once to the plan's width), the very integers
`hw.reference.run(model, x, plan.acc_bits())` uses, so RTL simulation can be compared with it bit for bit.

Layers stream in HWC order, several elements per beat where the units allow it (docs/rtl.md): a conv is a
sliding-window generator (one pixel in, one whole window out per beat) feeding an MVAU with weights in (kh, kw, ic)
order, SIMD elements per beat in and PE results per beat out; max pooling is a sliding-window generator feeding a
channel-parallel max unit; a dense layer after a conv / pool gets its columns permuted to HWC and SIMD-wide beats.
Width converters (a2q_s2p / a2q_p2s, after FINN's StreamingDataWidthConverter) sit only where two neighbours
disagree. Dense layers fed by a vector stream (an MLP) keep one element per beat in and out, so an MLP's design is
the one its published LUT counts were measured on. A depthwise conv or an average pool (its window sum) is a
sliding-window generator feeding a VVAU, except a global average pool (the window is the whole frame), which is a
per-channel accumulator in front of the thresholds (a2q_gap); a residual add and a requant are element-wise
threshold units. The model is a graph: one stream per tensor, a duplicator where a tensor has several readers,
and a skip FIFO in front of an add input whose branch does not buffer what the other one holds back
(hw/compiler/skip_fifos.py). The last layer's outputs leave in HWC order as well; the manifest says how to put them
back into the golden model's CHW order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from math import gcd
from pathlib import Path

import numpy as np
from jinja2 import Environment, StrictUndefined

from a2qflow.hw.cache_key import content_key
from a2qflow.hw.compiler import dsp
from a2qflow.hw.compiler import skip_fifos as graph
from a2qflow.hw.compiler.ir import (
    INPUT,
    AddLayer,
    Affine,
    ConvLayer,
    DenseLayer,
    DepthwiseConvLayer,
    IntType,
    MaxPoolLayer,
    Model,
    RequantLayer,
    Thresholds,
    conv_weights_ohwi,
    dense_weights_hwc,
    identifier,
    is_global_pool,
)
from a2qflow.hw.compiler.plan import Plan, load_build
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, staged_dir
from a2qflow.hw.rtl import unrolled

TOP = "a2q_top"
LIBRARY = ("a2q_mvau.v", "a2q_vvau.v", "a2q_swg.v", "a2q_pool.v", "a2q_thr.v", "a2q_stream.v", "a2q_adapt.v",
           "a2q_mvau_packed.v")
# `include "<fragment>.vh" on a line of its own: a piece of a unit's body that several units share
_INCLUDE = re.compile(r'^[ \t]*`include "(a2q_[a-z0-9_]+\.vh)"[ \t]*$', re.MULTILINE)


def library_text(name: str) -> str:
    """A file of the Verilog library / templates shipped in the hw.rtl package, its `include "a2q_*.vh" lines
    replaced by the fragments' text.

    The folded MAC units (a2q_mvau, a2q_mvau_packed, a2q_vvau) share their fold control, threshold and output code
    through such fragments (hw/rtl/verilog/a2q_fold_*.vh, one copy each), and the library's units their parameter /
    port lists through the macros of a2q_iface.vh (include-guarded, so the files read together define them once).
    Expanding them here keeps every generated
    file self-contained (BUILD/rtl reads, simulates and synthesises without include paths, and content hashes of
    the sources cover the shared code) and leaves each unit the exact token stream it had when it carried its own
    copies, so synthesis gives the same netlist (benchmarks/results/dedup_equivalence.md; sharing through
    submodules did not: yosys' optimisation is order-sensitive and moved the demo's LUTs).
    """
    folder = resources.files("a2qflow.hw.rtl.verilog")
    text = folder.joinpath(name).read_text()
    for _ in range(4):  # a fragment may include fragments (a2q_fold_front.vh); nesting is shallow
        text = _INCLUDE.sub(lambda m: folder.joinpath(m.group(1)).read_text().rstrip("\n"), text)
    return text


def input_digest(build: Path) -> str:
    """Key of everything the generated design depends on: decides when BUILD/rtl is stale. The IR and plan, the
    Verilog library and templates, and the generator's own code (this module and every a2qflow module it imports),
    so an edit to the generator never reuses Verilog it would no longer write."""
    library = resources.files("a2qflow.hw.rtl.verilog")
    fragments = sorted(f.name for f in library.iterdir() if f.name.endswith(".vh"))  # pasted in by library_text
    return content_key(files=[build / n for n in ("ir.json", "ir.npz", "plan.json")]
                       + [library / n for n in LIBRARY + ("a2q_top.v.j2", "a2q_unrolled.v.j2", *fragments)],
                       code_modules=[__name__])


def _hex_words(values: np.ndarray, bits: int, depth: int) -> str:
    """$readmemh text: row r of `values` (elements as `bits`-bit two's complement, element 0 at the low bits)
    is word r; rows up to `depth` are zero."""
    rows, n = values.shape
    width = n * bits
    digits = max(1, (width + 3) // 4)
    mask = (1 << bits) - 1
    lines = []
    for r in range(rows):
        word = 0
        for i, v in enumerate(values[r].tolist()):
            word |= (int(v) & mask) << (i * bits)
        lines.append(f"{word:0{digits}x}")
    lines.extend(["0" * digits] * (depth - rows))
    return "\n".join(lines) + "\n"


@dataclass
class _LayerRTL:
    name: str
    kind: str
    module: str
    inst: str
    in_bits: int
    out_w: int
    summary: str
    swg: dict | None = None
    mvau: dict | None = None
    pool: dict | None = None
    mem_files: dict[str, str] = field(default_factory=dict)  # file name -> text
    in_lanes: int = 1  # elements per input beat (K for an unrolled layer fed a whole vector)
    out_lanes: int = 1  # elements per output beat (C for an unrolled layer)
    body: str | None = None  # the whole module, for unrolled layers
    arch: str = "folded"
    unrolled: dict | None = None  # adders, signed-digit terms, pipeline depth of an unrolled layer
    vvau: dict | None = None  # depthwise conv / average pool: a2q_vvau parameters
    gap: dict | None = None  # global average pool: a2q_gap parameters (no line buffer, no VVAU)
    elem: dict | None = None  # add / requant: a2q_add / a2q_requant parameters
    fifo: list[int] = field(default_factory=list)  # add: skip FIFO depth in front of each input (0: none)
    in_nets: list[str] = field(default_factory=list)  # the streams it reads, in input order (set by describe)
    chain: list[dict] = field(default_factory=list)  # width converters / line buffer in front of the unit
    prelude: str | None = None  # a module the wrapper instantiates (an unrolled conv's constant-weight core)
    core: str | None = None  # the unit is that module
    out_net: str = ""


def _swg_params(c: int, h: int, w: int, kernel, stride, pad) -> dict:
    t, l, b, r = pad
    return dict(C=c, H=h, W=w, KH=kernel[0], KW=kernel[1], SH=stride[0], SW=stride[1], PT=t, PL=l, PB=b, PR=r)


def swg_memory(swg: dict, bits: int) -> dict:
    """The line buffer a2q_swg builds for these parameters, next to the two-bank frame buffer it replaced (bits).

    Mirrors a2q_swg.v: KH rows of the frame (a pixel overwrites the one KH rows above it; a window spans at most
    SPAN = (KH - 1) * W + KW pixels), stored once in `banks` = KH x KW one-write / one-read-port banks, bank
    (y mod KH, x mod KW) holding `bank_depth` = ceil(W / KW) pixels of C elements. `elements` and `bits` count that
    store (`span` counts the elements a window can span); `banked_bits` is the memory built, equal to `bits` since
    each pixel is held once (the previous unit kept KH x KW whole copies); `window_bits` is the output register that
    holds one whole window (the banks' registered reads).
    """
    c, kh, kw, w = swg["C"], swg["KH"], swg["KW"], swg["W"]
    span = (kh - 1) * w + kw
    depth = -(-w // kw)
    stored = kh * kw * depth * c
    frame = c * swg["H"] * w
    banks = kh * kw
    return dict(elements=stored, bits=stored * bits, span=span * c, frame_buffer_bits=2 * frame * bits,
                window_bits=banks * c * bits, banks=banks, banked_bits=stored * bits, rows=kh, bank_depth=depth)


def width_converters(src: str, lanes_from: int, lanes_to: int, bits: int, tag: str) -> list[dict]:
    """a2q_s2p / a2q_p2s stages turning `lanes_from`-element beats into `lanes_to`-element beats (order kept).

    FINN's StreamingDataWidthConverter is the reference: one stage when one width divides the other, else two
    through their greatest common divisor. Each stage reads the stream `src` (then the previous stage's).
    """
    if lanes_from == lanes_to:
        return []
    if lanes_to % lanes_from and lanes_from % lanes_to:
        g = gcd(lanes_from, lanes_to)
        first = width_converters(src, lanes_from, g, bits, tag + "a")
        return first + width_converters(first[-1]["net"], g, lanes_to, bits, tag + "b")
    up = lanes_to > lanes_from
    chunk = lanes_from if up else lanes_to
    return [dict(kind="s2p" if up else "p2s", N=max(lanes_from, lanes_to) // chunk, BITS=chunk * bits, src=src,
                 net=f"dwc{tag}", inst=f"u_dwc{tag}", out_bits=lanes_to * bits)]


def _window_chain(swg: dict, lanes: int, unit_lanes: int, bits: int) -> list[dict]:
    """In front of a windowed unit: to one pixel per beat, the line buffer (a window per beat), to the unit's
    `unit_lanes` elements per beat."""
    pre = width_converters("in", lanes, swg["C"], bits, "0")
    stage = dict(kind="swg", src=pre[-1]["net"] if pre else "in", net="win", inst="u_swg",
                 out_bits=swg["KH"] * swg["KW"] * swg["C"] * bits)
    return pre + [stage] + width_converters("win", swg["KH"] * swg["KW"] * swg["C"], unit_lanes, bits, "1")


def _check_mac(layer: DenseLayer | ConvLayer, plan: Plan, elem: IntType):
    """The layer's plan entry, after the one check the IR cannot make alone: its input matches the stream.

    Names, kind, K, C, folding, widths and the architecture were checked against the IR by `load_build`.
    """
    lp = plan.layer(layer.name)
    if layer.in_type.bits != elem.bits or layer.in_type.signed != elem.signed:
        raise A2QFlowError(f"layer {layer.name}: input type {layer.in_type} does not match the {elem} elements the "
                           "previous stage produces; the IR is inconsistent, re-run `a2qflow compile`")
    return lp


@dataclass
class _Act:
    """A MAC layer's activation as the hardware computes it."""

    thresholds: np.ndarray | None  # fitted (C, L), None for the raw-accumulator last layer
    n_thr: int
    thr_bits: int
    out_w: int
    out_base: int
    next_elem: IntType
    note: str


def _activation(layer: DenseLayer | ConvLayer, lp, P: int, is_last: bool) -> _Act:
    if isinstance(layer.act, Thresholds):
        t, thr_bits = lp.thresholds, lp.thr_bits  # fitted to acc_bits once, when the plan was made
        if t is None or t.shape[0] != layer.out_channels:
            raise A2QFlowError(f"plan.npz layer {layer.name}: no thresholds for its {layer.out_channels} channels; "
                               "re-run `a2qflow compile`")
        n_thr = int(t.shape[1])
        out_t = layer.act.out_type
        if n_thr == 0:
            raise A2QFlowError(f"layer {layer.name}: a threshold activation with no thresholds is a constant output")
        if layer.act.out_base < out_t.min or layer.act.out_base + n_thr > out_t.max:
            raise A2QFlowError(f"layer {layer.name}: out_base {layer.act.out_base} + {n_thr} thresholds does not fit "
                               f"its output type {out_t}")
        return _Act(t, n_thr, thr_bits, out_t.bits, layer.act.out_base, out_t,
                    f"{n_thr} thresholds x {thr_bits} bit -> {out_t}")
    if isinstance(layer.act, Affine):
        if not is_last:
            raise A2QFlowError(f"layer {layer.name}: ends in a float affine but is not the last layer; only the last "
                               "layer's accumulators may leave the chip unthresholded")
        return _Act(None, 0, P, P, 0, IntType(P, True), f"raw INT{P} accumulators out (affine off-chip)")
    raise A2QFlowError(f"layer {layer.name}: unsupported activation {type(layer.act).__name__}")


def input_shapes(model: Model) -> dict[str, tuple[int, ...]]:
    """The shape of every layer's (first) input as the generated design streams it (what `describe` walks through).

    Why a function of its own: the channel-group synthesis (hw/synth/split.py) must lay out an unrolled layer's
    weights exactly as the layer generator does, and that layout depends on the shape the layer receives.
    """
    shapes = graph.output_shapes(model)
    return {layer.name: shapes[layer.inputs[0]] for layer in model.layers}


def dense_weight_matrix(layer: DenseLayer, shape: tuple[int, ...]) -> np.ndarray:
    """(C, K) integer weights in the order a dense layer's input elements arrive: HWC after a (C, H, W) stage."""
    return np.asarray(dense_weights_hwc(layer, shape) if len(shape) == 3 else layer.weights, dtype=np.int64)


def render_unrolled(layer: DenseLayer, lp, wm: np.ndarray, in_lanes: int, is_last: bool, module: str, summary: str,
                    channels: tuple[int, int] | None = None) -> unrolled.UnrolledRTL:
    """The constant-weight module of an unrolled dense layer, or of its channels [c0, c1) alone.

    One function for the layer generator and the channel-group synthesis, so a group is the same logic as its
    channels in the whole layer (hw/synth/split.py sums the groups' cells).
    """
    act = _activation(layer, lp, lp.acc_bits, is_last)
    c0, c1 = channels or (0, layer.out_channels)
    thr = None if act.thresholds is None else act.thresholds[c0:c1]
    return unrolled.render(module, wm[c0:c1], layer.in_type, lp.acc_bits, thr, act.out_w,
                           None if thr is None else act.out_base, in_lanes, lp.pipeline_depth,
                           library_text("a2q_unrolled.v.j2"), summary, uniform_widths=lp.tree_widths == "acc_bits")


def _folded_memories(name: str, wm: np.ndarray, act: _Act, simd: int, pe: int,
                     w_bits: int) -> tuple[dict[str, str], str, str]:
    """Weight and threshold $readmemh images of a folded MVAU / VVAU (the same layout for both, see a2q_mvau.v)."""
    (C, K) = wm.shape
    sf, nf = K // simd, C // pe
    # word nf*SF + sf: PE lanes x SIMD elements, lane p element s at (p*SIMD + s)*W_BITS
    words = wm.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    wfile = f"{identifier(name)}_weights.mem"
    mem = {wfile: _hex_words(words, w_bits, max(2, nf * sf))}
    tfile = f"{identifier(name)}_thresholds.mem" if act.n_thr else "none.mem"
    if act.n_thr:
        mem[tfile] = _hex_words(act.thresholds.reshape(nf, pe * act.n_thr), act.thr_bits, max(2, nf))
    return mem, wfile, tfile


def _mac_layer(layer: DenseLayer | ConvLayer, plan: Plan, shape: tuple[int, ...], elem: IntType, is_last: bool,
               module: str, inst: str, in_lanes: int = 1) -> tuple[_LayerRTL, tuple[int, ...], IntType]:
    lp = _check_mac(layer, plan, elem)
    K, C, simd, pe, P = layer.K, layer.out_channels, lp.simd, lp.pe, lp.acc_bits
    if layer.kind == "dense":
        if int(np.prod(shape)) != K:
            raise A2QFlowError(f"layer {layer.name}: K={K} but its input has {int(np.prod(shape))} elements "
                               f"(shape {shape})")
        wm = dense_weight_matrix(layer, shape)
        swg = None
        out_shape: tuple[int, ...] = (C,)
    else:
        if tuple(layer.in_shape) != tuple(shape):
            raise A2QFlowError(f"layer {layer.name}: in_shape {tuple(layer.in_shape)} does not match the previous "
                               f"stage's output {tuple(shape)}")
        wm = conv_weights_ohwi(layer)
        swg = _swg_params(*layer.in_shape, layer.kernel, layer.stride, layer.pad)
        out_shape = layer.out_shape
    wm = np.asarray(wm, dtype=np.int64)
    if wm.size and (wm.min() < layer.w_type.min or wm.max() > layer.w_type.max):
        raise A2QFlowError(f"layer {layer.name}: weights span [{wm.min()}, {wm.max()}], outside its weight type "
                           f"{layer.w_type}")
    act = _activation(layer, lp, P, is_last)
    unsafe = _unsafe_note(lp)
    if lp.architecture == "unrolled" and swg is not None:
        rtl = _unrolled_conv(layer, lp, wm, swg, elem, act, is_last, module, inst, unsafe, in_lanes)
        return rtl, out_shape, act.next_elem
    if lp.architecture == "unrolled":
        sizing = "every adder ACC_BITS wide" if lp.tree_widths == "acc_bits" else "adders sized to exact ranges"
        summary = (f"dense K={K} C={C}, unrolled (constant weights, {sizing}, {lp.pipeline_depth} pipeline "
                   f"stage(s)), "
                   f"{layer.in_type} inputs, ACC_BITS={P}{unsafe}, {act.note}")
        whole = in_lanes in (1, K)  # else pixel beats (after a conv / pool): a2q_s2p gathers the vector
        u = render_unrolled(layer, lp, wm, in_lanes if whole else K, is_last, module if whole else f"{module}_core",
                            summary)
        rtl = _LayerRTL(layer.name, layer.kind, module, inst, elem.bits, act.out_w, summary, in_lanes=in_lanes,
                        out_lanes=C, body=u.body if whole else None, arch="unrolled",
                        unrolled=dict(adders=u.adders, terms=u.terms, depth=u.depth, levels=u.max_level,
                                      thr_bits=act.thr_bits, n_thr=act.n_thr, in_lanes=in_lanes))
        if not whole:
            rtl.prelude, rtl.core = u.body, f"{module}_core"
            rtl.unrolled["core"] = rtl.core  # hw/synth/split.py black-boxes only this; the gather stays in the top run
            rtl.chain = width_converters("in", in_lanes, K, elem.bits, "0")
        return rtl, out_shape, act.next_elem
    mem, wfile, tfile = _folded_memories(layer.name, wm, act, simd, pe, layer.w_type.bits)
    packed = {}
    if lp.dsp_lanes > 1:  # a2q_mvau_packed: the words hold one packed operand per group and SIMD element
        words, aw = packed_weight_words(wm, C // pe, pe, K // simd, simd, lp.dsp_lanes, P, layer.w_type.bits)
        mem[wfile] = _hex_words(words, aw, max(2, (C // pe) * (K // simd)))
        packed = dict(LANES=lp.dsp_lanes, AW=aw)
    mvau = dict(K=K, C=C, SIMD=simd, PE=pe, IN_SIGNED=int(layer.in_type.signed), W_BITS=layer.w_type.bits,
                ACC_BITS=P, N_THR=act.n_thr, THR_BITS=act.thr_bits, OUT_BASE=act.out_base, WEIGHT_FILE=wfile,
                THR_FILE=tfile, LANES=lp.dsp_lanes, **({"AW": packed["AW"]} if packed else {}))
    lanes = f", {lp.dsp_lanes} lanes per multiplier ({lp.dsp_family})" if packed else ""
    chain, mvau["IN_LANES"], mvau["OUT_LANES"] = _mvau_beats(swg, shape, in_lanes, simd, pe, bool(packed), elem.bits)
    beats = (f", {mvau['IN_LANES']} element(s) in / {mvau['OUT_LANES']} out per beat"
             if mvau["IN_LANES"] > 1 or mvau["OUT_LANES"] > 1 else "")
    summary = (f"{layer.kind} K={K} C={C}, SIMD {simd} x PE {pe}, {layer.in_type} x {layer.w_type} products, "
               f"ACC_BITS={P}{unsafe}{lanes}{beats}, {act.note}")
    rtl = _LayerRTL(layer.name, layer.kind, module, inst, elem.bits, act.out_w, summary, swg=swg, mvau=mvau,
                    mem_files=mem, in_lanes=in_lanes, out_lanes=mvau["OUT_LANES"], chain=chain)
    return rtl, out_shape, act.next_elem


def _serial_chain(lanes: int, bits: int) -> list[dict]:
    """A vector stream cut into one element per beat for a unit that takes one (a2q_p2s), as an MLP has it."""
    if lanes == 1:
        return []
    return [dict(kind="p2s", N=lanes, BITS=bits, src="in", net="ser", inst="u_p2s", out_bits=bits)]


def _mvau_beats(swg: dict | None, shape: tuple[int, ...], lanes: int, simd: int, pe: int, packed: bool,
                bits: int) -> tuple[list[dict], int, int]:
    """An MVAU's beat widths and the stages in front of it: (chain, input lanes, output lanes).

    A conv takes SIMD-wide window beats and gives PE-wide ones; a dense layer behind a (C, H, W) stage takes
    SIMD-wide beats and gives one result per beat; a dense layer on a vector (an MLP) and the DSP-packed unit
    (a2q_mvau_packed) take and give one element per beat.
    """
    if swg is not None:
        unit_in, unit_out = (1, 1) if packed else (simd, pe)
        return _window_chain(swg, lanes, unit_in, bits), unit_in, unit_out
    if len(shape) == 3 and not packed:
        return width_converters("in", lanes, simd, bits, "0"), simd, 1
    return _serial_chain(lanes, bits), 1, 1


def packed_weight_words(wm: np.ndarray, nf: int, pe: int, sf: int, simd: int, lanes: int, acc_bits: int,
                        weight_bits: int) -> tuple[np.ndarray, int]:
    """a2q_mvau_packed's weight memory: word nf*SF + sf, group g element s = sum_l w[nf*PE + g*L + l] << (l*P).

    Returns the (NF*SF, GROUPS*SIMD) packed operands and their signed width AW (hw/compiler/dsp.py's operand rule,
    from these weights: the extra bit only when a weight is -2^(M-1)). Padding lanes of the last group are 0.
    """
    groups = -(-pe // lanes)
    packed = dsp.pack_channels(wm, pe, lanes, acc_bits)  # (nf, groups, K)
    words = packed.reshape(nf, groups, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, groups * simd)
    aw = dsp.packed_operand_bits(lanes, acc_bits, dsp.weight_operand_bits(weight_bits, wm))
    return words, aw


def _unrolled_conv(layer: ConvLayer, lp, wm: np.ndarray, swg: dict, elem: IntType, act: _Act, is_last: bool,
                   module: str, inst: str, unsafe: str, in_lanes: int) -> _LayerRTL:
    """A constant-weight conv: a2q_swg -> the unrolled dense unit on each (kh, kw, c) window.

    The unrolled module (render_unrolled, the dense layers' generator) takes the line buffer's whole window as one
    K-lane beat and computes all C channels of one window per clock; its C-lane beats are one output pixel, the
    beat the next line buffer or pool takes.
    """
    K, C = layer.K, layer.out_channels
    sizing = "every adder ACC_BITS wide" if lp.tree_widths == "acc_bits" else "adders sized to exact ranges"
    summary = (f"conv K={K} C={C}, unrolled (constant weights on each window, {sizing}, {lp.pipeline_depth} "
               f"pipeline stage(s)), one window per clock, {layer.in_type} inputs, ACC_BITS={lp.acc_bits}{unsafe}, "
               f"{act.note}")
    u = render_unrolled(layer, lp, wm, K, is_last, f"{module}_core", summary)
    return _LayerRTL(layer.name, layer.kind, module, inst, elem.bits, act.out_w, summary, swg=swg, arch="unrolled",
                     in_lanes=in_lanes, out_lanes=C, chain=_window_chain(swg, in_lanes, K, elem.bits),
                     prelude=u.body, core=f"{module}_core",
                     unrolled=dict(adders=u.adders, terms=u.terms, depth=u.depth, levels=u.max_level,
                                   thr_bits=act.thr_bits, n_thr=act.n_thr, in_lanes=K, core=f"{module}_core"))


def _pool_layer(layer: MaxPoolLayer, shape: tuple[int, ...], elem: IntType, module: str, inst: str,
                lanes: int) -> tuple[_LayerRTL, tuple[int, ...], IntType]:
    """Max pooling: a2q_swg (one pixel in, one window out per beat) -> a2q_pool (one output pixel per beat)."""
    if tuple(layer.in_shape) != tuple(shape):
        raise A2QFlowError(f"layer {layer.name}: in_shape {tuple(layer.in_shape)} does not match the previous "
                           f"stage's output {tuple(shape)}")
    if layer.dtype.bits != elem.bits or layer.dtype.signed != elem.signed:
        raise A2QFlowError(f"layer {layer.name}: dtype {layer.dtype} does not match the {elem} elements it receives")
    c = layer.in_shape[0]
    swg = _swg_params(*layer.in_shape, layer.kernel, layer.stride, (0, 0, 0, 0))
    kk = layer.kernel[0] * layer.kernel[1]
    pool = dict(C=c, KK=kk, SIGNED=int(layer.dtype.signed))
    summary = (f"maxpool {layer.kernel[0]}x{layer.kernel[1]} stride {layer.stride[0]}x{layer.stride[1]} on {elem}, "
               f"one window in / {c} channels out per beat")
    return (_LayerRTL(layer.name, "maxpool", module, inst, elem.bits, elem.bits, summary, swg=swg, pool=pool,
                      in_lanes=lanes, out_lanes=c, chain=_window_chain(swg, lanes, kk * c, elem.bits)),
            layer.out_shape, elem)


def _vvau_layer(layer: DepthwiseConvLayer, plan: Plan, shape: tuple[int, ...], elem: IntType, is_last: bool,
                module: str, inst: str, lanes: int) -> tuple[_LayerRTL, tuple[int, ...], IntType]:
    """A depthwise conv or average pool: a2q_swg -> a2q_p2s -> a2q_vvau (per channel K = KH * KW; a pool's weights
    are 1); the VVAU takes and gives one element per beat."""
    lp = _check_mac(layer, plan, elem)
    if tuple(layer.in_shape) != tuple(shape):
        raise A2QFlowError(f"layer {layer.name}: in_shape {tuple(layer.in_shape)} does not match the previous "
                           f"stage's output {tuple(shape)}")
    K, C, simd, pe, P = layer.K, layer.out_channels, lp.simd, lp.pe, lp.acc_bits
    wm = np.asarray(layer.weight_matrix(), dtype=np.int64)  # (C, KH*KW) in (kh, kw) order, a2q_swg's order
    if wm.size and (wm.min() < layer.w_type.min or wm.max() > layer.w_type.max):
        raise A2QFlowError(f"layer {layer.name}: weights span [{wm.min()}, {wm.max()}], outside its weight type "
                           f"{layer.w_type}")
    act = _activation(layer, lp, P, is_last)
    if is_global_pool(layer):
        return _gap_layer(layer, lp, act, elem, module, inst, lanes), layer.out_shape, act.next_elem
    mem, wfile, tfile = _folded_memories(layer.name, wm, act, simd, pe, layer.w_type.bits)
    vvau = dict(K=K, C=C, SIMD=simd, PE=pe, IN_SIGNED=int(layer.in_type.signed), W_BITS=layer.w_type.bits,
                W_SIGNED=int(layer.w_type.signed), ACC_BITS=P, N_THR=act.n_thr, THR_BITS=act.thr_bits,
                OUT_BASE=act.out_base, WEIGHT_FILE=wfile, THR_FILE=tfile)
    unsafe = _unsafe_note(lp)
    what = "window sum (all-ones weights)" if layer.kind == "avgpool" else f"{layer.w_type} weights"
    summary = (f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]} stride {layer.stride[0]}x{layer.stride[1]} C={C}, "
               f"K={K} per channel, SIMD {simd} x PE {pe}, {layer.in_type} inputs, {what}, ACC_BITS={P}{unsafe}, "
               f"{act.note}")
    swg = _swg_params(*layer.in_shape, layer.kernel, layer.stride, layer.pad)
    rtl = _LayerRTL(layer.name, layer.kind, module, inst, elem.bits, act.out_w, summary, swg=swg, vvau=vvau,
                    mem_files=mem, in_lanes=lanes, chain=_window_chain(swg, lanes, 1, elem.bits))
    return rtl, layer.out_shape, act.next_elem


def _unsafe_note(lp) -> str:
    """The summary's warning for a layer built below its exact bound (hw.allow_unsafe), or ""."""
    return f" (UNSAFE: below exact bound {lp.acc_bits_exact})" if lp.unsafe else ""


def _thr_stage_memory(name: str, act: _Act, channels: int) -> tuple[str, dict[str, str]]:
    """The $readmemh threshold image of an a2q_thr stage (a2q_add, a2q_requant, a2q_gap): one word of N_THR
    thresholds per channel, 2^clog2(C) words as a2q_thr declares; ("none.mem", {}) without thresholds."""
    if not act.n_thr:
        return "none.mem", {}
    tfile = f"{identifier(name)}_thresholds.mem"
    return tfile, {tfile: _hex_words(act.thresholds, act.thr_bits, 1 << max(1, (channels - 1).bit_length()))}


def _gap_layer(layer: DepthwiseConvLayer, lp, act: _Act, elem: IntType, module: str, inst: str,
               lanes: int) -> _LayerRTL:
    """A global average pool: a2q_gap, C per-channel ACC_BITS sums over the frame, then a2q_thr's thresholds (the
    residual add's and requant's stage), one element per beat in (a2q_p2s where the producer gives more) and out."""
    C, (_, h, w), P = layer.out_channels, layer.in_shape, lp.acc_bits
    tfile, mem = _thr_stage_memory(layer.name, act, C)
    gap = dict(C=C, N=h * w, IN_SIGNED=int(layer.in_type.signed), ACC_BITS=P, N_THR=act.n_thr,
               THR_BITS=act.thr_bits, OUT_BASE=act.out_base, THR_FILE=tfile, SIMD=1, PE=1)
    unsafe = _unsafe_note(lp)
    summary = (f"avgpool global {h}x{w} C={C}: per-channel sums of {h * w} {layer.in_type} pixels (a2q_gap, no line "
               f"buffer), one element per beat, ACC_BITS={P}{unsafe}, {act.note}")
    return _LayerRTL(layer.name, layer.kind, module, inst, elem.bits, act.out_w, summary, gap=gap, mem_files=mem,
                     in_lanes=lanes, chain=width_converters("in", lanes, 1, elem.bits, "0"))


def _elementwise_layer(layer: AddLayer | RequantLayer, plan: Plan, shapes: list[tuple[int, ...]],
                       elems: list[IntType], is_last: bool, module: str,
                       inst: str) -> tuple[_LayerRTL, tuple[int, ...], IntType]:
    """A residual add (two streams joined, shifted, summed at ACC_BITS) or a requant: then a2q_thr's thresholds."""
    for shape, elem in zip(shapes, elems):
        lp = _check_mac(layer, plan, elem)
        if tuple(layer.in_shape) != tuple(shape):
            raise A2QFlowError(f"layer {layer.name}: in_shape {tuple(layer.in_shape)} does not match the stream it "
                               f"reads, shape {tuple(shape)}")
    P, C = lp.acc_bits, layer.out_channels
    act = _activation(layer, lp, P, is_last)
    tfile, mem = _thr_stage_memory(layer.name, act, C)
    shifts = tuple(layer.shifts) if layer.kind == "add" else (0, 0)
    params = dict(C=C, IN_SIGNED=int(layer.in_type.signed), SA=shifts[0], SB=shifts[1], ACC_BITS=P,
                  N_THR=act.n_thr, THR_BITS=act.thr_bits, OUT_BASE=act.out_base, THR_FILE=tfile)
    unsafe = _unsafe_note(lp)
    how = f"(a << {shifts[0]}) + (b << {shifts[1]})" if layer.kind == "add" else "x"
    summary = (f"{layer.kind} C={C}, acc = {how} on {layer.in_type}, one element per cycle, ACC_BITS={P}{unsafe}, "
               f"{act.note}")
    rtl = _LayerRTL(layer.name, layer.kind, module, inst, elems[0].bits, act.out_w, summary, elem=params,
                    mem_files=mem)
    return rtl, layer.out_shape, act.next_elem


@dataclass
class _Net:
    """One stream of the design: a tensor, or one reader's copy of a forked tensor."""

    shape: tuple[int, ...]
    elem: IntType
    lanes: int


def _build_layer(layer, plan: Plan, nets: list[_Net], is_last: bool, module: str,
                 inst: str) -> tuple[_LayerRTL, tuple[int, ...], IntType]:
    """The RTL description of one layer, given the streams it reads."""
    shape, elem, lanes = nets[0].shape, nets[0].elem, nets[0].lanes
    if layer.kind in ("conv", "maxpool", "dwconv", "avgpool") and len(shape) != 3:
        raise A2QFlowError(f"layer {layer.name}: a {layer.kind} needs a (C, H, W) input, got shape {shape}")
    if isinstance(layer, MaxPoolLayer):
        return _pool_layer(layer, shape, elem, module, inst, lanes)
    if layer.kind in ("dwconv", "avgpool"):
        return _vvau_layer(layer, plan, shape, elem, is_last, module, inst, lanes)
    if layer.kind in ("add", "requant"):
        rtl, shape, elem = _elementwise_layer(layer, plan, [n.shape for n in nets], [n.elem for n in nets], is_last,
                                              module, inst)
        # an unrolled dense layer's whole-vector stream is serialised in the wrapper (a2q_p2s)
        rtl.in_lanes, rtl.elem["LANES"] = max(n.lanes for n in nets), [n.lanes for n in nets]
        if layer.kind == "requant":
            rtl.chain = _serial_chain(rtl.in_lanes, rtl.in_bits)
        return rtl, shape, elem
    return _mac_layer(layer, plan, shape, elem, is_last, module, inst, in_lanes=lanes)


def describe(model: Model, plan: Plan) -> tuple[list[_LayerRTL], dict]:
    """Per-layer RTL parameters and memory contents, the streams between them (a duplicator where a tensor has
    several readers, a skip FIFO where a join needs one), and the stream description (no files written)."""
    if not model.layers:
        raise A2QFlowError(f"model {model.name!r} has no layers")
    if len(model.input_shape) not in (1, 3):
        raise A2QFlowError(f"model input shape {tuple(model.input_shape)}: the RTL backend streams (K,) vectors or "
                           "(C, H, W) frames")
    first = model.layers[0]
    # an unrolled first layer takes the whole input vector per beat (one inference per clock)
    lanes = first.K if first.kind == "dense" and plan.layer(first.name).architecture == "unrolled" else 1
    tensors = {INPUT: ("n_input", _Net(tuple(model.input_shape), model.input_quant.dtype, lanes))}
    readers, fifos = graph.reads(model), graph.skip_fifos(model)
    layers: list[_LayerRTL] = []
    dups: list[dict] = []
    used: set[str] = set()
    for layer in model.layers:
        ident = identifier(layer.name)
        while ident in used:
            ident += "_"
        used.add(ident)
        in_nets = [_reader_net(src, layer.name, slot, tensors, readers) for slot, src in enumerate(layer.inputs)]
        rtl, shape, elem = _build_layer(layer, plan, [tensors[src][1] for src in layer.inputs],
                                        layer is model.layers[-1], f"a2q_layer_{ident}", f"u_{ident}")
        rtl.in_nets, rtl.out_net = in_nets, f"n_{ident}"
        rtl.fifo = [f.depth for f in fifos if f.add == layer.name]
        tensors[layer.name] = (rtl.out_net, _Net(tuple(shape), elem, rtl.out_lanes))
        layers.append(rtl)
    for src, rs in readers.items():
        if len(rs) > 1:
            net, t = tensors[src]
            dups.append(dict(tensor=src, inst=f"u_dup_{net[2:]}", N=len(rs), bits=t.elem.bits * t.lanes, net=net,
                             outs=[f"{net}_d{i}" for i in range(len(rs))], readers=[r for r, _ in rs]))
    last = tensors[model.layers[-1].name][1]
    stream = dict(in_width=model.input_quant.dtype.bits, in_signed=model.input_quant.dtype.signed,
                  in_shape=list(model.input_shape), in_elems=int(np.prod(model.input_shape)),
                  out_width=last.elem.bits, out_signed=last.elem.signed, out_shape=list(last.shape),
                  out_elems=int(np.prod(last.shape)), in_lanes=lanes, out_lanes=last.lanes)
    return layers, dict(stream, dups=dups, fifos=fifos)


def _reader_net(src: str, layer: str, slot: int, tensors: dict, readers: dict) -> str:
    """The stream `layer` reads in input `slot`: the tensor's own, or its copy out of the duplicator."""
    net = tensors[src][0]
    rs = readers[src]
    return net if len(rs) == 1 else f"{net}_d{rs.index((layer, slot))}"


def render_top(model: Model, plan: Plan, layers: list[_LayerRTL], stream: dict) -> str:
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    tpl = env.from_string(library_text("a2q_top.v.j2"))
    nets = [("n_input", stream["in_width"] * stream["in_lanes"])]
    nets += [(l.out_net, l.out_w * l.out_lanes) for l in layers]
    width = dict(nets)
    nets += [(o, d["bits"]) for d in stream["dups"] for o in d["outs"]]
    out_net = layers[-1].out_net
    return tpl.render(model=model.name, policy=plan.policy, layers=layers, nets=nets, width=width, out_net=out_net,
                      **stream)


def _library_files(layers: list[_LayerRTL], stream: dict) -> list[str]:
    """The library files the design instantiates, in read order."""
    needed = ["a2q_mvau.v"] if any(l.mvau and l.mvau["LANES"] == 1 for l in layers) else []
    if any(l.mvau and l.mvau["LANES"] > 1 for l in layers):
        needed.append("a2q_mvau_packed.v")
    if any(l.vvau for l in layers):
        needed.append("a2q_vvau.v")
    if any(l.swg for l in layers):
        needed.append("a2q_swg.v")
    if any(l.pool for l in layers):
        needed.append("a2q_pool.v")
    if any(l.elem or l.gap for l in layers):
        needed.append("a2q_thr.v")
    if stream["dups"] or any(any(l.fifo) for l in layers):
        needed.append("a2q_stream.v")
    if any((l.body and l.in_lanes == 1) or (l.kind == "add" and l.in_lanes > 1)
           or any(st["kind"] in ("s2p", "p2s") for st in l.chain) for l in layers):
        needed.append("a2q_adapt.v")
    return needed


def _graph_manifest(layers: list[_LayerRTL], stream: dict) -> dict:
    """manifest.json's graph keys: each layer's input streams, the duplicators and the skip FIFOs (with why)."""
    return {
        "inputs": {l.name: l.in_nets for l in layers},
        "outputs": {l.name: l.out_net for l in layers},
        "duplicators": {d["tensor"]: {"instance": d["inst"], "readers": d["readers"]} for d in stream["dups"]},
        "skip_fifos": [{"add": f.add, "input": f.slot, "fork": f.fork, "depth": f.depth, "min_depth": f.min_depth,
                        "reason": f.reason}
                       for f in stream["fifos"]],
    }


def generate(build: Path | str) -> Path:
    """Write BUILD/rtl/ (Verilog sources, .mem files, manifest.json) atomically and return its path."""
    build = Path(build)
    model, plan = load_build(build)
    layers, stream = describe(model, plan)
    top = render_top(model, plan, layers, stream)
    needed = _library_files(layers, stream)
    sources = needed + ["a2q_top.v"]
    mem_files = {name: text for l in layers for name, text in l.mem_files.items()}
    units = {l.name: (l.mvau or l.vvau or l.gap) for l in layers if l.mvau or l.vvau or l.gap}
    thr = {l.name: p["THR_BITS"] for l in layers for p in (l.mvau, l.vvau, l.elem, l.gap) if p and p["N_THR"]}
    io = {k: v for k, v in stream.items() if k not in ("dups", "fifos")}
    manifest = {
        "top": TOP,
        "sources": sources,
        "mem_files": sorted(mem_files),
        "layers": {l.name: l.inst for l in layers},
        "modules": {l.name: l.module for l in layers},
        "kinds": {l.name: l.kind for l in layers},
        **io,
        "in_order": "hwc" if len(model.input_shape) == 3 else "vector",
        "out_order": "hwc" if len(stream["out_shape"]) == 3 else "vector",
        "acc_bits": plan.acc_bits(),
        "thr_bits": thr,
        "simd": {n: u["SIMD"] for n, u in units.items()},
        "pe": {n: u["PE"] for n, u in units.items()},
        "dsp_lanes": {l.name: l.mvau["LANES"] for l in layers if l.mvau},
        "policy": plan.policy,
        "unsafe": plan.unsafe,
        "architecture": {l.name: l.arch for l in layers if l.kind != "maxpool"},
        "unrolled": {l.name: l.unrolled for l in layers if l.unrolled},
        "line_buffers": {l.name: swg_memory(l.swg, l.in_bits) for l in layers if l.swg},
        "graph": _graph_manifest(layers, stream),
        "ports": {"clk": 1, "rst": 1, "in_data": stream["in_width"] * stream["in_lanes"], "in_valid": 1,
                  "in_ready": 1, "out_data": stream["out_width"] * stream["out_lanes"], "out_valid": 1,
                  "out_ready": 1},
        "notes": "synchronous active-high reset; valid/ready streams, in_lanes / out_lanes elements per beat "
                 "(element 0 at the low bits); $readmemh files are "
                 "named without a folder, so run simulators / synthesis with this folder as the working directory",
        "inputs_sha256": input_digest(build),
    }
    out = build / "rtl"
    with staged_dir(out) as tmp:
        for name in needed:
            (tmp / name).write_text(library_text(name))
        (tmp / "a2q_top.v").write_text(top)
        for name, text in mem_files.items():
            (tmp / name).write_text(text)
        atomic_write_json(tmp / "manifest.json", manifest)
    return out


def ensure_generated(build: Path | str) -> Path:
    """BUILD/rtl, regenerated when the IR, plan or library changed since it was written."""
    import json

    build = Path(build)
    man = build / "rtl" / "manifest.json"
    if man.is_file():
        try:
            if json.loads(man.read_text()).get("inputs_sha256") == input_digest(build):
                return build / "rtl"
        except (ValueError, FileNotFoundError):
            pass
    return generate(build)
