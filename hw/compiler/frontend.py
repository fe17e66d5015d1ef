"""QONNX -> integer IR: load a Brevitas / hand-built QONNX chain and lower it to `hw.ir.Model`.

What it accepts (a chain, one tensor from input to output):

    input -> Quant (input quantizer) -> { MAC -> post-ops -> Quant (activation) -> [MaxPool] [Flatten] }*
          -> MAC -> post-ops (affine only: float logits)

MAC is Gemm / MatMul / Conv whose weights come from a Quant node on an initializer. Post-ops are Add / Sub / Mul /
Div by constants, BatchNormalization, Relu and Identity. Before lowering, qonnx' own transformations bring the
graph to one canonical form (`hw.compiler.passes`: Gemm -> MatMul + Mul + Add, BatchNorm -> Mul + Add, Conv bias ->
Add, x - c -> x + (-c), constants last), so the lowering below only meets MatMul / Conv and per-channel affine
steps. Per output channel the post-ops and the activation
quantizer form a monotone map from the integer accumulator to the next integer activation; the frontend turns it
into FINN-style thresholds, T[c, l] = the smallest accumulator value whose output level is >= base + l + 1, found by
binary search over the exact accumulator range (`hw.bounds.channel_ranges`). The map is evaluated in float64 on
the exact integer accumulator (the mathematically intended function; qonnx / onnxruntime compute the same function
in float32, so a sample landing within float32 rounding of a level boundary can differ by one level). A channel
whose map decreases (negative BN gamma or scale) gets its weight row negated, so the hardware's `acc >= T` holds.

Node names are kept as the user wrote them (qonnx' GiveUniqueNodeNames / GiveReadableTensorNames are not run, and
nodes the rewrites create are named after the node they replace): error messages name nodes and tensors as they
appear in Netron, and the a2qflow metadata's `onnx_weight` keeps pointing at the right initializer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.bounds import channel_ranges
from a2qflow.hw.compiler.ir import (
    Affine,
    ConvLayer,
    DenseLayer,
    InputQuant,
    IntType,
    Layer,
    MaxPoolLayer,
    Model,
    Thresholds,
    identifier,
)
from a2qflow.hw.compiler.passes import bypass_identities, canonicalize
from a2qflow.hw.compiler.quant import QUANT_BITS_RANGE, QuantParams, decode_quant, node_attrs
from a2qflow.hw.errors import A2QFlowError

MAC_OPS = ("Gemm", "MatMul", "Conv")
POST_OPS = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Identity")
SHAPE_OPS = ("MaxPool", "Flatten", "Reshape")
SUPPORTED_OPS = ("Quant",) + MAC_OPS + POST_OPS + SHAPE_OPS
METADATA_KEY = "a2qflow"
MAX_INITIALIZER_VALUES = 1 << 31  # larger than any layer a2qflow maps; guards numpy against edited dims
NO_METADATA_WARNING = (
    "{path} was not exported by a2qflow, so trained accumulator targets cannot be checked; Brevitas' own export "
    "of A2Q layers does not carry the trained integers (since 0.12.1): export with a2qflow.export_qonnx "
    "(the bounds below are exact for the file as it is)")


# ------------------------------------------------------------------------------------------------ loading

def _read_onnx(path: Path):
    """onnx.load with one-line errors for a missing, empty, corrupt or non-ONNX file."""
    import onnx

    if not path.is_file():
        raise A2QFlowError(f"{path}: no such file; pass the model.onnx written by `a2qflow train`")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf DecodeError, external-data errors, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise A2QFlowError(f"{path}: not a readable ONNX model ({type(e).__name__}: {msg[:120]})") from None
    if not proto.HasField("graph") or len(proto.graph.node) == 0:
        raise A2QFlowError(f"{path}: not a readable ONNX model (no graph nodes); is it really an .onnx file?")
    return proto


def _clean(proto, path: Path):
    """qonnx ModelWrapper, the cleanup transforms that keep names, then `passes.canonicalize`.

    Returns (the canonical ModelWrapper, {node name: op type in the file} for nodes the rewrites changed)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveStaticGraphInputs, RemoveUnusedTensors
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    _precheck(proto, path)
    bypass_identities(proto.graph)  # linear; qonnx' own removal is quadratic in the number of Identity nodes
    model = ModelWrapper(proto)
    try:
        for t in (InferShapes(), FoldConstants(exclude_op_types=["Quant", "BipolarQuant"]),
                  FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs(), InferShapes(),
                  InferDataTypes()):
            model = model.transform(t)
        _check_canonicalizable(model, path)
        model, origins = canonicalize(model)
    except A2QFlowError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise A2QFlowError(f"{path}: qonnx could not clean up the graph ({type(e).__name__}: {msg[:160]}); "
                           "is it a valid QONNX model?") from None
    for n in model.graph.node:
        _check_supported(n, path, origins)
    return model, origins


