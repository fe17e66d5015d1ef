"""The accumulator plan: per MAC layer, every bound and the width the hardware uses (BUILD/plan.json).

One source of truth: both backends and the report read widths, folding and the threshold integers from here and
never re-derive them. The thresholds fitted to each layer's planned width (`fit_thresholds`) are computed once,
when the plan is made, and stored beside plan.json in plan.npz; `thr_bits` is their storage width. The golden
model (`reference.run`) fits them itself, independently, so a disagreement between the two is caught by the
bit-exactness checks. The 32-bit design is the same plan with every acc_bits forced to 32 (same folding, same
memories), so a comparison isolates the accumulator.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from a2qflow.hw import markdown
from a2qflow.hw.compiler import dsp as dsp_packing
from a2qflow.hw.compiler.bounds import (
    ACC_BITS_MAX,
    ACC_BITS_MIN,
    ACC_BITS_RANGE,
    acc_bits_datatype,
    acc_bits_exact,
    acc_bits_l1,
    channel_ranges,
    l1_norms,
    signed_bits_for_range,
)
from a2qflow.hw.compiler.csd import csd_count
from a2qflow.hw.compiler.folding import apply_target, choose_folding, layer_architecture
from a2qflow.hw.compiler.ir import Model, Thresholds, load_model
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.config import ArchitectureConfig, DspConfig, FoldingConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_npz, atomic_write_text

# Model, layer and policy names end up in generated C++, Verilog and Tcl (comments, identifiers): no white space,
# quotes, brackets, braces or backslashes (a backslash ends a // comment's line into the next one).
SAFE_NAME = r"[A-Za-z0-9_.:+-]+"


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
    architecture: str = "folded"  # folded (MVAU, weights in memories) | unrolled (constant weights in logic)
    pipeline_depth: int = 0  # unrolled: register stages inside the adder trees (0: one register per layer)
    nonzero_weights: int | None = None
    signed_digits: int | None = None  # nonzero CSD digits of the weights: the unrolled datapath's adder inputs
    # unrolled: "exact" (each adder its exact range, capped at acc_bits; the exact policy) | "acc_bits" (every adder
    # acc_bits wide: a forced or data-type width is a plain P-bit datapath, as the 32-bit and data-type
    # designs are)
    tree_widths: str = "exact"
    # lanes per DSP slice (hw.dsp.packing auto, hw/compiler/dsp.py): dsp_lanes output channels share one multiplier
    # and one dsp_lanes*acc_bits accumulator; 1 is one lane per multiplier. dsp_proof says which bound permits it.
    dsp_lanes: int = 1
    dsp_family: str | None = None
    dsp_proof: str | None = None
    # DSP slices the packed multipliers take (ceil(PE / dsp_lanes) * SIMD; 0 unpacked: one-lane multipliers are
    # left to the synthesis tool). With hw.dsp.max_slices the plan chooses which layers get them. None: a plan
    # written before the field existed (not re-checked).
    dsp_slices: int | None = None
    # int64 (C, L) thresholds fitted to acc_bits (plan.npz, not plan.json); None when the layer ends in the affine
    thresholds: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "thresholds"}


@dataclass
class Plan:
    model: str
    policy: str  # "exact" or "forced:<P>"
    layers: list[LayerPlan] = field(default_factory=list)
    ir_digest: str | None = None  # sha256 of the ir.json + ir.npz this plan was made from (set by save_plan)
    npz_digest: str | None = None  # sha256 of plan.npz (the fitted thresholds) written beside it (set by save_plan)
    warnings: list[str] = field(default_factory=list)  # one line each, printed by `a2qflow compile`
    notes: list[str] = field(default_factory=list)  # what the compiler did on purpose (e.g. a dropped Softmax)

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
        return {"model": self.model, "policy": self.policy, "unsafe": self.unsafe, "ir_digest": self.ir_digest,
                "npz_digest": self.npz_digest, "layers": [l.to_json() for l in self.layers],
                "warnings": list(self.warnings), "notes": list(self.notes)}

    def table(self) -> str:
        """Markdown table for humans (BUILD/plan.md and the CLI)."""
        rows = []
        for l in self.layers:
            note = "UNSAFE: below exact bound" if l.unsafe else ""
            if l.dsp_lanes > 1:
                note += f"{'; ' if note else ''}{l.dsp_lanes} lanes / {l.dsp_family}"
            rows.append([l.name, l.kind, l.K, l.out_channels, f"{l.input_bits}{'s' if l.input_signed else 'u'}",
                         l.weight_bits, l.acc_bits_datatype, l.acc_bits_l1, l.acc_bits_exact,
                         l.target_acc_bits if l.target_acc_bits is not None else "-", f"**{l.acc_bits}**",
                         f"{l.simd} x {l.pe}" if l.architecture == "folded" else "unrolled", note])
        return "\n".join(markdown.table(["layer", "kind", "K", "C", "N", "M", "datatype", "L1", "exact", "target",
                                          "**used**", "SIMD x PE", "note"], "llrrrrrrrrrll", rows)) + "\n"


class AllZeroLayerWarning(UserWarning):
    """A trained MAC layer whose integer weights are all zero: it computes nothing (its output is constant)."""


def all_zero_message(name: str, target: int | None) -> str:
    """The one wording of the all-zero warning (compiler plan and training audit)."""
    p = f"P={target}" if target is not None else "its accumulator target"
    return (f"layer {name}: every integer weight is 0 (the layer outputs a constant); {p} left it no L1 budget or "
            "training stopped too early: train with a larger P (quant.acc_bits) or more epochs (train.epochs)")


def _pipeline_depth(w: np.ndarray, arch: ArchitectureConfig) -> int:
    """Register stages inside an unrolled layer's adder trees: the configured depth, or with pipeline_levels one
    stage per that many levels of the deepest tree (a channel sums its weights' signed-digit terms in a binary
    tree of ceil(log2(terms)) levels, the comparators add one), as FINN / hls4ml pipeline every few adders."""
    if not arch.pipeline_levels:
        return arch.pipeline_depth
    terms = max((csd_count(row) for row in np.asarray(w)), default=1)
    levels = max(1, int(np.ceil(np.log2(max(terms, 1)))) + 1)
    return min(16, max(0, -(-levels // arch.pipeline_levels) - 1))


def make_plan(model: Model, acc_bits: int | str | None = None, allow_unsafe: bool = False,
              folding: FoldingConfig | None = None, architecture: ArchitectureConfig | None = None,
              dsp: DspConfig | None = None) -> Plan:
    """Compute every bound per MAC layer and choose acc_bits (exact by default, forced to `acc_bits`, or each layer's
    data-type bound with acc_bits="datatype").

    A forced width below a layer's exact bound raises unless allow_unsafe, and is then recorded as unsafe.
    Folding comes from `folding` (per-layer overrides); a requested SIMD / PE that does not divide K / C is an error
    naming the layer and the divisors that would work. `architecture` picks folded / unrolled per layer and the
    unrolled layers' pipeline depth (recorded in plan.json; an unrolled layer computes SIMD = K x PE = C at once).
    `dsp` (hw.dsp) with packing auto gives each folded dense / conv layer the lanes per DSP its width allows
    (set_dsp_lanes).
    """
    folding = folding or FoldingConfig()
    architecture = architecture or ArchitectureConfig()
    if folding.target_cycles is not None:  # the folding solver (hw/compiler/folding.py) for layers without override
        unrolled = {l.name for l in model.mac_layers()
                    if layer_architecture(l.name, l.kind, FoldingConfig(), architecture) == "unrolled"}
        folding = apply_target(model, folding, unrolled)
    _check_layer_names(model, folding, architecture)
    datatype = acc_bits == "datatype"  # every layer at its data-type bound: the width a designer without A2Q picks
    plan = Plan(model=model.name, policy="exact" if acc_bits is None else
                ("datatype" if datatype else f"forced:{acc_bits}"), warnings=list(model.warnings),
                notes=list(model.notes))
    for layer in model.mac_layers():
        plan.layers.append(_layer_plan(layer, acc_bits, allow_unsafe, folding, architecture))
    if dsp is not None and dsp.packing == "auto":
        set_dsp_lanes(model, plan, dsp.family, dsp.max_slices)
    return plan


def _check_layer_names(model: Model, folding: FoldingConfig, architecture: ArchitectureConfig) -> None:
    """Every per-layer folding / architecture override names a MAC layer of the model."""
    names = [l.name for l in model.mac_layers()]
    unknown = [n for n in folding.layers if n not in names]
    if unknown:
        raise A2QFlowError(f"hw.folding.layers.{unknown[0]}: the model has no MAC layer {unknown[0]!r}; its layers "
                           f"are {', '.join(names)}")
    for name in architecture.layers:
        if name not in names:
            raise A2QFlowError(f"hw.layers.{name}: the model has no MAC layer named {name!r}; MAC layers are {names}")


def _used_width(layer, exact: int, acc_bits: int | str | None, allow_unsafe: bool) -> int:
    """The width the hardware uses: the exact bound (at least ACC_BITS_MIN), the data-type bound, or the forced one
    (below the exact bound only with allow_unsafe)."""
    used = max(exact, ACC_BITS_MIN) if acc_bits is None else (
        acc_bits_datatype(layer.K, layer.in_type, layer.w_type) if acc_bits == "datatype" else int(acc_bits))
    if used not in ACC_BITS_RANGE:
        raise A2QFlowError(f"--acc-bits {used}: must be between {ACC_BITS_MIN} and {ACC_BITS_MAX}")
    if used < exact and not allow_unsafe:
        raise A2QFlowError(f"layer {layer.name}: --acc-bits {used} is below its exact bound {exact}; it can "
                           "overflow. Pass --allow-unsafe to build it anyway (recorded as unsafe in plan.json)")
    return used


def _layer_plan(layer, acc_bits: int | str | None, allow_unsafe: bool, folding: FoldingConfig,
                architecture: ArchitectureConfig) -> LayerPlan:
    """One MAC layer's record: every bound, the width used, its thresholds fitted to it, folding and datapath."""
    w = layer.weight_matrix()
    exact = acc_bits_exact(w, layer.in_type)
    if not w.any():  # stacklevel 3: the warning points at make_plan's caller
        warnings.warn(all_zero_message(layer.name, layer.target_acc_bits), AllZeroLayerWarning, stacklevel=3)
    used = _used_width(layer, exact, acc_bits, allow_unsafe)
    lo, hi = channel_ranges(w, layer.in_type)
    thr_bits = out_bits = out_signed = fitted = None
    if isinstance(layer.act, Thresholds):
        fitted, thr_bits = fit_thresholds(layer.act.values, w, layer.in_type, used)
        out_bits, out_signed = layer.act.out_type.bits, layer.act.out_type.signed
    K = layer.K
    arch, simd, pe = choose_folding(layer.name, layer.kind, K, layer.out_channels, folding, architecture)
    return LayerPlan(
        name=layer.name, kind=layer.kind, K=K, out_channels=layer.out_channels, input_bits=layer.in_type.bits,
        input_signed=layer.in_type.signed, weight_bits=layer.w_type.bits,
        acc_bits_datatype=acc_bits_datatype(K, layer.in_type, layer.w_type),
        acc_bits_l1=acc_bits_l1(w, layer.in_type), acc_bits_exact=exact, acc_bits=used,
        target_acc_bits=layer.target_acc_bits, unsafe=used < exact, thr_bits=thr_bits,
        acc_min=int(lo.min()), acc_max=int(hi.max()), l1_max=int(l1_norms(w).max()),
        sparsity=float((w == 0).mean()), out_bits=out_bits, out_signed=out_signed, simd=simd, pe=pe,
        architecture=arch, pipeline_depth=_pipeline_depth(w, architecture) if arch == "unrolled" else 0,
        nonzero_weights=int((w != 0).sum()), signed_digits=csd_count(w),
        tree_widths="exact" if acc_bits is None else "acc_bits", dsp_slices=0,
        thresholds=fitted)


