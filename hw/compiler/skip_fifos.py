"""Forks and joins of a graph model as the backends stream it: who reads each tensor, how deep a skip FIFO must be.

A fact of the IR (shapes and windows), so it lives in the compiler and both backends read it (HLS and RTL never
import each other).

Every tensor is one valid/ready stream. A tensor read by more than one layer goes through a duplicator (`a2q_dup`,
FINN's DuplicateStreams), which hands each element to all readers at once, so the branches of a fork advance in
lock step until one of them cannot take an element. A join (the residual add) takes one element from each input at
once. The pair deadlocks when one branch must swallow many elements of the fork before it produces the element the
add needs next while the other branch passes elements straight through (requant, add): the straight branch then
has to hold everything the other branch holds back, or the duplicator stalls both. FINN sizes such FIFOs by
simulation (`InsertAndSetFIFODepths`); here the depth comes from the shapes:

* deadlock-free minimum (`min_depth`): output element j of the buffering branch needs fork elements up to
  need(j) (a line-buffered sliding window (a2q_swg) needs the last element of its window, an MVAU on a vector the
  whole vector; see `element_needs`), so the straight branch holds need(j) - j + 1 elements at most:
  min_depth = max_j need(j) - j + 1. With line buffers this is a few rows of the fork, not a frame;
* the depth built (`depth`): twice that, so the fork can push the next rows while the buffering branch works on
  these (measured: benchmarks/results/rtl_graph.md, written by benchmarks/rtl_graph.py).

A buffering branch that is not a chain of one-input layers (a nested fork) keeps the whole-frame rule: one forked
tensor per buffering layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2qflow.hw.compiler.ir import INPUT, DenseLayer, Model

# kinds that hold data back: a2q_swg (conv, depthwise, pools) a few rows of its input, a2q_mvau a whole vector
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


def element_needs(layer) -> np.ndarray:
    """need[j]: the last input element (stream order, HWC) that output element j of `layer` depends on.

    Why: a line-buffered sliding window emits a window as soon as its last element has arrived, and an MVAU / VVAU
    computes a window (or a dense layer's vector) as soon as the whole of it is in, so need() is exactly how far the
    layer's input must have advanced before output j can leave. Element-wise layers (requant, add) need element j.
    A global average pool built as the RTL's per-channel accumulator (a2q_gap, no line buffer) gives output channel c
    with input element (H*W - 1)*C + c, at most C - 1 elements before the frame's last one that this models for every
    channel (the VVAU's rule, which the HLS backend keeps): the skip FIFO it sizes is at least as deep as needed.
    """
    if layer.kind in ("conv", "dwconv", "avgpool", "maxpool"):
        c, h, w = layer.in_shape
        kh, kw = layer.kernel
        sh, sw = layer.stride
        pt, pl = (layer.pad[0], layer.pad[1]) if hasattr(layer, "pad") else (0, 0)
        co, oh, ow = layer.out_shape
        y1 = np.minimum(h - 1, np.arange(oh) * sh - pt + kh - 1)
        x1 = np.minimum(w - 1, np.arange(ow) * sw - pl + kw - 1)
        pix = ((y1[:, None] * w + x1[None, :]) * c + c - 1).ravel()
        return np.repeat(pix, co)  # every output channel of a pixel needs its whole window
    if layer.kind == "dense":
        return np.full(layer.out_channels, layer.K - 1, dtype=np.int64)
    return np.arange(int(np.prod(layer.out_shape)), dtype=np.int64)


def _branch_lag(model: Model, branch: set[str], fork: str, end: str) -> int | None:
    """max_j need(j) - j + 1 of the chain from `fork` to `end` (None when the branch is not a one-input chain)."""
    by_name = {l.name: l for l in model.layers}
    chain, cur = [], end
    while cur != fork:
        layer = by_name.get(cur)
        if layer is None or len(layer.inputs) != 1 or cur not in branch:
            return None
        chain.append(layer)
        cur = layer.inputs[0]
    if not chain:
        return None
    need = element_needs(chain[0])
    for layer in chain[1:]:  # chain[0] is the branch's last layer: map its needs back through each producer
        need = element_needs(layer)[need]
    return int(np.max(need - np.arange(need.size))) + 1


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
            src = "the input" if fork == INPUT else fork
            lag = _branch_lag(model, paths[1 - slot], fork, layer.inputs[1 - slot])
            if lag is None:
                out.append(SkipFifo(layer.name, slot, fork, elems * len(other),
                                    f"the other branch's {other[0]} needs all {elems} elements of {src} "
                                    f"{list(shapes[fork])} before its first output (deadlock-free minimum); x "
                                    f"{len(other)} buffering layer(s) ({', '.join(other)}) so frames overlap",
                                    min_depth=elems))
                continue
            out.append(SkipFifo(layer.name, slot, fork, 2 * lag,
                                f"the other branch ({', '.join(other)}) needs up to {lag - 1} elements of {src} "
                                f"{list(shapes[fork])} beyond the one the add takes next (line buffers: "
                                f"deadlock-free minimum {lag}); x 2 so the fork runs ahead while it works",
                                min_depth=lag))
    return out
