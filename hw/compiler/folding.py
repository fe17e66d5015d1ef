"""Folding solver: SIMD / PE per layer so the slowest layer sets the rate at a target of cycles per inference.

The reference is FINN's SetFolding transformation (finn.transformation.fpgadataflow.set_folding): each MAC layer
starts fully folded (SIMD = PE = 1) and takes more parallelism, in the order of its divisors, until its cycles per
inference are at or below the target; an MVAU (dense / conv) grows SIMD first, then PE (SIMD widens the dot product
without more weight memories per PE), a VVAU (depthwise / average pool, whose window is short) grows PE first.
Layers already fast enough stay small, so the pipeline is balanced: no layer is much faster than the slowest.

One addition: a layer cannot beat its stream floor (`stream_cycles`), the beats its streams take per inference
however wide its SIMD / PE. The beats are those of hw/rtl/generate.py (docs/rtl.md): a conv's or a max pool's line
buffer takes one pixel (C channels) per beat and gives one whole window per beat, so a conv streams
max(H x W input pixels, OH x OW windows) beats -- H x W x C when its input is the model's one-element-per-beat input
stream; the MVAU then takes SIMD-wide window beats and gives PE-wide results (both within its compute cycles). A
dense layer behind a (C, H, W) stage takes SIMD-wide beats through a width converter (K / gcd(C, SIMD) beats), one
on a vector stream (an MLP) one element per beat (K beats), and gives one result per beat (C beats); a depthwise /
average-pool VVAU and the element-wise units take one element per beat. The solver never buys parallelism below
that floor, and `fastest_target` is the target at which every layer hits it (asking for less gives the same
folding).

`choose_folding` is the one place that turns the configuration into a layer's datapath and (SIMD, PE): the compiler's
plan calls it on the IR, and the search and sweep call it on the shapes of the model a config builds, so what they
price is what the compiler builds (unrolled layers included).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import NamedTuple

import numpy as np

from a2qflow.hw.compiler.ir import MAC_KINDS, Model
from a2qflow.hw.compiler.skip_fifos import output_shapes
from a2qflow.hw.config import ArchitectureConfig, Folding, FoldingConfig
from a2qflow.hw.errors import A2QFlowError


def _rows(layer) -> int:
    """Vectors (output pixels) one inference pushes through the layer's MAC unit."""
    shape = tuple(layer.out_shape) if hasattr(layer, "out_shape") else (layer.out_channels,)
    return int(shape[1] * shape[2]) if len(shape) == 3 else 1


