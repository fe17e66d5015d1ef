"""BUILD/model_int.onnx: the compiled integer model as a qonnx graph (MatMul / Conv on integer initializers,
MultiThreshold, DataType annotations at the planned widths) executes in qonnx bit for bit like the golden model."""

from __future__ import annotations

import numpy as np
import pytest
from _compiler_util import hand_built_cnn

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.bounds import wrap
from a2qflow.hw.compiler.compile import compile_model
from a2qflow.hw.compiler.golden_compare import compare_with_golden
from a2qflow.hw.compiler.ir import MaxPoolLayer, Thresholds, load_model
from a2qflow.hw.compiler.thresholds import fit_thresholds


def golden_tensors(model, x_int: np.ndarray, acc_bits: dict[str, int]) -> dict[str, np.ndarray]:
    """Every integer tensor the golden model computes, under model_int.onnx's tensor names."""
    out, x = {}, x_int.astype(np.int64)
    for layer in model.layers:
        if isinstance(layer, MaxPoolLayer):
            x = out[f"{layer.name}_out"] = reference.maxpool(x, layer)
            continue
        acc = out[f"{layer.name}_acc"] = wrap(reference.accumulate(layer, x), acc_bits[layer.name])
        if isinstance(layer.act, Thresholds):
            t, _ = fit_thresholds(layer.act.values, layer.weight_matrix(), layer.in_type, acc_bits[layer.name])
            x = out[f"{layer.name}_out"] = reference.apply_thresholds(acc, layer.act, t)
    return out


def check_model_int(build, x: np.ndarray) -> int:
    """Run BUILD/model_int.onnx in qonnx on x and compare every integer tensor with the golden model; returns
    how many tensors were compared."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    from a2qflow.hw.compiler.plan import load_plan

    model, plan = load_model(build), load_plan(build)
    m = ModelWrapper(str(build / "model_int.onnx"))
    for l in plan.layers:  # every accumulator typed at its planned width, weights at their type
        assert m.get_tensor_datatype(f"{l.name}_acc") == DataType[f"INT{l.acc_bits}"]
        assert m.get_tensor_datatype(f"{l.name}_W") == DataType[str(model.layer(l.name).w_type)]
    assert {n.op_type for n in m.graph.node} <= {"MatMul", "Conv", "MultiThreshold", "MaxPool", "Flatten", "Mul",
                                                 "Add"}
    xi = model.input_quant.quantize(x)
    m = m.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    ctx = execute_onnx(m, {"global_in": xi.astype(np.float32)}, return_full_exec_context=True)
    gold = golden_tensors(model, xi, plan.acc_bits())
    for name, want in gold.items():
        got = ctx[name if name in ctx else "global_out"]
        assert np.array_equal(got.astype(np.int64), want), f"{name}: {int((got != want).sum())} values differ"
    # every layer's output through the one golden comparison: a difference would name layer, channel and sample
    outs = {l.name: next(ctx[t] for t in (f"{l.name}_out", f"{l.name}_acc", "global_out") if t in ctx)
            for l in model.layers}
    comp = compare_with_golden(model, reference.run(model, xi, plan.acc_bits(), keep=True),
                               {k: v.astype(np.int64) for k, v in outs.items()}, "qonnx (model_int.onnx)")
    assert comp.ok and [c.layer for c in comp.layers] == list(outs), comp.message()
    want_logits = reference.run(model, xi, plan.acc_bits()).logits
    assert np.allclose(ctx["global_out"].reshape(len(x), -1), want_logits, rtol=1e-5, atol=1e-6)
    return len(gold)


def test_hand_built_cnn_model_int_is_bit_exact(tmp_path):
    rng = np.random.default_rng(3)
    path = hand_built_cnn(tmp_path / "cnn.onnx")
    compile_model(path, tmp_path / "b")
    x = rng.uniform(-0.5, 0.5, (40, 2, 7, 7)).astype(np.float32)
    assert check_model_int(tmp_path / "b", x) == 4  # conv acc, conv out, pool out, fc acc


@pytest.mark.slow
@pytest.mark.parametrize("run", ["digits_mlp_a2q", "digits_cnn_a2q"])
def test_demo_models_int_onnx_is_bit_exact_with_the_golden_model(run, request, tmp_path):
    out = request.getfixturevalue(run)
    compile_model(out / "model.onnx", tmp_path / "b")
    x = np.load(out / "test_inputs.npy")
    assert check_model_int(tmp_path / "b", x) >= 5
