"""Canonical QONNX graph -> integer IR graph: one pass over the nodes in topological order.

A tensor that holds a quantizer's integers (the input quantizer's output, a layer's activation) is an
`IntTensor`. Every node that reads integer tensors starts a layer, and the layer takes the per-channel post-ops
after it up to the quantizer that ends it (hw.compiler.post_ops), which become its thresholds:

    MatMul / Gemm / Conv (group 1 or depthwise, 1-D or 2-D)   -> dense / conv / dwconv
    AveragePool / GlobalAveragePool (+ Trunc or Quant)          -> avgpool (the window sum is the accumulator)
    Add of two integer tensors (a shared requantizer)           -> add (scales equal or a power of two apart)
    Quant of an integer tensor                                  -> requant (thresholds on the integer itself)
    MaxPool                                                     -> maxpool (commutes with monotone thresholds)
    Flatten / Reshape / Identity                                -> nothing (the tensor is renamed)
    Softmax / LogSoftmax at the output                          -> dropped, with a note (monotonic: same top-1)

A tensor read by several nodes is a fork (the backends duplicate its stream); a float tensor between an
accumulator and its quantizer may have only one reader, since only integers cross from one layer to the next.
1-D tensors (N, C, L) are held as (N, C, 1, L), so 1-D convolutions and pools map onto the 2-D units.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from a2qflow.hw.compiler.graph_view import GraphView
from a2qflow.hw.compiler.ir import (
    INPUT,
    InputQuant,
    IntType,
    Layer,
    Model,
    identifier,
)
from a2qflow.hw.compiler.lowering_ops import SOFTMAX_NOTE, IntTensor, LayerOps, ir_shape
from a2qflow.hw.compiler.quant import QuantParams, TruncParams
from a2qflow.hw.errors import A2QFlowError

MAC_OPS = ("Gemm", "MatMul", "Conv")
RESHAPE_OPS = ("Identity", "Flatten", "Reshape")
SOFTMAX_OPS = ("Softmax", "LogSoftmax")
def topological(model) -> list:
    """The graph's nodes in an order where every node comes after the producers of its inputs (Kahn's
    algorithm, linear in the graph); a cycle is a one-line error naming the nodes on it. `model`: a ModelProto or
    a qonnx ModelWrapper. The frontend's pre-check (`frontend._check_acyclic`) and the lowering both use it."""
    nodes = list(model.graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    readers: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    missing = [0] * len(nodes)
    for i, n in enumerate(nodes):
        for t in {t for t in n.input if t in producer}:
            readers[producer[t]].append(i)
            missing[i] += 1
    ready = [i for i in range(len(nodes)) if missing[i] == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for j in readers[i]:
            missing[j] -= 1
            if missing[j] == 0:
                ready.append(j)
    if len(order) != len(nodes):
        stuck = [repr(n.name or n.op_type) for i, n in enumerate(nodes) if missing[i]]
        raise A2QFlowError(f"the graph has a cycle through node(s) {', '.join(stuck[:6])}"
                           f"{' ...' if len(stuck) > 6 else ''}; an ONNX graph must be acyclic")
    return [nodes[i] for i in order]


class GraphLowering(LayerOps):
    """The walk itself; layer builders live in `LayerOps`. `meta` is the a2qflow metadata (names, targets)."""

    def __init__(self, g: GraphView, meta):
        self.g, self.meta = g, meta
        self.layers: list[Layer] = []
        self.mac_nodes: list[tuple[object, str]] = []  # (node, weight initializer) per weight layer, in order
        self.ints: dict[str, IntTensor] = {}
        self.float_out: dict[str, str] = {}  # float output tensor -> the layer that ends in it (Affine)
        self.done: set[str] = set()
        self.counts: Counter = Counter()
        self.notes: list[str] = []
        # IR layer -> (the ONNX tensor holding its output, the quantizer that made it, None for float logits)
        self.trace: dict[str, tuple[str, QuantParams | TruncParams | None]] = {}
        self.outputs = {o.name for o in g.m.graph.output}

    def run(self) -> Model:
        g = self.g
        try:
            order = topological(g.m)
        except A2QFlowError as e:
            raise A2QFlowError(f"{g.path}: {e}") from None
        inp, in_shape = self._graph_input()
        iq = self._input_quant(inp, ir_shape(in_shape))
        consts = {i.name for i in g.m.graph.initializer}
        for node in order:
            dyn = [i for i in node.input if i and i not in consts]
            if not dyn:
                consts.update(node.output)
            elif node.name not in self.done:
                self._lower(node, dyn)
        self._check_output()
        rename = self._apply_metadata()
        for layer in self.layers:
            layer.inputs = tuple(rename.get(n, n) for n in layer.inputs)
        self.trace = {rename.get(n, n): v for n, v in self.trace.items()}
        name = self.meta.name or (g.path.parent.name if g.path.stem == "model" and g.path.parent.name
                                  else g.path.stem)
        model_shape = tuple(ir_shape(in_shape)[1:])
        if self.meta.input_shape is not None and tuple(self.meta.input_shape) not in (model_shape, in_shape[1:]):
            raise A2QFlowError(f"{g.path}: metadata input_shape {self.meta.input_shape} disagrees with the graph "
                               f"input {list(in_shape[1:])}; re-export the model")
        try:
            return Model(identifier(name), model_shape, iq, self.layers, notes=self.notes)
        except A2QFlowError as e:
            raise A2QFlowError(f"{g.path}: {e}") from None

    # --- dispatch
    def _lower(self, node, dyn: list[str]) -> None:
        g, op = self.g, node.op_type
        missing = [t for t in dyn if t not in self.ints]
        if missing:
            raise g.err(node, self._not_integer(missing[0], node))
        self.done.add(node.name)
        src = self.ints[dyn[0]]
        if op in RESHAPE_OPS:
            self._alias(node, src)
        elif op == "MaxPool":
            self._maxpool(node, src)
        elif op in MAC_OPS:
            if len(dyn) != 1 or node.input[0] != dyn[0]:
                raise g.err(node, "the activation must be its only non-constant input, and the first (x @ W, "
                                  "Gemm(x, W), Conv(x, W))")
            self._mac(node, src)
        elif op in ("AveragePool", "GlobalAveragePool"):
            self._avgpool(node, src)
        elif op == "Add" and len(dyn) == 2:
            self._add(node, [self.ints[t] for t in dyn])
        elif op in ("Quant", "Trunc"):
            self._requant(node, src)
        elif op in SOFTMAX_OPS:
            self._softmax(node, src)
        else:
            raise g.err(node, "expected a layer (Gemm / MatMul / Conv), a pool, a residual Add of two quantized "
                              "tensors, a quantizer or Flatten after a quantized activation")

    def _not_integer(self, tensor: str, node) -> str:
        """Why `node` cannot read `tensor` (a float tensor), and what to change."""
        layer = self.float_out.get(tensor)
        if node.op_type == "Add" and layer is not None:
            return (f"it adds the float output of layer {layer}; requantize both branches with one shared "
                    "QuantIdentity (return_quant_tensor=True) before the add")
        if node.op_type in MAC_OPS:
            return ("its input is not quantized: add an input quantizer (QuantIdentity / a Quant node) "
                    f"before it (it reads '{tensor}')")
        if node.op_type in ("AveragePool", "GlobalAveragePool"):
            return ("average pooling needs a quantized input: put a QuantReLU / QuantIdentity "
                    "(return_quant_tensor=True) before it")
        return (f"it reads '{tensor}', which is not a quantized tensor; put a quantizer (QuantIdentity / QuantReLU "
                "with return_quant_tensor=True) before it")

    def _graph_input(self) -> tuple[str, tuple[int, ...]]:
        g, m = self.g, self.g.m
        if len(m.graph.input) != 1 or len(m.graph.output) != 1:
            raise A2QFlowError(f"{g.path}: the graph has {len(m.graph.input)} inputs and {len(m.graph.output)} "
                               "outputs; a2qflow maps a single-input, single-output network (with "
                               "return_quant_tensor=True on the last module Brevitas exports several outputs: "
                               "set it to False)")
        inp = m.graph.input[0].name
        in_shape = g.shape(inp)
        if len(in_shape) not in (2, 3, 4):
            raise A2QFlowError(f"{g.path}: graph input '{inp}' has shape {in_shape}; expected (1, K), (1, C, L) "
                               "or (1, C, H, W)")
        return inp, in_shape

    def _input_quant(self, inp: str, shape: tuple[int, ...]) -> InputQuant:
        """The input quantizer (shape-only ops may come first), registered as the first integer tensor."""
        g = self.g
        tensor, node = inp, None
        while True:
            readers = g.readers(tensor)
            if len(readers) != 1:
                raise A2QFlowError(f"{g.path}: graph input '{tensor}' feeds {len(readers)} nodes; expected one "
                                   "(the input quantizer)")
            node = readers[0]
            self.done.add(node.name)
            if node.op_type == "Quant":
                break
            if node.op_type in RESHAPE_OPS:
                tensor = node.output[0]
                continue
            if node.op_type in MAC_OPS:
                raise g.err(node, "its input is not quantized: add an input quantizer (QuantIdentity / a Quant "
                                  "node) between the graph input and the first layer")
            raise g.err(node, "expected the input quantizer (a Quant node) first")
        iq = g.quant_params(node)
        if iq.scale.size != 1 or iq.zero_point.size != 1:
            raise g.err(node, "the input quantizer must be per-tensor (one scale and zero point)")
        if iq.narrow or iq.rounding not in ("ROUND", "HALF_EVEN"):
            raise g.err(node, f"the input quantizer must be full range with rounding_mode ROUND (got narrow="
                              f"{int(iq.narrow)}, rounding_mode={iq.rounding})")
        if iq.zero_point.ravel()[0] != round(iq.zero_point.ravel()[0]):
            raise g.err(node, "the input quantizer's zero point must be an integer")
        if node.output[0] in self.outputs:
            raise A2QFlowError(f"{g.path}: the graph has no quantized layer")
        self.ints[node.output[0]] = IntTensor(INPUT, iq, shape)
        return InputQuant(float(iq.scale.ravel()[0]), int(iq.zero_point.ravel()[0]), IntType(iq.bits, iq.signed))

    def _check_output(self) -> None:
        """The graph's output is the last layer's: its integers, or its float logits."""
        g = self.g
        out = next(iter(self.outputs))
        producer = self.ints[out].producer if out in self.ints else self.float_out.get(out)
        if not self.layers or producer in (None, INPUT):
            raise A2QFlowError(f"{g.path}: the graph has no quantized layer that produces its output '{out}'")
        if producer != self.layers[-1].name:
            raise A2QFlowError(f"{g.path}: the output '{out}' comes from layer {producer}, but layer "
                               f"{self.layers[-1].name} comes after it; a2qflow maps one output")

    def _alias(self, node, src: IntTensor) -> None:
        """Flatten / Reshape / Identity: the same integers under a new name (only (N, C, ...) -> (N, C*...))."""
        new = self.g.shape(node.output[0])
        if node.op_type != "Identity" and not (len(new) == 2 and int(np.prod(new)) == int(np.prod(src.shape))
                                               or ir_shape(new) == src.shape):
            raise self.g.err(node, f"only flattening (N, C, H, W) -> (N, C*H*W) is supported, got "
                                   f"{src.shape} -> {new}")
        shape = src.shape if node.op_type == "Identity" else ir_shape(new)
        self.ints[node.output[0]] = IntTensor(src.producer, src.act, shape)

    def _softmax(self, node, src: IntTensor) -> None:
        if node.output[0] not in self.outputs:
            raise self.g.err(node, f"{node.op_type} is supported only at the output (where it is dropped)")
        self.notes.append(SOFTMAX_NOTE.format(op=node.op_type, name=node.name))
        self.ints[node.output[0]] = src

    # --- names and trained P from the a2qflow metadata
    def name_for(self, node, kind: str) -> str:
        """A pool / add / requant layer's name: `<kind><i>` in files a2qflow exported (their MAC layers carry the
        trainer's names), else the node's own name."""
        if self.meta.names is None:
            return identifier(node.name)
        prefix = {"maxpool": "pool", "avgpool": "avgpool", "add": "add", "requant": "requant"}[kind]
        self.counts[prefix] += 1
        return f"{prefix}{self.counts[prefix] - 1}"

    def _apply_metadata(self) -> dict[str, str]:
        """Names and targets of the weight layers from the metadata; returns {old name: new name}."""
        meta, g = self.meta, self.g
        macs = [l for l in self.layers if l.kind in ("dense", "conv", "dwconv")]
        if meta.names is None:
            seen: set[str] = set()
            for l in self.layers:
                if l.name in seen:
                    raise A2QFlowError(f"{g.path}: two layers are both named {l.name!r}; give the nodes unique "
                                       "names")
                seen.add(l.name)
            return {}
        if len(meta.entries) != len(macs):
            raise A2QFlowError(f"{g.path}: metadata 'a2qflow' lists {len(meta.entries)} layers "
                               f"({', '.join(meta.names)}), the graph has {len(macs)} (nodes "
                               f"{', '.join(n.name for n, _ in self.mac_nodes)}); re-export the model")
        by_weight = {e.get("onnx_weight"): e for e in meta.entries if e.get("onnx_weight")}
        use_names = len(by_weight) == len(meta.entries) and all(w in by_weight for _, w in self.mac_nodes)
        rename = {}
        for i, (layer, (node, w_init)) in enumerate(zip(macs, self.mac_nodes)):
            e = by_weight[w_init] if use_names else meta.entries[i]
            new = identifier(str(e["name"]))
            rename[layer.name] = new
            layer.name = new
            t = e.get("target_acc_bits")
            layer.target_acc_bits = int(t) if t is not None else None
            self._check_entry(e, layer, node)
        names = [l.name for l in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise A2QFlowError(f"{g.path}: layer names {dup} are not unique in metadata 'a2qflow'")
        return rename

    def _check_entry(self, e: dict, layer, node) -> None:
        for key, have in (("weight_bits", layer.w_type.bits), ("input_bits", layer.in_type.bits),
                          ("input_signed", layer.in_type.signed)):
            want = e.get(key)
            if want is not None and key == "weight_bits" and have == int(want) + 1 and layer.w_type.signed:
                continue  # widened by one bit for a decreasing (negated) channel
            if want is not None and (bool(want) if key == "input_signed" else int(want)) != have:
                raise A2QFlowError(f"{self.g.path}: metadata says layer {e['name']} has {key}={want}, node "
                                   f"'{node.name}' has {have}; re-export the model")
