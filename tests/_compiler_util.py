"""Helpers for the compiler tests: hand-built QONNX graphs (onnx.helper); qonnx execution is hw.qonnx_check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from a2qflow.hw.errors import A2QFlowError

QONNX_DOMAIN = "qonnx.custom_op.general"


def one_line(excinfo: pytest.ExceptionInfo) -> str:
    """The raised error's message, checked to be the one line a user sees (no newline, no traceback)."""
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


def refusal(b: QonnxBuilder, out: str, path: Path) -> str:
    """The frontend's one-line A2QFlowError for the graph `b` builds up to `out` (saved at `path`): the graph must
    be refused, and the message is what the test checks for the node and the fix it names."""
    from a2qflow.hw.compiler.frontend import load_qonnx

    with pytest.raises(A2QFlowError) as e:
        load_qonnx(b.save(out, path))
    return one_line(e)


class QonnxBuilder:
    """Build a QONNX chain node by node, the way the qonnx docs hand-build graphs.

    Weights are given as integers q and a scale s; the initializer holds q * s so the Quant node recovers q exactly.
    """

    def __init__(self, in_shape: tuple[int, ...], name: str = "hand"):
        self.in_shape = (1, *in_shape)
        self.name = name
        self.nodes: list = []
        self.inits: list = []
        self.n = 0
        self.input = "x"

    def _fresh(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, value, name: str | None = None) -> str:
        name = name or self._fresh("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str | None = None, domain: str = "", **attrs) -> str:
        name = name or self._fresh(op)
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out

    def quant(self, x: str, scale, bits: int, signed: bool, zp=0.0, narrow: bool = False, rounding: str = "ROUND",
              name: str | None = None) -> str:
        return self.node("Quant", [x, self.const(scale), self.const(zp), self.const(float(bits))], name=name,
                         domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode=rounding)

    def qweight(self, q: np.ndarray, scale, bits: int, name: str, narrow: bool = True) -> str:
        w = self.const((np.asarray(q, np.float64) * np.asarray(scale, np.float64)).astype(np.float32), name)
        return self.quant(w, scale, bits, True, narrow=narrow, name=f"{name}_quant")

    def gemm(self, x: str, q: np.ndarray, scale, bits: int, bias=None, name: str = "gemm", narrow: bool = True,
             **attrs) -> str:
        """Gemm with transB=1: q is (C, K), scale per channel (C, 1) or scalar."""
        ins = [x, self.qweight(q, scale, bits, f"{name}.weight", narrow)]
        if bias is not None:
            ins.append(self.const(bias, f"{name}.bias"))
        return self.node("Gemm", ins, name=name, transB=1, **attrs)

    def matmul(self, x: str, q_kc: np.ndarray, scale, bits: int, name: str = "matmul") -> str:
        return self.node("MatMul", [x, self.qweight(q_kc, scale, bits, f"{name}.weight")], name=name)

    def conv(self, x: str, q: np.ndarray, scale, bits: int, bias=None, stride=(1, 1), pads=(0, 0, 0, 0),
             name: str = "conv") -> str:
        ins = [x, self.qweight(q, scale, bits, f"{name}.weight")]
        if bias is not None:
            ins.append(self.const(bias, f"{name}.bias"))
        return self.node("Conv", ins, name=name, kernel_shape=list(q.shape[2:]), strides=list(stride),
                         pads=list(pads))

    def bn(self, x: str, gamma, beta, mean, var, name: str = "bn") -> str:
        return self.node("BatchNormalization", [x, self.const(gamma), self.const(beta), self.const(mean),
                                                self.const(var)], name=name, epsilon=1e-5)

    def model(self, out: str, metadata: dict | None = None):
        from qonnx.util.basic import qonnx_make_model

        g = helper.make_graph(self.nodes, self.name,
                              [helper.make_tensor_value_info(self.input, TensorProto.FLOAT, list(self.in_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)
        m = qonnx_make_model(g, producer_name="a2qflow-tests")
        if metadata is not None:
            m.metadata_props.add(key="a2qflow", value=json.dumps(metadata))
        return m

    def save(self, out: str, path: Path, metadata: dict | None = None) -> Path:
        import onnx

        onnx.save(self.model(out, metadata), str(path))
        return path


def hand_built_cnn(path: Path):
    """A QONNX CNN with the awkward parts: signed 3-bit inputs, stride and asymmetric padding, a per-channel Mul of
    mixed sign after the conv, ReLU, max pooling, Flatten and a Gemm. Same weights every call (seed 3)."""
    rng = np.random.default_rng(3)
    b = QonnxBuilder((2, 7, 7))
    t = b.quant(b.input, 0.1, 3, True, name="inp_quant")  # signed 3-bit inputs
    t = b.conv(t, rng.integers(-7, 8, (4, 2, 3, 3)), rng.uniform(0.05, 0.1, (4, 1, 1, 1)), 4,
               bias=rng.normal(0, 0.2, 4), stride=(2, 2), pads=(1, 0, 1, 2), name="conv_a")
    t = b.node("Mul", [t, b.const(np.array([1.3, -0.8, 0.9, 1.1]).reshape(1, 4, 1, 1))], name="scale_a")
    t = b.node("Relu", [t], name="relu_a")
    t = b.quant(t, 0.3, 3, False, name="act_a")
    t = b.node("MaxPool", [t], name="pool_a", kernel_shape=[2, 2], strides=[1, 1])
    t = b.node("Flatten", [t], name="flat", axis=1)
    t = b.gemm(t, rng.integers(-7, 8, (3, 4 * 3 * 3)), 0.04, 4, bias=rng.normal(0, 0.1, 3), name="fc_out")
    return b.save(t, path)
