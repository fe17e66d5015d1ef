"""Compare the integer golden model with qonnx's own execution of the same QONNX file.

qonnx (`execute_onnx`) is the reference semantics of a QONNX graph; agreement with it is what makes the IR a
faithful lowering. Used by the compiler tests and by benchmarks/golden_vs_qonnx.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def qonnx_outputs(path: Path | str, x: np.ndarray, tensors: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run qonnx' execute_onnx on the whole batch (qonnx' ChangeBatchSize); returns the output (and any named
    tensors)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    from a2qflow.hw.compiler.passes import bypass_identities

    full = bool(tensors)

    def wrapper() -> ModelWrapper:
        # exact no-ops (Identity, x * 1, x + 0) removed as the frontend removes them: qonnx executes node by node,
        # so a long chain of them would cost seconds, and the frontend's tensor names are the bypassed graph's
        m = ModelWrapper(str(path))
        bypass_identities(m.graph)
        return m

    try:  # the whole batch at once; a graph with a constant batch-1 Reshape needs one sample at a time
        m = wrapper().transform(ChangeBatchSize(len(x))).transform(InferShapes())
        iname, oname = m.graph.input[0].name, m.graph.output[0].name
        want = list(dict.fromkeys([oname] + list(tensors or [])))
        ctx = execute_onnx(m, {iname: np.asarray(x, dtype=np.float32)}, return_full_exec_context=full)
        return {t: np.asarray(ctx[t]) for t in want}
    except Exception:  # noqa: BLE001 - retried below; a real failure raises there
        pass
    m = wrapper().transform(InferShapes())
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    want = list(dict.fromkeys([oname] + list(tensors or [])))
    res: dict[str, list] = {t: [] for t in want}
    for i in range(len(x)):
        ctx = execute_onnx(m, {iname: x[i:i + 1].astype(np.float32)}, return_full_exec_context=full)
        for t in want:
            res[t].append(ctx[t][0])
    return {t: np.asarray(v) for t, v in res.items()}


def golden_vs_qonnx(onnx_path: Path | str, x: np.ndarray, ref: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """(golden logits, qonnx logits, max |difference| in units of the last layer's output step acc*scale).

    `ref`: qonnx outputs already computed for `x` (execute_onnx is the slow part)."""
    from a2qflow.hw.compiler import reference
    from a2qflow.hw.compiler.frontend import load_qonnx
    from a2qflow.hw.compiler.ir import Affine

    model = load_qonnx(onnx_path)
    gold = reference.run(model, model.input_quant.quantize(x)).logits
    ref = next(iter(qonnx_outputs(onnx_path, x).values())) if ref is None else ref
    last = model.layers[-1]
    step = np.abs(np.asarray(last.act.scale)) if isinstance(last.act, Affine) else 1.0
    ref = ref.reshape(len(x), -1)
    return gold, ref, float((np.abs(gold - ref) / step).max())


@dataclass
class LayerDiff:
    """How one IR layer's output compares with qonnx' execution of the file: values compared, values that differ,
    the largest difference (in the layer's integer steps) and where the first difference is."""

    layer: str
    values: int
    differ: int
    max_steps: float
    first: tuple[int, int] | None = None  # (sample, flat index within the sample)
    golden: float | None = None
    qonnx: float | None = None

    def describe(self) -> str:
        where = "" if self.first is None else (f"; first at sample {self.first[0]}, element {self.first[1]}: golden "
                                               f"{self.golden:g} vs qonnx {self.qonnx:g}")
        return (f"layer {self.layer}: {self.differ} of {self.values} values differ (up to {self.max_steps:g} "
                f"steps){where}")


def layerwise(onnx_path: Path | str, x: np.ndarray, traced=None) -> list[LayerDiff]:
    """Compare every IR layer's output tensor with the tensor qonnx computes for it, on float inputs `x`.

    The golden model quantizes `x` with the model's input quantizer (Brevitas' float32 arithmetic, as qonnx), runs
    the graph with ideal accumulators, and each layer's integers are compared with qonnx' tensor turned back into
    levels (v / scale + zero_point); float logits are compared in units of their step (acc * scale). A dropped
    Softmax's output is not compared (the hardware outputs the logits before it)."""
    from a2qflow.hw.compiler import reference
    from a2qflow.hw.compiler.frontend import load_qonnx_traced

    model, trace = traced if traced is not None else load_qonnx_traced(onnx_path)
    tensors = sorted({t for t, _ in trace.values()})
    ref = qonnx_outputs(onnx_path, x, tensors)
    gold = reference.run(model, model.input_quant.quantize(np.asarray(x).reshape(len(x), *model.input_shape)),
                         keep=True).values
    out = []
    for layer in model.layers:
        tensor, quant = trace[layer.name]
        g = gold[layer.name].reshape(len(x), -1).astype(np.float64)
        q = ref[tensor].reshape(len(x), -1).astype(np.float64)
        if quant is not None:
            q = q / float(np.ravel(quant.scale)[0]) + float(np.ravel(quant.zero_point)[0])
            step = 1.0
        elif model.notes and tensor == onnx_output_name(onnx_path):
            continue  # a dropped Softmax: qonnx holds probabilities, the hardware the logits
        else:
            g = reference.logits_of(layer, g)
            step = np.abs(np.asarray(layer.act.scale, dtype=np.float64))[None, :]
        if g.shape != q.shape:
            out.append(LayerDiff(layer.name, g.size, g.size, float("inf")))
            continue
        d = np.abs(g - q) / step
        bad = d > (0.5 if quant is not None else logit_tolerance(layer))
        first = tuple(int(v) for v in np.argwhere(bad)[0]) if bad.any() else None
        out.append(LayerDiff(layer.name, int(g.size), int(bad.sum()), float(d.max(initial=0.0)), first,
                             None if first is None else float(g[first]), None if first is None else float(q[first])))
    return out


def logit_tolerance(layer) -> float:
    """How far (in steps of the output scale) qonnx' float32 logits may sit from the exact ones.

    Why not a fixed 1e-3: qonnx sums the layer in float32, and a float sum of K terms can be off by up to
    K * 2^-24 * sum |terms| (Higham, "Accuracy and Stability of Numerical Algorithms", 4.2), here at most
    (K + 1) * 2^-24 * 2^(P-1) steps for the layer's exact accumulator width P: 0.0019 steps was seen on a W8A8 P16
    classifier, which the fixed 1e-3 refused. Capped at a quarter step, so a wrong integer (a whole step) is always
    caught.
    """
    from a2qflow.hw.compiler.bounds import acc_bits_exact

    p = acc_bits_exact(layer.weight_matrix(), layer.in_type)
    return float(min(0.25, max(1e-3, (layer.K + 1) * 2.0 ** -24 * 2.0 ** (p - 1))))


def onnx_output_name(onnx_path: Path | str) -> str:
    import onnx

    return onnx.load(str(onnx_path), load_external_data=False).graph.output[0].name


def check_layerwise(onnx_path: Path | str, x: np.ndarray, where: str, traced=None) -> list[LayerDiff]:
    """`layerwise`, failing loudly at the first layer whose integers differ from qonnx' (which export has checked
    against torch): the golden model, C-sim and RTL would all compute something other than the trained model."""
    from a2qflow.hw.errors import A2QFlowError

    diffs = layerwise(onnx_path, x, traced)
    bad = next((d for d in diffs if d.differ), None)
    if bad is not None:
        raise A2QFlowError(f"{where}: the integer golden model disagrees with qonnx' execution of the file at "
                           f"{bad.describe()}; the hardware would not compute what the model computes (please "
                           "report this with the file)")
    return diffs
