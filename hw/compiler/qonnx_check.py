"""Compare the integer golden model with qonnx's own execution of the same QONNX file.

qonnx (`execute_onnx`) is the reference semantics of a QONNX graph; agreement with it is what makes the IR a
faithful lowering. Used by the compiler tests and by benchmarks/golden_vs_qonnx.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def qonnx_outputs(path: Path | str, x: np.ndarray, tensors: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run qonnx' execute_onnx one sample at a time (batch-1 graph); returns the output (and any named tensors)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    m = ModelWrapper(str(path)).transform(InferShapes())
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    want = [oname] + list(tensors or [])
    res: dict[str, list] = {t: [] for t in want}
    for i in range(len(x)):
        ctx = execute_onnx(m, {iname: x[i:i + 1].astype(np.float32)}, return_full_exec_context=bool(tensors))
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
