"""QONNX frontend: hand-built graphs lower to IR that reproduces qonnx bit for bit, and bad graphs fail in one line."""

from __future__ import annotations

import numpy as np
import pytest
from _compiler_util import QonnxBuilder, hand_built_cnn, one_line, refusal

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.bounds import channel_ranges
from a2qflow.hw.compiler.frontend import SUPPORTED_OPS, load_qonnx
from a2qflow.hw.compiler.ir import Affine, IntType, Thresholds
from a2qflow.hw.compiler.qonnx_check import golden_vs_qonnx, qonnx_outputs
from a2qflow.hw.errors import A2QFlowError

S_X = 1 / 15  # input quantizer scale: x in [0, 1] -> UINT4


def _mlp(rng, K=12, H=8, C=5, gamma=None, narrow_w=True, q1=None):
    """input -> Quant(UINT4) -> Gemm (+bias) -> BN -> Relu -> Quant(UINT4) -> MatMul -> Add -> logits."""
    b = QonnxBuilder((K,))
    t = b.quant(b.input, S_X, 4, False, name="inp_quant")
    q1 = rng.integers(-7, 8, (H, K)) if q1 is None else q1
    s1 = rng.uniform(0.02, 0.08, (H, 1))
    t = b.gemm(t, q1, s1, 4, bias=rng.normal(0, 0.3, H), name="fc_a", narrow=narrow_w)
    gamma = rng.uniform(0.5, 2.0, H) if gamma is None else gamma
    bn = dict(gamma=gamma, beta=rng.normal(0, 0.5, H), mean=rng.normal(0, 0.5, H), var=rng.uniform(0.1, 1.0, H))
    t = b.bn(t, **bn, name="bn_a")
    t = b.node("Relu", [t], name="relu_a")
    s_a = 0.21
    t = b.quant(t, s_a, 4, False, name="act_a")
    q2 = rng.integers(-7, 8, (H, C))  # MatMul weights are (K, C)
    t = b.matmul(t, q2, 0.05, 4, name="fc_b")
    t = b.node("Add", [t, b.const(rng.normal(0, 0.1, C))], name="fc_b_bias")
    return b, t, dict(q1=q1, s1=s1, bias1=None, bn=bn, s_a=s_a, q2=q2)


def _independent_levels(acc, c, b, p):
    """The float64 function the thresholds must reproduce, written out by hand from the graph's parameters."""
    bias = b.inits[[i.name for i in b.inits].index("fc_a.bias")]
    from onnx import numpy_helper

    bias = numpy_helper.to_array(bias).astype(np.float64)
    s1, s_x = np.float64(np.float32(p["s1"][c, 0])), np.float64(np.float32(S_X))  # as stored in the graph
    v = s_x * s1 * acc + bias[c]
    bn = {k: np.float64(np.float32(v_[c])) for k, v_ in p["bn"].items()}
    v = bn["gamma"] * (v - bn["mean"]) / np.sqrt(bn["var"] + np.float64(np.float32(1e-5))) + bn["beta"]
    v = np.maximum(v, 0)
    return np.round(np.clip(v / np.float64(np.float32(p["s_a"])), 0, 15))


def test_thresholds_reproduce_the_float_function_on_every_accumulator_value(tmp_path):
    rng = np.random.default_rng(1)
    gamma = np.array([1.0, -0.7, 1.5, -2.0, 0.8, 1.1, -1.2, 0.6])  # negative gamma: decreasing channels
    b, out, p = _mlp(rng, gamma=gamma)
    model = load_qonnx(b.save(out, tmp_path / "m.onnx"))
    fc = model.layers[0]
    assert isinstance(fc.act, Thresholds) and fc.act.values.shape == (8, 15) and fc.act.out_base == 0
    sign = np.where(gamma < 0, -1, 1)
    assert np.array_equal(fc.weights, p["q1"] * sign[:, None]), "decreasing channels must have negated weights"
    lo, hi = channel_ranges(p["q1"], IntType(4, False))
    for c in range(8):
        acc = np.arange(lo[c], hi[c] + 1)
        want = _independent_levels(acc.astype(np.float64), c, b, p)
        got = (sign[c] * acc[:, None] >= fc.act.values[c][None, :]).sum(axis=1)
        assert np.array_equal(got, want), f"channel {c}: thresholds disagree with the float function"
        assert np.all(np.diff(fc.act.values[c]) >= 0)