PACKABLE_KINDS = ("dense", "conv")  # channels that share each input (a depthwise channel reads its own input)


def set_dsp_lanes(model: Model, plan: Plan, family: str, max_slices: int | None = None) -> None:
    """Record per folded dense / conv layer the lanes per `family` DSP its planned width allows, with the proof.

    Why here: the lanes are a function of the proven width (an A2Q guarantee), so they belong in the one plan the
    backends build from, and load_build re-checks them from the integer weights like every width. With
    `max_slices` (hw.dsp.max_slices: a part's DSP count) only the layers dsp.choose_for_slices picks are packed
    onto slices; the others keep one lane per multiplier, in logic, and their proof line says why.
    """
    fam = dsp_packing.family(family)
    cands = []
    for layer, lp in zip(model.mac_layers(), plan.layers):
        if lp.architecture != "folded" or lp.kind not in PACKABLE_KINDS:
            continue
        lanes, proof = dsp_packing.layer_lanes(layer.weight_matrix(), layer.in_type, lp.weight_bits, lp.acc_bits,
                                               fam, lp.pe)
        lp.dsp_lanes, lp.dsp_family, lp.dsp_proof = lanes, fam.name, proof
        lp.dsp_slices = dsp_packing.slices(lp.pe, lp.simd, lanes) if lanes > 1 else 0
        if lanes > 1:
            cands.append(dsp_packing.DspCandidate(lp.name, lanes, lp.dsp_slices, lp.pe * lp.simd))
    chosen = dsp_packing.choose_for_slices(cands, max_slices)
    for c in cands:
        if c.name not in chosen:
            lp = plan.layer(c.name)
            lp.dsp_proof = (f"{fam.name}: 1 lane ({c.lanes} would fit, but hw.dsp.max_slices={max_slices} slices "
                            f"went to {', '.join(chosen) or 'no layer'}; this layer's MACs stay in logic)")
            lp.dsp_lanes, lp.dsp_slices = 1, 0
    if max_slices is not None and cands:
        used = sum(plan.layer(n).dsp_slices for n in chosen)
        plan.notes.append(f"hw.dsp.max_slices={max_slices}: {used} {fam.name} slices to "
                          f"{', '.join(chosen) or 'no layer'} (most lanes per slice first, then most MACs)")


