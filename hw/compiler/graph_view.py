"""A read-only view of a canonical QONNX graph with the lookups lowering needs; every error names file and node.

Shared by the frontend's checks (hw.compiler.frontend) and the lowering to the IR (hw.compiler.lowering).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.quant import QuantParams, TruncParams, decode_quant, decode_trunc
from a2qflow.hw.errors import A2QFlowError


class GraphView:
    """The canonical graph plus the lookups the lowering needs; every error names the file and node.

    `origins` maps node names to the op type the node had in the file (a Gemm that qonnx' GemmToMatMul turned into
    a MatMul keeps its name, and errors keep saying "(op Gemm)")."""

    def __init__(self, model, path: Path, origins: dict[str, str] | None = None):
        self.m, self.path, self.origins = model, path, origins or {}
        self._consts: dict[str, np.ndarray | None] = {}  # const() per tensor: the graph is final here
        self._readers: dict[str, list] | None = None
        self._producers: dict[str, object] | None = None

    def readers(self, tensor: str) -> list:
        """The nodes that read `tensor`, in graph order (one index built once: qonnx' find_consumers scans the
        whole graph on every call, which made lowering a chain of N nodes quadratic)."""
        if self._readers is None:
            self._readers = {}
            for n in self.m.graph.node:
                for i in dict.fromkeys(x for x in n.input if x):
                    self._readers.setdefault(i, []).append(n)
        return self._readers.get(tensor, [])

    def producer(self, tensor: str):
        """The node that writes `tensor`, or None (an initializer or the graph input)."""
        if self._producers is None:
            self._producers = {o: n for n in self.m.graph.node for o in n.output}
        return self._producers.get(tensor)

    def err(self, node, what: str) -> A2QFlowError:
        return A2QFlowError(f"{self.path}: node '{node.name}' (op {self.origins.get(node.name, node.op_type)}): "
                            f"{what}")

    def init(self, name: str) -> np.ndarray | None:
        v = self.m.get_initializer(name)
        return None if v is None else np.asarray(v, dtype=np.float64)

    def quant_params(self, node) -> QuantParams | TruncParams:
        """The node's Quant (or Trunc) parameters in float64 (hw.compiler.quant, the decoder the audit uses too)."""
        if node.op_type == "Trunc":
            return decode_trunc(node, self.const, lambda what: self.err(node, what))
        return decode_quant(node, self.init, lambda what: self.err(node, what))

    def const(self, name: str) -> np.ndarray | None:
        """An initializer, a Quant node of initializers evaluated to its float value (e.g. a quantized bias), or a
        Mul / Add of such constants (GemmToMatMul's beta * C); None for anything that depends on the input.

        Memoised: the lowering asks about every node's inputs in graph order, so a chain of N Mul / Add nodes is
        answered in O(N) calls instead of re-walking the chain (O(N^2), and a RecursionError near N = 1000)."""
        if name not in self._consts:
            self._consts[name] = self._const(name)
        return self._consts[name]

    def _const(self, name: str) -> np.ndarray | None:
        v = self.init(name)
        if v is not None:
            return v
        p = self.producer(name)
        if p is not None and p.op_type == "Quant" and self.init(p.input[0]) is not None:
            q = self.quant_params(p)
            return q.dequantize(q.levels(self.init(p.input[0])))
        if p is not None and p.op_type in ("Mul", "Add") and len(p.input) == 2:
            a, b = (self.const(i) for i in p.input)
            if a is not None and b is not None:
                return a * b if p.op_type == "Mul" else a + b
        return None

    def shape(self, tensor: str) -> tuple[int, ...]:
        s = self.m.get_tensor_shape(tensor)
        return tuple(int(d) for d in s) if s is not None else ()


def per_channel(g: GraphView, node, value: np.ndarray, out_shape: tuple[int, ...], what: str) -> np.ndarray:
    """Reduce a constant broadcast against an (N, C, ...) tensor to one value per channel, shape (C, 1)."""
    C = out_shape[1]
    try:
        full = np.broadcast_to(value, out_shape)
    except ValueError:
        raise g.err(node, f"{what} of shape {value.shape} does not broadcast to the tensor {out_shape}") from None
    per_c = np.moveaxis(full, 1, 0).reshape(C, -1)
    if not np.all(per_c == per_c[:, :1]):
        raise g.err(node, f"{what} varies within a channel (only per-tensor or per-channel constants map to "
                          "integer thresholds)")
    return per_c[:, :1].astype(np.float64)
