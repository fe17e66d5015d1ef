"""The accumulator plan: per MAC layer, every bound and the width the hardware uses (BUILD/plan.json).

One source of truth: both backends and the report read widths and folding from here and never re-derive them.
The 32-bit baseline is the same plan with every acc_bits forced to 32 (same folding, same memories), so a
comparison isolates the accumulator.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from a2qflow.hw.compiler.bounds import acc_bits_datatype, acc_bits_exact, acc_bits_l1, channel_ranges, l1_norms
from a2qflow.hw.compiler.ir import Model, Thresholds
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.config import FoldingConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_text


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
                "layers": [asdict(l) for l in self.layers]}

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
        thr_bits = out_bits = out_signed = None
        if isinstance(layer.act, Thresholds):
            _, thr_bits = fit_thresholds(layer.act.values, w, layer.in_type, used)
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
            sparsity=float((w == 0).mean()), out_bits=out_bits, out_signed=out_signed, simd=simd, pe=pe))
    return plan


def save_plan(plan: Plan, build: Path | str) -> None:
    build = Path(build)
    atomic_write_json(build / "plan.json", plan.to_json())
    atomic_write_text(build / "plan.md", f"# Accumulator plan: {plan.model} ({plan.policy})\n\n" + plan.table())


def load_plan(build: Path | str) -> Plan:
    p = Path(build) / "plan.json"
    if not p.is_file():
        raise A2QFlowError(f"{build}: no plan.json; run `a2qflow compile MODEL.onnx --out {build}` first")
    d = json.loads(p.read_text())
    return Plan(model=d["model"], policy=d["policy"], layers=[LayerPlan(**l) for l in d["layers"]])