def _file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def ir_digest(build: Path | str) -> str:
    """sha256 over BUILD/ir.json and BUILD/ir.npz: ties a plan to the exact integer weights it was computed from."""
    build = Path(build)
    h = hashlib.sha256()
    for name in ("ir.json", "ir.npz"):
        p = build / name
        if not p.is_file():
            raise A2QFlowError(f"{build}: no {name}; run `a2qflow compile MODEL.onnx --out {build}` first")
        h.update(name.encode() + b"\0")
        h.update(p.read_bytes())
    return "sha256:" + h.hexdigest()


def save_plan(plan: Plan, build: Path | str) -> None:
    """Write plan.npz (fitted thresholds), then plan.json and plan.md (readers check plan.json first).

    The IR (save_model) must be in `build` already: plan.json records the digests of ir.json + ir.npz and of
    plan.npz, so a backend can tell that the three belong together (load_build)."""
    build = Path(build)
    plan.ir_digest = ir_digest(build)
    atomic_write_npz(build / "plan.npz", {f"{l.name}/thresholds": l.thresholds.astype(np.int64)
                                          for l in plan.layers if l.thresholds is not None})
    plan.npz_digest = _file_digest(build / "plan.npz")
    atomic_write_json(build / "plan.json", plan.to_json())
    notes = "".join(f"\nNote: {n}\n" for n in plan.notes)
    atomic_write_text(build / "plan.md", f"# Accumulator plan: {plan.model} ({plan.policy})\n\n" + plan.table() + notes)


