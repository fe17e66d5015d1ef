"""Graph rewrites that bring a QONNX file to the one canonical form the frontend lowers.

qonnx' own transformations do the work: after `canonicalize` a MAC layer is MatMul (x @ W) or Conv without
bias, and the ops between two quantizers are Mul / Add by constants, Relu, Div / Sub by constants where they
cannot be rewritten exactly, and MaxPool / Flatten / Reshape. a2qflow's own rewrites are small classes with
`apply(model) -> (model, changed)` in the manner of qonnx' `transformation/` folder:

- `GemmBiasExplicit`: a Gemm without its optional C input gets a zero bias, so qonnx' GemmToMatMul applies.
- `ConstantsToFloat64`: BatchNormalization parameters become float64 before qonnx' BatchNormToAffine folds them,
  so the folded scale and bias are the float64 values the frontend has always computed (qonnx would fold them in
  float32 and move thresholds that sit on a level boundary).
- `KeepNodeNames`: wraps a qonnx transformation and names the nodes it creates after the node they replace
  (GemmToMatMul's MatMul keeps the Gemm's name), so errors, layer names and metadata still use the user's names.

Not run, on purpose: ConvertDivToMul (x / c and x * (1 / c) round differently, which can move a threshold that
sits exactly on a level boundary) and RemoveIdentityOps (its tolerance drops a Mul by 1 +- 1e-5, e.g. an untrained
BatchNorm, and it removes one node per step: quadratic in the graph). GemmToMatMul runs it internally after every
Gemm; `GemmToMatMulLinear` swaps in `bypass_identities`, which removes exact no-ops in one linear pass.
"""

from __future__ import annotations

import warnings

import numpy as np
from qonnx.transformation.base import Transformation

MAC_OPS = ("Gemm", "MatMul", "Conv")


class GemmBiasExplicit(Transformation):
    """Give every Gemm a C input (zeros of its output width): qonnx' GemmToMatMul needs one."""

    def apply(self, model):
        for n in model.graph.node:
            if n.op_type != "Gemm" or (len(n.input) > 2 and n.input[2]):
                continue
            w = model.get_initializer(n.input[1])
            shape = model.get_tensor_shape(n.output[0])
            width = int(shape[-1]) if shape else (None if w is None else int(w.shape[0]))
            if width is None:
                continue
            name = model.make_new_valueinfo_name()
            model.set_initializer(name, np.zeros(width, dtype=np.float32))
            if len(n.input) > 2:
                n.input[2] = name
            else:
                n.input.append(name)
        return model, False


class ConstantsToFloat64(Transformation):
    """Store the constant (initializer) inputs of the given op types in float64."""

    def __init__(self, op_types: tuple[str, ...] = ("BatchNormalization",)):
        super().__init__()
        self.op_types = op_types

    def apply(self, model):
        for n in model.graph.node:
            if n.op_type not in self.op_types:
                continue
            for i in n.input[1:]:
                v = model.get_initializer(i)
                if v is not None and v.dtype == np.float32:
                    model.set_initializer(i, v.astype(np.float64))
        return model, False


