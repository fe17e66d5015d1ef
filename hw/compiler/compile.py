"""`a2qflow compile`: QONNX -> integer IR + accumulator plan, written into a build folder.

BUILD/ir.json + ir.npz (the lowered integer layers), BUILD/plan.json + plan.md (per-layer bounds and the widths the
hardware uses), BUILD/model_int.onnx (the same integer model as a qonnx graph for FINN / qonnx tools). Everything
is computed before the first file is written and each file is written atomically, so a bad model or a refused
width leaves the build folder as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.bounds import ACC_BITS_MAX, ACC_BITS_MIN
from a2qflow.hw.compiler.frontend import load_qonnx_traced
from a2qflow.hw.compiler.int_onnx import int_model
from a2qflow.hw.compiler.ir import save_model
from a2qflow.hw.compiler.plan import Plan, make_plan, save_plan
from a2qflow.hw.config import ArchitectureConfig, DspConfig, FoldingConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_bytes, ensure_out_dir


def compile_model(onnx_path: Path | str, build: Path | str, acc_bits: int | None = None, allow_unsafe: bool = False,
                  folding: FoldingConfig | None = None, architecture: ArchitectureConfig | None = None,
                  dsp: DspConfig | None = None) -> Plan:
    """Lower `onnx_path`, plan every MAC layer's accumulator and write the build folder; returns the plan.

    acc_bits None uses each layer's exact bound; an int forces it for every layer (32 builds the 32-bit design). A width
    below a layer's exact bound raises unless allow_unsafe, and is then recorded as unsafe in plan.json.
    `architecture` (hw.architecture / hw.layers / hw.pipeline_depth) picks folded or unrolled datapaths per layer.
    `dsp` (hw.dsp) packs several lanes per DSP where the planned width allows it.
    """
    if acc_bits is not None and not ACC_BITS_MIN <= int(acc_bits) <= ACC_BITS_MAX:
        raise A2QFlowError(f"--acc-bits {acc_bits}: must be between {ACC_BITS_MIN} and {ACC_BITS_MAX}")
    model, trace = load_qonnx_traced(onnx_path)
    check_against_qonnx(onnx_path, model, trace)
    plan = make_plan(model, acc_bits=acc_bits, allow_unsafe=allow_unsafe, folding=folding,
                     architecture=architecture, dsp=dsp)
    int_graph = int_model(model, plan)  # built before anything is written, like the rest
    build = ensure_out_dir(build)  # an existing file, a path under a file, an unwritable place: one line
    save_model(model, build)
    save_plan(plan, build)
    atomic_write_bytes(build / "model_int.onnx", int_graph.model.SerializeToString())
    return plan


def grid_inputs(model, onnx_path: Path | str, n: int = 8, seed: int = 0) -> np.ndarray:
    """`n` float inputs in the file's own input shape whose quantized integers span the whole input type (the
    extremes included): x = (q - zero_point) * scale for random integers q, so quantizing gives q back exactly."""
    import onnx

    shape = [int(d.dim_value) for d in onnx.load(str(onnx_path), load_external_data=False)
             .graph.input[0].type.tensor_type.shape.dim][1:]
    t, iq = model.input_quant.dtype, model.input_quant
    rng = np.random.default_rng(seed)
    q = rng.integers(t.min, t.max + 1, (n, *shape))
    q[0], q[1] = t.min, t.max
    return ((q - iq.zero_point) * np.float32(iq.scale)).astype(np.float32)


def check_against_qonnx(onnx_path: Path | str, model, trace) -> None:
    """Compile's link in the chain torch == QONNX == golden: every layer's integers on grid inputs equal those
    qonnx computes from the file (one-line error naming the first layer that differs)."""
    from a2qflow.hw.compiler.qonnx_check import check_layerwise

    check_layerwise(onnx_path, grid_inputs(model, onnx_path), str(onnx_path), (model, trace))
