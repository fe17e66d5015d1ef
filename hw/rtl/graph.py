"""Forks and joins of a graph model as the RTL streams it: who reads each tensor, and how deep a skip FIFO must be.

Every tensor is one valid/ready stream. A tensor read by more than one layer goes through a duplicator (`a2q_dup`,
FINN's DuplicateStreams), which hands each element to all readers at once, so the branches of a fork advance in
lock step until one of them cannot take an element. A join (the residual add) takes one element from each input at
once. The pair deadlocks when one branch must swallow many elements of the fork before it produces anything (a
sliding-window generator or an MVAU buffers its whole input frame / vector before its first output) while the
other branch passes elements straight through (requant, add): the straight branch then has to hold everything the
buffering branch holds back, or the duplicator stalls both. FINN sizes such FIFOs by simulation
(`InsertAndSetFIFODepths`); here the depth comes from the shapes:

* deadlock-free minimum (`min_depth`): the buffering branch's first output needs the whole forked tensor, so the
  straight branch must hold one forked tensor (F = prod(shape) elements);
* the depth built (`depth`): F per frame-buffering layer on the other branch. In steady state each of them holds
  up to one frame in flight, so with only F the fork waits for the add and frames no longer overlap (on
  tests/_graph_models.residual_model, two convs on the main branch, the initiation interval halves: see
  benchmarks/results/rtl_graph.md, written by benchmarks/rtl_graph.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2qflow.hw.compiler.ir import INPUT, DenseLayer, Model

# kinds whose first output needs their whole input (a2q_swg buffers a frame, a2q_mvau a whole input vector)
FRAME_KINDS = ("dense", "conv", "dwconv", "avgpool", "maxpool")


@dataclass(frozen=True)
class SkipFifo:
    """The FIFO in front of one input of an add: `depth` elements of `fork`'s stream (0: none needed)."""

    add: str
    slot: int  # 0 = the add's first input, 1 = its second
    fork: str  # the tensor both branches start from (a layer name or INPUT)
    depth: int
    reason: str
    min_depth: int = 0  # the deadlock-free minimum (one forked tensor); depth adds one per extra buffering layer


def output_shapes(model: Model) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor (INPUT and each layer's output) as the design streams it."""
    shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(model.input_shape)}
    for layer in model.layers:
        shapes[layer.name] = (layer.out_channels,) if isinstance(layer, DenseLayer) else tuple(layer.out_shape)
    return shapes


def reads(model: Model) -> dict[str, list[tuple[str, int]]]:
    """For each tensor, the (layer, input slot) pairs that read it, in layer order (more than one: a fork)."""
    out: dict[str, list[tuple[str, int]]] = {INPUT: []}
    for layer in model.layers:
        out.setdefault(layer.name, [])
        for slot, src in enumerate(layer.inputs):
            out[src].append((layer.name, slot))
    return out


def _ancestors(model: Model) -> dict[str, set[str]]:
    """Every tensor's producers, transitively, including itself (INPUT's set is {INPUT})."""
    anc: dict[str, set[str]] = {INPUT: {INPUT}}
    for layer in model.layers:
        anc[layer.name] = {layer.name}.union(*(anc[n] for n in layer.inputs))
    return anc


def skip_fifos(model: Model) -> list[SkipFifo]:
    """The FIFO in front of each input of each add (see the module docstring for the two depths)."""
    anc, shapes = _ancestors(model), output_shapes(model)
    order = {INPUT: -1, **{l.name: i for i, l in enumerate(model.layers)}}
    kinds = {l.name: l.kind for l in model.layers}
    out = []
    for layer in model.layers:
        if layer.kind != "add":
            continue
        a, b = layer.inputs
        common = anc[a] & anc[b]
        fork = max(common, key=lambda n: order[n])
        paths = [anc[a] - common, anc[b] - common]
        buffers = [sorted((n for n in p if kinds[n] in FRAME_KINDS), key=lambda n: order[n]) for p in paths]
        elems = int(np.prod(shapes[fork]))
        for slot in (0, 1):
            other = buffers[1 - slot]
            if buffers[slot] or not other:
                why = ("both branches buffer a frame" if buffers[slot] and other else
                       "this branch buffers a frame" if buffers[slot] else "neither branch buffers a frame")
                out.append(SkipFifo(layer.name, slot, fork, 0, why))
                continue
            out.append(SkipFifo(layer.name, slot, fork, elems * len(other),
                                f"the other branch's {other[0]} needs all {elems} elements of "
                                f"{'the input' if fork == INPUT else fork} {list(shapes[fork])} before its first "
                                f"output (deadlock-free minimum); x {len(other)} frame-buffering layer(s) "
                                f"({', '.join(other)}) so frames overlap", min_depth=elems))
    return out
