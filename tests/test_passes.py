"""hw.compiler.passes.bypass_identities: Identity nodes anywhere in a chain (after the graph input, between layers,
at the graph output, in a long chain) lower to exactly the IR of the graph without them, in one linear pass
(benchmarks/compile_scaling.py times it; no timed test here)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _compiler_util import hand_built_cnn
from test_faults import hand_onnx

from a2qflow.hw.compiler.frontend import load_qonnx
from a2qflow.hw.compiler.passes import bypass_identities
from a2qflow.hw.compiler.qonnx_check import golden_vs_qonnx


def _insert_identities(src, dst, where: str, n: int):
    """`n` Identity nodes after the tensor chosen by `where`: input | middle (after the first activation
    quantizer) | output (the graph output is then produced by the last Identity)."""
    m = onnx.load(str(src))
    g = m.graph
    if where == "input":
        t = g.input[0].name
    elif where == "output":
        t = g.output[0].name
    else:
        t = next(x for x in g.node if x.op_type == "Quant" and x.input[0] != g.input[0].name and
                 not x.input[0].endswith(".weight")).output[0]
    users = [x for x in g.node if t in x.input]
    chain, prev = [], t
    for i in range(n):
        chain.append(onnx.helper.make_node("Identity", [prev], [f"{where}_id_{i}"], name=f"{where}_id{i}"))
        prev = f"{where}_id_{i}"
    for u in users:
        u.input[:] = [prev if x == t else x for x in u.input]
    if where == "output":
        g.output[0].name = prev
    g.node.extend(chain)
    onnx.save(m, str(dst))
    return dst


def _same_ir(a, b) -> None:
    assert [type(l).__name__ for l in a.layers] == [type(l).__name__ for l in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert la.name == lb.name
        for key in ("weights", "in_type", "w_type", "target_acc_bits"):
            va, vb = getattr(la, key, None), getattr(lb, key, None)
            assert np.array_equal(va, vb) if isinstance(va, np.ndarray) else va == vb, (la.name, key)
        act_a, act_b = getattr(la, "act", None), getattr(lb, "act", None)
        for key in ("values", "scale", "bias"):
            if hasattr(act_a, key):
                assert np.array_equal(getattr(act_a, key), getattr(act_b, key)), (la.name, key)


@pytest.mark.parametrize("where, n", [("input", 1), ("middle", 3), ("output", 2), ("middle", 100)])
def test_identity_chains_lower_to_the_same_ir_and_outputs(where, n, tmp_path):
    base = hand_onnx(tmp_path / "base.onnx")
    f = _insert_identities(base, tmp_path / "ids.onnx", where, n)
    _same_ir(load_qonnx(base), load_qonnx(f))
    x = np.random.default_rng(0).uniform(0, 1, (16, 12))
    gold, ref, _ = golden_vs_qonnx(f, x)  # qonnx executes the file as written, Identity nodes included
    assert np.array_equal(gold.argmax(1), ref.argmax(1))


def test_identities_in_a_cnn_lower_to_the_same_ir(tmp_path):
    base = hand_built_cnn(tmp_path / "cnn.onnx")
    _same_ir(load_qonnx(base), load_qonnx(_insert_identities(base, tmp_path / "ids.onnx", "middle", 4)))


def test_bypass_is_one_pass_and_keeps_identities_it_must(tmp_path):
    """An Identity from the graph input straight to the graph output cannot be removed; every other one is, in a
    single call (no repeated whole-graph steps)."""
    g = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["a"], name="i0"),
         onnx.helper.make_node("Relu", ["a"], ["b"], name="r"),
         onnx.helper.make_node("Identity", ["b"], ["c"], name="i1"),
         onnx.helper.make_node("Identity", ["c"], ["y"], name="i2"),
         onnx.helper.make_node("Identity", ["x"], ["z"], name="i3")], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2]),
         onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1, 2])])
    assert bypass_identities(g) == 3
    assert [(n.name, list(n.input), list(n.output)) for n in g.node] == [("r", ["x"], ["y"]), ("i3", ["x"], ["z"])]


def _with_post_op(src, dst, op: str, value: float):
    """`src` with `x <op> value` (a scalar constant) inserted before its first ReLU."""
    m = onnx.load(str(src))
    relu = next(x for x in m.graph.node if x.op_type == "Relu")
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), "k"))
    m.graph.node.append(onnx.helper.make_node(op, [relu.input[0], "k"], ["post"], name="post_op"))
    relu.input[0] = "post"
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    ModelWrapper(m).transform(InferShapes()).save(str(dst))  # qonnx' execution of the file needs every shape
    return dst


@pytest.mark.parametrize("op, value", [("Mul", 1.0), ("Div", 1.0), ("Add", 0.0), ("Sub", 0.0)])
def test_exact_no_op_arithmetic_is_removed(op, value, tmp_path):
    base = hand_onnx(tmp_path / "base.onnx")
    _same_ir(load_qonnx(base), load_qonnx(_with_post_op(base, tmp_path / "m.onnx", op, value)))


def test_a_near_one_scale_is_kept_and_lowered_exactly(tmp_path):
    """qonnx' RemoveIdentityOps would drop x * (1 + 2^-20) (tolerance 1e-5); the exact pass keeps it, so the
    thresholds are those of the function the file computes."""
    from a2qflow.hw.compiler.frontend import read_checked

    base = hand_onnx(tmp_path / "base.onnx")
    f = _with_post_op(base, tmp_path / "m.onnx", "Mul", 1 + 2 ** -20)
    model, _, _ = read_checked(f)
    assert "post_op" in {n.name for n in model.graph.node}
    x = np.random.default_rng(1).uniform(0, 1, (32, 12))
    gold, ref, _ = golden_vs_qonnx(f, x)
    assert np.array_equal(gold.argmax(1), ref.argmax(1))


def test_gemm_alpha_and_beta_survive_the_linear_gemm_rewrite(tmp_path):
    """GemmToMatMulLinear drops only Muls by exactly 1: a Gemm with alpha 0.5 and beta 2 still computes
    0.5 * x @ W + 2 * b (checked against qonnx' execution of the file)."""
    from _compiler_util import QonnxBuilder

    from a2qflow.hw.compiler.frontend import read_checked

    rng = np.random.default_rng(4)
    b = QonnxBuilder((6,))
    t = b.quant(b.input, 1 / 7, 3, False)
    t = b.gemm(t, rng.integers(-3, 4, (4, 6)), 0.1, 3, bias=rng.normal(0, 0.3, 4), name="g", alpha=0.5, beta=2.0)
    f = b.save(t, tmp_path / "m.onnx")
    model, _, _ = read_checked(f)
    assert [n.op_type for n in model.graph.node if n.op_type != "Quant"].count("Mul") == 2  # alpha, beta * C
    x = rng.uniform(0, 1, (16, 6))
    gold, ref, _ = golden_vs_qonnx(f, x)
    assert np.allclose(gold, ref, atol=1e-5)
