"""The accumulator plan: per MAC layer, every bound and the width the hardware uses (BUILD/plan.json).

One source of truth: both backends and the report read widths, folding and the threshold integers from here and
never re-derive them. The thresholds fitted to each layer's planned width (`fit_thresholds`) are computed once,
when the plan is made, and stored beside plan.json in plan.npz; `thr_bits` is their storage width. The golden
model (`reference.run`) fits them itself, independently, so a disagreement between the two is caught by the
bit-exactness checks. The 32-bit baseline is the same plan with every acc_bits forced to 32 (same folding, same
memories), so a comparison isolates the accumulator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from a2qflow.hw.compiler.bounds import (
    acc_bits_datatype,
    acc_bits_exact,
    acc_bits_l1,
    channel_ranges,
    l1_norms,
    signed_bits_for_range,
)
from a2qflow.hw.compiler.ir import Model, Thresholds
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.config import FoldingConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_npz, atomic_write_text


@dataclass
class LayerPlan:
    name: str
    kind: str  # dense | conv
    K: int
    out_channels: int
    input_bits: int
    input_signed: bool
    weight_bits: int
    acc_bits_datatype: int
    acc_bits_l1: int
    acc_bits_exact: int
    acc_bits: int  # what the hardware uses
    target_acc_bits: int | None  # the P the layer was trained for, if A2Q
    unsafe: bool  # acc_bits < acc_bits_exact (allowed only with an explicit flag)
    thr_bits: int | None  # threshold memory / comparator width (None: layer ends in the float affine)
    acc_min: int  # exact worst-case range over all inputs
    acc_max: int
    l1_max: int
    sparsity: float  # fraction of zero weights
    out_bits: int | None
    out_signed: bool | None
    simd: int
    pe: int
    # int64 (C, L) thresholds fitted to acc_bits (plan.npz, not plan.json); None when the layer ends in the affine
    thresholds: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "thresholds"}


@dataclass
class Plan:
    model: str
    policy: str  # "exact" or "forced:<P>"
    layers: list[LayerPlan] = field(default_factory=list)

    @property
    def unsafe(self) -> bool:
        return any(l.unsafe for l in self.layers)

    def acc_bits(self) -> dict[str, int]:
        return {l.name: l.acc_bits for l in self.layers}

    def layer(self, name: str) -> LayerPlan:
        for l in self.layers:
            if l.name == name:
                return l
        raise A2QFlowError(f"plan has no layer {name!r}; it has {[l.name for l in self.layers]}")

    def to_json(self) -> dict:
        return {"model": self.model, "policy": self.policy, "unsafe": self.unsafe,
                "layers": [l.to_json() for l in self.layers]}

    def table(self) -> str:
        """Markdown table for humans (BUILD/plan.md and the CLI)."""
        head = ("| layer | kind | K | C | N | M | datatype | L1 | exact | target | **used** | SIMD x PE | note |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
        rows = []
        for l in self.layers:
            n = f"{l.input_bits}{'s' if l.input_signed else 'u'}"
            note = "UNSAFE: below exact bound" if l.unsafe else ""
            rows.append(f"| {l.name} | {l.kind} | {l.K} | {l.out_channels} | {n} | {l.weight_bits} | "
                        f"{l.acc_bits_datatype} | {l.acc_bits_l1} | {l.acc_bits_exact} | "
                        f"{l.target_acc_bits if l.target_acc_bits is not None else '-'} | **{l.acc_bits}** | "
                        f"{l.simd} x {l.pe} | {note} |")
        return head + "\n".join(rows) + "\n"


def _largest_divisor_at_most(n: int, cap: int) -> int:
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


def make_plan(model: Model, acc_bits: int | None = None, allow_unsafe: bool = False,
              folding: FoldingConfig | None = None) -> Plan:
    """Compute every bound per MAC layer and choose acc_bits (exact by default, or forced to `acc_bits`).

    A forced width below a layer's exact bound raises unless allow_unsafe, and is then recorded as unsafe.
    Folding comes from `folding` (per-layer overrides); a requested SIMD / PE that does not divide K / C is an error
    naming the layer and the divisors that would work.
    """
    folding = folding or FoldingConfig()
    plan = Plan(model=model.name, policy="exact" if acc_bits is None else f"forced:{acc_bits}")
    for layer in model.mac_layers():
        w = layer.weight_matrix()
        exact = acc_bits_exact(w, layer.in_type)
        used = exact if acc_bits is None else int(acc_bits)
        unsafe = used < exact
        if unsafe and not allow_unsafe:
            raise A2QFlowError(f"layer {layer.name}: --acc-bits {used} is below its exact bound {exact}; it can "
                               "overflow. Pass --allow-unsafe to build it anyway (recorded as unsafe in plan.json)")
        lo, hi = channel_ranges(w, layer.in_type)
        thr_bits = out_bits = out_signed = fitted = None
        if isinstance(layer.act, Thresholds):
            fitted, thr_bits = fit_thresholds(layer.act.values, w, layer.in_type, used)
            out_bits, out_signed = layer.act.out_type.bits, layer.act.out_type.signed
        f = folding.for_layer(layer.name)
        K, C = layer.K, layer.out_channels
        if layer.name in folding.layers:
            if K % f.simd or C % f.pe:
                ok_s = [d for d in range(1, K + 1) if K % d == 0]
                ok_p = [d for d in range(1, C + 1) if C % d == 0]
                raise A2QFlowError(f"hw.folding.layers.{layer.name}: simd={f.simd} must divide K={K} "
                                   f"(one of {ok_s}) and pe={f.pe} must divide C={C} (one of {ok_p})")
            simd, pe = f.simd, f.pe
        else:  # the default is a cap: take the largest divisor that fits under it
            simd, pe = _largest_divisor_at_most(K, f.simd), _largest_divisor_at_most(C, f.pe)
        plan.layers.append(LayerPlan(
            name=layer.name, kind=layer.kind, K=K, out_channels=C, input_bits=layer.in_type.bits,
            input_signed=layer.in_type.signed, weight_bits=layer.w_type.bits,
            acc_bits_datatype=acc_bits_datatype(K, layer.in_type, layer.w_type),
            acc_bits_l1=acc_bits_l1(w, layer.in_type), acc_bits_exact=exact, acc_bits=used,
            target_acc_bits=layer.target_acc_bits, unsafe=unsafe, thr_bits=thr_bits,
            acc_min=int(lo.min()), acc_max=int(hi.max()), l1_max=int(l1_norms(w).max()),
            sparsity=float((w == 0).mean()), out_bits=out_bits, out_signed=out_signed, simd=simd, pe=pe,
            thresholds=fitted))
    return plan


def save_plan(plan: Plan, build: Path | str) -> None:
    """Write plan.npz (fitted thresholds), then plan.json and plan.md (readers check plan.json first)."""
    build = Path(build)
    atomic_write_npz(build / "plan.npz", {f"{l.name}/thresholds": l.thresholds.astype(np.int64)
                                          for l in plan.layers if l.thresholds is not None})
    atomic_write_json(build / "plan.json", plan.to_json())
    atomic_write_text(build / "plan.md", f"# Accumulator plan: {plan.model} ({plan.policy})\n\n" + plan.table())


def load_plan(build: Path | str) -> Plan:
    p = Path(build) / "plan.json"
    if not p.is_file():
        raise A2QFlowError(f"{build}: no plan.json; run `a2qflow compile MODEL.onnx --out {build}` first")
    d = json.loads(p.read_text())
    npz = Path(build) / "plan.npz"
    if not npz.is_file():
        raise A2QFlowError(f"{build}: plan.json has no plan.npz beside it (the fitted thresholds); re-run "
                           f"`a2qflow compile MODEL.onnx --out {build}`")
    with np.load(npz, allow_pickle=False) as arr:
        thr = {k.split("/")[0]: arr[k] for k in arr.files}
    layers = [LayerPlan(**l, thresholds=thr.get(l["name"])) for l in d["layers"]]
    for l in layers:
        _check_thresholds(l, npz)
    return Plan(model=d["model"], policy=d["policy"], layers=layers)


def _check_thresholds(l: LayerPlan, npz: Path) -> None:
    """plan.json's thr_bits must be exactly the width plan.npz's thresholds need at the planned acc_bits."""
    if (l.thr_bits is None) != (l.thresholds is None):
        raise A2QFlowError(f"{npz}: layer {l.name}: thresholds do not match plan.json (thr_bits={l.thr_bits}); "
                           f"re-run `a2qflow compile`")
    if l.thresholds is None:
        return
    t = l.thresholds
    need = max(l.acc_bits, signed_bits_for_range(int(t.min()), int(t.max()))) if t.size else l.acc_bits
    if need != l.thr_bits:
        raise A2QFlowError(f"plan.json layer {l.name}: thr_bits={l.thr_bits} but its thresholds in plan.npz at "
                           f"acc_bits={l.acc_bits} need {need}; re-run `a2qflow compile`")
