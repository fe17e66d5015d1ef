"""The layer builders of the QONNX -> IR lowering (hw.compiler.lowering): one method per layer kind.

Each builder reads its integer input tensor(s), turns the node into an IR layer, collects the post-ops after it up
to the quantizer that ends the layer (`collect`), and registers the layer's output (`finish`): an `IntTensor` when a
quantizer ends it, else the float logits of the model's last layer (an `Affine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2qflow.hw.compiler.graph_view import per_channel
from a2qflow.hw.compiler.ir import (
    AddLayer,
    Affine,
    AvgPoolLayer,
    ConvLayer,
    DenseLayer,
    DepthwiseConvLayer,
    IntType,
    MaxPoolLayer,
    RequantLayer,
    Thresholds,
    identifier,
)
from a2qflow.hw.compiler.post_ops import PostOp, PostOpChain, chain_thresholds
from a2qflow.hw.compiler.quant import QuantParams, TruncParams, node_attrs

SOFTMAX_NOTE = ("{op} '{name}' at the output was dropped: it is monotonic, so top-1 is unchanged; the hardware "
                "outputs the logits (apply {op} off-chip if you need probabilities)")


@dataclass
class IntTensor:
    """A tensor of integers: the IR layer that produced it (or INPUT), the quantizer that made them, its shape
    with the batch dimension (1-D tensors as (N, C, 1, L))."""

    producer: str
    act: QuantParams | TruncParams
    shape: tuple[int, ...]

    @property
    def dtype(self) -> IntType:
        return IntType(self.act.bits, self.act.signed)


def ir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(N, C, L) -> (N, C, 1, L): the IR holds 1-D tensors as images one row high."""
    return (shape[0], shape[1], 1, shape[2]) if len(shape) == 3 else tuple(shape)


POST_OPS = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Identity")
QUANT_OPS = ("Quant", "Trunc")


def _pair(v, default: int) -> tuple[int, int]:
    """An ONNX 1-D or 2-D kernel / stride attribute as (h, w); 1-D ops are one row high."""
    v = [int(x) for x in (v if v is not None else [default, default])]
    return (1, v[0]) if len(v) == 1 else (v[0], v[1])


def _pads(v) -> tuple[int, int, int, int]:
    """ONNX pads (begins then ends) as (top, left, bottom, right); 1-D pads [l, r] have no rows."""
    v = [int(x) for x in (v if v is not None else [0, 0, 0, 0])]
    return (0, v[0], 0, v[1]) if len(v) == 2 else tuple(v)


