"""model_int.onnx through the transformations FINN runs on a CNN: qonnx' own LowerConvsToMatMul and
channels-last conversion must accept the file (Conv / MaxPool carry every attribute FINN reads, ONNX defaults
included) and the transformed graph must still compute the golden model's integers and logits."""

from __future__ import annotations

import numpy as np
import pytest
from _compiler_util import hand_built_cnn
from test_int_onnx import golden_tensors

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.compile import compile_model
from a2qflow.hw.compiler.ir import load_model
from a2qflow.hw.compiler.plan import load_plan


def _execute(m, x_int: np.ndarray) -> dict:
    """Every tensor of graph `m` (batch 1, as FINN builds it) on each sample, stacked along the batch axis."""
    from qonnx.core.onnx_exec import execute_onnx

    ctxs = [execute_onnx(m, {m.graph.input[0].name: x[None].astype(np.float32)}, return_full_exec_context=True)
            for x in x_int]
    return {k: np.concatenate([c[k] for c in ctxs]) for k in ctxs[0] if np.ndim(ctxs[0][k]) and
            np.shape(ctxs[0][k])[0] == 1}


@pytest.fixture(scope="module")
def cnn_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("finn")
    compile_model(hand_built_cnn(d / "cnn.onnx"), d / "build")
    return d / "build"


def test_conv_and_maxpool_carry_the_attributes_finn_reads(cnn_build):
    import onnx

    m = onnx.load(str(cnn_build / "model_int.onnx"))
    attrs = {n.op_type: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in m.graph.node}
    assert attrs["Conv"]["group"] == 1 and list(attrs["Conv"]["dilations"]) == [1, 1]
    assert list(attrs["MaxPool"]["pads"]) == [0, 0, 0, 0] and list(attrs["MaxPool"]["dilations"]) == [1, 1]
    assert attrs["MaxPool"]["ceil_mode"] == 0


def test_finn_lowering_and_channels_last_keep_the_golden_integers(cnn_build):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model, plan = load_model(cnn_build), load_plan(cnn_build)
    x = np.random.default_rng(5).uniform(-0.5, 0.5, (12, *model.input_shape))
    x_int = model.input_quant.quantize(x)
    gold = golden_tensors(model, x_int, plan.acc_bits())
    logits = reference.run(model, x_int, plan.acc_bits()).logits
    m = ModelWrapper(str(cnn_build / "model_int.onnx"))
    lowered = m.transform(LowerConvsToMatMul()).transform(InferShapes())
    assert "Conv" not in {n.op_type for n in lowered.graph.node}
    nhwc = lowered.transform(ConvertToChannelsLastAndClean())
    for graph in (lowered, nhwc):
        ctx = _execute(graph, x_int)
        assert np.allclose(ctx[graph.graph.output[0].name].reshape(len(x), -1), logits, rtol=1e-5, atol=1e-6)
        kept = [k for k in gold if k.endswith("_out") and k in ctx]  # the activations that keep their names
        assert kept, sorted(ctx)
        for k in kept:
            got = ctx[k] if ctx[k].shape == gold[k].shape else np.moveaxis(ctx[k], -1, 1)  # NHWC -> NCHW
            assert np.array_equal(got.astype(np.int64), gold[k]), k