class KeepNodeNames(Transformation):
    """Run `inner`, then name every node it created after the node it replaced.

    A new node inherits the name of the removed (or kept) node that shares a tensor with it; a MatMul / Conv
    standing in for a removed MAC node takes its name as it is, any other new node `<name>_<op>`. `origins`
    records the op type each kept name had before, so errors can still say "(op Gemm)".
    """

    def __init__(self, inner: Transformation, origins: dict[str, str]):
        super().__init__()
        self.inner, self.origins = inner, origins

    def apply(self, model):
        before = {n.name: (n.op_type, list(n.input), list(n.output)) for n in model.graph.node}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GemmToMatMul warns about every opset but 9
            model, changed = self.inner.apply(model)  # one step: qonnx' rewrites replace one node per step
        present = {n.name for n in model.graph.node if n.name}
        gone = [k for k in before if k not in present]
        tensor_origin: dict[str, str] = {}
        for name in gone + [k for k in before if k in present]:  # a replaced node's tensors win
            for t in before[name][1] + before[name][2]:
                if t:
                    tensor_origin.setdefault(t, name)
        used = set(present)
        pending = [n for n in model.graph.node if not n.name]
        while pending:
            progress = False
            for n in pending:
                base = self._name(n, tensor_origin, before, used)
                if base is not None:
                    progress = True
                    for t in list(n.input) + list(n.output):
                        tensor_origin.setdefault(t, base)
            if not progress:
                for n in pending:  # not connected to any known tensor: a plain unique name
                    n.name = self._unique(f"{n.op_type}_a2qflow", used)
            pending = [n for n in pending if not n.name]
        return model, changed

    def _name(self, node, tensor_origin, before, used) -> str | None:
        """Name `node` after the first known node it shares a tensor with; returns that node's name or None."""
        base = next((tensor_origin[t] for t in list(node.input) + list(node.output) if t in tensor_origin), None)
        if base is None:
            return None
        was = before.get(base, (self.origins.get(base, ""),))[0]
        if node.op_type in ("MatMul", "Conv") and was in MAC_OPS and base not in used:
            node.name = base
            used.add(base)
            self.origins.setdefault(base, was)
        else:
            node.name = self._unique(f"{base}_{node.op_type.lower()}", used)
        return base

    @staticmethod
    def _unique(name: str, used: set[str]) -> str:
        out, k = name, 1
        while out in used:
            k += 1
            out = f"{name}{k}"
        used.add(out)
        return out


def _scalar_consts(graph) -> dict[str, float]:
    """Initializers holding one float value in shape () or (1,) (broadcasting them never changes a shape)."""
    from onnx import numpy_helper

    out = {}
    for t in graph.initializer:
        if len(t.dims) <= 1 and int(np.prod(t.dims)) == 1:
            v = numpy_helper.to_array(t)
            if v.dtype.kind == "f":
                out[t.name] = float(v.ravel()[0])
    return out


def identity_input(node, scalars: dict[str, float]) -> str | None:
    """The data input of a node that passes it on unchanged (Identity; Mul / Div by exactly 1; Add / Sub of exactly
    0, the constant a scalar), else None. Exact only: qonnx' RemoveIdentityOps also drops a Mul by 1 +- 1e-5."""
    if node.op_type == "Identity" and len(node.input) == 1:
        return node.input[0]
    neutral = {"Mul": 1.0, "Div": 1.0, "Add": 0.0, "Sub": 0.0}.get(node.op_type)
    if neutral is None or len(node.input) != 2:
        return None
    for k in ((1,) if node.op_type in ("Div", "Sub") else (1, 0)):
        if scalars.get(node.input[k]) == neutral and node.input[1 - k] not in scalars:
            return node.input[1 - k]
    return None


def bypass_identities(graph) -> int:
    """Remove every no-op node (`identity_input`: Identity, x * 1, x / 1, x + 0, x - 0) of an onnx GraphProto in
    one linear pass, wiring its consumers to its input; returns the number of nodes removed.

    Why here and not qonnx' RemoveIdentityOps (which GemmToMatMul runs after every Gemm): qonnx removes one node
    per transformation step and re-runs shape inference and the graph clean-up after each, each of them linear or
    worse in the graph's size, so a file with N Identity nodes took O(N^2) or more (5.8 s at N = 50, 27 s at 200;
    benchmarks/compile_scaling.py). A no-op changes nothing the frontend lowers. One whose output is a graph output
    renames its input tensor instead (the graph keeps its output name); one whose input is itself a graph input,
    an initializer or another graph output is kept."""
    outputs = {o.name for o in graph.output}
    fixed = outputs | {i.name for i in graph.input} | {i.name for i in graph.initializer}
    noops = _noop_sources(graph)  # (node, source) pairs; the list keeps the node objects (and their ids) alive
    ids, n_src = [n for n, _ in noops], {id(n): src for n, src in noops}
    alias = {n.output[0]: n_src[id(n)] for n in ids if n.output[0] not in outputs}
    find = _alias_resolver(alias)
    removed = {id(n) for n in ids if n.output[0] not in outputs}
    rename = _rename_for_outputs([n for n in ids if n.output[0] in outputs], n_src, fixed, find, removed)
    if not removed:
        return 0
    keep = [n for n in graph.node if id(n) not in removed]
    _rewire(keep, find, rename)
    gone = set(alias) | set(rename)
    vi = [v for v in graph.value_info if v.name not in gone]
    del graph.value_info[:]
    graph.value_info.extend(vi)
    del graph.node[:]
    graph.node.extend(keep)
    return len(removed)


