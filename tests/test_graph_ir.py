"""Graph IR, the compiler side: the model families FPGA users bring lower to the integer graph IR, and the golden
model computes what torch computes on them; pooling sums and residual adds get exact, tight widths; the input is
quantized bit for bit as Brevitas does; unsupported patterns end in one line naming the node and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _compiler_util import QonnxBuilder, refusal
from _family_models import KINDS, build
from _graph_models import ALL, residual_model

import a2qflow
from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.bounds import signed_bits_for_range, wrap
from a2qflow.hw.compiler.frontend import load_qonnx
from a2qflow.hw.compiler.int_onnx import int_model
from a2qflow.hw.compiler.ir import INPUT, InputQuant, IntType, load_model
from a2qflow.hw.compiler.plan import make_plan
from a2qflow.hw.errors import A2QFlowError

EXPECTED_KINDS = {
    "residual": {"conv", "requant", "add", "avgpool", "dense"},
    "residual_trunc": {"conv", "requant", "add", "avgpool", "dense"},
    "depthwise": {"conv", "dwconv", "avgpool", "dense"},
    "conv1d": {"conv", "maxpool", "dense"},
    "w2a2": {"dense"},
}


def _saturating(x: torch.Tensor) -> np.ndarray:
    return np.stack([np.full(x.shape[1:], -100.0), np.full(x.shape[1:], 100.0)]).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_family_lowers_and_golden_top1_equals_torch(kind, tmp_path):
    net, x = build(kind, n=96)
    a2qflow.export_qonnx(net, x[:32], tmp_path / "model.onnx")
    plan = a2qflow.compile(tmp_path / "model.onnx", tmp_path / "build")
    model = load_model(tmp_path / "build")
    assert {l.kind for l in model.layers} == EXPECTED_KINDS[kind]
    assert model.is_chain() == (kind not in ("residual", "residual_trunc"))
    rng = np.random.default_rng(1)
    for xs in (x.numpy(), rng.uniform(-1.5, 1.5, x.shape).astype(np.float32), _saturating(x)):
        gold = reference.run(model, reference.prepare_inputs(model, xs), plan.acc_bits())
        with torch.no_grad():
            t = net(torch.from_numpy(xs)).numpy()
        assert gold.overflow_events == 0
        assert np.array_equal(gold.logits.argmax(axis=1), t.argmax(axis=1)), kind
    for l in plan.layers:  # the plan proves every accumulator, pooling sums and adds included
        assert l.acc_bits == max(l.acc_bits_exact, 2) and l.acc_bits_exact <= l.acc_bits_l1 <= l.acc_bits_datatype


def test_softmax_tail_is_dropped_with_a_note(tmp_path):
    net, x = build("depthwise")
    a2qflow.export_qonnx(net, x[:16], tmp_path / "model.onnx")
    model = load_qonnx(tmp_path / "model.onnx")
    assert len(model.notes) == 1 and "Softmax" in model.notes[0] and "top-1 is unchanged" in model.notes[0]


def test_pool_and_add_widths_are_exact_and_tight():
    """The worst-case inputs of the add and of the global pool reach the planned width's range; one bit less wraps."""
    model = residual_model()
    plan = make_plan(model)
    for name in ("block_add", "gap"):
        layer, lp = model.layer(name), plan.layer(name)
        t = layer.in_type
        shape = (1, *layer.in_shape)
        ins_hi = [np.full(shape, t.max)] * (2 if layer.kind == "add" else 1)
        ins_lo = [np.full(shape, t.min)] * (2 if layer.kind == "add" else 1)
        hi, lo = reference.accumulate(layer, *ins_hi), reference.accumulate(layer, *ins_lo)
        assert lp.acc_bits == lp.acc_bits_exact == signed_bits_for_range(int(lo.min()), int(hi.max()))
        P = lp.acc_bits
        assert np.array_equal(wrap(hi, P), hi) and np.array_equal(wrap(lo, P), lo)
        assert not (np.array_equal(wrap(hi, P - 1), hi) and np.array_equal(wrap(lo, P - 1), lo)), name


@pytest.mark.parametrize("name", sorted(ALL))
def test_graph_ir_roundtrips_and_int_onnx_equals_golden(name, tmp_path):
    """ir.json / ir.npz keep the graph (inputs, new kinds), and model_int.onnx executes like the golden model."""
    from qonnx.core.onnx_exec import execute_onnx

    from a2qflow.hw.compiler.ir import save_model

    model = ALL[name]()
    save_model(model, tmp_path)
    back = load_model(tmp_path)
    assert [(l.name, l.kind, l.inputs) for l in back.layers] == [(l.name, l.kind, l.inputs) for l in model.layers]
    plan = make_plan(back)
    t = model.input_quant.dtype
    x = np.random.default_rng(0).integers(t.min, t.max + 1, (4, *model.input_shape))
    gold = reference.run(back, x, plan.acc_bits())
    graph = int_model(back, plan)
    for i in range(len(x)):
        out = execute_onnx(graph, {"global_in": x[i:i + 1].astype(np.float32)})["global_out"]
        assert np.allclose(out.reshape(-1), gold.logits[i], rtol=1e-5, atol=1e-4)


