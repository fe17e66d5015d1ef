"""The one comparison of an executor's integers with the golden model: which samples, layer, channel and value.

Every backend that claims bit-exactness (g++ C-sim, Verilator RTL, in all their variants: folded, unrolled,
DSP-packed, layer graphs) and every flow stage that fails on a disagreement calls `compare_with_golden`, so a
disagreement is reported the same way everywhere: "layer, channel, sample" (ARCHITECTURE.md, bit-exact chain),
with the expected and the observed integer. Outputs are compared in the golden model's CHW-flattened order; the
channel of a flat index is `index // (H * W)` for a (C, H, W) layer and the index itself for a vector.

Why one place: the C-sim and RTL paths used to compare in two forms, and only RTL said where the first difference
was. A caller that has more than the output layer (e.g. qonnx' execution of model_int.onnx gives every layer)
passes them all and gets a per-layer breakdown; the first mismatch is then in the earliest layer (in topological
order) that differs, which is where a bug starts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict

from a2qflow.hw.compiler.ir import Layer, Model
from a2qflow.hw.compiler.reference import GoldenRun
from a2qflow.hw.errors import A2QFlowError


class Mismatch(BaseModel):
    """One integer that differs: where (sample, layer, channel, position inside the channel) and the two values."""

    model_config = ConfigDict(extra="allow")

    sample: int
    layer: str
    channel: int
    position: list[int] = []  # (h, w) inside the channel for a (C, H, W) output, [] for a vector
    index: int  # flat index within the sample's CHW-flattened layer output
    expected: int  # the golden model's value
    got: int  # the executor's value


class LayerComparison(BaseModel):
    """One layer's outputs over the batch: values compared, values and samples that differ, the first difference."""

    model_config = ConfigDict(extra="allow")

    layer: str
    values: int
    mismatching_values: int
    mismatching_samples: int
    first: Mismatch | None = None


class GoldenComparison(BaseModel):
    """Result of comparing an executor with the golden model (or with another executor, `reference`).

    n_mismatches counts samples with any differing integer in any compared layer (what csim.json / rtlsim.json
    call `mismatches`); `first` is the first difference of the earliest differing layer.
    """

    model_config = ConfigDict(extra="allow")

    backend: str
    reference: str = "the golden model"
    n_samples: int
    n_mismatches: int
    mismatching_values: int
    first: Mismatch | None = None
    layers: list[LayerComparison] = []

    @property
    def ok(self) -> bool:
        return self.n_mismatches == 0

    def message(self) -> str:
        """One line naming backend, counts, and the first mismatch's layer, channel and sample."""
        if self.first is None:
            return f"{self.backend} agrees with {self.reference} on all {self.n_samples} samples"
        f = self.first
        at = f" at (h, w) = ({', '.join(map(str, f.position))})" if f.position else ""
        return (f"{self.backend} disagrees with {self.reference} on {self.n_mismatches} of {self.n_samples} samples "
                f"({self.mismatching_values} values); first at layer {f.layer}, channel {f.channel}{at}, sample "
                f"{f.sample}: expected {f.expected}, got {f.got}")

    def first_mismatch(self, got_key: str) -> dict | None:
        """The first mismatch as the JSON files hold it: the Mismatch fields plus the earlier keys `output` (flat
        index), `golden` (expected) and `got_key` (e.g. "rtl", "csim": the executor's value)."""
        if self.first is None:
            return None
        return {**self.first.model_dump(), "output": self.first.index, "golden": self.first.expected,
                got_key: self.first.got}


def layer_shape(layer: Layer) -> tuple[int, ...]:
    """A layer's output shape per sample: (C, H, W) for spatial layers, (C,) for a dense layer."""
    shape = getattr(layer, "out_shape", None)
    return tuple(int(d) for d in shape) if shape is not None else (int(layer.out_channels),)