def read_checked(path: Path | str):
    """The one checked loading of a QONNX file, shared by `compile` (load_qonnx) and `audit`.

    Reads the file, checks it (initializer sizes, an acyclic graph, supported ops, decodable Quant nodes, the
    a2qflow metadata) and brings it to the canonical form of `hw.compiler.passes`; every problem is one
    A2QFlowError naming the file and the node, initializer or metadata field.

    Returns:
        (the canonical qonnx ModelWrapper, {node name: op type in the file} for renamed MAC nodes,
        the validated a2qflow metadata dict or None when the file has none).
    """
    path = Path(path)
    model, origins = _clean(_read_onnx(path), path)
    return model, origins, metadata_dict(model, path)


def metadata_dict(model, path: Path) -> dict | None:
    """The a2qflow metadata of a ModelWrapper (model or graph metadata_props), checked field by field; None when
    the file has none. Every malformed field is a one-line error naming it."""
    raw = next((p.value for p in model.model.metadata_props if p.key == METADATA_KEY), None)
    if raw is None:
        raw = model.get_metadata_prop(METADATA_KEY)
    if raw is None:
        return None
    try:
        d = json.loads(raw)
    except ValueError as e:
        raise A2QFlowError(f"{path}: metadata '{METADATA_KEY}' is not the JSON `a2qflow train` writes "
                           f"({type(e).__name__}: {e}); re-export the model") from None
    check_metadata(d, path)
    return d


def _meta_error(path: Path, field: str, value, want: str) -> A2QFlowError:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return A2QFlowError(f"{path}: metadata '{METADATA_KEY}' field {field} is {shown}, expected {want}; re-export "
                        "the model with a2qflow.export_qonnx (or fix the field)")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_metadata(d, path: Path) -> None:
    """The fields the compiler and the audit read: layers (name, onnx_weight, target_acc_bits in the one
    accumulator range, weight_bits / input_bits, input_signed), input_shape and name."""
    from a2qflow.hw.compiler.bounds import ACC_BITS_RANGE

    if not isinstance(d, dict):
        raise _meta_error(path, "(the whole value)", d, "a JSON object")
    layers = d.get("layers", [])
    if not isinstance(layers, list):
        raise _meta_error(path, "layers", layers, "a list of layer objects")
    acc = f"null or an integer in {ACC_BITS_RANGE.start}..{ACC_BITS_RANGE.stop - 1}"
    qb = f"null or an integer in {QUANT_BITS_RANGE.start}..{QUANT_BITS_RANGE.stop - 1}"
    for i, e in enumerate(layers):
        where = f"layers[{i}]"
        if not isinstance(e, dict):
            raise _meta_error(path, where, e, "a layer object")
        if not isinstance(e.get("name"), str) or not e["name"]:
            raise _meta_error(path, f"{where}.name", e.get("name"), "the layer's name (a string)")
        where = f"layers[{i}] ({e['name']})"
        for key, ok, want in (
                ("target_acc_bits", lambda v: _is_int(v) and v in ACC_BITS_RANGE, acc),
                ("weight_bits", lambda v: _is_int(v) and v in QUANT_BITS_RANGE, qb),
                ("input_bits", lambda v: _is_int(v) and v in QUANT_BITS_RANGE, qb),
                ("input_signed", lambda v: isinstance(v, bool), "null, true or false"),
                ("onnx_weight", lambda v: isinstance(v, str), "null or an initializer name")):
            if e.get(key) is not None and not ok(e[key]):
                raise _meta_error(path, f"{where}.{key}", e[key], want)
    shape = d.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and shape and all(_is_int(v) and v > 0 for v in shape)):
        raise _meta_error(path, "input_shape", shape, "null or a list of positive integers")
    if d.get("name") is not None and not isinstance(d["name"], str):
        raise _meta_error(path, "name", d["name"], "null or a string")