def test_hand_built_mlp_matches_qonnx_bit_exactly(tmp_path):
    rng = np.random.default_rng(2)
    b, out, p = _mlp(rng, gamma=np.array([1.0, -0.7, 1.5, -2.0, 0.8, 1.1, -1.2, 0.6]))
    path = b.save(out, tmp_path / "m.onnx")
    x = rng.uniform(0, 1, (100, 12)).astype(np.float32)
    model = load_qonnx(path)
    assert [l.kind for l in model.layers] == ["dense", "dense"]
    assert model.input_quant.dtype == IntType(4, False) and model.input_quant.scale == pytest.approx(S_X)
    assert isinstance(model.layers[1].act, Affine)
    # hidden activations: qonnx' Quant output / scale must equal the golden model's integers exactly
    ref = qonnx_outputs(path, x, tensors=["act_a_out"])
    hidden_q = np.rint(ref["act_a_out"] / np.float32(0.21)).astype(np.int64)
    xi = model.input_quant.quantize(x)
    hidden_g = reference.apply_thresholds(reference.accumulate(model.layers[0], xi), model.layers[0].act,
                                          model.layers[0].act.values)
    assert np.array_equal(hidden_g, hidden_q), f"{int((hidden_g != hidden_q).sum())} hidden levels differ"
    gold, q, steps = golden_vs_qonnx(path, x, ref=ref["fc_b_bias_out"])
    assert np.array_equal(gold.argmax(1), q.argmax(1))
    assert steps < 1e-3, f"max |golden - qonnx| = {steps:.2e} output steps"


def test_hand_built_cnn_with_stride_padding_pool_flatten_matches_qonnx(tmp_path):
    rng = np.random.default_rng(3)
    path = hand_built_cnn(tmp_path / "cnn.onnx")
    model = load_qonnx(path)
    conv, pool, fc = model.layers
    assert (conv.kind, pool.kind, fc.kind) == ("conv", "maxpool", "dense")
    assert conv.stride == (2, 2) and conv.pad == (1, 0, 1, 2) and conv.out_shape == (4, 4, 4)
    assert pool.out_shape == (4, 3, 3) and fc.K == 36 and model.input_quant.dtype == IntType(3, True)
    x = rng.uniform(-0.5, 0.5, (80, 2, 7, 7)).astype(np.float32)
    gold, q, steps = golden_vs_qonnx(path, x)
    assert np.array_equal(gold.argmax(1), q.argmax(1))
    assert steps < 1e-3, f"max |golden - qonnx| = {steps:.2e} output steps"


def test_negated_full_range_weights_widen_the_weight_type(tmp_path):
    rng = np.random.default_rng(4)
    q1 = rng.integers(-8, 8, (8, 12))
    q1[0, 0] = -8
    b, out, p = _mlp(rng, gamma=-np.ones(8), narrow_w=False, q1=q1)
    model = load_qonnx(b.save(out, tmp_path / "m.onnx"))
    fc = model.layers[0]
    assert fc.weights.max() == 8 and fc.w_type == IntType(5, True)
    x = rng.uniform(0, 1, (60, 12)).astype(np.float32)
    gold, q, steps = golden_vs_qonnx(tmp_path / "m.onnx", x)
    assert np.array_equal(gold.argmax(1), q.argmax(1)) and steps < 1e-3


def test_metadata_names_and_target_bits(tmp_path):
    rng = np.random.default_rng(5)
    b, out, _ = _mlp(rng)
    meta = {"layers": [  # listed out of order: matched by onnx_weight, not position
        {"name": "fc1", "onnx_weight": "fc_b.weight", "target_acc_bits": None, "weight_bits": 4, "input_bits": 4,
         "input_signed": False},
        {"name": "fc0", "onnx_weight": "fc_a.weight", "target_acc_bits": 12, "weight_bits": 4, "input_bits": 4,
         "input_signed": False}], "input_shape": [12]}
    model = load_qonnx(b.save(out, tmp_path / "m.onnx", metadata=meta))
    assert [(l.name, l.target_acc_bits) for l in model.layers] == [("fc0", 12), ("fc1", None)]
    plain = load_qonnx(b.save(out, tmp_path / "plain.onnx"))
    assert [(l.name, l.target_acc_bits) for l in plain.layers] == [("fc_a", None), ("fc_b", None)]
    meta["layers"] = meta["layers"][:1]
    with pytest.raises(A2QFlowError, match="lists 1 layers.*the graph has 2"):
        load_qonnx(b.save(out, tmp_path / "short.onnx", metadata=meta))


# ------------------------------------------------------------------------------------------------ bad input

