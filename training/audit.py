"""Audit an exported QONNX model: the integer weights the FILE carries must obey each layer's target P.

For every MAC layer (Gemm / MatMul / Conv whose weight comes through a Quant node) the audit decodes the
integers exactly as QONNX's Quant op does (clip, round per rounding_mode, minus zero point), takes the input
datatype from the Quant node feeding the layer, and checks per output channel
  - the A2Q bound   ||q||_1 <= (2^(P-1)-1) * 2^(s-N)   (a2q+: 2 (2^(P-1)-1) / (2^N-1)), and
  - the exact worst-case accumulator range [lo, hi] (hw.bounds.channel_ranges) fits a signed P-bit integer.
Layer names, presets and target P come from the model's "a2qflow" metadata (written by training.export).
A violated bound raises A2QFlowError naming layer, channel, L1 and bound: auditing the file rather than torch is
the point, since Brevitas' QONNX export has rewritten A2Q weights before (see training/export.py).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.bounds import channel_ranges, l1_norms, signed_bits_for_range
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.compiler.quant import QuantParams, decode_quant, decode_trunc
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import current_weight_quant

META_KEY = "a2qflow"
MAC_OPS = ("Gemm", "MatMul", "Conv")
PASS_THROUGH = ("MaxPool", "Flatten", "Reshape", "Transpose", "Identity")


def quant_integers(w: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, bits: int, signed: bool,
                   narrow: bool, rounding_mode: str) -> np.ndarray:
    """The integers a QONNX Quant node produces from float `w` (before re-scaling), computed in float32 as qonnx
    does (`hw.compiler.quant.QuantParams.integers`, the decoder the compiler uses too)."""
    qp = QuantParams(np.asarray(scale), np.asarray(zero_point), int(bits), bool(signed), bool(narrow),
                     str(rounding_mode).upper())
    return qp.integers(w, np.float32)


def read_metadata(model) -> dict | None:
    """The a2qflow metadata dict of an onnx.ModelProto, or None for a model exported elsewhere."""
    for p in model.metadata_props:
        if p.key == META_KEY:
            return json.loads(p.value)
    return None


class _Graph:
    """Small index over an ONNX graph: initializers by name, producers and consumers by tensor name."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.model = model
        self.init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def const(self, name: str) -> np.ndarray:
        if name in self.init:
            return self.init[name]
        n = self.producer.get(name)
        if n is not None and n.op_type == "Constant":
            from onnx import numpy_helper

            return numpy_helper.to_array(n.attribute[0].t)
        raise A2QFlowError(f"tensor {name!r} is not a constant")

    @staticmethod
    def attr(node, key: str, default=None):
        for a in node.attribute:
            if a.name == key:
                from onnx import helper

                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def quant(self, q) -> QuantParams:
        """The Quant node's parameters, decoded by the compiler's decoder (one-line error naming the node)."""
        def const(name: str):
            try:
                return self.const(name)
            except A2QFlowError:
                return None

        return decode_quant(q, const, lambda what: A2QFlowError(f"node '{q.name}' (op Quant): {what}"))

    def quant_params(self, q) -> dict:
        """`quant` as the keyword arguments of `quant_integers`."""
        return self.quant(q).as_kwargs()

    def input_quant(self, node) -> IntType | None:
        """Datatype of the Quant node that (through pooling / reshapes) feeds `node`'s data input."""
        t = node.input[0]
        while True:
            p = self.producer.get(t)
            if p is None:
                return None
            if p.op_type == "Quant":
                qp = self.quant(p)
                return IntType(qp.bits, qp.signed)
            if p.op_type == "Trunc":  # TruncAvgPool2d: integers of the Trunc's output width
                tp = decode_trunc(p, self.const, lambda what: A2QFlowError(f"node '{p.name}' (op Trunc): {what}"))
                return IntType(tp.bits, tp.signed)
            if p.op_type not in PASS_THROUGH:
                return None
            t = p.input[0]


def weight_matrix(g: _Graph, mac, w: np.ndarray) -> np.ndarray:
    """(C, K) matrix of the dot products a Gemm / MatMul / Conv computes from its weight tensor.

    A Conv's weight is (OC, IC / groups, *kernel) for 1-D and 2-D, grouped and depthwise convolutions alike, and
    output channel c sums exactly its own row over its group's IC / groups input channels: K = IC / groups *
    prod(kernel) per output channel (9 for a 3x3 depthwise conv), never IC * prod(kernel)."""
    if mac.op_type == "Conv":
        return w.reshape(w.shape[0], -1)
    if mac.op_type == "Gemm" and g.attr(mac, "transB", 0):
        return w
    return w.T