def compute_cycles(layer, simd: int, pe: int) -> int:
    """FINN's MVAU / VVAU cycle count: rows x (K / SIMD) x (C / PE)."""
    return _rows(layer) * (layer.K // simd) * (layer.out_channels // pe)


@dataclass(frozen=True)
class StreamIn:
    """What a layer's (first) input stream carries: `lanes` elements per beat at its producer's own pace (the
    producer's beats are its own floor) -- a pixel after a conv or max pool, one element after the model input, a
    dense layer, a VVAU or an element-wise unit -- and whether it is a (C, H, W) frame."""

    lanes: int = 1
    frame: bool = False


def stream_inputs(model: Model) -> dict[str, StreamIn]:
    """`StreamIn` of every layer, as hw/rtl/generate.py builds the streams."""
    kinds = {l.name: l.kind for l in model.layers}
    shapes = output_shapes(model)
    out = {}
    for l in model.layers:
        shape = shapes[l.inputs[0]]
        pixel = kinds.get(l.inputs[0]) in ("conv", "maxpool") and len(shape) == 3
        out[l.name] = StreamIn(int(shape[0]) if pixel else 1, len(shape) == 3)
    return out


def stream_cycles(layer, src: StreamIn = StreamIn(), simd: int | None = None) -> int:
    """The layer's stream floor fed by `src` (see the module docstring); for a dense layer behind a (C, H, W) stage
    it depends on SIMD (the width converter), None: the best SIMD (SIMD = K)."""
    if layer.kind in ("conv", "maxpool"):
        return max(int(np.prod(layer.in_shape)) // src.lanes, _rows(layer))
    if layer.kind == "dense":
        beats_in = layer.K // gcd(src.lanes, layer.K if simd is None else simd) if src.frame else layer.K
        return max(beats_in, layer.out_channels)
    per_row = layer.K * layer.out_channels if layer.kind in ("dwconv", "avgpool") else layer.K
    return _rows(layer) * max(per_row, layer.out_channels)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class LayerFolding:
    name: str
    simd: int
    pe: int
    compute_cycles: int
    stream_cycles: int

    @property
    def cycles(self) -> int:
        """Estimated cycles per inference: whichever of compute and the stream is slower."""
        return max(self.compute_cycles, self.stream_cycles)


def fold_layer(layer, target: int, src: StreamIn = StreamIn()) -> LayerFolding:
    """The smallest SetFolding step of `layer` whose cycles are <= max(target, its stream floor) when fed by `src`
    (`stream_inputs`)."""
    goal = max(target, stream_cycles(layer, src))
    simd_first = layer.kind not in ("dwconv", "avgpool")
    simd, pe = 1, 1

    def cycles(s: int, p: int) -> int:
        return max(compute_cycles(layer, s, p), stream_cycles(layer, src, s))

    for grow in (("simd", "pe") if simd_first else ("pe", "simd")):
        for d in _divisors(layer.K if grow == "simd" else layer.out_channels):
            if cycles(simd, pe) <= goal:
                break
            simd, pe = (d, pe) if grow == "simd" else (simd, d)
    return LayerFolding(layer.name, simd, pe, compute_cycles(layer, simd, pe), stream_cycles(layer, src, simd))


def solve(model: Model, target_cycles: int, skip: set[str] = frozenset()) -> list[LayerFolding]:
    """One `LayerFolding` per MAC layer not in `skip` (e.g. unrolled layers, which need no folding)."""
    if target_cycles < 1:
        raise A2QFlowError(f"hw.folding.target_cycles: {target_cycles} must be a positive number of cycles")
    srcs = stream_inputs(model)
    return [fold_layer(l, target_cycles, srcs[l.name]) for l in model.mac_layers() if l.name not in skip]


def fastest_target(model: Model, skip: set[str] = frozenset()) -> int:
    """The smallest target that still changes the folding: the slowest stream floor of a MAC layer or max pool."""
    srcs = stream_inputs(model)
    return max(stream_cycles(l, srcs[l.name]) for l in model.layers
               if (l.kind in MAC_KINDS and l.name not in skip) or l.kind == "maxpool")


def apply_target(model: Model, folding: FoldingConfig, skip: set[str] = frozenset()) -> FoldingConfig:
    """`folding` with every layer that has no explicit override folded by the solver (overrides win)."""
    if folding.target_cycles is None:
        return folding
    solved = {f.name: Folding(simd=f.simd, pe=f.pe) for f in solve(model, folding.target_cycles, skip)}
    return folding.model_copy(update={"layers": {**solved, **folding.layers}})


# ------------------------------------------------------------------------------------------------ the choice

class FoldingChoice(NamedTuple):
    """A MAC layer's datapath and parallelism: unrolled layers compute SIMD = K x PE = C at once."""

    architecture: str  # folded | unrolled
    simd: int
    pe: int


def largest_divisor_at_most(n: int, cap: int) -> int:
    """The default folding is a cap: the largest divisor of K (or C) that fits under it."""
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


def layer_architecture(name: str, kind: str, folding: FoldingConfig, arch: ArchitectureConfig) -> str:
    """The layer's datapath: a global `unrolled` leaves convolutions folded; an explicit per-layer one is checked.

    kind is the IR's (dense, conv, dwconv, avgpool, ...)."""
    choice = arch.for_layer(name)
    if choice != "unrolled":
        return choice
    if kind != "dense":
        if kind == "conv" and name in arch.layers:  # asked for by name: a constant-weight conv
            return _no_folding_override(name, folding)
        if name in arch.layers:
            raise A2QFlowError(f"hw.layers.{name}.architecture: unrolled is implemented for dense and conv "
                               f"layers only and {name} is a {kind}; set it to folded")
        return "folded"
    return _no_folding_override(name, folding)


def _no_folding_override(name: str, folding: FoldingConfig) -> str:
    if name in folding.layers:
        raise A2QFlowError(f"hw.folding.layers.{name}: layer {name} is unrolled (SIMD = K, PE = C); "
                           "drop its folding override or set hw.layers.{name}.architecture: folded"
                           .replace("{name}", name))
    return "unrolled"


def choose_folding(name: str, kind: str, K: int, C: int, folding: FoldingConfig,
                   arch: ArchitectureConfig) -> FoldingChoice:
    """The datapath and (SIMD, PE) of one MAC layer: K x C unrolled, a per-layer override (checked: it must divide
    K and C), or else the largest divisors of K and C under the default cap.

    Args:
        name, kind: the layer's name and IR kind (dense, conv, dwconv, avgpool).
        K, C: dot-product length and output channels.
        folding: hw.folding (after `apply_target` when a target cycle count is set).
        arch: hw.layers / hw.architecture.

    Returns:
        FoldingChoice(architecture, simd, pe).
    """
    a = layer_architecture(name, kind, folding, arch)
    if a == "unrolled":
        return FoldingChoice(a, K, C)
    f = folding.for_layer(name)
    if name in folding.layers:
        if K % f.simd or C % f.pe:
            ok_s = [d for d in range(1, K + 1) if K % d == 0]
            ok_p = [d for d in range(1, C + 1) if C % d == 0]
            raise A2QFlowError(f"hw.folding.layers.{name}: simd={f.simd} must divide K={K} "
                               f"(one of {ok_s}) and pe={f.pe} must divide C={C} (one of {ok_p})")
        return FoldingChoice(a, f.simd, f.pe)
    return FoldingChoice(a, largest_divisor_at_most(K, f.simd), largest_divisor_at_most(C, f.pe))