def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(A2QFlowError) as e:
        load_qonnx(tmp_path / "nope.onnx")
    assert "nope.onnx: no such file" in one_line(e)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf \xff\xfe")
    with pytest.raises(A2QFlowError) as e:
        load_qonnx(bad)
    assert f"{bad}: not a readable ONNX model" in one_line(e)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(A2QFlowError, match="not a readable ONNX model"):
        load_qonnx(empty)


def test_unsupported_op_names_node_op_and_supported_list(tmp_path):
    rng = np.random.default_rng(6)
    b, out, _ = _mlp(rng)
    out = b.node("Sigmoid", [out], name="squash")
    msg = refusal(b, out, tmp_path / "m.onnx")
    assert "node 'squash' (op Sigmoid) is not supported; supported ops:" in msg
    assert all(op in msg for op in SUPPORTED_OPS)


def test_float_layer_is_rejected_with_its_node_name(tmp_path):
    b = QonnxBuilder((6,))
    t = b.quant(b.input, S_X, 4, False)
    t = b.node("Gemm", [t, b.const(np.ones((3, 6)))], name="fc_float", transB=1)
    msg = refusal(b, t, tmp_path / "m.onnx")
    assert "node 'fc_float' (op Gemm): weights are not quantized (no Quant node)" in msg


def test_missing_input_quantizer_is_rejected(tmp_path):
    b = QonnxBuilder((6,))
    t = b.gemm(b.input, np.ones((3, 6)), 0.1, 4, name="fc_first")
    msg = refusal(b, t, tmp_path / "m.onnx")
    assert "node 'fc_first' (op Gemm): its input is not quantized" in msg


def test_add_of_float_accumulators_is_rejected(tmp_path):
    b = QonnxBuilder((6,))
    t = b.quant(b.input, S_X, 4, False, name="inp_quant")
    a1 = b.gemm(t, np.ones((3, 6)), 0.1, 4, name="left")
    a2 = b.gemm(t, -np.ones((3, 6)), 0.1, 4, name="right")
    out = b.node("Add", [a1, a2], name="join")
    msg = refusal(b, out, tmp_path / "fork.onnx")
    # a fork of an integer tensor is fine (a residual branch); adding two float accumulators is not
    assert "node 'join' (op Add)" in msg and "'left'" in msg and "shared QuantIdentity" in msg


def test_float_relu_output_and_per_channel_activation_scale_are_rejected(tmp_path):
    b = QonnxBuilder((6,))
    t = b.quant(b.input, S_X, 4, False)
    t = b.gemm(t, np.ones((3, 6)), 0.1, 4, name="fc_last")
    t = b.node("Relu", [t], name="relu_last")
    msg = refusal(b, t, tmp_path / "relu.onnx")
    assert "node 'relu_last'" in msg and "float logits" in msg

    b = QonnxBuilder((6,))
    t = b.quant(b.input, S_X, 4, False)
    t = b.gemm(t, np.ones((3, 6)), 0.1, 4, name="fc0")
    t = b.node("Relu", [t])
    t = b.quant(t, np.array([0.1, 0.2, 0.3]), 4, False, name="act_per_channel")
    t = b.gemm(t, np.ones((2, 3)), 0.1, 4, name="fc1")
    msg = refusal(b, t, tmp_path / "perch.onnx")
    assert "node 'act_per_channel' (op Quant)" in msg and "per-tensor" in msg


def test_unknown_rounding_mode_is_named(tmp_path):
    """Quant and Trunc read their rounding mode through one check: a mode qonnx does not know names the node."""
    b = QonnxBuilder((6,))
    t = b.quant(b.input, S_X, 4, False, rounding="SIDEWAYS", name="inp_quant")
    t = b.gemm(t, np.ones((3, 6)), 0.1, 4, name="fc0")
    msg = refusal(b, t, tmp_path / "round.onnx")
    assert "node 'inp_quant' (op Quant)" in msg and "rounding_mode 'SIDEWAYS' is unknown" in msg


def test_docs_threshold_example(tmp_path):
    """docs/compiler.md: level = round_half_even(acc/8 + 1/4) clipped to 0..3 gives T = [3, 10, 19]."""
    b = QonnxBuilder((4,))
    t = b.quant(b.input, 1 / 16, 4, False)
    t = b.gemm(t, np.array([[3, -2, 0, 1]]), 0.25, 4, bias=np.array([1 / 32]), name="fc0")
    t = b.node("Relu", [t])
    t = b.quant(t, 1 / 8, 2, False, name="act0")
    t = b.gemm(t, np.array([[1]]), 1.0, 4, name="fc1")
    model = load_qonnx(b.save(t, tmp_path / "ex.onnx"))
    assert model.layers[0].act.values.tolist() == [[3, 10, 19]]