def mac_layers(model) -> list[dict]:
    """Every MAC layer in graph order: {node, weight (initializer name), quant (Quant node or None)}."""
    g = _Graph(model)
    out = []
    for n in model.graph.node:
        if n.op_type not in MAC_OPS or len(n.input) < 2:
            continue
        src, quant = n.input[1], None
        p = g.producer.get(src)
        if p is not None and p.op_type == "Quant":
            quant, src = p, p.input[0]
        if src in g.init:
            out.append({"node": n, "weight": src, "quant": quant})
    return out


def _load(path: Path):
    """The file through compile's checked loading (`hw.compiler.frontend.read_checked`: initializer sizes, an
    acyclic graph, supported ops, decodable Quant nodes, the metadata's fields), so audit and compile accept and
    refuse the same files. Returns (onnx ModelProto in canonical form, {node: op in the file}, metadata or None)."""
    from a2qflow.hw.compiler.frontend import read_checked

    model, origins, meta = read_checked(path)
    return model.model, origins, meta


def layer_name(meta_entry: dict, weight: str, node, index: int) -> str:
    """A layer's name: the metadata's, else its weight initializer's stem (Brevitas names it `<module>.weight`),
    else the node's name."""
    if meta_entry.get("name"):
        return str(meta_entry["name"])
    if weight.endswith(".weight") and len(weight) > len(".weight"):
        return weight[: -len(".weight")]
    return node.name or f"layer{index}"


def _resolve_targets(names: list[str], acc_bits: int | dict[str, int] | None, path: Path) -> dict[str, int]:
    """Per-layer target overrides: one int for every layer, or {layer name: P} (unknown names are errors)."""
    if acc_bits is None:
        return {}
    if isinstance(acc_bits, int):
        return {n: int(acc_bits) for n in names}
    unknown = sorted(set(acc_bits) - set(names))
    if unknown:
        raise A2QFlowError(f"{path}: --acc-bits names {unknown}, the model's layers are {names}")
    return {k: int(v) for k, v in acc_bits.items()}


def _bounds(entry: dict, ints: np.ndarray, in_type: IntType, w_type: IntType) -> tuple[np.ndarray, ...]:
    """Fill the entry's per-layer facts (K, N, M, L1, the three bounds); returns (l1, lo, hi, exact per channel)."""
    from a2qflow.hw.compiler.bounds import acc_bits_datatype, acc_bits_l1

    l1 = l1_norms(ints)
    lo, hi = channel_ranges(ints, in_type)
    exact_c = np.array([signed_bits_for_range(a, b) for a, b in zip(lo, hi)], dtype=np.int64)
    entry.update(audited=True, K=int(ints.shape[1]), channels=int(ints.shape[0]), weight_bits=w_type.bits,
                 input_bits=in_type.bits, input_signed=in_type.signed,
                 weight_sparsity=float(np.mean(ints == 0)), l1=l1.tolist(), l1_max=int(l1.max()),
                 acc_min=int(lo.min()), acc_max=int(hi.max()),
                 acc_bits_datatype=acc_bits_datatype(int(ints.shape[1]), in_type, w_type),
                 acc_bits_l1=acc_bits_l1(ints, in_type),
                 acc_bits_exact=int(signed_bits_for_range(int(lo.min()), int(hi.max()))))
    return l1, lo, hi, exact_c


def _check_target(entry: dict, facts: tuple, in_type: IntType, path: Path) -> list[str]:
    """Compare one layer with its target P: the A2Q / A2Q+ L1 bound and the exact range, per channel."""
    from a2qflow.training.quant import l1_budget

    l1, lo, hi, exact_c = facts
    P, name = entry["target_acc_bits"], entry["name"]
    wq = entry["weight_quant"] or "a2q"
    bound = l1_budget(wq, int(P), in_type)
    margin = bound - l1
    entry.update(l1_bound=bound, l1_margin=float(margin.min()), l1_margin_per_channel=margin.tolist(),
                 acc_margin_bits=int(P) - entry["acc_bits_exact"])
    bad_l1 = np.flatnonzero(l1 > bound)
    bad_rng = np.flatnonzero(exact_c > int(P))
    entry["ok"] = not len(bad_l1) and not len(bad_rng)
    out = [f"{path}: layer {name} channel {c}: ||q||_1 = {l1[c]} exceeds the {wq} bound {bound:.4g} for P={P} "
           f"with {in_type} inputs" for c in bad_l1]
    out += [f"{path}: layer {name} channel {c}: worst-case accumulator range [{lo[c]}, {hi[c]}] needs "
            f"{exact_c[c]} bits > target P={P}" for c in bad_rng if c not in bad_l1]
    return out


