"""Vitis HLS generator: BUILD (ir.json/ir.npz + plan.json) -> BUILD/hls/, a self-contained HLS project.

Widths and folding come only from plan.json (one source of truth); thresholds are re-fitted to each layer's
planned acc_bits with hw.thresholds.fit_thresholds, exactly as hw.reference.run does, so C-sim and the golden
model compare the same integers. Feature maps stream in HWC order, so dense weights after a conv / pool and conv
weights are reordered here (hw.ir.dense_weights_hwc / conv_weights_ohwi); the testbench converts to and from
the IR's CHW layout.

Written files: top.h, top.cpp (one dataflow region, one explicit template instantiation per layer),
params_<layer>.h (constants, weights and thresholds as constant arrays), the library headers (*.hpp), tb.cpp,
tb_data/ (worst-case inputs of the first layer with golden outputs), run_hls.tcl and vivado.tcl.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np

from a2qflow.hw.compiler.bounds import ACC_BITS_MAX, ACC_BITS_MIN, ACC_BITS_RANGE
from a2qflow.hw.compiler.ir import (
    ConvLayer,
    DenseLayer,
    IntType,
    MaxPoolLayer,
    Model,
    Thresholds,
    conv_weights_ohwi,
    dense_weights_hwc,
    load_model,
)
from a2qflow.hw.compiler.plan import LayerPlan, Plan, load_plan
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.config import VitisConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_text

TOP = "a2q_top"
LIBRARY_HEADERS = ("a2q_common.hpp", "mvau.hpp", "thresholds.hpp", "sliding_window.hpp", "pool.hpp",
                   "stream_utils.hpp")
_SIGNED_CONSTANTS = {"ACC_BITS", "THR_BITS", "OUT_BASE"}
_CXX_KEYWORDS = {"int", "char", "class", "struct", "namespace", "template", "typename", "union", "static", "const",
                 "new", "delete", "operator", "this", "register", "auto", "default", "switch", "case", "do"}


def ctype(t: IntType) -> str:
    return f"ap_int<{t.bits}>" if t.signed else f"ap_uint<{t.bits}>"


def c_array(a: np.ndarray, indent: int = 0) -> str:
    """Nested C initializer for an integer array; innermost rows wrap at ~110 columns."""
    a = np.asarray(a)
    pad = "\n" + " " * (indent + 1)
    if a.ndim == 1:
        lines, cur = [], ""
        for item in (str(int(v)) for v in a):
            if cur and len(cur) + len(item) + 2 > 110 - indent:
                lines.append(cur + ",")
                cur = item
            else:
                cur = f"{cur}, {item}" if cur else item
        lines.append(cur)
        return "{" + pad.join(lines) + "}"
    return "{" + ("," + pad).join(c_array(s, indent + 1) for s in a) + "}"


def _identifier(index: int, name: str) -> str:
    base = re.sub(r"\W+", "_", name).strip("_") or "layer"
    ident = f"l{index}_{base}"
    return ident if not keyword.iskeyword(ident) and ident not in _CXX_KEYWORDS else f"{ident}_"


def fold_weights(w: np.ndarray, simd: int, pe: int) -> np.ndarray:
    """(C, K) -> [PE][(C/PE)*(K/SIMD)][SIMD] with out[pe, nf*SF + sf, s] = w[nf*PE + pe, sf*SIMD + s]."""
    c, k = w.shape
    nf, sf = c // pe, k // simd
    return w.reshape(nf, pe, sf, simd).transpose(1, 0, 2, 3).reshape(pe, nf * sf, simd)


def fold_thresholds(t: np.ndarray, pe: int) -> np.ndarray:
    """(C, L) -> [PE][C/PE][L] with out[pe, nf, l] = t[nf*PE + pe, l]."""
    c, l = t.shape
    return t.reshape(c // pe, pe, l).transpose(1, 0, 2)


@dataclass
class _Layer:
    """What params.h.j2 renders for one layer."""

    ns: str
    kind: str
    header: str
    constants: list[tuple[str, int]]
    types: list[tuple[str, str]]
    weights: str = ""
    weight_order: str = ""
    thresholds: str | None = None
    acc_bits: int = 0
    weight_rom_bits: int = 0  # signed storage width of the weight table (M, or M + 1 for unsigned weights)


@dataclass
class _Stream:
    """The stream between stages: element C type, beat width, shape ((C, H, W) or (K,))."""

    name: str
    elem: str
    beat: int
    shape: tuple[int, ...]

    @property
    def word(self) -> str:
        return f"Word<{self.elem}, {self.beat}>"

    @property
    def elems(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Design:
    """The generated design in Python terms (what top.cpp.j2 / top.h.j2 render); returned for callers and tests."""

    model: Model
    plan: Plan
    layers: list[_Layer] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    streams: list[dict] = field(default_factory=list)
    input: _Stream | None = None
    output: _Stream | None = None
    mac_names: list[str] = field(default_factory=list)


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=False, autoescape=False)


def template_dir() -> Path:
    return Path(str(resources.files("a2qflow.hls_templates")))


def _check_plan(model: Model, plan: Plan, build: Path) -> dict[str, LayerPlan]:
    macs = model.mac_layers()
    names = [l.name for l in macs]
    if [l.name for l in plan.layers] != names:
        raise A2QFlowError(f"{build}/plan.json lists layers {[l.name for l in plan.layers]} but ir.json has MAC layers "
                           f"{names}; re-run `a2qflow compile` so both come from the same model")
    out = {}
    for layer, lp in zip(macs, plan.layers):
        if lp.K != layer.K or lp.out_channels != layer.out_channels:
            raise A2QFlowError(f"{build}/plan.json: layer {lp.name} has K={lp.K}, C={lp.out_channels} but the IR says "
                               f"K={layer.K}, C={layer.out_channels}; re-run `a2qflow compile`")
        if layer.K % lp.simd or layer.out_channels % lp.pe:
            raise A2QFlowError(f"{build}/plan.json: layer {lp.name}: simd={lp.simd} must divide K={layer.K} and "
                               f"pe={lp.pe} must divide C={layer.out_channels}")
        if lp.acc_bits not in ACC_BITS_RANGE:
            raise A2QFlowError(f"{build}/plan.json: layer {lp.name}: acc_bits={lp.acc_bits} is outside "
                               f"{ACC_BITS_MIN}..{ACC_BITS_MAX}")
        out[lp.name] = lp
    return out


def build_design(model: Model, plan: Plan, build: Path | str = "BUILD") -> Design:
    """Lower the IR + plan to stages, streams and per-layer parameters (pure: writes nothing)."""
    build = Path(build)
    plans = _check_plan(model, plan, build)
    d = Design(model=model, plan=plan)
    shape = tuple(int(s) for s in model.input_shape)
    if len(shape) not in (1, 3):
        raise A2QFlowError(f"{build}/ir.json: input_shape {list(shape)} must be (K,) or (C, H, W)")
    first = model.layers[0] if model.layers else None
    if first is None:
        raise A2QFlowError(f"{build}/ir.json: the model has no layers")
    beat = shape[0] if len(shape) == 3 else (plans[first.name].simd if first.kind == "dense" else 1)
    cur = _Stream("in_stream", ctype(model.input_quant.dtype), beat, shape)
    d.input = cur
    counter = 0
    mac_index = 0

    def new_stream(elem: str, beat: int, shp: tuple[int, ...]) -> _Stream:
        nonlocal counter
        s = _Stream(f"s{counter}", elem, beat, shp)
        counter += 1
        d.streams.append({"name": s.name, "ctype": s.word, "depth": 2})
        return s

    for i, layer in enumerate(model.layers):
        ns = _identifier(i, layer.name)
        last = i == len(model.layers) - 1
        if isinstance(layer, MaxPoolLayer):
            if len(cur.shape) != 3 or tuple(layer.in_shape) != cur.shape:
                raise A2QFlowError(f"{build}/ir.json: maxpool {layer.name} expects input {list(layer.in_shape)} but "
                                   f"receives {list(cur.shape)}")
            c, ih, iw = layer.in_shape
            oc, oh, ow = layer.out_shape
            elem = ctype(layer.dtype)
            consts = [("C", c), ("IH", ih), ("IW", iw), ("KH", layer.kernel[0]), ("KW", layer.kernel[1]),
                      ("SH", layer.stride[0]), ("SW", layer.stride[1]), ("OH", oh), ("OW", ow), ("BEAT", cur.beat)]
            d.layers.append(_Layer(ns, "maxpool", f"Layer {layer.name}: maxpool {layer.kernel[0]}x{layer.kernel[1]} "
                                   f"stride {layer.stride[0]}x{layer.stride[1]} on {c}x{ih}x{iw} {layer.dtype}",
                                   consts, [("data_t", elem)]))
            out = new_stream(elem, cur.beat, (c, oh, ow))
            d.stages.append({"comment": f"{layer.name}: max pooling {ih}x{iw} -> {oh}x{ow}, {c} channels",
                             "call": f"maxpool<{ns}::C, {ns}::IH, {ns}::IW, {ns}::KH, {ns}::KW, {ns}::SH, {ns}::SW, "
                                     f"{ns}::BEAT, {ns}::data_t>({cur.name}, {out.name})"})
            cur = out
            continue

        lp = plans[layer.name]
        simd, pe, acc_bits = lp.simd, lp.pe, lp.acc_bits
        K, C = layer.K, layer.out_channels
        consts: list[tuple[str, int]] = []
        if isinstance(layer, DenseLayer):
            if cur.elems != K:
                raise A2QFlowError(f"{build}/ir.json: dense layer {layer.name} has K={K} but receives "
                                   f"{cur.elems} values ({list(cur.shape)})")
            if len(cur.shape) == 3:
                w = dense_weights_hwc(layer, cur.shape)
                order = f" (columns in HWC order of the CxHxW = {cur.shape[0]}x{cur.shape[1]}x{cur.shape[2]} input)"
            else:
                w, order = layer.weights, ""
            if cur.beat != simd:
                out = new_stream(cur.elem, simd, cur.shape)
                d.stages.append({"comment": f"{layer.name}: {cur.beat} -> {simd} values per beat",
                                 "call": f"convert_width<{cur.beat}, {simd}, {K}, {cur.elem}>({cur.name}, {out.name})"})
                cur = out
            rows, out_shape = 1, (C,)
        else:
            assert isinstance(layer, ConvLayer)
            if len(cur.shape) != 3 or tuple(layer.in_shape) != cur.shape:
                raise A2QFlowError(f"{build}/ir.json: conv {layer.name} expects input {list(layer.in_shape)} but "
                                   f"receives {list(cur.shape)}")
            ic, ih, iw = layer.in_shape
            kh, kw = layer.kernel
            oc, oh, ow = layer.out_shape
            t, l_, b, r = layer.pad
            consts += [("IC", ic), ("IH", ih), ("IW", iw), ("KH", kh), ("KW", kw), ("SH", layer.stride[0]),
                       ("SW", layer.stride[1]), ("PT", t), ("PL", l_), ("PB", b), ("PR", r), ("OH", oh), ("OW", ow),
                       ("IN_BEAT", cur.beat)]
            w = conv_weights_ohwi(layer)
            order = " (columns in (kh, kw, ic) order, as the sliding window emits them)"
            win = new_stream(cur.elem, simd, (K,))
            d.stages.append({"comment": f"{layer.name}: sliding window {kh}x{kw} over {ic}x{ih}x{iw}, pad {list(layer.pad)}",
                             "call": f"sliding_window<{ns}::IC, {ns}::IH, {ns}::IW, {ns}::KH, {ns}::KW, {ns}::SH, "
                                     f"{ns}::SW, {ns}::PT, {ns}::PL, {ns}::PB, {ns}::PR, {ns}::IN_BEAT, {ns}::SIMD, "
                                     f"{ns}::in_t>({cur.name}, {win.name})"})
            cur = win
            rows, out_shape = oh * ow, (oc, oh, ow)

        types = [("in_t", ctype(layer.in_type)), ("weight_t", ctype(layer.w_type))]
        consts = [("K", K), ("C", C), ("SIMD", simd), ("PE", pe), ("ROWS", rows), ("ACC_BITS", acc_bits)] + consts
        if layer.in_type != _elem_type(cur.elem):
            raise A2QFlowError(f"{build}/ir.json: layer {layer.name} expects {layer.in_type} inputs but the previous "
                               f"stage produces {cur.elem}")
        thr_text = None
        if isinstance(layer.act, Thresholds):
            values, thr_bits = fit_thresholds(layer.act.values, layer.weight_matrix(), layer.in_type, acc_bits)
            if lp.thr_bits is not None and thr_bits != lp.thr_bits:
                raise A2QFlowError(f"{build}/plan.json: layer {layer.name}: thr_bits={lp.thr_bits} but thresholds fitted "
                                   f"to acc_bits={acc_bits} need {thr_bits}; re-run `a2qflow compile`")
            if values.shape[1] == 0:
                raise A2QFlowError(f"{build}/ir.npz: layer {layer.name} has no thresholds (L = 0)")
            consts += [("THR_BITS", thr_bits), ("L", int(values.shape[1])), ("OUT_BASE", int(layer.act.out_base))]
            out_elem = ctype(layer.act.out_type)
            thr_text = c_array(fold_thresholds(values, pe), 2)
            act_note = f"{values.shape[1]} thresholds x {thr_bits} bits -> {layer.act.out_type}"
        else:
            if not last:
                raise A2QFlowError(f"{build}/ir.json: layer {layer.name} ends in a float affine but is not the last "
                                   "layer; only the last layer may leave the integer domain")
            out_elem = f"ap_int<{acc_bits}>"
            act_note = "raw accumulators out (affine off-chip)"
        types.append(("out_t", out_elem))
        header = (f"Layer {layer.name}: {layer.kind}, K={K}, C={C}, {layer.in_type} inputs x {layer.w_type} weights; "
                  f"ACC_BITS={acc_bits} (exact bound {lp.acc_bits_exact}, L1 {lp.acc_bits_l1}, data type "
                  f"{lp.acc_bits_datatype}{', UNSAFE: below the exact bound' if lp.unsafe else ''}); {act_note}")
        d.layers.append(_Layer(ns, layer.kind, header, consts, types, weights=c_array(fold_weights(w, simd, pe), 2),
                               weight_order=order, thresholds=thr_text, acc_bits=acc_bits,
                               weight_rom_bits=layer.w_type.bits + (0 if layer.w_type.signed else 1)))
        out = new_stream(out_elem, pe, out_shape)
        d.stages.append({"comment": f"{layer.name}: {C} channels x K={K}, SIMD={simd} PE={pe}, ACC_BITS={acc_bits}"
                                    f" ({(C // pe) * (K // simd) * rows} cycles)",
                         "call": f"mvau<{ns}::K, {ns}::C, {ns}::SIMD, {ns}::PE, {ns}::ROWS, {ns}::ACC_BITS, {mac_index}, "
                                 f"{ns}::in_t, {ns}::weight_t, {ns}::out_t, {ns}::act_t>({cur.name}, {out.name}, "
                                 f"{ns}::weights, {ns}::act)"})
        d.mac_names.append(layer.name)
        mac_index += 1
        cur = out

    # the last stage writes the top-level output port instead of an internal stream
    d.streams.pop()
    d.stages[-1]["call"] = d.stages[-1]["call"].replace(f", {cur.name},", ", out_stream,").replace(
        f", {cur.name})", ", out_stream)")
    d.output = _Stream("out_stream", cur.elem, cur.beat, cur.shape)
    return d


def _elem_type(elem: str) -> IntType:
    m = re.fullmatch(r"ap_(u?)int<(\d+)>", elem)
    assert m, elem
    return IntType(int(m.group(2)), m.group(1) == "")


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)


def first_layer_worst_case_inputs(model: Model) -> np.ndarray:
    """Whole inputs (2C, *input_shape) that drive each first-layer channel to its exact hi and lo accumulator.

    Dense first layer: hw.bounds.worst_case_inputs reshaped to the input shape. Conv first layer: each channel's
    worst-case window placed at the first output position whose window lies fully inside the (unpadded) image,
    zeros elsewhere (zero is inside every input type, and only that window matters for that output).
    """
    from a2qflow.hw.compiler.bounds import worst_case_inputs

    layer = model.layers[0]
    if layer.kind not in ("dense", "conv"):
        raise A2QFlowError(f"model {model.name}: the first layer {layer.name} is a {layer.kind}; worst-case inputs "
                           "are defined for a MAC first layer")
    x_hi, x_lo = worst_case_inputs(layer.weight_matrix(), layer.in_type)
    vecs = np.concatenate([x_hi, x_lo])
    if layer.kind == "dense":
        return vecs.reshape((-1, *model.input_shape))
    ic, ih, iw = layer.in_shape
    kh, kw = layer.kernel
    t, l_, _, _ = layer.pad
    sh, sw = layer.stride
    oh, ow = layer.out_shape[1:]
    oy = next((o for o in range(oh) if o * sh - t >= 0 and o * sh - t + kh <= ih), None)
    ox = next((o for o in range(ow) if o * sw - l_ >= 0 and o * sw - l_ + kw <= iw), None)
    if oy is None or ox is None:
        raise A2QFlowError(f"conv {layer.name}: no output position has its {kh}x{kw} window inside the image")
    y0, x0 = oy * sh - t, ox * sw - l_
    imgs = np.zeros((len(vecs), ic, ih, iw), dtype=np.int64)
    imgs[:, :, y0:y0 + kh, x0:x0 + kw] = vecs.reshape(-1, ic, kh, kw)
    return imgs


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic write that leaves an identical file untouched (keeps the C-sim compile cache and mtimes stable)."""
    if path.is_file() and path.read_text() == text:
        return
    atomic_write_text(path, text)


