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
"""

from __future__ import annotations

from dataclasses import dataclass

from a2qflow.hw.compiler.ir import Model
from a2qflow.hw.config import Folding, FoldingConfig
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