def _audit_layer(g: _Graph, found: dict, entry: dict, meta_entry: dict, path: Path) -> list[str]:
    """Decode one MAC layer's integers from the file, compute its bounds and check its target, if any."""
    mac, wname, q = found["node"], found["weight"], found["quant"]
    if q is None:
        entry.update(audited=False, note="float weights (no Quant node): nothing to audit")
        return []
    qp = g.quant(q)
    ints = weight_matrix(g, mac, qp.integers(g.init[wname], np.float32))
    in_type = g.input_quant(mac)
    entry["rounding_mode"] = qp.rounding
    if mac.op_type == "Conv":
        entry.update(groups=int(g.attr(mac, "group", 1)), kernel=[int(v) for v in g.init[wname].shape[2:]])
    if in_type is None:
        entry.update(audited=False, note="input is not quantized: the accumulator range is unbounded")
        return []
    out = []
    m = meta_entry
    if m and m.get("input_bits") is not None and (m.get("input_bits"), m.get("input_signed")) != (
            in_type.bits, in_type.signed):
        out.append(f"{path}: layer {entry['name']}: metadata says {m.get('input_bits')}-bit "
                   f"{'signed' if m.get('input_signed') else 'unsigned'} inputs but the graph feeds {in_type}")
    facts = _bounds(entry, ints, in_type, IntType(qp.bits, qp.signed))
    if not ints.any():  # a dead end, not a width: say which layer and what to change
        from a2qflow.hw.compiler.plan import AllZeroLayerWarning, all_zero_message

        warnings.warn(all_zero_message(entry["name"], entry["target_acc_bits"]), AllZeroLayerWarning, stacklevel=3)
    if entry["target_acc_bits"] is not None:
        out += _check_target(entry, facts, in_type, path)
    return out


def _unchecked_target(entry: dict, path: Path) -> list[str]:
    """A layer with a target P that cannot be audited (float weights, unquantized input) fails its target: the
    audit must not pass what it cannot check."""
    if entry.get("audited") or entry.get("target_acc_bits") is None:
        return []
    entry["ok"] = False
    return [f"{path}: layer {entry['name']}: target P={entry['target_acc_bits']} cannot be checked: "
            f"{entry.get('note', 'not audited')}"]


def audit_onnx(onnx_path: Path | str, raise_on_violation: bool = True,
               acc_bits: int | dict[str, int] | None = None) -> dict:
    """Check every layer's integer weights in the file against its target P (see the module docstring).

    Args:
        onnx_path: any QONNX file; a2qflow's metadata (names, presets, targets) is used when present.
        raise_on_violation: raise A2QFlowError on the first violated bound, naming layer, channel, L1 and bound.
        acc_bits: targets to check instead of the metadata's: one P for every layer, or {layer name: P}.
            Layers are named by the metadata, else by their weight initializer (`fc0.weight` -> `fc0`).

    Returns:
        The audit dict (what audit.json holds): ok, violations, exported_by_a2qflow, and per layer the name, K,
        N, M, L1 norms, the three bounds, the target and its margins.
    """
    path = Path(onnx_path)
    model, origins, meta = _load(path)
    g = _Graph(model)
    by_weight = {d["onnx_weight"]: d for d in (meta or {}).get("layers", [])}
    found_all = mac_layers(model)
    names = [layer_name(by_weight.get(f["weight"], {}), f["weight"], f["node"], i) for i, f in enumerate(found_all)]
    targets = _resolve_targets(names, acc_bits, path)
    layers, violations = [], []
    for name, found in zip(names, found_all):
        m = by_weight.get(found["weight"], {})
        op = origins.get(found["node"].name, found["node"].op_type)
        entry: dict = {"name": name, "onnx_weight": found["weight"], "op": op,
                       "weight_quant": current_weight_quant(m.get("weight_quant"),
                                                            f"{path}: metadata layer {name} weight_quant",
                                                            "re-export the model to update the file"),
                       "target_acc_bits": targets.get(name, m.get("target_acc_bits"))}
        violations += _audit_layer(g, found, entry, m, path)
        violations += _unchecked_target(entry, path)
        layers.append(entry)
    if acc_bits is not None and not any(l.get("audited") for l in layers):
        violations.append(f"{path}: --acc-bits asks for P={acc_bits} but the file has no quantized MAC layer "
                          "(Gemm / MatMul / Conv with Quant weights and a quantized input) to check")
    report = {"model": str(path), "ok": not violations, "violations": violations, "layers": layers,
              "exported_by_a2qflow": meta is not None}
    if violations and raise_on_violation:
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise A2QFlowError(violations[0] + more)
    return report