def generate(build: Path | str, vitis: VitisConfig | None = None) -> Path:
    """Write BUILD/hls/ from BUILD/ir.* and BUILD/plan.json; returns the folder."""
    from a2qflow.hw.compiler.reference import run as golden_run

    build = Path(build)
    if not build.is_dir():
        raise A2QFlowError(f"{build}: no such build folder; run `a2qflow compile MODEL.onnx --out {build}` first")
    plan = load_plan(build)
    model = load_model(build)
    vitis = vitis or VitisConfig()
    d = build_design(model, plan, build)
    out = build / "hls"
    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    for name in LIBRARY_HEADERS:
        _write_if_changed(out / name, (template_dir() / name).read_text())
    headers = []
    for layer in d.layers:
        h = f"params_{layer.ns}.h"
        headers.append(h)
        _write_if_changed(out / h, env.get_template("params.h.j2").render(
            header=layer.header, guard=f"A2Q_PARAMS_{layer.ns.upper()}_H", layer=layer, signed_names=_SIGNED_CONSTANTS))
    in3, out3 = _shape3(d.input.shape), _shape3(d.output.shape)
    ctx = dict(model=model.name, policy=plan.policy, top=TOP, part=vitis.part, clock_ns=vitis.clock_ns,
               board=vitis.board,
               in_elems=d.input.elems, in_beat=d.input.beat, in_shape=in3, in_ctype=d.input.elem,
               in_order="HWC" if len(d.input.shape) == 3 else "index",
               out_elems=d.output.elems, out_beat=d.output.beat, out_shape=out3, out_ctype=d.output.elem,
               out_order="HWC" if len(d.output.shape) == 3 else "index",
               mac_names=d.mac_names, headers=headers, streams=d.streams, stages=d.stages,
               in_bytes=-(-d.input.beat * _elem_type(d.input.elem).bits // 8),
               out_bytes=-(-d.output.beat * _elem_type(d.output.elem).bits // 8),
               summary=[f"{l.name}: acc_bits {l.acc_bits}, thr_bits {l.thr_bits}, SIMD {l.simd}, PE {l.pe}"
                        + (" (UNSAFE)" if l.unsafe else "") for l in plan.layers])
    for tpl, name in [("top.h.j2", "top.h"), ("top.cpp.j2", "top.cpp"), ("tb.cpp.j2", "tb.cpp"),
                      ("run_hls.tcl.j2", "run_hls.tcl"), ("vivado.tcl.j2", "vivado.tcl")]:
        _write_if_changed(out / name, env.get_template(tpl).render(**ctx))
    # Self-check data for Vitis csim / cosim: first-layer worst cases and a zero input, with golden outputs.
    try:
        x = first_layer_worst_case_inputs(model)
    except A2QFlowError:
        x = np.zeros((0, *model.input_shape), dtype=np.int64)
    zero = np.clip(0, model.input_quant.dtype.min, model.input_quant.dtype.max)
    x = np.concatenate([x, np.full((1, *model.input_shape), zero, dtype=np.int64)])
    expected = golden_run(model, x, plan.acc_bits()).acc.astype(np.int64)
    (out / "tb_data").mkdir(exist_ok=True)
    for name, arr in [("inputs.bin", x.astype(np.int32)), ("expected.bin", expected)]:
        p = out / "tb_data" / name
        if not p.is_file() or p.read_bytes() != arr.tobytes():
            tmp = p.with_suffix(".tmp")
            tmp.write_bytes(arr.tobytes())
            tmp.replace(p)
    return out
