"""a2qflow: accumulator-aware quantization (A2Q / A2Q+) from training to FPGA bitstream.

The package is one namespace over the repository's top-level folders: `a2qflow.training` (Brevitas training,
QONNX export, audit), `a2qflow.hw` (compiler and backends), `a2qflow.hls_templates` (Vitis HLS C++ templates) and
`a2qflow.flows` (CLI, resumable pipeline, report, sweep). This module owns the small public API below; each
function imports its stage lazily, so `import a2qflow` stays fast (no torch, no onnx).

Reference: I. Colbert, A. Pappalardo, J. Petri-Koenig, "A2Q: Accumulator-Aware Quantization with Guaranteed
Overflow Avoidance", ICCV 2023; and "A2Q+: Improving Accumulator-Aware Weight Quantization", ICML 2024.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

    from a2qflow.hw.compiler.plan import Plan
    from a2qflow.hw.config import FoldingConfig
    from a2qflow.hw.hls.csim import CsimResult

__all__ = ["__version__", "A2QFlowError", "compile", "load_plan", "csim", "rtlsim"]


def __getattr__(name: str) -> Any:
    # A2QFlowError is the one exception users catch; resolved lazily like the rest of the API.
    if name == "A2QFlowError":
        from a2qflow.hw.errors import A2QFlowError

        return A2QFlowError
    raise AttributeError(f"module 'a2qflow' has no attribute {name!r}")


def compile(onnx_path: str | Path, build: str | Path, acc_bits: int | None = None, allow_unsafe: bool = False,
            folding: "FoldingConfig | None" = None) -> "Plan":
    """Lower a QONNX model to the integer IR and plan every layer's accumulator width.

    The width of each MAC layer is the exact bound of its integer weights over its input range (never below it
    unless `allow_unsafe`), so a dot product can never overflow. Writes BUILD/ir.json, ir.npz, plan.json, plan.md.

    Args:
        onnx_path: a QONNX file, ideally exported by a2qflow (it carries the trained targets).
        build: the build folder to write.
        acc_bits: force one width for every layer (32 is the baseline); None uses each layer's exact bound.
        allow_unsafe: accept a forced width below a layer's exact bound; the plan then records it as unsafe.
        folding: SIMD / PE caps and per-layer overrides (`a2qflow.hw.config.FoldingConfig`).

    Returns:
        The plan (`a2qflow.hw.compiler.plan.Plan`): per layer K, N, M, the three bounds and the width used.

    Example:
        >>> plan = a2qflow.compile("runs/demo/train/model.onnx", "build")   # doctest: +SKIP
        >>> plan.acc_bits()                                                 # doctest: +SKIP
        {'fc0': 12, 'fc1': 12, 'fc2': 12}
    """
    from a2qflow.hw.compiler.compile import compile_model

    return compile_model(onnx_path, build, acc_bits=acc_bits, allow_unsafe=allow_unsafe, folding=folding)


def load_plan(build: str | Path) -> "Plan":
    """Read BUILD/plan.json, the per-layer accumulator plan every backend builds from.

    Args:
        build: a build folder written by `a2qflow.compile` (or `a2qflow compile`).

    Returns:
        The plan; `plan.acc_bits()` maps layer name -> accumulator bits.

    Example:
        >>> a2qflow.load_plan("build").layers[0].acc_bits_exact   # doctest: +SKIP
        12
    """
    from a2qflow.hw.compiler.plan import load_plan as _load

    return _load(build)


def csim(build: str | Path, inputs: "np.ndarray", labels: "np.ndarray | None" = None,
         monitor: bool = True) -> "CsimResult":
    """Generate the Vitis HLS project of a build and run it in g++ C-simulation against the golden model.

    Args:
        build: a compiled build folder.
        inputs: float inputs in the model's input shape (batch first); quantized by the model's input quantizer.
        labels: optional integer labels for top-1 accuracy.
        monitor: also count overflow events of every accumulator (a second build with a wide shadow sum).

    Returns:
        `CsimResult` whose `summary` holds samples, mismatches vs the golden model, overflow_events and accuracy;
        BUILD/csim/csim.json holds the same.

    Example:
        >>> res = a2qflow.csim("build", x_test, y_test)    # doctest: +SKIP
        >>> res.summary["mismatches"], res.summary["overflow_events"]    # doctest: +SKIP
        (0, 0)
    """
    from a2qflow.hw.hls.csim import run_csim

    return run_csim(build, inputs, labels=labels, monitor=monitor, progress=False)


def rtlsim(build: str | Path, inputs: "np.ndarray", labels: "np.ndarray | None" = None) -> dict:
    """Generate the Verilog of a build and simulate it in Verilator, bit for bit against the golden model.

    Args:
        build: a compiled build folder.
        inputs: float inputs in the model's input shape (batch first).
        labels: optional integer labels for top-1 accuracy.

    Returns:
        The rtlsim.json dict: samples, mismatches, cycles_per_inference, initiation_interval_cycles, widths.

    Example:
        >>> a2qflow.rtlsim("build", x_test[:16])["mismatches"]    # doctest: +SKIP
        0
    """
    from a2qflow.hw.rtl.sim import run_rtlsim

    return run_rtlsim(build, inputs, labels=labels)