def _as_layers(model: Model, values: GoldenRun | np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{layer name: outputs}: a bare array is the last layer's output; a GoldenRun gives its output layer and
    every layer it kept (`reference.run(..., keep=True)`)."""
    out_name = model.layers[-1].name
    if isinstance(values, GoldenRun):
        return {**values.values, out_name: values.acc}
    if isinstance(values, Mapping):
        return dict(values)
    return {out_name: values}


def _layer_diff(layer: Layer, want: np.ndarray, got: np.ndarray, backend: str) -> tuple[LayerComparison, np.ndarray]:
    """Compare one layer's outputs; returns the comparison and the per-sample "differs" mask."""
    shape = layer_shape(layer)
    n = int(want.shape[0])
    got = np.asarray(got)
    if got.shape[:1] != (n,) or got.size != n * int(np.prod(shape)) or want.size != got.size:
        raise A2QFlowError(f"{backend}: layer {layer.name} has outputs of shape {list(got.shape)}, expected "
                           f"({n}, {', '.join(map(str, shape))}) like the golden model")
    w = np.asarray(want).reshape(n, -1).astype(np.int64)
    g = got.reshape(n, -1).astype(np.int64)
    bad = w != g
    rows = bad.any(axis=1)
    first = None
    if rows.any():
        s = int(np.argmax(rows))
        j = int(np.argmax(bad[s]))
        per_channel = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        pos = [int(v) for v in np.unravel_index(j % per_channel, shape[1:])] if len(shape) > 1 else []
        first = Mismatch(sample=s, layer=layer.name, channel=j // per_channel, position=pos, index=j,
                         expected=int(w[s, j]), got=int(g[s, j]))
    return LayerComparison(layer=layer.name, values=int(bad.size), mismatching_values=int(bad.sum()),
                           mismatching_samples=int(rows.sum()), first=first), rows


def compare_with_golden(model: Model, expected: GoldenRun | np.ndarray | Mapping[str, np.ndarray],
                        got: np.ndarray | Mapping[str, np.ndarray], backend: str,
                        reference: str = "the golden model") -> GoldenComparison:
    """Compare an executor's integer outputs with the golden model's, layer by layer where both have them.

    Args:
        model: the IR both ran (layer order, names and output shapes).
        expected: the golden model's run (`reference.run`, with keep=True for every layer), a {layer: outputs}
            mapping, or the output layer's array (N, out) in CHW-flattened order.
        got: the executor's outputs, as a {layer: (N, ...)} mapping or the output layer's (N, out) array.
        backend: who produced `got` ("C-sim", "Verilator", ...), for the message.
        reference: who produced `expected`, for the message (another executor's outputs compare the same way).

    Returns:
        A GoldenComparison: samples, samples and values that differ, the first mismatch (sample, layer, channel,
        position, expected, got) and one LayerComparison per compared layer.
    """
    want, have = _as_layers(model, expected), _as_layers(model, got)
    names = [l.name for l in model.layers]
    unknown = [k for k in have if k not in names]
    if unknown:
        raise A2QFlowError(f"{backend}: outputs for {unknown[0]!r}, which is no layer of model {model.name!r}")
    missing = [k for k in have if k not in want]
    if missing:
        raise A2QFlowError(f"{backend}: no {reference} outputs for layer {missing[0]!r} to compare with; run the "
                           "golden model with keep=True")
    layers, any_bad, n = [], None, None
    for layer in model.layers:
        if layer.name not in have:
            continue
        comp, rows = _layer_diff(layer, want[layer.name], have[layer.name], backend)
        layers.append(comp)
        any_bad = rows if any_bad is None else any_bad | rows
        n = int(rows.shape[0])
    if not layers:
        raise A2QFlowError(f"{backend}: no layer outputs to compare with {reference}")
    first = next((c.first for c in layers if c.first is not None), None)
    return GoldenComparison(backend=backend, reference=reference, n_samples=n, n_mismatches=int(any_bad.sum()),
                            mismatching_values=sum(c.mismatching_values for c in layers), first=first, layers=layers)
