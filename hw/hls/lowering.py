"""Lowering the IR graph to an HLS `Design`: one walk in topological order, one emitter per layer kind.

`build_design(model, plan)` hands every layer to the emitter registered for its kind (`a2qflow.hw.hls.emitters`),
which adds its stages and parameters to the typed design (`a2qflow.hw.hls.design`); `skip_fifo_depths` then sizes
the FIFOs a fork needs so the dataflow never deadlocks. Its own module because the walk needs the emitters and the
emitters need the design's types: in design.py the two imported each other.
"""

from __future__ import annotations

from pathlib import Path

from a2qflow.hw.compiler.ir import INPUT, Model
from a2qflow.hw.compiler.plan import Plan
from a2qflow.hw.compiler.skip_fifos import skip_fifos
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.hls.design import Design, DesignBuilder, Stage, Stream, check_plan
from a2qflow.hw.hls.emitters import EMITTERS, identifier


def build_design(model: Model, plan: Plan, build: Path | str = "BUILD") -> Design:
    """Lower the IR graph + plan to stages, streams and per-layer parameters (pure: writes nothing).

    Layers are emitted in the IR's topological order; each reads one stream per input (its own copy when the
    tensor has several readers) and publishes one output stream.

    Args:
        model: the integer IR (a DAG in topological order; the last layer is the output).
        plan: its accumulator plan (widths, folding, fitted thresholds).
        build: the build folder, named in error messages.

    Returns:
        The typed `Design`; the last layer's stage writes the top-level output stream.
    """
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
    names = (INPUT, *(l.name for l in model.layers))
    readers = {name: sum(l.inputs.count(name) for l in model.layers) for name in names}
    b.publish(INPUT, b.design.input, readers[INPUT])
    for i, layer in enumerate(model.layers):
        if layer.kind not in EMITTERS:
            raise A2QFlowError(f"{build}/ir.json: layer {layer.name} has kind {layer.kind!r}, which the HLS backend "
                               f"does not implement (it has {', '.join(sorted(EMITTERS))})")
        b.inputs = [b.take(n) for n in layer.inputs]
        b.cur = b.inputs[0]
        EMITTERS[layer.kind](b, identifier(i, layer.name), layer, i == len(model.layers) - 1)
        if i < len(model.layers) - 1:
            b.publish(layer.name, b.cur, readers[layer.name])
    d = b.design
    last = b.cur  # the last layer's stage writes the top-level output port instead of an internal stream
    d.streams.remove(last)
    d.output = Stream("out_stream", last.elem, last.beat, last.shape)
    for st in d.stages:
        st.out = d.output if st.out is last else st.out
    d.fifo_depths = skip_fifo_depths(d)
    return d


# Stages that pass a tensor through element by element (a few beats of latency); every other stage holds data
# back: a sliding window or pool reads a few rows (its line buffer) ahead of its output, an MVAU a whole vector.
STREAMING_STAGES = ("convert_width", "requant", "duplicate")


def _reaches_join(d: Design, s: Stream) -> Stage | None:
    """The add that stream `s` reaches through streaming stages only (a skip branch), else None."""
    for st in d.stages:
        if st.inp is not s and st.inp2 is not s:
            continue
        if st.kind == "add":
            return st
        if st.kind in STREAMING_STAGES:
            return next(filter(None, (_reaches_join(d, o) for o in (st.out, st.out2) if o is not None)), None)
        return None
    return None


def skip_fifo_depths(d: Design) -> dict[str, int]:
    """Size the FIFO of every fork output that reaches a join through streaming stages only (a skip branch).

    Why: the duplicator writes each beat to both branches in lockstep and the add reads both branches in lockstep.
    The main branch holds data back before the element the add needs next reaches it (a line-buffered sliding
    window or pool reads until its window's last element, an MVAU reads a whole vector), and during that time the
    duplicator must be able to push the same elements into the skip branch, or it stalls and the main branch never
    gets them: a deadlock. The RTL backend's rule gives that lag from the shapes (hw.compiler.skip_fifos: min_depth
    = max_j need(j) - j + 1 elements of the fork, built twice that so the fork runs ahead); here the same depth in
    the fork's beats, plus two beats for the width converters between stages. In C-sim, streams are unbounded and
    the stages run one after another, so this depth only matters in RTL (cosim and hardware).

    Returns:
        {stream name: depth in beats} of the deepened streams (each also gets depth / depth_note set).
    """
    rule = {f.add: f for f in skip_fifos(d.model) if f.depth}
    depths: dict[str, int] = {}
    for st in d.stages:
        if st.kind != "duplicate":
            continue
        outs = [st.out, st.out2]
        joins = [_reaches_join(d, o) for o in outs]
        for o, join, other in zip(outs, joins, joins[::-1]):
            if join is None or other is not None:  # not a skip branch, or both branches stream through
                continue
            add = join.comment.split(":")[0]
            elems = rule[add].depth if add in rule else st.inp.elems
            o.depth = max(2, min(st.inp.beats, -(-elems // st.inp.beat) + 2))
            o.depth_note = (f"skip branch from {st.args['tensor']} to {add}: holds {o.depth} beats of "
                            f"{st.inp.beat} ({elems} elements of the {st.inp.elems}-element frame, the rule of "
                            "hw.compiler.skip_fifos), what the other branch reads ahead of the add")
            depths[o.name] = o.depth
    return depths
