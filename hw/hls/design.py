"""The HLS design in Python terms: streams, stages and per-layer parameters, before any C++ is written.

`build_design(model, plan)` walks the IR once and lets one emitter per layer kind (`a2qflow.hw.hls.emitters`) add
its stages and parameters. Everything here stays typed (`IntType`, numpy arrays, `Stream` objects); C++ text
appears only when `a2qflow.hw.hls.generate` renders the Jinja2 templates, as in hls4ml's per-layer templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.ir import IntType, Model
from a2qflow.hw.compiler.plan import LayerPlan, Plan, check_layers
from a2qflow.hw.errors import A2QFlowError


@dataclass(eq=False)
class Stream:
    """A stream between stages: element type, elements per beat, shape ((C, H, W) or (K,))."""

    name: str
    elem: IntType
    beat: int
    shape: tuple[int, ...]

    @property
    def elems(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Stage:
    """One call in the dataflow top: `kind` names its call template in hls_templates/calls.j2."""

    kind: str  # mvau | sliding_window | maxpool | convert_width
    comment: str
    inp: Stream
    out: Stream
    ns: str = ""  # the layer's C++ namespace (params_<ns>.h)
    args: dict = field(default_factory=dict)  # extra template arguments (e.g. the MAC layer index)


@dataclass
class LayerParams:
    """What params.h.j2 renders for one layer: constants, typed aliases and constant arrays."""

    ns: str
    kind: str
    header: str
    constants: list[tuple[str, int]]
    types: list[tuple[str, IntType]]
    weights: np.ndarray | None = None  # folded [PE][(C/PE)*(K/SIMD)][SIMD]
    weight_order: str = ""
    thresholds: np.ndarray | None = None  # folded [PE][C/PE][L]
    acc_bits: int = 0
    weight_rom_bits: int = 0  # signed storage width of the weight table (M, or M + 1 for unsigned weights)


@dataclass
class Design:
    """The whole generated design; `generate` renders it, tests inspect it."""

    model: Model
    plan: Plan
    input: Stream
    layers: list[LayerParams] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)  # internal streams (not the top-level ports)
    output: Stream | None = None
    mac_names: list[str] = field(default_factory=list)


class DesignBuilder:
    """Mutable state the emitters share while walking the IR: the current stream and a stream counter."""

    def __init__(self, design: Design, plans: dict[str, LayerPlan], build: Path):
        self.design, self.plans, self.build = design, plans, build
        self.cur = design.input

    def new_stream(self, elem: IntType, beat: int, shape: tuple[int, ...]) -> Stream:
        s = Stream(f"s{len(self.design.streams)}", elem, beat, tuple(shape))
        self.design.streams.append(s)
        return s

    def add_stage(self, kind: str, comment: str, out: Stream, ns: str = "", **args) -> None:
        self.design.stages.append(Stage(kind, comment, self.cur, out, ns, args))
        self.cur = out

    def error(self, file: str, msg: str) -> A2QFlowError:
        return A2QFlowError(f"{self.build}/{file}: {msg}")


def fold_weights(w: np.ndarray, simd: int, pe: int) -> np.ndarray:
    """(C, K) -> [PE][(C/PE)*(K/SIMD)][SIMD] with out[pe, nf*SF + sf, s] = w[nf*PE + pe, sf*SIMD + s]."""
    c, k = w.shape
    nf, sf = c // pe, k // simd
    return w.reshape(nf, pe, sf, simd).transpose(1, 0, 2, 3).reshape(pe, nf * sf, simd)


def fold_thresholds(t: np.ndarray, pe: int) -> np.ndarray:
    """(C, L) -> [PE][C/PE][L] with out[pe, nf, l] = t[nf*PE + pe, l]."""
    c, l = t.shape
    return t.reshape(c // pe, pe, l).transpose(1, 0, 2)


def check_plan(model: Model, plan: Plan, build: Path) -> dict[str, LayerPlan]:
    """The plan's MAC layers, keyed by name, after the compiler's one check that they describe this IR (names, K,
    C, folding, widths in range and not below the exact bound recomputed from the weights: plan.check_layers)."""
    check_layers(model, plan, build)
    return {lp.name: lp for lp in plan.layers}


def build_design(model: Model, plan: Plan, build: Path | str = "BUILD") -> Design:
    """Lower the IR + plan to stages, streams and per-layer parameters (pure: writes nothing).

    Args:
        model: the integer IR.
        plan: its accumulator plan (widths, folding, fitted thresholds).
        build: the build folder, named in error messages.

    Returns:
        The typed `Design`; its last stage writes the top-level output stream.
    """
    from a2qflow.hw.hls.emitters import EMITTERS, identifier

    build = Path(build)
    plans = check_plan(model, plan, build)
    shape = tuple(int(s) for s in model.input_shape)
    if len(shape) not in (1, 3):
        raise A2QFlowError(f"{build}/ir.json: input_shape {list(shape)} must be (K,) or (C, H, W)")
    if not model.layers:
        raise A2QFlowError(f"{build}/ir.json: the model has no layers")
    first = model.layers[0]
    beat = shape[0] if len(shape) == 3 else (plans[first.name].simd if first.kind == "dense" else 1)
    b = DesignBuilder(Design(model, plan, Stream("in_stream", model.input_quant.dtype, beat, shape)), plans, build)
    for i, layer in enumerate(model.layers):
        EMITTERS[layer.kind](b, identifier(i, layer.name), layer, i == len(model.layers) - 1)
    d = b.design
    last = d.streams.pop()  # the last stage writes the top-level output port instead of an internal stream
    d.output = Stream("out_stream", last.elem, last.beat, last.shape)
    d.stages[-1].out = d.output
    return d