def _noop_sources(graph) -> list[tuple]:
    """(node, the tensor it passes through) for every single-output no-op of the graph, in graph order."""
    scalars = _scalar_consts(graph)
    noops = []
    for n in graph.node:
        src = identity_input(n, scalars) if len(n.output) == 1 and n.output[0] else None
        if src:
            noops.append((n, src))
    return noops


def _alias_resolver(alias: dict[str, str]):
    """find(t): the tensor at the end of t's chain of no-ops (path compression keeps the whole pass linear)."""

    def find(t: str) -> str:
        path = []
        while t in alias:
            path.append(t)
            t = alias[t]
        for p in path:
            alias[p] = t
        return t

    return find


def _rename_for_outputs(out_ids: list, n_src: dict[int, str], fixed: set[str], find, removed: set[int]) -> dict:
    """No-ops whose output is a graph output: rename their source tensor to that output (and mark them removed),
    unless the source is fixed (graph input, initializer, output) or already renamed: then the node is kept,
    reading the resolved source."""
    rename: dict[str, str] = {}
    for n in out_ids:
        src = find(n_src[id(n)])
        if src in fixed or src in rename:
            n.input[list(n.input).index(n_src[id(n)])] = rename.get(src, src)
            continue
        rename[src] = n.output[0]
        removed.add(id(n))
    return rename


def _rewire(keep: list, find, rename: dict[str, str]) -> None:
    """Point every kept node's inputs past the removed no-ops, and rename outputs that became graph outputs."""
    for n in keep:
        for i, t in enumerate(n.input):
            if t:
                r = find(t)
                n.input[i] = rename.get(r, r)
        for i, t in enumerate(n.output):
            if t in rename:
                n.output[i] = rename[t]


class ExactIdentityRemoval(Transformation):
    """`bypass_identities` as a qonnx transformation: one linear pass, exact no-ops only."""

    def apply(self, model):
        bypass_identities(model.graph)
        return model, False


class GemmToMatMulLinear(Transformation):
    """qonnx' GemmToMatMul with its internal RemoveIdentityOps (run after every Gemm over the whole graph, one node
    per step, with a tolerance) replaced by `ExactIdentityRemoval`, which drops the same alpha / beta Muls by
    exactly 1 in one pass. The swap patches the name GemmToMatMul's module looks up, for one step only."""

    def apply(self, model):
        import qonnx.transformation.gemm_to_matmul as g2m

        saved = g2m.RemoveIdentityOps
        g2m.RemoveIdentityOps = ExactIdentityRemoval
        try:
            return g2m.GemmToMatMul().apply(model)
        finally:
            g2m.RemoveIdentityOps = saved


def canonicalize(model) -> tuple[object, dict[str, str]]:
    """Apply the rewrites above and qonnx' GemmToMatMul, FoldTransposeIntoQuantInit, FoldConstants,
    BatchNormToAffine, ExtractBiasFromConv, ConvertSubToAdd and SortCommutativeInputsInitializerLast.

    Returns (the canonical ModelWrapper, {node name: op type it had in the file} for renamed MAC nodes).
    """
    from qonnx.transformation.batchnorm_to_affine import BatchNormToAffine
    from qonnx.transformation.extract_conv_bias import ExtractBiasFromConv
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import ConvertSubToAdd, SortCommutativeInputsInitializerLast
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    origins: dict[str, str] = {n.name: n.op_type for n in model.graph.node if n.op_type == "Gemm"}
    for t in (GemmBiasExplicit(), KeepNodeNames(GemmToMatMulLinear(), origins), FoldTransposeIntoQuantInit(),
              FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "Mul", "Add"]),
              ConstantsToFloat64(("BatchNormalization",)), KeepNodeNames(BatchNormToAffine(), origins),
              KeepNodeNames(ExtractBiasFromConv(), origins), ConvertSubToAdd(),
              SortCommutativeInputsInitializerLast()):
        model = model.transform(t)
    return model, origins