def load_plan(build: Path | str, check_thresholds: bool = True) -> Plan:
    p = Path(build) / "plan.json"
    if not p.is_file():
        raise A2QFlowError(f"{build}: no plan.json; run `a2qflow compile MODEL.onnx --out {build}` first")
    try:
        d = json.loads(p.read_text())
        layers_json = [dict(l) for l in d["layers"]]
        digests = d.get("ir_digest"), d.get("npz_digest")
        model_name, policy = d["model"], d["policy"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise A2QFlowError(f"{p}: not a plan written by `a2qflow compile` ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:120] if str(e) else ''}); re-run `a2qflow compile`") from None
    npz = Path(build) / "plan.npz"
    if not npz.is_file():
        raise A2QFlowError(f"{build}: plan.json has no plan.npz beside it (the fitted thresholds); re-run "
                           f"`a2qflow compile MODEL.onnx --out {build}`")
    with np.load(npz, allow_pickle=False) as arr:
        thr = {k.split("/")[0]: arr[k] for k in arr.files}
    try:
        layers = [LayerPlan(**l, thresholds=thr.get(l["name"])) for l in layers_json]
    except (TypeError, KeyError) as e:
        raise A2QFlowError(f"{p}: a layer entry is not what `a2qflow compile` writes ({e}); re-run "
                           "`a2qflow compile`") from None
    for l in layers if check_thresholds else ():
        _check_thresholds(l, npz)
    return Plan(model=model_name, policy=policy, layers=layers, ir_digest=digests[0], npz_digest=digests[1],
                warnings=[str(w) for w in d.get("warnings", [])], notes=[str(n) for n in d.get("notes", [])])


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


def load_build(build: Path | str) -> tuple[Model, Plan]:
    """The IR and plan of a BUILD, checked to belong together and to be safe: what every backend builds from.

    Why: plan.json is a text file anyone can edit, and the project's promise is a proof for every accumulator width.
    So the backends never trust it as written: the plan must carry the digest of this ir.json + ir.npz, list the
    IR's MAC layers with their K and C, keep each width in ACC_BITS_RANGE, and no width may be below the exact
    bound recomputed here from the IR's integer weights unless the plan records it as unsafe (made by
    `compile --allow-unsafe`). Every failure is one line naming the file, the layer and the fix.
    """
    build = Path(build)
    missing = [n for n in ("plan.json", "ir.json", "ir.npz") if not (build / n).is_file()]
    if missing:
        raise A2QFlowError(f"{build}: no {' / '.join(missing)} here; run `a2qflow compile MODEL.onnx --out {build}` "
                           "first")
    try:
        model = load_model(build)
    except A2QFlowError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged ir.json / ir.npz is a user-facing error, not a traceback
        raise A2QFlowError(f"{build}/ir.json + ir.npz: unreadable ({type(e).__name__}); re-run `a2qflow compile`") \
            from None
    plan = load_plan(build, check_thresholds=False)  # widths first: the message then names the real fault
    recompile = f"re-run `a2qflow compile MODEL.onnx --out {build}`"
    for what, name in [("model name", model.name), ("policy", plan.policy),
                       *(("layer name", l.name) for l in model.layers)]:
        if not re.fullmatch(SAFE_NAME, str(name)):  # names are written into C++, Verilog and Tcl comments
            raise A2QFlowError(f"{build}: {what} {str(name)[:60]!r} has characters outside {SAFE_NAME} (generated "
                               f"code would carry them); {recompile}")
    if plan.ir_digest is None or plan.npz_digest is None:
        raise A2QFlowError(f"{build}/plan.json: records no ir_digest / npz_digest (written by an older a2qflow); "
                           f"{recompile}")
    actual = ir_digest(build)
    if plan.ir_digest != actual:
        raise A2QFlowError(f"{build}/plan.json was made from a different IR than {build}/ir.json + ir.npz "
                           f"(ir_digest {plan.ir_digest[:19]}... vs {actual[:19]}...): one of them was edited or "
                           f"replaced; {recompile}")
    actual = _file_digest(build / "plan.npz")
    if plan.npz_digest != actual:
        raise A2QFlowError(f"{build}/plan.npz is not the one {build}/plan.json was written with (npz_digest "
                           f"{plan.npz_digest[:19]}... vs {actual[:19]}...): it was edited or replaced; {recompile}")
    check_layers(model, plan, build)
    for lp in plan.layers:
        _check_thresholds(lp, build / "plan.npz")
    return model, plan


def check_layers(model: Model, plan: Plan, build: Path) -> None:
    """Plan layers match the IR's MAC layers; widths in range and not below the recomputed exact bound."""
    macs = model.mac_layers()
    names = [l.name for l in macs]
    if [l.name for l in plan.layers] != names:
        raise A2QFlowError(f"{build}/plan.json lists layers {[l.name for l in plan.layers]} but ir.json has MAC layers "
                           f"{names}; re-run `a2qflow compile` so both come from the same model")
    for layer, lp in zip(macs, plan.layers):
        where = f"{build}/plan.json: layer {lp.name}"
        if lp.K != layer.K or lp.out_channels != layer.out_channels or lp.kind != layer.kind:
            raise A2QFlowError(f"{where} has K={lp.K}, C={lp.out_channels} ({lp.kind}) but the IR says K={layer.K}, "
                               f"C={layer.out_channels} ({layer.kind}); re-run `a2qflow compile`")
        if lp.architecture == "unrolled" and layer.kind not in ("dense", "conv"):
            raise A2QFlowError(f"{where}: architecture unrolled is implemented for dense and conv layers only; "
                               "re-run `a2qflow compile`")
        if lp.architecture == "unrolled" and (lp.simd, lp.pe) != (lp.K, lp.out_channels):
            raise A2QFlowError(f"{where}: an unrolled layer must have SIMD = K = {lp.K} and PE = C = "
                               f"{lp.out_channels} (has {lp.simd} x {lp.pe}); re-run `a2qflow compile`")
        if lp.simd < 1 or lp.pe < 1 or layer.K % lp.simd or layer.out_channels % lp.pe:
            raise A2QFlowError(f"{where}: simd={lp.simd} must divide K={layer.K} and pe={lp.pe} must divide "
                               f"C={layer.out_channels}")
        if not isinstance(lp.acc_bits, int) or isinstance(lp.acc_bits, bool) or lp.acc_bits not in ACC_BITS_RANGE:
            raise A2QFlowError(f"{where}: acc_bits={lp.acc_bits!r} is outside {ACC_BITS_MIN}..{ACC_BITS_MAX}; "
                               "re-run `a2qflow compile`")
        exact = acc_bits_exact(layer.weight_matrix(), layer.in_type)
        if lp.acc_bits < exact and lp.unsafe is not True:
            raise A2QFlowError(f"{where}: acc_bits={lp.acc_bits} is below the exact bound {exact} recomputed from "
                               f"ir.npz, and the plan does not record it as unsafe; re-run `a2qflow compile` (add "
                               "--acc-bits P --allow-unsafe to build an unsafe width on purpose)")
        if lp.acc_bits_exact != exact:
            raise A2QFlowError(f"{where}: acc_bits_exact={lp.acc_bits_exact} but the IR's weights need {exact}; "
                               "re-run `a2qflow compile`")
        _check_dsp_lanes(layer, lp, where)


def _check_dsp_lanes(layer, lp: LayerPlan, where: str) -> None:
    """dsp_lanes > 1 only on a folded dense / conv layer, and no more lanes than its integer weights allow."""
    if not isinstance(lp.dsp_lanes, int) or isinstance(lp.dsp_lanes, bool) or lp.dsp_lanes < 1:
        raise A2QFlowError(f"{where}: dsp_lanes={lp.dsp_lanes!r} must be a positive integer; re-run `a2qflow compile`")
    if lp.dsp_lanes == 1:
        _check_dsp_slices(lp, where)
        return
    if lp.architecture != "folded" or lp.kind not in PACKABLE_KINDS or lp.dsp_lanes > lp.pe:
        raise A2QFlowError(f"{where}: dsp_lanes={lp.dsp_lanes} needs a folded dense / conv layer with PE >= lanes "
                           f"(it is {lp.architecture} {lp.kind}, PE {lp.pe}); re-run `a2qflow compile`")
    if lp.dsp_family not in dsp_packing.FAMILIES:
        raise A2QFlowError(f"{where}: dsp_family={lp.dsp_family!r} is not one of {', '.join(dsp_packing.FAMILIES)}; "
                           "re-run `a2qflow compile`")
    fam = dsp_packing.FAMILIES[lp.dsp_family]
    w = layer.weight_matrix()
    fit = dsp_packing.lanes_that_fit(fam, lp.acc_bits, dsp_packing.weight_operand_bits(lp.weight_bits, w),
                                     layer.in_type)
    if lp.dsp_lanes > fit:
        raise A2QFlowError(f"{where}: dsp_lanes={lp.dsp_lanes} but {fit} lane(s) of {lp.acc_bits} bits fit a "
                           f"{fam.name} with these weights; re-run `a2qflow compile`")
    _check_dsp_slices(lp, where)


def _check_dsp_slices(lp: LayerPlan, where: str) -> None:
    """dsp_slices must be what the lanes take (ceil(PE / lanes) * SIMD packed, 0 unpacked); None: an older plan."""
    want = dsp_packing.slices(lp.pe, lp.simd, lp.dsp_lanes) if lp.dsp_lanes > 1 else 0
    if lp.dsp_slices is not None and lp.dsp_slices != want:
        raise A2QFlowError(f"{where}: dsp_slices={lp.dsp_slices!r} but {lp.dsp_lanes} lane(s) at SIMD {lp.simd} x "
                           f"PE {lp.pe} take {want}; re-run `a2qflow compile`")
