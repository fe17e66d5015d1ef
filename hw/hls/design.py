"""The HLS design in Python terms: streams, stages and per-layer parameters, before any C++ is written.

`a2qflow.hw.hls.lowering.build_design(model, plan)` walks the IR graph and lets one emitter per layer kind
(`a2qflow.hw.hls.emitters`) add stages and parameters to the `Design` through a `DesignBuilder`, both defined here.
Every layer output is one stream; a tensor read by more than one layer goes through a chain of two-way stream
duplicators (FINN's DuplicateStreams), so each reader owns a stream, and a join (the residual add) reads two.
Everything here stays typed (`IntType`, numpy arrays, `Stream` objects); C++ text
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
    depth: int = 2  # FIFO depth in beats (#pragma HLS stream depth)
    depth_note: str = ""  # why a FIFO is deeper than 2 (a comment in top.cpp)

    @property
    def beats(self) -> int:
        return self.elems // self.beat

    @property
    def elems(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Stage:
    """One call in the dataflow top: `kind` names its call template in hls_templates/calls.j2."""

    kind: str  # mvau | vvau | global_pool | (dw_)sliding_window | maxpool | convert_width | add | requant | duplicate
    comment: str
    inp: Stream
    out: Stream
    ns: str = ""  # the layer's C++ namespace (params_<ns>.h)
    args: dict = field(default_factory=dict)  # extra template arguments (e.g. the MAC layer index)
    inp2: Stream | None = None  # the second input of a join (add)
    out2: Stream | None = None  # the second output of a fork (duplicate)


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
    weight_rows: str = "PE"  # the weight table's first dimension: PE, or GROUPS for a packed unit (mvau_packed)


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
    fifo_depths: dict[str, int] = field(default_factory=dict)  # streams deeper than 2 beats (skip branches)


class DesignBuilder:
    """Mutable state the emitters share while walking the IR: the current stream (an emitter's input, then each
    stage's output), the second input of a join, and the streams each tensor's readers still have to take."""

    def __init__(self, design: Design, plans: dict[str, LayerPlan], build: Path):
        self.design, self.plans, self.build = design, plans, build
        self.cur = design.input
        self.inputs: list[Stream] = [design.input]  # the current layer's input streams (two for an add)
        self.readers: dict[str, list[Stream]] = {}  # tensor name -> one stream per reader not yet emitted

    def new_stream(self, elem: IntType, beat: int, shape: tuple[int, ...]) -> Stream:
        s = Stream(f"s{len(self.design.streams)}", elem, beat, tuple(shape))
        self.design.streams.append(s)
        return s

    def add_stage(self, kind: str, comment: str, out: Stream, ns: str = "", inp2: Stream | None = None,
                  out2: Stream | None = None, **args) -> None:
        self.design.stages.append(Stage(kind, comment, self.cur, out, ns, args, inp2, out2))
        self.cur = out

    def convert(self, s: Stream, beat: int, why: str) -> Stream:
        """`s` re-beaten to `beat` elements per beat (a convert_width stage), or `s` itself when it already is."""
        if s.beat == beat:
            return s
        self.cur = s
        out = self.new_stream(s.elem, beat, s.shape)
        self.add_stage("convert_width", f"{why}: {s.beat} -> {beat} values per beat", out, in_beat=s.beat,
                       out_beat=beat, elems=s.elems)
        return out

    def publish(self, name: str, s: Stream, readers: int) -> None:
        """Make tensor `name` (stream `s`) available to its `readers` layers: one stream each, through a chain of
        two-way duplicators when there is more than one reader."""
        streams = []
        while readers > 1:
            a, b = (self.new_stream(s.elem, s.beat, s.shape) for _ in range(2))
            self.cur = s
            self.add_stage("duplicate", f"fork of {name}: {s.beats} beats of {s.beat} to two readers", a,
                           out2=b, beats=s.beats, tensor=name)
            streams.append(a)
            s, readers = b, readers - 1
        self.readers[name] = streams + [s]

    def take(self, name: str) -> Stream:
        """The next unread stream of tensor `name` (one per reading layer, in layer order)."""
        return self.readers[name].pop(0)

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
