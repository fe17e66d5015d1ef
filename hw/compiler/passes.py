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
sits exactly on a level boundary) and RemoveIdentityOps on its own (its tolerance drops a Mul by 1 +- 1e-5, e.g.
an untrained BatchNorm). GemmToMatMul still runs RemoveIdentityOps internally to drop its own alpha / beta Muls.
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


def bypass_identities(graph) -> int:
    """Remove every Identity node of an onnx GraphProto in one linear pass, wiring its consumers to its input.

    Why here and not qonnx' RemoveIdentityOps: qonnx removes one node per transformation step and re-runs shape
    inference and the graph clean-up after each, each of them linear or worse in the graph's size, so a file with N
    Identity nodes took O(N^2) or more (5.8 s at N = 50, 27 s at 200; benchmarks/compile_scaling.py). An Identity
    is a no-op, so removing it changes nothing the frontend lowers. An Identity whose output is a graph output
    renames its input tensor instead (the graph keeps its output name); one whose input is itself a graph input,
    an initializer or another graph output is kept. Returns the number of nodes removed."""
    outputs = {o.name for o in graph.output}
    fixed = outputs | {i.name for i in graph.input} | {i.name for i in graph.initializer}
    ids = [n for n in graph.node if n.op_type == "Identity" and len(n.input) == 1 and len(n.output) == 1
           and n.input[0] and n.output[0]]
    alias = {n.output[0]: n.input[0] for n in ids if n.output[0] not in outputs}

    def find(t: str) -> str:
        path = []
        while t in alias:
            path.append(t)
            t = alias[t]
        for p in path:  # path compression keeps the whole pass linear
            alias[p] = t
        return t

    rename: dict[str, str] = {}
    removed = {id(n) for n in ids if n.output[0] not in outputs}
    for n in ids:
        if n.output[0] not in outputs:
            continue
        src = find(n.input[0])
        if src in fixed or src in rename:
            n.input[0] = rename.get(src, src)
            continue
        rename[src] = n.output[0]
        removed.add(id(n))
    if not removed:
        return 0
    keep = [n for n in graph.node if id(n) not in removed]
    for n in keep:
        for i, t in enumerate(n.input):
            if t:
                r = find(t)
                n.input[i] = rename.get(r, r)
        for i, t in enumerate(n.output):
            if t in rename:
                n.output[i] = rename[t]
    gone = set(alias) | set(rename)
    vi = [v for v in graph.value_info if v.name not in gone]
    del graph.value_info[:]
    graph.value_info.extend(vi)
    del graph.node[:]
    graph.node.extend(keep)
    return len(removed)


def canonicalize(model) -> tuple[object, dict[str, str]]:
    """Apply the rewrites above and qonnx' GemmToMatMul, FoldTransposeIntoQuantInit, FoldConstants,
    BatchNormToAffine, ExtractBiasFromConv, ConvertSubToAdd and SortCommutativeInputsInitializerLast.

    Returns (the canonical ModelWrapper, {node name: op type it had in the file} for renamed MAC nodes).
    """
    from qonnx.transformation.batchnorm_to_affine import BatchNormToAffine
    from qonnx.transformation.extract_conv_bias import ExtractBiasFromConv
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.transformation.general import ConvertSubToAdd, SortCommutativeInputsInitializerLast
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    origins: dict[str, str] = {n.name: n.op_type for n in model.graph.node if n.op_type == "Gemm"}
    for t in (GemmBiasExplicit(), KeepNodeNames(GemmToMatMul(), origins), FoldTransposeIntoQuantInit(),
              FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "Mul", "Add"]),
              ConstantsToFloat64(("BatchNormalization",)), KeepNodeNames(BatchNormToAffine(), origins),
              KeepNodeNames(ExtractBiasFromConv(), origins), ConvertSubToAdd(),
              SortCommutativeInputsInitializerLast()):
        model = model.transform(t)
    return model, origins
