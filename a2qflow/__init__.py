"""a2qflow: accumulator-aware quantization (A2Q / A2Q+) from training to FPGA bitstream.

The package is one namespace over the repository's top-level folders: `a2qflow.training` (Brevitas training,
QONNX export, audit), `a2qflow.hw` (compiler and backends), `a2qflow.hls_templates` (Vitis HLS C++ templates) and
`a2qflow.flows` (CLI, resumable pipeline, report, sweep). This module owns the small public API below; each
function imports its stage lazily, so `import a2qflow` stays fast (no torch, no onnx).

API: `export_qonnx` (any Brevitas model -> a QONNX file with its trained integers), `quantize` (a float torch
model -> an A2Q Brevitas model by accumulator-aware post-training quantization), `audit` (a file's bounds against
its targets), `compile` (QONNX -> integer IR + plan + model_int.onnx), `load_plan`, `csim`, `rtlsim`. Every user
error is an `a2qflow.A2QFlowError` whose one-line message names the file, layer or field and the fix:

    try:
        a2qflow.export_qonnx(net, x_val[:64], "model.onnx")
    except a2qflow.A2QFlowError as e:
        print(f"error: {e}")      # e.g. "export: layer 'head.0' (Linear) is a float torch layer; ..."

Reference: I. Colbert, A. Pappalardo, J. Petri-Koenig, "A2Q: Accumulator-Aware Quantization with Guaranteed
Overflow Avoidance", ICCV 2023; and "A2Q+: Improving Accumulator-Aware Weight Quantization", ICML 2024.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import torch

    from a2qflow.hw.compiler.plan import Plan
    from a2qflow.hw.config import FoldingConfig
    from a2qflow.hw.hls.csim import CsimResult

__all__ = ["__version__", "A2QFlowError", "export_qonnx", "quantize", "audit", "compile", "load_plan", "csim", "rtlsim"]


def __getattr__(name: str) -> Any:
    # A2QFlowError is the one exception users catch; resolved lazily like the rest of the API.
    if name == "A2QFlowError":
        from a2qflow.hw.errors import A2QFlowError

        return A2QFlowError
    raise AttributeError(f"module 'a2qflow' has no attribute {name!r}")


def export_qonnx(model: "torch.nn.Module", example_input: Any, path: str | Path,
                 acc_bits: "int | dict[str, int] | None" = None) -> dict:
    """Export any Brevitas network to a QONNX file that carries the integers torch computes, ready for compile.

    Brevitas' own `export_qonnx` (since 0.12.1) writes A2Q / A2Q+ layers' float weights with a ROUND Quant node,
    whose integers are not the trained ones (see ARCHITECTURE.md). This export finds every QuantLinear /
    QuantConv1d / QuantConv2d however the modules are nested, reads each A2Q layer's target P from its own
    quantizer (`weight_accumulator_bit_width`), rewrites the weights onto the Quant nodes' grid, checks bit for bit
    that the graph's integers are torch's and that qonnx reproduces torch's outputs on `example_input`, writes
    a2qflow's metadata and audits every channel's bound against its target. The model is deep-copied, never
    modified. Anything that cannot be exported faithfully is an `A2QFlowError` naming the layer.

    Args:
        model: a Brevitas `nn.Module` (A2Q, A2Q+ or plain integer weight quantizers; per-tensor or per-channel
            scales; with or without bias; BatchNorm after a layer is fine). Its layers need a quantized input.
        example_input: a batch of real inputs, shape (N, ...), torch tensor or numpy array.
        path: the .onnx file to write (atomically).
        acc_bits: override the target P: one int for every integer layer, or {layer: P} keyed by module path
            (`"features.0"`) or a2qflow layer name (`"features_0"`).

    Returns:
        {"metadata": the a2qflow metadata written into the file, "audit": per-layer L1 norms, the three bounds,
        target and margins (what `a2qflow audit` prints)}.

    Example:
        >>> res = a2qflow.export_qonnx(net, x_val[:32], "model.onnx")        # doctest: +SKIP
        >>> res["audit"]["ok"], [l["target_acc_bits"] for l in res["metadata"]["layers"]]  # doctest: +SKIP
        (True, [12, 12, None])
    """
    from a2qflow.training.export import export_brevitas

    return export_brevitas(model, example_input, path, acc_bits=acc_bits)


def quantize(float_model: "torch.nn.Module", calibration: Any, acc_bits: int = 16, weight_bits: int = 4,
             act_bits: int = 4, method: str = "axe-optq", *, weight_quant: str = "a2q", input_bits: int | None = None,
             input_signed: bool = False, seed: int = 0, samples: int = 256,
             input_shape: "tuple[int, ...] | None" = None) -> "torch.nn.Module":
    """Accumulator-aware post-training quantization: a float model -> a Brevitas A2Q model, no training.

    The float model is read as an a2qflow model (an MLP `[Flatten] (Linear ReLU)* Linear` or a CNN
    `(Conv2d [BatchNorm2d] ReLU [MaxPool2d(2)])+ Flatten (Linear ReLU)* Linear`, in any module tree), its weights go
    into the same Brevitas A2Q model `a2qflow train` builds, the activation quantizers are calibrated, and each
    layer's integer weights are chosen in order, every output channel inside the L1 budget of target P:
      - "rtn": round to nearest, then project each channel onto its budget;
      - "axe-gpfq" / "axe-optq": AXE (Colbert et al., arXiv 2409.17092), GPFQ / OPTQ error correction with the
        budget enforced while the algorithm runs, inputs taken from the already-quantized network.
    Export with `a2qflow.export_qonnx`; audit, compile and the simulators apply unchanged.

    Args:
        float_model: a trained float torch model (not modified).
        calibration: a tensor (or array) of inputs, batch first (a few hundred suffice), or "zero-shot" to
            synthesise them from the model's BatchNorm statistics (training.zeroshot; inputs in [0, 1]).
        acc_bits: target accumulator width P of every layer.
        weight_bits, act_bits: M of every layer, N of every hidden activation.
        method: "rtn", "axe-gpfq" or "axe-optq".
        weight_quant: "a2q" or "a2q+" (zero-centred: each channel's mean moves into the bias, integers sum to 0).
        input_bits, input_signed: the first layer's input quantizer (default: act_bits, unsigned).
        seed: seed of the calibration passes, row sampling and zero-shot synthesis.
        samples: zero-shot: how many inputs to synthesise.
        input_shape: one input's shape without the batch (e.g. (1, 28, 28)) when `calibration` is "zero-shot" and
            the model is a CNN whose input is not square.

    Returns:
        The quantized Brevitas `nn.Sequential` (eval mode), with a2qflow's layer names (fc0, conv0, ...).

    Example:
        >>> qnet = a2qflow.quantize(float_net, x_train[:512], acc_bits=14, weight_bits=4, act_bits=4)  # doctest: +SKIP
        >>> a2qflow.export_qonnx(qnet, x_val[:32], "model.onnx")["audit"]["ok"]    # doctest: +SKIP
        True
    """
    from a2qflow.training.ptq import quantize_float_model

    return quantize_float_model(float_model, calibration, acc_bits=acc_bits, weight_bits=weight_bits,
                                act_bits=act_bits, method=method, weight_quant=weight_quant, input_bits=input_bits,
                                input_signed=input_signed,
                                seed=seed, samples=samples, input_shape=input_shape).net


def audit(onnx_path: str | Path, acc_bits: "int | dict[str, int] | None" = None) -> dict:
    """Check every MAC layer of any QONNX file against its accumulator target, channel by channel.

    Args:
        onnx_path: a QONNX file (with or without a2qflow's metadata).
        acc_bits: targets to check instead of the metadata's: one P for every layer, or {layer name: P}; layers
            without metadata are named after their weight initializer (`fc0.weight` -> `fc0`).

    Returns:
        The audit dict: "ok", "violations" (one line each, naming layer, channel, L1 and bound) and per layer K,
        N, M, max L1, acc_bits_datatype / acc_bits_l1 / acc_bits_exact, the target and whether it holds.

    Example:
        >>> a2qflow.audit("raw_brevitas.onnx", acc_bits={"fc0": 15})["ok"]    # doctest: +SKIP
        False
    """
    from a2qflow.training.audit import audit_onnx

    return audit_onnx(onnx_path, raise_on_violation=False, acc_bits=acc_bits)


def compile(onnx_path: str | Path, build: str | Path, acc_bits: int | None = None, allow_unsafe: bool = False,
            folding: "FoldingConfig | None" = None) -> "Plan":
    """Lower a QONNX model to the integer IR and plan every layer's accumulator width.

    The width of each MAC layer is the exact bound of its integer weights over its input range (never below it
    unless `allow_unsafe`), so a dot product can never overflow. Writes BUILD/ir.json, ir.npz, plan.json, plan.md
    and model_int.onnx (the integer model as a qonnx graph, for FINN / qonnx tools).

    Args:
        onnx_path: a QONNX file, ideally exported by a2qflow (it carries the trained targets).
        build: the build folder to write.
        acc_bits: force one width for every layer (32 builds the 32-bit design); None uses each layer's exact bound.
        allow_unsafe: accept a forced width below a layer's exact bound; the plan then records it as unsafe.
        folding: SIMD / PE caps and per-layer overrides (`a2qflow.hw.config.FoldingConfig`).

    Returns:
        The plan (`a2qflow.hw.compiler.plan.Plan`): per layer K, N, M, the three bounds and the width used;
        `plan.warnings` holds the line `a2qflow compile` prints for a file not exported by a2qflow.

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
