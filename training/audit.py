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
from a2qflow.hw.errors import A2QFlowError

META_KEY = "a2qflow"
MAC_OPS = ("Gemm", "MatMul", "Conv")
PASS_THROUGH = ("MaxPool", "Flatten", "Reshape", "Transpose", "Identity")


def quant_integers(w: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, bits: int, signed: bool,
                   narrow: bool, rounding_mode: str) -> np.ndarray:
    """The integers a QONNX Quant node produces from float `w` (before re-scaling), computed in float32 as qonnx
    does; raises if the result is not integral (which would mean a non-integer zero point)."""
    from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode

    y = np.asarray(w, dtype=np.float32) / np.asarray(scale, dtype=np.float32) + np.asarray(zero_point, np.float32)
    y = np.clip(y, min_int(signed, narrow, bits), max_int(signed, narrow, bits))
    y = resolve_rounding_mode(rounding_mode)(y) - np.asarray(zero_point, dtype=np.float32)
    if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
        raise A2QFlowError("Quant node output is not integral (non-integer zero point?)")
    return y.astype(np.int64)


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

    def quant_params(self, q) -> dict:
        return {"scale": self.const(q.input[1]), "zero_point": self.const(q.input[2]),
                "bits": int(self.const(q.input[3])), "signed": bool(self.attr(q, "signed", 1)),
                "narrow": bool(self.attr(q, "narrow", 0)), "rounding_mode": self.attr(q, "rounding_mode", "ROUND")}

    def input_quant(self, node) -> IntType | None:
        """Datatype of the Quant node that (through pooling / reshapes) feeds `node`'s data input."""
        t = node.input[0]
        while True:
            p = self.producer.get(t)
            if p is None:
                return None
            if p.op_type == "Quant":
                qp = self.quant_params(p)
                return IntType(qp["bits"], qp["signed"])
            if p.op_type not in PASS_THROUGH:
                return None
            t = p.input[0]


def weight_matrix(g: _Graph, mac, w: np.ndarray) -> np.ndarray:
    """(C, K) matrix of the dot products a Gemm / MatMul / Conv computes from its weight tensor."""
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


def audit_onnx(onnx_path: Path | str, raise_on_violation: bool = True) -> dict:
    """Check every layer's integer weights in the exported file against its target P (see module docstring).

    Returns the audit dict (what audit.json holds); with raise_on_violation, the first violated bound raises
    A2QFlowError naming layer, channel, L1 and bound.
    """
    import onnx

    path = Path(onnx_path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises several types for unreadable files
        raise A2QFlowError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    g = _Graph(model)
    meta = read_metadata(model) or {}
    by_weight = {d["onnx_weight"]: d for d in meta.get("layers", [])}
    layers, violations = [], []
    for i, found in enumerate(mac_layers(model)):
        mac, wname, q = found["node"], found["weight"], found["quant"]
        m = by_weight.get(wname, {})
        name = m.get("name") or mac.name or f"layer{i}"
        entry: dict = {"name": name, "onnx_weight": wname, "op": mac.op_type,
                       "weight_quant": m.get("weight_quant"), "target_acc_bits": m.get("target_acc_bits")}
        if q is None:
            entry.update(audited=False, note="float weights (no Quant node): nothing to audit")
            layers.append(entry)
            continue
        qp = g.quant_params(q)
        ints = weight_matrix(g, mac, quant_integers(g.init[wname], **qp))
        in_type = g.input_quant(mac)
        if in_type is None:
            entry.update(audited=False, note="input is not quantized: the accumulator range is unbounded")
            layers.append(entry)
            continue
        if m and (m.get("input_bits"), m.get("input_signed")) != (in_type.bits, in_type.signed):
            violations.append(f"{path}: layer {name}: metadata says {m.get('input_bits')}-bit "
                              f"{'signed' if m.get('input_signed') else 'unsigned'} inputs but the graph feeds "
                              f"{in_type}")
        l1 = l1_norms(ints)
        lo, hi = channel_ranges(ints, in_type)
        exact_c = np.array([signed_bits_for_range(a, b) for a, b in zip(lo, hi)], dtype=np.int64)
        entry.update(audited=True, K=int(ints.shape[1]), channels=int(ints.shape[0]), weight_bits=qp["bits"],
                     input_bits=in_type.bits, input_signed=in_type.signed, rounding_mode=qp["rounding_mode"],
                     weight_sparsity=float(np.mean(ints == 0)), l1=l1.tolist(), l1_max=int(l1.max()),
                     acc_min=int(lo.min()), acc_max=int(hi.max()),
                     acc_bits_exact=int(signed_bits_for_range(int(lo.min()), int(hi.max()))))
        if not ints.any():  # a dead end, not a width: say which layer and what to change
            from a2qflow.hw.compiler.plan import AllZeroLayerWarning, all_zero_message

            warnings.warn(all_zero_message(name, entry["target_acc_bits"]), AllZeroLayerWarning, stacklevel=2)
        P = entry["target_acc_bits"]
        if P is not None:
            from a2qflow.training.quant import l1_budget

            wq = entry["weight_quant"] or "a2q"
            bound = l1_budget(wq, int(P), in_type)
            margin = bound - l1
            entry.update(l1_bound=bound, l1_margin=float(margin.min()), l1_margin_per_channel=margin.tolist(),
                         acc_margin_bits=int(P) - entry["acc_bits_exact"])
            bad_l1 = np.flatnonzero(l1 > bound)
            bad_rng = np.flatnonzero(exact_c > int(P))
            entry["ok"] = not len(bad_l1) and not len(bad_rng)
            for c in bad_l1:
                violations.append(f"{path}: layer {name} channel {c}: ||q||_1 = {l1[c]} exceeds the {wq} bound "
                                  f"{bound:.4g} for P={P} with {in_type} inputs")
            for c in bad_rng:
                if c in bad_l1:
                    continue
                violations.append(f"{path}: layer {name} channel {c}: worst-case accumulator range "
                                  f"[{lo[c]}, {hi[c]}] needs {exact_c[c]} bits > target P={P}")
        layers.append(entry)
    report = {"model": str(path), "ok": not violations, "violations": violations, "layers": layers}
    if violations and raise_on_violation:
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise A2QFlowError(violations[0] + more)
    return report
