"""Vitis HLS generator: BUILD (ir.json/ir.npz + plan.json/plan.npz) -> BUILD/hls/, a self-contained HLS project.

`a2qflow.hw.hls.lowering.build_design` turns the IR and plan into a typed design (one emitter per layer kind in
`a2qflow.hw.hls.emitters`); this module renders it with the Jinja2 templates in `a2qflow.hls_templates`. Types
and arrays become C++ text only here, through the `ctype` and `c_array` filters. Widths, folding and threshold
integers come only from the plan (one source of truth); the testbench converts between the stream's HWC order
and the IR's CHW layout.

Written files: top.h, top.cpp (one dataflow region, one explicit template instantiation per layer),
params_<layer>.h (constants, weights and thresholds as constant arrays), the library headers (*.hpp), tb.cpp,
tb_data/ (worst-case inputs of the first layer with golden outputs), run_hls.tcl and vivado.tcl.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np

from a2qflow.hw.compiler.bounds import first_layer_worst_case_inputs
from a2qflow.hw.compiler.ir import IntType, Model
from a2qflow.hw.compiler.plan import Plan, load_build
from a2qflow.hw.config import TOOL_NAME_PATTERN, VitisConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_bytes, atomic_write_text
from a2qflow.hw.hls.design import Design, Stream
from a2qflow.hw.hls.lowering import build_design

TOP = "a2q_top"
LIBRARY_HEADERS = ("a2q_common.hpp", "mvau.hpp", "vvau.hpp", "elementwise.hpp", "thresholds.hpp",
                   "sliding_window.hpp", "pool.hpp", "stream_utils.hpp", "dense_unrolled.hpp")
_SIGNED_CONSTANTS = {"ACC_BITS", "THR_BITS", "OUT_BASE"}


def ctype(t: IntType) -> str:
    """The ap_types spelling of an integer type (the only place IntType becomes C++)."""
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


def template_dir() -> Path:
    return Path(str(resources.files("a2qflow.hls_templates")))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=False, autoescape=False)
    env.filters["ctype"] = ctype
    env.filters["c_array"] = c_array
    env.filters["tcl"] = tcl_word
    return env


def tcl_word(value: object) -> str:
    """`value` as one brace-quoted Tcl word, refusing anything outside hw.config.TOOL_NAME_PATTERN.

    Braces stop every Tcl substitution ([cmd], $var, backslashes); the pattern check (also done by the config
    model) makes sure no brace or new line inside the value can end the quoting early.
    """
    text = str(value)
    if not re.fullmatch(TOOL_NAME_PATTERN, text):
        raise A2QFlowError(f"hw.vitis: {text[:60]!r} is not a valid part / board name (letters, digits and _ . : - "
                           "only); fix it in the config's hw.vitis section")
    return "{" + text + "}"


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)


def _port(prefix: str, s: Stream) -> dict:
    """Template variables of a top-level port (in_* / out_*)."""
    return {f"{prefix}_elems": s.elems, f"{prefix}_beat": s.beat, f"{prefix}_shape": _shape3(s.shape),
            f"{prefix}_ctype": ctype(s.elem), f"{prefix}_order": "HWC" if len(s.shape) == 3 else "index",
            f"{prefix}_bytes": -(-s.beat * s.elem.bits // 8)}


def render_project(d: Design, vitis: VitisConfig) -> dict[str, str]:
    """Every generated text file of BUILD/hls, by name (library headers excluded)."""
    env, plan = _env(), d.plan
    files = {}
    for layer in d.layers:
        files[f"params_{layer.ns}.h"] = env.get_template("params.h.j2").render(
            header=layer.header, guard=f"A2Q_PARAMS_{layer.ns.upper()}_H", layer=layer, signed_names=_SIGNED_CONSTANTS)
    ctx = dict(model=d.model.name, policy=plan.policy, top=TOP, part=vitis.part, clock_ns=vitis.clock_ns,
               board=vitis.board, mac_names=d.mac_names, headers=list(files), streams=d.streams, stages=d.stages,
               summary=[f"{l.name}: acc_bits {l.acc_bits}, thr_bits {l.thr_bits}, SIMD {l.simd}, PE {l.pe}"
                        + (" (UNSAFE)" if l.unsafe else "") for l in plan.layers],
               **_port("in", d.input), **_port("out", d.output))
    for tpl in ("top.h", "top.cpp", "tb.cpp", "run_hls.tcl", "vivado.tcl"):
        files[tpl] = env.get_template(f"{tpl}.j2").render(**ctx)
    return files


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic write that leaves an identical file untouched (keeps the C-sim compile cache and mtimes stable)."""
    if path.is_file() and path.read_text() == text:
        return
    atomic_write_text(path, text)


def _write_tb_data(out: Path, model: Model, plan: Plan) -> None:
    """Self-check data for Vitis csim / cosim: first-layer worst cases and a zero input, with golden outputs."""
    from a2qflow.hw.compiler.reference import run as golden_run

    try:
        x = first_layer_worst_case_inputs(model)
    except A2QFlowError:
        x = np.zeros((0, *model.input_shape), dtype=np.int64)
    zero = np.clip(0, model.input_quant.dtype.min, model.input_quant.dtype.max)
    x = np.concatenate([x, np.full((1, *model.input_shape), zero, dtype=np.int64)])
    expected = golden_run(model, x, plan.acc_bits()).acc.astype(np.int64)
    for name, arr in [("inputs.bin", x.astype(np.int32)), ("expected.bin", expected)]:
        p = out / "tb_data" / name
        if not p.is_file() or p.read_bytes() != arr.tobytes():
            atomic_write_bytes(p, arr.tobytes())


def generate(build: Path | str, vitis: VitisConfig | None = None) -> Path:
    """Write BUILD/hls/ from BUILD/ir.* and BUILD/plan.json; returns the folder."""
    build = Path(build)
    if not build.is_dir():
        raise A2QFlowError(f"{build}: no such build folder; run `a2qflow compile MODEL.onnx --out {build}` first")
    model, plan = load_build(build)  # checked: IR digest, layers, widths vs the recomputed exact bounds
    vitis = vitis or VitisConfig()
    d = build_design(model, plan, build)
    out = build / "hls"
    out.mkdir(parents=True, exist_ok=True)
    for name in LIBRARY_HEADERS:
        _write_if_changed(out / name, (template_dir() / name).read_text())
    for name, text in render_project(d, vitis).items():
        _write_if_changed(out / name, text)
    _write_tb_data(out, model, plan)
    return out
