"""QONNX -> integer IR: load a Brevitas / hand-built QONNX file, clean it up and lower it to `hw.ir.Model`.

Loading (this module): read the file with one-line errors, run qonnx' clean-up and `hw.compiler.passes`'
canonicalisation (Gemm -> MatMul + Mul + Add, BatchNorm -> Mul + Add, Conv bias -> Add, x - c -> x + (-c),
constants last), check that every op is one a2qflow maps, and read the a2qflow metadata (trained targets, names).
Lowering (`hw.compiler.lowering`): one pass over the canonical graph, in topological order, turns it into an
integer layer graph: MAC layers (dense, conv, depthwise, 1-D), pools, residual adds and requantizations, each
with FINN-style thresholds computed exactly from its post-ops (`hw.compiler.post_ops`).

Node names are kept as the user wrote them (qonnx' GiveUniqueNodeNames / GiveReadableTensorNames are not run, and
nodes the rewrites create are named after the node they replace): error messages name nodes and tensors as they
appear in Netron, and the a2qflow metadata's `onnx_weight` keeps pointing at the right initializer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.graph_view import GraphView
from a2qflow.hw.compiler.ir import Model
from a2qflow.hw.compiler.lowering import MAC_OPS, RESHAPE_OPS, SOFTMAX_OPS, GraphLowering
from a2qflow.hw.compiler.lowering_ops import POST_OPS
from a2qflow.hw.compiler.passes import canonicalize
from a2qflow.hw.compiler.quant import node_attrs
from a2qflow.hw.errors import A2QFlowError

SHAPE_OPS = ("MaxPool", "AveragePool", "GlobalAveragePool") + RESHAPE_OPS
SUPPORTED_OPS = ("Quant", "Trunc") + MAC_OPS + POST_OPS + SHAPE_OPS + SOFTMAX_OPS
METADATA_KEY = "a2qflow"
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


def _precheck(proto, path: Path) -> None:
    """Before any transform (so errors name the user's node, not a transform's traceback): qonnx' domain fix,
    names for unnamed nodes, and the supported-op check, skipping constant sub-graphs (Constant / Shape arithmetic
    on initializers, a Transpose of a quantized weight) that the transforms fold away."""
    for n in proto.graph.node:  # the domain fix qonnx' cleanup_model applies, so Quant executes as a custom op
        if n.op_type in ("Quant", "Trunc", "BipolarQuant"):
            n.domain = "qonnx.custom_op.general"
    for i, n in enumerate(proto.graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    consts = {i.name for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type in ("Quant", "BipolarQuant"):
            _check_supported(n, path)
        if all(not i or i in consts for i in n.input):
            consts.update(n.output)
        else:
            _check_supported(n, path)


def _check_canonicalizable(model, path: Path) -> None:
    """What qonnx' rewrites assume but do not check, as one-line errors naming the node."""
    g = GraphView(model, path)
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

# ------------------------------------------------------------------------------------------------ lowering

@dataclass
class _Meta:
    names: list[str] | None
    entries: list[dict]
    input_shape: list[int] | None
    name: str | None


def _metadata(g: GraphView) -> _Meta:
    """The a2qflow JSON from the model's metadata_props (or the graph's, where qonnx' ModelWrapper puts it)."""
    raw = next((p.value for p in g.m.model.metadata_props if p.key == METADATA_KEY), None)
    if raw is None:
        raw = g.m.get_metadata_prop(METADATA_KEY)
    if raw is None:
        return _Meta(None, [], None, None)
    try:
        d = json.loads(raw)
        entries = list(d.get("layers", []))
        names = [str(e["name"]) for e in entries]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise A2QFlowError(f"{g.path}: metadata '{METADATA_KEY}' is not the JSON `a2qflow train` writes "
                           f"({type(e).__name__}: {e}); re-export the model") from None
    return _Meta(names, entries, d.get("input_shape"), d.get("name"))


def load_qonnx(path: Path | str) -> Model:
    """Load a QONNX model (Brevitas export or hand-built) and lower it to the integer IR graph.

    Every problem with the file is an A2QFlowError naming the file and node: unreadable file, unsupported op,
    float (unquantized) layer, missing input quantizer, a join of float tensors.
    """
    return load_qonnx_traced(path)[0]


def load_qonnx_traced(path: Path | str) -> tuple[Model, dict]:
    """`load_qonnx`, plus {IR layer: (the ONNX tensor holding its output, its quantizer or None)}: what
    `hw.compiler.qonnx_check.layerwise` compares layer by layer."""
    path = Path(path)
    proto = _read_onnx(path)
    model, origins = _clean(proto, path)
    g = GraphView(model, path, origins)
    meta = _metadata(g)
    lowering = GraphLowering(g, meta)
    ir = lowering.run()
    if meta.names is None:
        ir.warnings.append(NO_METADATA_WARNING.format(path=path))
    return ir, lowering.trace