def _check_initializers(proto, path: Path) -> None:
    """Each initializer must hold as many values as its dims declare (a file edited to claim 2^40 rows would
    otherwise make numpy try to allocate terabytes), and at most MAX_INITIALIZER_VALUES of them."""
    from onnx import helper

    for t in proto.graph.initializer:
        if t.data_location == 1:  # external data: onnx.load has already resolved or refused it
            continue
        dims = [int(d) for d in t.dims]
        numel = int(np.prod(dims, dtype=object)) if dims else 1
        try:
            itemsize = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
            stored = len(t.raw_data) // itemsize if t.HasField("raw_data") else \
                len(getattr(t, helper.tensor_dtype_to_field(t.data_type)))
        except (KeyError, ValueError, TypeError):
            continue  # a dtype numpy cannot hold: qonnx's own checks report it
        if any(d < 0 for d in dims) or numel > MAX_INITIALIZER_VALUES or stored != numel:
            raise A2QFlowError(f"{path}: initializer '{t.name}' declares dims {dims} ({numel} values) but holds "
                               f"{stored}; the file is corrupt or was edited: re-export the model")


def _check_acyclic(proto, path: Path) -> None:
    """An ONNX graph must be a DAG (Kahn's algorithm); a cycle is named by the nodes on it."""
    produced_by = {o: i for i, n in enumerate(proto.graph.node) for o in n.output if o}
    deps = [{produced_by[t] for t in n.input if t in produced_by} for n in proto.graph.node]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    missing = [len(d) for d in deps]
    ready = [i for i, m in enumerate(missing) if m == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for k in users.get(i, []):
            missing[k] -= 1
            if missing[k] == 0:
                ready.append(k)
    if done < len(deps):
        stuck = [repr(proto.graph.node[i].name or proto.graph.node[i].op_type) for i, m in enumerate(missing) if m]
        raise A2QFlowError(f"{path}: the graph has a cycle through node(s) {', '.join(stuck[:6])}"
                           f"{' ...' if len(stuck) > 6 else ''}; an ONNX graph must be acyclic")


def _precheck(proto, path: Path) -> None:
    """Before any transform (so errors name the user's node, not a transform's traceback): initializer sizes, an
    acyclic graph, qonnx' domain fix, names for unnamed nodes, and the supported-op check, skipping constant
    sub-graphs (Constant / Shape arithmetic on initializers, a Transpose of a quantized weight) that the transforms
    fold away."""
    _check_initializers(proto, path)
    _check_acyclic(proto, path)
    for n in proto.graph.node:  # the domain fix qonnx' cleanup_model applies, so Quant executes as a custom op
        if n.op_type in ("Quant", "Trunc", "BipolarQuant"):
            n.domain = "qonnx.custom_op.general"
    for i, n in enumerate(proto.graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    consts = {i.name for i in proto.graph.initializer}
    inits = {i.name: i for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type in ("Quant", "BipolarQuant"):
            _check_supported(n, path)
            _check_quant_params(n, inits, path)
        if all(not i or i in consts for i in n.input):
            consts.update(n.output)
        else:
            _check_supported(n, path)


def _check_quant_params(node, inits: dict, path: Path) -> None:
    """A Quant node whose parameters are initializers must decode (bit width in range, finite positive scales)
    before qonnx' datatype inference meets a NaN or a 10^9-bit width; others are checked when lowered."""
    from onnx import numpy_helper

    if any(i not in inits for i in node.input[1:4]) or len(node.input) < 4:
        return
    decode_quant(node, lambda name: numpy_helper.to_array(inits[name]) if name in inits else None,
                 lambda what: A2QFlowError(f"{path}: node '{node.name}' (op Quant): {what}"))


def _check_canonicalizable(model, path: Path) -> None:
    """What qonnx' rewrites assume but do not check, as one-line errors naming the node."""
    g = _Graph(model, path)
    for n in model.graph.node:
        if n.op_type == "Gemm" and node_attrs(n).get("transA", 0):
            raise g.err(n, "transA=1 is not supported")
        if n.op_type == "BatchNormalization" and any(model.get_initializer(i) is None for i in n.input[1:5]):
            raise g.err(n, "batch-norm parameters must be constants (export in eval mode)")


def _check_supported(node, path: Path, origins: dict[str, str] | None = None) -> None:
    if node.op_type not in SUPPORTED_OPS:
        op = (origins or {}).get(node.name, node.op_type)
        raise A2QFlowError(f"{path}: node '{node.name}' (op {op}) is not supported; supported ops: "
                           f"{', '.join(SUPPORTED_OPS)}")


# ------------------------------------------------------------------------------------------------ helpers

class _Graph:
    """The canonical graph plus the lookups the lowering needs; every error names the file and node.

    `origins` maps node names to the op type the node had in the file (a Gemm that qonnx' GemmToMatMul turned into
    a MatMul keeps its name, and errors keep saying "(op Gemm)")."""

    def __init__(self, model, path: Path, origins: dict[str, str] | None = None):
        self.m, self.path, self.origins = model, path, origins or {}
        self._consts: dict[str, np.ndarray | None] = {}  # const() per tensor: the graph is final here

    def err(self, node, what: str) -> A2QFlowError:
        return A2QFlowError(f"{self.path}: node '{node.name}' (op {self.origins.get(node.name, node.op_type)}): "
                            f"{what}")

    def init(self, name: str) -> np.ndarray | None:
        v = self.m.get_initializer(name)
        return None if v is None else np.asarray(v, dtype=np.float64)

    def quant_params(self, node) -> QuantParams:
        """The node's Quant parameters in float64 (hw.compiler.quant, the decoder the audit uses too)."""
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
        p = self.m.find_producer(name)
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


def _per_channel(g: _Graph, node, value: np.ndarray, out_shape: tuple[int, ...], what: str) -> np.ndarray:
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


# ------------------------------------------------------------------------------------------------ post-ops

@dataclass
class _Op:
    """One monotone per-channel step of acc -> level: affine (v*mul + add), relu, or a (non-final) quantizer."""

    kind: str  # affine | relu | quant
    mul: np.ndarray | None = None  # (C, 1)
    add: np.ndarray | None = None
    quant: QuantParams | None = None


@dataclass
class _Chain:
    ops: list[_Op] = field(default_factory=list)
    final: QuantParams | None = None  # the activation quantizer that ends the layer (None: float logits)

    def value(self, acc: np.ndarray, linear: bool = False) -> np.ndarray:
        """Float value before the final quantizer; linear=True drops relu / rounding (for the slope sign)."""
        v = acc.astype(np.float64)
        for op in self.ops:
            if op.kind == "affine":
                v = v * op.mul + op.add
            elif op.kind == "relu":
                v = v if linear else np.maximum(v, 0.0)
            elif not linear:
                v = op.quant.dequantize(op.quant.levels(v))
        return v

    def level(self, acc: np.ndarray) -> np.ndarray:
        return self.final.levels(self.value(acc))

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, bias) per channel when the chain is affine (last layer)."""
        scale = np.ones_like(self.ops[0].mul)
        bias = np.zeros_like(self.ops[0].mul)
        for op in self.ops:
            scale, bias = scale * op.mul, bias * op.mul + op.add
        return scale[:, 0], bias[:, 0]


def _thresholds(chain: _Chain, weights: np.ndarray, in_type: IntType) -> tuple[np.ndarray, np.ndarray, IntType, int]:
    """Exact thresholds for every channel and level, negating the weight rows of decreasing channels.

    Returns (weights, thresholds (C, L) int64, out_type, out_base).
    """
    q = chain.final
    base, top = q.qmin, q.qmax
    C = weights.shape[0]
    slope = chain.value(np.ones((C, 1)), linear=True) - chain.value(np.zeros((C, 1)), linear=True)
    flip = slope[:, 0] < 0
    weights = np.where(flip[:, None], -weights, weights)
    sign = np.where(flip, -1, 1)[:, None]
    lo, hi = channel_ranges(weights, in_type)
    levels = np.arange(base + 1, top + 1, dtype=np.int64)[None, :]  # (1, L)
    left = np.broadcast_to(lo[:, None], (C, levels.shape[1])).copy()
    right = np.broadcast_to(hi[:, None] + 1, (C, levels.shape[1])).copy()  # hi + 1: "never fires"
    while np.any(left < right):
        mid = (left + right) // 2
        ok = chain.level(sign * mid) >= levels
        active = left < right
        right = np.where(active & ok, mid, right)
        left = np.where(active & ~ok, mid + 1, left)
    return weights, left.astype(np.int64), IntType(q.bits, q.signed), base


# ------------------------------------------------------------------------------------------------ lowering

@dataclass
class _Meta:
    names: list[str] | None
    entries: list[dict]
    input_shape: list[int] | None
    name: str | None


def _metadata(g: _Graph) -> _Meta:
    """The a2qflow JSON from the model's metadata_props (or the graph's, where qonnx' ModelWrapper puts it)."""
    d = metadata_dict(g.m, g.path)
    if d is None:
        return _Meta(None, [], None, None)
    try:
        entries = list(d.get("layers", []))
        names = [str(e["name"]) for e in entries]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise A2QFlowError(f"{g.path}: metadata '{METADATA_KEY}' is not the JSON `a2qflow train` writes "
                           f"({type(e).__name__}: {e}); re-export the model") from None
    return _Meta(names, entries, d.get("input_shape"), d.get("name"))


class _Lowering:
    def __init__(self, g: _Graph, meta: _Meta):
        self.g, self.meta = g, meta
        self.layers: list[Layer] = []
        self.mac_nodes: list[tuple[object, str]] = []  # (node, weight initializer) per MAC, for metadata matching

    # --- walking the chain
    def next_node(self, tensor: str, prev):
        g = self.g
        consumers = g.m.find_consumers(tensor)
        is_out = tensor in [o.name for o in g.m.graph.output]
        if is_out and consumers:
            raise g.err(prev, f"its output '{tensor}' is both a graph output and used by "
                              f"'{consumers[0].name}'; the backends map a chain with one output")
        if not consumers:
            return None
        if len(consumers) > 1:
            raise g.err(prev, f"its output '{tensor}' feeds {len(consumers)} nodes "
                              f"({', '.join(repr(c.name) for c in consumers)}); only a chain (one consumer per "
                              "tensor) can be mapped to the backends")
        n = consumers[0]
        dyn = [i for i in n.input if i and g.const(i) is None]
        if dyn != [tensor] and not (n.op_type in MAC_OPS and dyn[:1] == [tensor]):
            raise g.err(n, f"it joins several activations ({', '.join(dyn)}); only a chain (one activation input "
                           "per node) can be mapped to the backends")
        return n

    def run(self) -> Model:
        g = self.g
        inp, in_shape = self._graph_input()
        node, input_quant = self._input_quant(inp)
        self._walk(node)
        self._apply_metadata()
        name = self.meta.name or (g.path.parent.name if g.path.stem == "model" and g.path.parent.name
                                  else g.path.stem)
        model_shape = tuple(in_shape[1:])
        if self.meta.input_shape is not None and tuple(self.meta.input_shape) != model_shape:
            raise A2QFlowError(f"{g.path}: metadata input_shape {self.meta.input_shape} disagrees with the graph "
                               f"input {list(model_shape)}; re-export the model")
        warn = [] if self.meta.names is not None else [NO_METADATA_WARNING.format(path=g.path)]
        return Model(identifier(name), model_shape, input_quant, self.layers, warn)

    def _graph_input(self) -> tuple[str, tuple[int, ...]]:
        g, m = self.g, self.g.m
        if len(m.graph.input) != 1 or len(m.graph.output) != 1:
            raise A2QFlowError(f"{g.path}: the graph has {len(m.graph.input)} inputs and {len(m.graph.output)} "
                               "outputs; a2qflow maps a single-input, single-output chain")
        inp = m.graph.input[0].name
        in_shape = g.shape(inp)
        if len(in_shape) not in (2, 4):
            raise A2QFlowError(f"{g.path}: graph input '{inp}' has shape {in_shape}; expected (1, K) or "
                               "(1, C, H, W)")
        return inp, in_shape

    def _input_quant(self, inp: str):
        """The input quantizer (shape-only ops may come first): (its node, InputQuant)."""
        g = self.g
        tensor, node = inp, None
        while True:
            node = self.next_node(tensor, node) if node is not None else self._first(tensor)
            if node is None:
                raise A2QFlowError(f"{g.path}: the graph has no quantized layer")
            if node.op_type == "Quant":
                break
            if node.op_type in ("Flatten", "Reshape", "Identity"):
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
        return node, InputQuant(float(iq.scale.ravel()[0]), int(iq.zero_point.ravel()[0]),
                                IntType(iq.bits, iq.signed))

    def _walk(self, node) -> None:
        """Lower everything after the input quantizer `node`: layers, pools and reshapes, until the output."""
        g = self.g
        act = g.quant_params(node)  # the quantizer whose integers the current tensor holds
        tensor = node.output[0]
        shape = g.shape(tensor)
        pools = 0
        while True:
            node = self.next_node(tensor, node)
            if node is None:
                raise g.err(g.m.find_producer(tensor) or node, "the graph ends in an activation quantizer "
                            "with no layer after it; end with a Gemm / MatMul producing the logits")
            op = node.op_type
            if op in ("Identity", "Flatten", "Reshape"):
                tensor, shape = node.output[0], self._reshape(node, shape)
                continue
            if op == "MaxPool":
                self.layers.append(self._maxpool(node, shape, act, pools))
                pools += 1
                tensor, shape = node.output[0], g.shape(node.output[0])
                continue
            self._check_layer_start(node, tensor)
            layer, tensor, node, act = self._mac(node, act, shape)
            self.layers.append(layer)
            if act is None or tensor in [o.name for o in g.m.graph.output]:  # float logits / quantized output
                return
            shape = g.shape(tensor)

    def _reshape(self, node, shape: tuple[int, ...]) -> tuple[int, ...]:
        new = self.g.shape(node.output[0])
        if node.op_type != "Identity" and not (len(new) == 2 and int(np.prod(new)) == int(np.prod(shape))
                                               or new == shape):
            raise self.g.err(node, f"only flattening (N, C, H, W) -> (N, C*H*W) is supported, got {shape} -> {new}")
        return new

    def _check_layer_start(self, node, tensor: str) -> None:
        g = self.g
        if node.op_type == "Quant":
            raise g.err(node, "a second quantizer directly after a quantized activation is not supported; "
                              "merge the two quantizers")
        if node.op_type not in MAC_OPS:
            raise g.err(node, "expected a layer (Gemm / MatMul / Conv), MaxPool or Flatten after a quantized "
                              "activation")
        if node.input[0] != tensor:
            raise g.err(node, "the activation must be its first input (x @ W, Gemm(x, W), Conv(x, W))")

    def _first(self, tensor: str):
        c = self.g.m.find_consumers(tensor)
        if len(c) != 1:
            raise A2QFlowError(f"{self.g.path}: graph input '{tensor}' feeds {len(c)} nodes; expected one "
                               "(the input quantizer)")
        return c[0]

    # --- layers
    def _maxpool(self, node, shape, act: QuantParams, idx: int) -> MaxPoolLayer:
        g = self.g
        a = node_attrs(node)
        if len(shape) != 4:
            raise g.err(node, f"MaxPool needs an (N, C, H, W) input, got {shape}")
        if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])) \
                or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or a.get("storage_order", 0):
            raise g.err(node, "only unpadded MaxPool (pads 0, ceil_mode 0, dilations 1) is supported")
        if act.scale.size != 1:
            raise g.err(node, "MaxPool must follow a per-tensor activation quantizer")
        k = tuple(int(v) for v in a["kernel_shape"])
        s = tuple(int(v) for v in a.get("strides", [1, 1]))
        name = f"pool{idx}" if self.meta.names is not None else identifier(node.name)
        layer = MaxPoolLayer(name, tuple(shape[1:]), k, s, IntType(act.bits, act.signed))
        if layer.out_shape != g.shape(node.output[0])[1:]:
            raise g.err(node, f"output shape {g.shape(node.output[0])} is not the unpadded pool of {shape}")
        return layer

    def _weights(self, node, out_axis: int) -> tuple[np.ndarray, np.ndarray, IntType, str]:
        """Integer weights q (int64), per-output-channel scale, weight type and initializer name."""
        g = self.g
        p = g.m.find_producer(node.input[1])
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

    def _conv_geometry(self, node, in_shape, zp_x: float) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
        """(stride, pads) of a Conv the backends can map: 2-D, group 1, dilation 1, explicit zero padding."""
        g = self.g
        a = node_attrs(node)
        if len(in_shape) != 4:
            raise g.err(node, f"Conv needs an (N, C, H, W) input, got {in_shape}")
        if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])) \
                or a.get("auto_pad", "NOTSET") not in ("NOTSET",):
            raise g.err(node, "only group=1, dilation 1, explicit-pads Conv is supported")
        pads = tuple(int(v) for v in a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise g.err(node, f"only 2-D convolution is supported (pads {list(pads)})")
        if any(pads) and zp_x != 0:
            raise g.err(node, "zero padding needs an input zero point of 0")
        return tuple(int(v) for v in a.get("strides", [1, 1])), pads

    def _mac_weights(self, node, in_shape, zp_x: float):
        """(q as (C, ...) int64, per-channel weight scale, weight type, initializer, conv geometry or None)."""
        g = self.g
        if node.op_type == "Conv":
            geometry = self._conv_geometry(node, in_shape, zp_x)
            q, s_w, w_type, w_init = self._weights(node, 0)
            if q.ndim != 4:
                raise g.err(node, f"only 2-D convolution is supported (weights {q.shape})")
            return q, s_w, w_type, w_init, geometry
        if len(in_shape) != 2:
            raise g.err(node, f"{node.op_type} needs a 2-D (N, K) input, got shape {in_shape}; flatten first")
        q, s_w, w_type, w_init = self._weights(node, 1)  # MatMul: x @ W with W (K, C)
        if q.shape[0] != in_shape[1]:
            raise g.err(node, f"weights expect K={q.shape[0]} inputs, the input has {in_shape[1]}")
        return q.T, s_w, w_type, w_init, None

    def _mac(self, node, act: QuantParams, in_shape):
        """Lower one MAC node and its post-ops; returns (layer, output tensor, last node, its quantizer or None)."""
        if act.scale.size != 1 or act.zero_point.size != 1:
            raise self.g.err(node, "its input quantizer must be per-tensor (one scale and zero point)")
        s_x, zp_x = float(act.scale.ravel()[0]), float(act.zero_point.ravel()[0])
        in_type = IntType(act.bits, act.signed)
        q, s_w, w_type, w_init, geometry = self._mac_weights(node, in_shape, zp_x)
        C = q.shape[0]
        rowsum = q.reshape(C, -1).sum(axis=1).astype(np.float64)
        mul = (s_x * s_w).reshape(C, 1)
        chain = _Chain([_Op("affine", mul, (-mul[:, 0] * zp_x * rowsum).reshape(C, 1))])
        out_shape = self.g.shape(node.output[0])
        last, out = self._post_ops(node, chain, out_shape)
        weights, w_type, act_ir = self._activation(node, last, chain, q, w_type, in_type)
        name = identifier(node.name)
        if geometry is None:
            layer = DenseLayer(name, weights, in_type, w_type, act_ir)
        else:
            stride, pads = geometry
            layer = ConvLayer(name, weights, in_type, w_type, act_ir, tuple(in_shape[1:]), stride, pads)
            if layer.out_shape != tuple(out_shape[1:]):
                raise self.g.err(node, f"output shape {out_shape} does not match the convolution {layer.out_shape}")
        self.mac_nodes.append((node, w_init))
        return layer, out, last, chain.final

    def _post_ops(self, node, chain: _Chain, out_shape) -> tuple[object, str]:
        """Collect the post-ops after `node` into `chain` up to the activation quantizer that ends the layer (if
        any); returns (the last node of the layer, its output tensor)."""
        g = self.g
        last, out = node, node.output[0]
        while True:
            nxt = self.next_node(out, last)
            if nxt is None:
                return last, out
            if nxt.op_type == "MaxPool":
                raise g.err(nxt, "MaxPool must come after the activation quantizer (QuantReLU -> MaxPool)")
            if nxt.op_type not in POST_OPS + ("Quant",):
                raise g.err(nxt, f"expected bias / scale / BatchNormalization / Relu / Quant after the layer "
                                 f"'{node.name}'")
            if nxt.op_type == "Quant" and self._post_quant(nxt, out, chain):
                return nxt, nxt.output[0]
            if nxt.op_type != "Quant":
                chain.ops.append(self._post_op(nxt, out, out_shape))
            last, out = nxt, nxt.output[0]

    def _post_quant(self, node, tensor: str, chain: _Chain) -> bool:
        """A quantizer after a layer: the activation that ends it (True) or an intermediate one (False)."""
        g = self.g
        qp = g.quant_params(node)
        if node.input[0] != tensor or any(g.const(i) is None for i in node.input[1:4]):
            raise g.err(node, "activation quantizer inputs must be (activation, constants)")
        if qp.scale.size != 1 or qp.zero_point.size != 1:
            raise g.err(node, "activation quantizers must be per-tensor (one scale and zero point) so the "
                              "next layer sees plain integers")
        after = g.m.find_consumers(node.output[0])
        if not after or after[0].op_type not in POST_OPS:
            chain.final = qp
            return True
        chain.ops.append(_Op("quant", quant=qp))
        return False

    def _activation(self, node, last, chain: _Chain, q: np.ndarray, w_type: IntType, in_type: IntType):
        """(weights, weight type, Thresholds or Affine) of a layer from its post-op chain."""
        if chain.final is None:
            bad = next((o for o in chain.ops if o.kind != "affine"), None)
            if bad is not None:
                raise self.g.err(last, f"the last layer '{node.name}' has a {bad.kind} without an output "
                                       "quantizer; its output must be float logits (scale / bias only) or quantized")
            scale, b = chain.affine()
            return q, w_type, Affine(scale, b)
        C = q.shape[0]
        wm, values, out_type, base = _thresholds(chain, q.reshape(C, -1), in_type)
        if wm.size and (wm.max() > w_type.max or wm.min() < w_type.min):
            # a negated row needs one more bit (-(-2^(M-1)) = 2^(M-1); unsigned weights become negative)
            w_type = IntType(w_type.bits + 1, True)
        return wm.reshape(q.shape), w_type, Thresholds(values, out_type, base)

    def _post_op(self, node, tensor: str, out_shape) -> _Op:
        g = self.g
        op = node.op_type
        C = out_shape[1]
        one, zero = np.ones((C, 1)), np.zeros((C, 1))
        if op == "Relu":
            return _Op("relu")
        if op == "Identity":
            return _Op("affine", one, zero)
        if op == "BatchNormalization":  # canonicalize folds every BatchNorm into Mul + Add
            raise g.err(node, "batch-norm parameters must be constants (export in eval mode)")
        other_idx = 1 if node.input[0] == tensor else 0
        c = g.const(node.input[other_idx])
        if c is None:
            raise g.err(node, "needs one constant operand")
        c = _per_channel(g, node, c, out_shape, f"the {op} constant")
        if op == "Add":
            return _Op("affine", one, c)
        if op == "Sub":
            return _Op("affine", one, -c) if other_idx == 1 else _Op("affine", -one, c)
        if op == "Mul":
            return _Op("affine", c, zero)
        if other_idx == 0:
            raise g.err(node, "dividing a constant by the activation is not affine")
        if np.any(c == 0):
            raise g.err(node, "division by zero")
        return _Op("affine", 1.0 / c, zero)

    # --- names and trained P from the a2qflow metadata
    def _apply_metadata(self) -> None:
        meta, g = self.meta, self.g
        macs = [l for l in self.layers if l.kind in ("dense", "conv")]
        if meta.names is None:
            seen: set[str] = set()
            for l in self.layers:
                if l.name in seen:
                    raise A2QFlowError(f"{g.path}: two layers are both named {l.name!r}; give the nodes unique "
                                       "names")
                seen.add(l.name)
            return
        if len(meta.entries) != len(macs):
            raise A2QFlowError(f"{g.path}: metadata '{METADATA_KEY}' lists {len(meta.entries)} layers "
                               f"({', '.join(meta.names)}), the graph has {len(macs)} (nodes "
                               f"{', '.join(n.name for n, _ in self.mac_nodes)}); re-export the model")
        by_weight = {e.get("onnx_weight"): e for e in meta.entries if e.get("onnx_weight")}
        use_names = len(by_weight) == len(meta.entries) and all(w in by_weight for _, w in self.mac_nodes)
        for i, (layer, (node, w_init)) in enumerate(zip(macs, self.mac_nodes)):
            e = by_weight[w_init] if use_names else meta.entries[i]
            layer.name = identifier(str(e["name"]))
            t = e.get("target_acc_bits")
            layer.target_acc_bits = int(t) if t is not None else None
            for key, have in (("weight_bits", layer.w_type.bits), ("input_bits", layer.in_type.bits),
                              ("input_signed", layer.in_type.signed)):
                want = e.get(key)
                if want is not None and key == "weight_bits" and have == int(want) + 1 and layer.w_type.signed:
                    continue  # widened by one bit for a decreasing (negated) channel
                if want is not None and (bool(want) if key == "input_signed" else int(want)) != have:
                    raise A2QFlowError(f"{g.path}: metadata says layer {e['name']} has {key}={want}, node "
                                       f"'{node.name}' has {have}; re-export the model")
        names = [l.name for l in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise A2QFlowError(f"{g.path}: layer names {dup} are not unique in metadata '{METADATA_KEY}'")


def load_qonnx(path: Path | str) -> Model:
    """Load a QONNX chain (Brevitas export or hand-built) and lower it to the integer IR.

    Every problem with the file is an A2QFlowError naming the file and node: unreadable file, unsupported op,
    float (unquantized) layer, missing input quantizer, or a graph that is not a chain.
    """
    path = Path(path)
    proto = _read_onnx(path)
    model, origins = _clean(proto, path)
    g = _Graph(model, path, origins)
    return _Lowering(g, _metadata(g)).run()