class LayerOps:
    """Mixed into `GraphLowering`; uses its g (GraphView), ints, float_out, done, layers, mac_nodes, meta."""

    # --- post-ops
    def follow(self, tensor: str, prev):
        """The one reader of a float tensor inside a layer (None at the output); a fork is an error."""
        g = self.g
        readers = g.readers(tensor)
        if tensor in self.outputs and readers:
            raise g.err(prev, f"its output '{tensor}' is both the graph output and read by '{readers[0].name}'")
        if len(readers) > 1:
            raise g.err(prev, f"its float output '{tensor}' feeds {len(readers)} nodes "
                              f"({', '.join(repr(c.name) for c in readers)}); quantize it first (a QuantIdentity "
                              "with return_quant_tensor=True) so every branch reads integers")
        return readers[0] if readers else None

    def collect(self, node, chain: PostOpChain, out_shape) -> tuple[object, str]:
        """Post-ops after `node` into `chain`, up to the quantizer that ends the layer (if any); returns (the last
        node of the layer, its output tensor)."""
        g = self.g
        last, out = node, node.output[0]
        while True:
            nxt = self.follow(out, last)
            if nxt is None:
                return last, out
            if nxt.op_type in ("Softmax", "LogSoftmax") and nxt.output[0] in self.outputs:
                self.notes.append(SOFTMAX_NOTE.format(op=nxt.op_type, name=nxt.name))
                self.done.add(nxt.name)
                return nxt, nxt.output[0]
            if nxt.op_type == "MaxPool":
                raise g.err(nxt, "MaxPool must come after the activation quantizer (QuantReLU -> MaxPool)")
            if nxt.op_type == "Add" and not self._const_post_op(nxt):
                raise g.err(nxt, f"it adds the float output of '{node.name}'; requantize both branches with one "
                                 "shared QuantIdentity (return_quant_tensor=True) before the add")
            if nxt.op_type not in POST_OPS + QUANT_OPS and node.op_type in ("AveragePool", "GlobalAveragePool"):
                raise g.err(node, "average pooling must be followed by a quantizer (TruncAvgPool2d, or a "
                                  "QuantIdentity after AdaptiveAvgPool2d / AvgPool2d) so the next layer reads integers")
            if nxt.op_type not in POST_OPS + QUANT_OPS:
                raise g.err(nxt, f"expected bias / scale / BatchNormalization / Relu / Quant after the layer "
                                 f"'{node.name}'")
            self.done.add(nxt.name)
            if nxt.op_type in QUANT_OPS and self._post_quant(nxt, out, chain):
                return nxt, nxt.output[0]
            if nxt.op_type not in QUANT_OPS:
                chain.ops.append(self._post_op(nxt, out, out_shape))
            last, out = nxt, nxt.output[0]

    def _const_post_op(self, node) -> bool:
        """A per-channel step with at most one non-constant input (bias, scale, BN, Relu), not a join."""
        return node.op_type in POST_OPS and sum(1 for i in node.input if i and self.g.const(i) is None) == 1

    def _post_quant(self, node, tensor: str, chain: PostOpChain) -> bool:
        """A quantizer after a layer: the activation that ends it (True) or an intermediate one (False)."""
        g = self.g
        qp = g.quant_params(node)
        if node.input[0] != tensor or any(g.const(i) is None for i in node.input[1:4]):
            raise g.err(node, "activation quantizer inputs must be (activation, constants)")
        if qp.scale.size != 1 or np.size(qp.zero_point) != 1:
            raise g.err(node, "activation quantizers must be per-tensor (one scale and zero point) so the "
                              "next layer sees plain integers")
        after = g.readers(node.output[0])
        if len(after) == 1 and node.output[0] not in self.outputs and self._const_post_op(after[0]):
            chain.ops.append(PostOp("quant", quant=qp))
            return False
        chain.final = qp
        return True

    def _post_op(self, node, tensor: str, out_shape) -> PostOp:
        g = self.g
        op = node.op_type
        C = out_shape[1]
        one, zero = np.ones((C, 1)), np.zeros((C, 1))
        if op == "Relu":
            return PostOp("relu")
        if op == "Identity":
            return PostOp("affine", one, zero)
        if op == "BatchNormalization":  # canonicalize folds every BatchNorm into Mul + Add
            raise g.err(node, "batch-norm parameters must be constants (export in eval mode)")
        other_idx = 1 if node.input[0] == tensor else 0
        c = g.const(node.input[other_idx])
        if c is None:
            raise g.err(node, "needs one constant operand")
        c = per_channel(g, node, c, out_shape, f"the {op} constant")
        if op == "Add":
            return PostOp("affine", one, c)
        if op == "Sub":
            return PostOp("affine", one, -c) if other_idx == 1 else PostOp("affine", -one, c)
        if op == "Mul":
            return PostOp("affine", c, zero)
        if other_idx == 0:
            raise g.err(node, "dividing a constant by the activation is not affine")
        if np.any(c == 0):
            raise g.err(node, "division by zero")
        return PostOp("affine", 1.0 / c, zero)

    def activation(self, node, last, chain: PostOpChain, q: np.ndarray, w_type: IntType, in_type: IntType,
                   fixed: bool = False):
        """(weights, weight type, Thresholds or Affine) of a layer from its post-op chain. `fixed`: the weights
        are constants of the layer kind (pool ones, add shifts) and may not be negated."""
        if chain.final is None:
            bad = next((o for o in chain.ops if o.kind != "affine"), None)
            if bad is not None:
                raise self.g.err(last, f"the last layer '{node.name}' has a {bad.kind} without an output "
                                       "quantizer; its output must be float logits (scale / bias only) or quantized")
            scale, b = chain.affine()
            return q, w_type, Affine(scale, b)
        C = q.shape[0]
        wm, values, out_type, base = chain_thresholds(chain, q.reshape(C, -1), in_type)
        if fixed and not np.array_equal(wm, q.reshape(C, -1)):
            raise self.g.err(last, f"the requantization after '{node.name}' decreases in some channel (a negative "
                                   "scale); only increasing maps are supported after a pool, add or quantizer")
        if wm.size and (wm.max() > w_type.max or wm.min() < w_type.min):
            # a negated row needs one more bit (-(-2^(M-1)) = 2^(M-1); unsigned weights become negative)
            w_type = IntType(w_type.bits + 1, True)
        return wm.reshape(q.shape), w_type, Thresholds(values, out_type, base)

    def finish(self, layer, last_out: str, final, shape: tuple[int, ...]) -> None:
        """Append the layer and register its output: integers at `final`, or the model's float logits."""
        self.layers.append(layer)
        self.trace[layer.name] = (last_out, final)
        if final is None:
            self.float_out[last_out] = layer.name
        else:
            self.ints[last_out] = IntTensor(layer.name, final, shape)

    def _in_affine(self, node, src, C: int, K: float = 1.0) -> PostOpChain:
        """The chain's first step: the float value of an integer sum of K inputs, s / K * (acc - K * zp)."""
        if src.act.scale.size != 1 or np.size(src.act.zero_point) != 1:
            raise self.g.err(node, "its input quantizer must be per-tensor (one scale and zero point)")
        s, zp = float(np.ravel(src.act.scale)[0]), float(np.ravel(src.act.zero_point)[0])
        return PostOpChain([PostOp("affine", np.full((C, 1), s / K), np.full((C, 1), -s * zp))])

    # --- pools, adds, requantization
    def _maxpool(self, node, src) -> None:
        g = self.g
        a = node_attrs(node)
        if len(src.shape) != 4:
            raise g.err(node, f"MaxPool needs an (N, C, H, W) or (N, C, L) input, got {src.shape}")
        if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1])) \
                or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or a.get("storage_order", 0):
            raise g.err(node, "only unpadded MaxPool (pads 0, ceil_mode 0, dilations 1) is supported")
        if src.act.scale.size != 1:
            raise g.err(node, "MaxPool must follow a per-tensor activation quantizer")
        k = _pair(a["kernel_shape"], 1)
        layer = MaxPoolLayer(self.name_for(node, "maxpool"), tuple(src.shape[1:]), k, _pair(a.get("strides"), 1),
                             src.dtype, inputs=(src.producer,))
        if layer.out_shape != tuple(ir_shape(g.shape(node.output[0]))[1:]):
            raise g.err(node, f"output shape {g.shape(node.output[0])} is not the unpadded pool of {src.shape}")
        self.finish(layer, node.output[0], src.act, (src.shape[0], *layer.out_shape))

    def _avgpool(self, node, src) -> None:
        """Average pooling: the integer window sum is the accumulator; divide, truncate, requantize: thresholds."""
        g = self.g
        if len(src.shape) != 4:
            raise g.err(node, f"average pooling needs an (N, C, H, W) or (N, C, L) input, got {src.shape}")
        c, h, w = src.shape[1:]
        if node.op_type == "GlobalAveragePool":
            k, stride = (h, w), (1, 1)
        else:
            a = node_attrs(node)
            if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or a.get("auto_pad", "NOTSET") not in (
                    "NOTSET", "VALID"):
                raise g.err(node, "only unpadded AveragePool (pads 0, ceil_mode 0) is supported")
            k, stride = _pair(a["kernel_shape"], 1), _pair(a.get("strides"), 1)
        K = k[0] * k[1]
        ones = np.ones((c, 1, *k), dtype=np.int64)
        chain = self._in_affine(node, src, c, float(K))
        last, out = self.collect(node, chain, g.shape(node.output[0]) or (src.shape[0], c, 1, 1))
        if chain.final is None and out not in self.outputs:
            raise g.err(node, "average pooling must be followed by a quantizer (TruncAvgPool2d, or a QuantIdentity "
                              "after AdaptiveAvgPool2d / AvgPool2d) so the next layer reads integers")
        wts, _, act = self.activation(node, last, chain, ones, IntType(1, False), src.dtype, fixed=True)
        layer = AvgPoolLayer(self.name_for(node, "avgpool"), wts, src.dtype, IntType(1, False), act, (c, h, w),
                             stride, (0, 0, 0, 0), inputs=(src.producer,))
        self.finish(layer, out, chain.final, (src.shape[0], *layer.out_shape))

    def _add(self, node, srcs) -> None:
        """Residual add of two integer tensors: align their scales by a shift, sum, then the post-ops."""
        g = self.g
        a, b = srcs
        if a.dtype != b.dtype or a.shape != b.shape:
            raise g.err(node, f"its two inputs are {a.dtype} {list(a.shape)} and {b.dtype} {list(b.shape)}; "
                              "requantize both branches with one shared QuantIdentity so they have one type")
        sa, sb = (float(np.ravel(t.act.scale)[0]) for t in srcs)
        if any(t.act.scale.size != 1 or np.size(t.act.zero_point) != 1 for t in srcs):
            raise g.err(node, "both inputs of a residual add must be per-tensor quantized")
        ratio = np.log2(sa / sb)
        if ratio != np.round(ratio):
            raise g.err(node, f"its inputs' scales {sa:g} and {sb:g} are not equal or a power of two apart; "
                              "requantize both branches with one shared QuantIdentity before the add")
        shifts = (int(ratio), 0) if ratio > 0 else (0, int(-ratio))
        C = a.shape[1]
        s = min(sa, sb)
        za, zb = (float(np.ravel(t.act.zero_point)[0]) for t in srcs)
        chain = PostOpChain([PostOp("affine", np.full((C, 1), s), np.full((C, 1), -(sa * za + sb * zb)))])
        last, out = self.collect(node, chain, g.shape(node.output[0]) or a.shape)
        layer = AddLayer(self.name_for(node, "add"), a.dtype, None, tuple(a.shape[1:]), shifts,
                         inputs=(a.producer, b.producer))
        _, _, layer.act = self.activation(node, last, chain, layer.weight_matrix(), layer.w_type, a.dtype,
                                          fixed=True)
        self.finish(layer, out, chain.final, a.shape)

    def _requant(self, node, src) -> None:
        """A quantizer reading integers: its levels are a monotone function of the integer, i.e. thresholds."""
        chain = self._in_affine(node, src, src.shape[1])
        if self._post_quant(node, node.input[0], chain):
            last, out = node, node.output[0]
        else:
            last, out = self.collect(node, chain, self.g.shape(node.output[0]) or src.shape)
        layer = RequantLayer(self.name_for(node, "requant"), src.dtype, None, tuple(src.shape[1:]),
                             inputs=(src.producer,))
        _, _, layer.act = self.activation(node, last, chain, layer.weight_matrix(), layer.w_type, src.dtype,
                                          fixed=True)
        self.finish(layer, out, chain.final, src.shape)

    # --- MAC layers
    def _weights(self, node, out_axis: int) -> tuple[np.ndarray, np.ndarray, IntType, str]:
        """Integer weights q (int64), per-output-channel scale, weight type and initializer name."""
        g = self.g
        p = g.producer(node.input[1])
        if p is None or p.op_type != "Quant":
            raise g.err(node, "weights are not quantized (no Quant node); a2qflow maps integer layers only: use a "
                              "Brevitas QuantLinear / QuantConv2d with an integer weight quantizer")
        w = g.init(p.input[0])
        if w is None:
            raise g.err(p, "the weight quantizer's input must be a constant initializer")
        qp = g.quant_params(p)
        if np.any(qp.zero_point != 0):
            raise g.err(p, "weight zero points must be 0 (symmetric weight quantization)")
        q = qp.levels(w)
        if not np.all(q == np.round(q)):
            raise g.err(p, "weights do not quantize to integers")
        full = np.broadcast_to(qp.scale, w.shape)
        per = np.moveaxis(full, out_axis, 0).reshape(w.shape[out_axis], -1)
        if not np.all(per == per[:, :1]):
            raise g.err(p, "the weight scale varies inside an output channel; use per-tensor or per-output-channel "
                           "scales")
        return q.astype(np.int64), per[:, 0], IntType(qp.bits, qp.signed), p.input[0]

    def _conv_geometry(self, node, in_shape, q: np.ndarray, zp_x: float):
        """(class, weights as (OC, IC/g, KH, KW), stride, pads) of a Conv the backends map: 1-D or 2-D, group 1 or
        depthwise, dilation 1, explicit zero padding."""
        g = self.g
        a = node_attrs(node)
        if len(in_shape) != 4 or q.ndim not in (3, 4):
            raise g.err(node, f"Conv needs an (N, C, H, W) or (N, C, L) input, got {in_shape}")
        if any(d != 1 for d in a.get("dilations", [1])) or a.get("auto_pad", "NOTSET") != "NOTSET":
            raise g.err(node, "only dilation 1, explicit-pads Conv is supported")
        groups, c_in, oc = int(a.get("group", 1)), in_shape[1], q.shape[0]
        if groups != 1 and not (groups == c_in == oc):
            raise g.err(node, f"group={groups} is not supported: use groups=1 or a depthwise convolution "
                              f"(groups = in_channels = out_channels = {c_in})")
        pads = _pads(a.get("pads"))
        if any(pads) and zp_x != 0:
            raise g.err(node, "zero padding needs an input zero point of 0")
        w = q.reshape(oc, q.shape[1], 1, q.shape[2]) if q.ndim == 3 else q
        cls = DepthwiseConvLayer if groups != 1 else ConvLayer
        return cls, w, _pair(a.get("strides"), 1), pads

    def _mac(self, node, src) -> None:
        """Lower one MAC node and its post-ops."""
        g = self.g
        if src.act.scale.size != 1 or np.size(src.act.zero_point) != 1:
            raise g.err(node, "its input quantizer must be per-tensor (one scale and zero point)")
        s_x, zp_x = float(np.ravel(src.act.scale)[0]), float(np.ravel(src.act.zero_point)[0])
        if node.op_type == "Conv":
            q, s_w, w_type, w_init = self._weights(node, 0)
            cls, q, stride, pads = self._conv_geometry(node, src.shape, q, zp_x)
        else:
            if len(src.shape) != 2:
                raise g.err(node, f"{node.op_type} needs a 2-D (N, K) input, got shape {src.shape}; flatten first")
            q, s_w, w_type, w_init = self._weights(node, 1)  # MatMul: x @ W with W (K, C)
            if q.shape[0] != src.shape[1]:
                raise g.err(node, f"weights expect K={q.shape[0]} inputs, the input has {src.shape[1]}")
            q, cls = q.T, DenseLayer
        C = q.shape[0]
        rowsum = q.reshape(C, -1).sum(axis=1).astype(np.float64)
        mul = (s_x * s_w).reshape(C, 1)
        chain = PostOpChain([PostOp("affine", mul, (-mul[:, 0] * zp_x * rowsum).reshape(C, 1))])
        out_shape = ir_shape(g.shape(node.output[0]))
        last, out = self.collect(node, chain, g.shape(node.output[0]))
        weights, w_type, act = self.activation(node, last, chain, q, w_type, src.dtype)
        name = identifier(node.name)
        if cls is DenseLayer:
            layer = DenseLayer(name, weights, src.dtype, w_type, act, inputs=(src.producer,))
        else:
            layer = cls(name, weights, src.dtype, w_type, act, tuple(src.shape[1:]), stride, pads,
                        inputs=(src.producer,))
            if layer.out_shape != tuple(out_shape[1:]):
                raise g.err(node, f"output shape {out_shape} does not match the convolution {layer.out_shape}")
        self.mac_nodes.append((node, w_init))
        self.finish(layer, out, chain.final, (src.shape[0], *((C,) if cls is DenseLayer else layer.out_shape)))
