"""Folding solver: SIMD / PE per layer so the slowest layer sets the rate at a target of cycles per inference.

The reference is FINN's SetFolding transformation (finn.transformation.fpgadataflow.set_folding): each MAC layer
starts fully folded (SIMD = PE = 1) and takes more parallelism, in the order of its divisors, until its cycles per
inference are at or below the target; an MVAU (dense / conv) grows SIMD first, then PE (SIMD widens the dot product
without more weight memories per PE), a VVAU (depthwise / average pool, whose window is short) grows PE first.
Layers already fast enough stay small, so the pipeline is balanced: no layer is much faster than the slowest.

One addition: the streams between a2qflow's folded units carry one element per beat (hw/rtl/generate.py), so a
layer cannot beat `stream_cycles` (its window stream into the MAC unit, its outputs out), however wide its SIMD / PE.
The solver never buys parallelism below that floor, and `fastest_target` is the target at which every layer hits it
(asking for less gives the same folding).

`choose_folding` is the one place that turns the configuration into a layer's datapath and (SIMD, PE): the compiler's
plan calls it on the IR, and the search and sweep call it on the shapes of the model a config builds, so what they
price is what the compiler builds (unrolled layers included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from a2qflow.hw.compiler.ir import Model
from a2qflow.hw.config import ArchitectureConfig, Folding, FoldingConfig
from a2qflow.hw.errors import A2QFlowError


def _rows(layer) -> int:
    """Vectors (output pixels) one inference pushes through the layer's MAC unit."""
    shape = tuple(getattr(layer, "out_shape", (layer.out_channels,)))
    return int(shape[1] * shape[2]) if len(shape) == 3 else 1


def compute_cycles(layer, simd: int, pe: int) -> int:
    """FINN's MVAU / VVAU cycle count: rows x (K / SIMD) x (C / PE)."""
    return _rows(layer) * (layer.K // simd) * (layer.out_channels // pe)


def stream_cycles(layer) -> int:
    """The one-element-per-beat floor: the elements of every window in (a depthwise window holds all C channels)
    or of every output, whichever is more."""
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


def fold_layer(layer, target: int) -> LayerFolding:
    """The smallest SetFolding step of `layer` whose cycles are <= max(target, its stream floor)."""
    goal = max(target, stream_cycles(layer))
    simd_first = layer.kind not in ("dwconv", "avgpool")
    simd, pe = 1, 1
    for grow in (("simd", "pe") if simd_first else ("pe", "simd")):
        for d in _divisors(layer.K if grow == "simd" else layer.out_channels):
            if compute_cycles(layer, simd, pe) <= goal:
                break
            simd, pe = (d, pe) if grow == "simd" else (simd, d)
    return LayerFolding(layer.name, simd, pe, compute_cycles(layer, simd, pe), stream_cycles(layer))


def solve(model: Model, target_cycles: int, skip: set[str] = frozenset()) -> list[LayerFolding]:
    """One `LayerFolding` per MAC layer not in `skip` (e.g. unrolled layers, which need no folding)."""
    if target_cycles < 1:
        raise A2QFlowError(f"hw.folding.target_cycles: {target_cycles} must be a positive number of cycles")
    return [fold_layer(l, target_cycles) for l in model.mac_layers() if l.name not in skip]


def fastest_target(model: Model, skip: set[str] = frozenset()) -> int:
    """The smallest target that still changes the folding: the slowest layer's stream floor."""
    return max(stream_cycles(l) for l in model.mac_layers() if l.name not in skip)


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