def test_input_quantization_is_brevitas_float32_arithmetic():
    s = float(np.float32(1 / 3))  # 0.33333334: 0.5 / s is 1.4999999 in float64, 1.5 (-> 2) in float32
    iq = InputQuant(s, 0, IntType(2, False))
    assert iq.quantize(np.array([0.5]))[0] == 2
    assert int(np.clip(np.round(0.5 / s), 0, 3)) == 1  # the float64 result the golden model used to compute
    x = np.random.default_rng(0).uniform(-0.5, 1.5, 20000).astype(np.float32)
    x[:5] = [0.5, 1 / 6, 5 / 6, 0.0, 1.0]
    ref = torch.clamp(torch.round(torch.from_numpy(x) / torch.tensor(s, dtype=torch.float32)), 0, 3).numpy()
    assert np.array_equal(iq.quantize(x), ref.astype(np.int64))


def test_graph_checks_name_the_layer():
    from a2qflow.hw.compiler.ir import Model

    m = residual_model()
    with pytest.raises(A2QFlowError, match="reads 'nowhere'"):
        m.layers[2].inputs = ("nowhere",)
        Model("bad", m.input_shape, m.input_quant, m.layers)
    m = residual_model()
    m.layers[3].inputs = (INPUT,)  # the skip reads the model input: the stem's output is now read by conv0 only
    m.layers[3].in_shape = m.layers[0].in_shape
    Model("ok", m.input_shape, m.input_quant, m.layers)


# --------------------------------------------------------------------------------- unsupported patterns: one line

def _two_branch(b: QonnxBuilder, scales=(0.1, 0.1)):
    t = b.quant(b.input, 1 / 15, 4, False, name="inp_quant")
    a = b.quant(b.gemm(t, np.ones((3, 6)), 0.1, 4, name="left"), scales[0], 4, True, name="qa")
    c = b.quant(b.gemm(t, -np.ones((3, 6)), 0.1, 4, name="right"), scales[1], 4, True, name="qb")
    return b.node("Add", [a, c], name="join")


def test_add_of_unaligned_scales_names_the_fix(tmp_path):
    b = QonnxBuilder((6,))
    out = b.gemm(b.quant(_two_branch(b, (0.1, 0.3)), 0.2, 4, False, name="q_out"), np.ones((2, 3)), 0.1, 4,
                 name="head")
    msg = refusal(b, out, tmp_path / "m.onnx")
    assert "node 'join' (op Add)" in msg and "power of two" in msg and "shared QuantIdentity" in msg


def test_add_of_aligned_scales_lowers_to_an_add_layer(tmp_path):
    b = QonnxBuilder((6,))
    out = b.gemm(b.quant(_two_branch(b, (0.2, 0.1)), 0.2, 4, False, name="q_out"), np.ones((2, 3)), 0.1, 4,
                 name="head")
    model = load_qonnx(b.save(out, tmp_path / "m.onnx"))
    add = next(l for l in model.layers if l.kind == "add")
    assert add.shifts == (1, 0) and set(add.inputs) == {"left", "right"}


def test_average_pool_without_a_quantizer_names_the_fix(tmp_path):
    b = QonnxBuilder((2, 4, 4))
    t = b.quant(b.input, 1 / 15, 4, False, name="inp_quant")
    t = b.node("GlobalAveragePool", [t], name="gap")
    t = b.node("Flatten", [t], name="flat", axis=1)
    out = b.gemm(t, np.ones((3, 2)), 0.1, 4, name="head")
    msg = refusal(b, out, tmp_path / "m.onnx")
    assert "node 'gap'" in msg and "TruncAvgPool2d" in msg and "QuantIdentity" in msg


def test_grouped_convolution_names_the_supported_forms(tmp_path):
    b = QonnxBuilder((4, 5, 5))
    t = b.quant(b.input, 1 / 15, 4, False, name="inp_quant")
    w = b.qweight(np.ones((4, 2, 3, 3)), 0.1, 4, "gconv.weight")
    out = b.node("Conv", [t, w], name="gconv", kernel_shape=[3, 3], group=2)
    msg = refusal(b, out, tmp_path / "m.onnx")
    assert "node 'gconv'" in msg and "group=2" in msg and "depthwise" in msg


def test_softmax_inside_the_network_is_refused(tmp_path):
    b = QonnxBuilder((6,))
    t = b.quant(b.input, 1 / 15, 4, False, name="inp_quant")
    t = b.node("Softmax", [t], name="sm", axis=1)
    out = b.gemm(b.quant(t, 0.1, 4, False, name="q"), np.ones((2, 6)), 0.1, 4, name="head")
    msg = refusal(b, out, tmp_path / "m.onnx")
    assert "node 'sm'" in msg and "only at the output" in msg
