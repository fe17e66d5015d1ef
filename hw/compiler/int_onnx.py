"""BUILD/model_int.onnx: the compiled integer model as a standard qonnx graph, so FINN and other qonnx tools can
take a2qflow's plan as it is.

The graph holds exactly what the hardware computes, in FINN's conventions: tensors are float32 containers whose
qonnx DataType annotation says which integers they hold. Per MAC layer a MatMul (after a Flatten when the input is
CHW) or a Conv (explicit zero pads) on an integer weight initializer (annotated with the weight type); its output,
the accumulator, annotated INT<P> at the width plan.json chose; then a qonnx MultiThreshold
(`out = out_bias + #{acc >= T}`) whose thresholds are the ones every a2qflow executor uses (plan.npz, fitted to P
by `hw.compiler.thresholds.fit_thresholds`, annotated INT<thr_bits>), or, for a last layer with float logits, a Mul and
an Add by the per-channel scale and bias (FINN's off-chip tail). MaxPool stays MaxPool. Conv and MaxPool carry
every attribute, ONNX defaults included (group, dilations; pads, dilations, ceil_mode), because FINN's
transformations read them without defaults. The input is the
quantized integer input `x_int = input_quant.quantize(x)` (annotated with the input type); the input quantizer's
scale and zero point are in metadata_props["a2qflow_int"].

qonnx' `execute_onnx` on this file equals the golden model (`hw.compiler.reference.run` with the plan's widths) bit
for bit on every integer tensor, as long as every accumulator fits float32's 24-bit integer range (recorded in the
metadata as `float32_exact`). A layer compiled unsafely (below its exact bound) is written with its exact width
and thresholds: a graph of non-wrapping MatMuls cannot model the wrap.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.bounds import channel_ranges
from a2qflow.hw.compiler.ir import INPUT as IR_INPUT
from a2qflow.hw.compiler.ir import Affine, IntType, Layer, MaxPoolLayer, Model, Thresholds
from a2qflow.hw.compiler.plan import LayerPlan, Plan
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.files import atomic_write_bytes

QONNX_DOMAIN = "qonnx.custom_op.general"
META_KEY = "a2qflow_int"
INPUT, OUTPUT = "global_in", "global_out"


def _dt(t: IntType) -> str:
    return str(t)  # qonnx DataType names: INT12, UINT4, ...


class _Builder:
    """Nodes, initializers and DataType annotations of the graph being written."""

    def __init__(self):
        self.nodes: list = []
        self.inits: list = []
        self.dtypes: dict[str, str] = {}

    def init(self, name: str, value: np.ndarray, dtype: str | None = None) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        if dtype:
            self.dtypes[name] = dtype
        return name

    def node(self, op: str, inputs: list[str], out: str, name: str, dtype: str | None = None, domain: str = "",
             **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        if dtype:
            self.dtypes[out] = dtype
        return out


def _mac(b: _Builder, layer: Layer, ins: list[tuple[str, int]], acc_bits: int) -> str:
    """The node(s) computing one layer's accumulator from its integer inputs; returns the accumulator tensor.

    dense: MatMul (after a Flatten of a CHW input); conv: Conv; dwconv: Conv with group = C; avgpool: the window sum
    as a depthwise Conv with all-ones weights (exact, unlike AveragePool's float mean); add: the two inputs scaled by
    their power-of-two shifts and added; requant: the input itself (an Identity names it)."""
    n, acc = layer.name, f"{layer.name}_acc"
    (t, rank), dt = ins[0], f"INT{acc_bits}"
    if layer.kind == "requant":
        return b.node("Identity", [t], acc, n, dtype=dt)
    if layer.kind == "add":
        terms = []
        for i, ((x, _), k) in enumerate(zip(ins, layer.shifts)):
            shift = b.init(f"{n}_shift{i}", np.float32(1 << k))
            terms.append(x if k == 0 else b.node("Mul", [x, shift], f"{n}_in{i}", f"{n}_shift{i}"))
        return b.node("Add", terms, acc, n, dtype=dt)
    if layer.kind == "dense":
        if rank == 4:
            t = b.node("Flatten", [t], f"{n}_flat", f"{n}_flatten", dtype=_dt(layer.in_type), axis=1)
        w = b.init(f"{n}_W", layer.weights.T.astype(np.float32), _dt(layer.w_type))
        return b.node("MatMul", [t, w], acc, n, dtype=dt)
    top, left, bottom, right = layer.pad
    w = b.init(f"{n}_W", layer.weights.astype(np.float32), _dt(layer.w_type))
    # every attribute written out, ONNX defaults included: FINN's / qonnx' LowerConvsToMatMul reads `group` and
    # `dilations` without defaults (docs/byo.md, "FINN")
    return b.node("Conv", [t, w], acc, n, dtype=dt, kernel_shape=list(layer.kernel), strides=list(layer.stride),
                  pads=[top, left, bottom, right], dilations=[1, 1],
                  group=1 if layer.kind == "conv" else layer.out_channels)


def _thresholds(layer: Layer, lp: LayerPlan) -> tuple[np.ndarray, int]:
    """The plan's fitted thresholds (plan.npz); an unsafe layer's are refitted at its exact width."""
    if lp.unsafe or lp.thresholds is None:
        return fit_thresholds(layer.act.values, layer.weight_matrix(), layer.in_type, lp.acc_bits_exact)
    return lp.thresholds, int(lp.thr_bits)


def _activation(b: _Builder, layer: Layer, acc: str, lp: LayerPlan, last: bool, rank: int) -> str:
    """MultiThreshold (integer activation) or the float Mul + Add tail after a layer's accumulator."""
    n, C = layer.name, layer.out_channels
    out = OUTPUT if last else f"{n}_out"
    if isinstance(layer.act, Thresholds):
        values, thr_bits = _thresholds(layer, lp)
        thr = b.init(f"{n}_T", values.astype(np.float32), f"INT{thr_bits}")
        return b.node("MultiThreshold", [acc, thr], out, f"{n}_thresholds", dtype=_dt(layer.act.out_type),
                      domain=QONNX_DOMAIN, out_dtype=_dt(layer.act.out_type), out_bias=float(layer.act.out_base),
                      data_layout="NCHW" if rank == 4 else "NC")
    assert isinstance(layer.act, Affine)
    shape = (1, C, 1, 1) if rank == 4 else (1, C)
    scale = b.init(f"{n}_scale", np.asarray(layer.act.scale).reshape(shape))
    bias = b.init(f"{n}_bias", np.asarray(layer.act.bias).reshape(shape))
    mid = b.node("Mul", [acc, scale], f"{n}_scaled", f"{n}_mul")
    return b.node("Add", [mid, bias], out, f"{n}_add")


def _widths(model: Model, plan: Plan) -> dict[str, int]:
    """The width each layer's accumulator is written at: the plan's, or the exact bound for unsafe layers."""
    return {l.name: max(l.acc_bits, l.acc_bits_exact) for l in plan.layers}


def int_model(model: Model, plan: Plan):
    """The integer model as a qonnx ModelWrapper (shapes inferred, DataTypes annotated)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    b = _Builder()
    widths = _widths(model, plan)
    tensors = {IR_INPUT: (INPUT, 1 + len(model.input_shape))}  # IR name -> (tensor, rank)
    b.dtypes[INPUT] = _dt(model.input_quant.dtype)
    for i, layer in enumerate(model.layers):
        last = i == len(model.layers) - 1
        ins = [tensors[n] for n in layer.inputs]
        if isinstance(layer, MaxPoolLayer):
            t = b.node("MaxPool", [ins[0][0]], OUTPUT if last else f"{layer.name}_out", layer.name,
                       dtype=_dt(layer.dtype), kernel_shape=list(layer.kernel), strides=list(layer.stride),
                       pads=[0, 0, 0, 0], dilations=[1, 1], ceil_mode=0)
            tensors[layer.name] = (t, 4)
            continue
        rank = 2 if layer.kind == "dense" else ins[0][1]
        acc = _mac(b, layer, ins, widths[layer.name])
        tensors[layer.name] = (_activation(b, layer, acc, plan.layer(layer.name), last, rank), rank)
    graph = helper.make_graph(
        b.nodes, f"{model.name}_int",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, *model.input_shape])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, None)], b.inits)
    m = ModelWrapper(qonnx_make_model(graph, producer_name="a2qflow"))
    m = m.transform(InferShapes())
    for name, dt in b.dtypes.items():
        m.set_tensor_datatype(name, DataType[dt])
    m.model.metadata_props.add(key=META_KEY, value=json.dumps(_metadata(model, plan, widths)))
    return m


def _metadata(model: Model, plan: Plan, widths: dict[str, int]) -> dict:
    iq = model.input_quant
    biggest = 0
    for l in model.mac_layers():
        lo, hi = channel_ranges(l.weight_matrix(), l.in_type)
        biggest = max(biggest, int(np.abs(lo).max(initial=0)), int(np.abs(hi).max(initial=0)))
    return {"model": model.name, "policy": plan.policy,
            "input_quant": {"scale": iq.scale, "zero_point": iq.zero_point, "dtype": _dt(iq.dtype)},
            "acc_bits": widths, "accumulators": {l.name: f"{l.name}_acc" for l in model.mac_layers()},
            "float32_exact": biggest <= 1 << 24,
            "note": "input: x_int = clip(round(x / scale) + zero_point); a last layer with float logits ends in "
                    "Mul + Add by its per-channel scale and bias"}


def save_int_model(model: Model, plan: Plan, build: Path | str) -> Path:
    """Write BUILD/model_int.onnx atomically; returns its path."""
    path = Path(build) / "model_int.onnx"
    atomic_write_bytes(path, int_model(model, plan).model.SerializeToString())
    return path
