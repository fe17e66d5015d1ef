"""Run report: report.md + report.json + PNG plots from whatever the flow's stages wrote.

Reads RUN/train/{metrics,audit}.json, BUILD/plan.json, BUILD/csim/csim.json, BUILD/rtlsim/rtlsim.json,
BUILD/synth/resources.json, BUILD/bitstream/bitstream.json (and BUILD/vitis/vitis.json). A stage that did not
run is reported as "not run" — the report never fills a gap with a guess — and every figure names the tool that
measured it. report.json names the BUILD and training folders relative to its own folder (`../build`, with
`"paths": "relative"`), so a moved run folder's report still names its own build; earlier reports hold them as
given on the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2qflow.flows.results import PATHS_RELATIVE, RunReport
from a2qflow.hw import markdown
from a2qflow.hw.compiler.plan import Plan, load_plan
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_text
from a2qflow.hw.results import BitstreamSummary, CsimSummary, RtlsimSummary, SynthResources, VitisSummary
from a2qflow.training.results import AuditReport, TrainingMetrics

NOT_RUN = "not run"

# What the training presets do (training/quant.py); used when metrics.json does not say it itself.
QUANT_CARD = {
    "a2q": {"granularity": "per-channel", "rounding": "round toward zero (keeps the L1 bound)",
            "scheme": "Brevitas Int8AccumulatorAwareWeightQuant (weight norm, L1 clamped to the P budget)"},
    "a2q+": {"granularity": "per-channel", "rounding": "round toward zero (keeps the L1 bound)",
             "scheme": "Brevitas Int8AccumulatorAwareZeroCenterWeightQuant (zero-centred, ~2x the A2Q L1 budget)"},
    "unconstrained": {"granularity": "per-channel", "rounding": "round half to even",
                 "scheme": "Brevitas Int8WeightPerChannelFloat, no accumulator constraint"},
    "float": {"granularity": "-", "rounding": "-", "scheme": "float (not quantized)"},
}


@dataclass
class Layout:
    """Where a run's artefacts live. A RUN folder has train/ and build/; a bare BUILD folder works too."""

    build: Path
    train: Path | None
    out: Path

    @staticmethod
    def find(path: Path | str, train: Path | str | None = None, out: Path | str | None = None) -> "Layout":
        p = Path(path)
        if (p / "build" / "plan.json").is_file() or ((p / "build").is_dir() and not (p / "plan.json").is_file()):
            build, run = p / "build", p
        elif (p / "plan.json").is_file():
            build, run = p, p.parent
        else:
            raise A2QFlowError(f"{p}: neither a RUN folder (with build/plan.json) nor a BUILD folder (with "
                               "plan.json); run `a2qflow run CONFIG.yaml --out RUN` or `a2qflow compile` first")
        tr = Path(train) if train else (run / "train" if (run / "train").is_dir() else None)
        if train and not (Path(train) / "metrics.json").is_file():
            raise A2QFlowError(f"--train {train}: no metrics.json there; pass the folder `a2qflow train` wrote")
        return Layout(build=build, train=tr, out=Path(out) if out else run / "report")


@dataclass
class Inputs:
    """Every stage result a report reads, typed; None where the stage did not run."""

    metrics: TrainingMetrics | None
    audit: AuditReport | None
    plan: Plan | None
    csim: CsimSummary | None
    rtlsim: RtlsimSummary | None
    resources: SynthResources | None
    bitstream: BitstreamSummary | None
    vitis: VitisSummary | None

    @staticmethod
    def read(lay: Layout) -> "Inputs":
        t, b = lay.train, lay.build
        return Inputs(
            metrics=TrainingMetrics.read(t / "metrics.json") if t else None,
            audit=AuditReport.read(t / "audit.json") if t else None,
            plan=load_plan(b) if (b / "plan.json").is_file() else None,
            csim=CsimSummary.read(b / "csim" / "csim.json"),
            rtlsim=RtlsimSummary.read(b / "rtlsim" / "rtlsim.json"),
            resources=SynthResources.read(b / "synth" / "resources.json"),
            bitstream=BitstreamSummary.read(b / "bitstream" / "bitstream.json"),
            vitis=VitisSummary.read(b / "vitis" / "vitis.json"))

    def found(self) -> dict[str, str]:
        names = {"metrics": "metrics.json", "audit": "audit.json", "plan": "plan.json", "csim": "csim.json",
                 "rtlsim": "rtlsim.json", "resources": "resources.json", "bitstream": "bitstream.json",
                 "vitis": "vitis.json"}
        return {f: ("found" if getattr(self, k) is not None else NOT_RUN) for k, f in names.items()}


def _pct(x: float | None) -> str:
    return NOT_RUN if x is None else f"{100 * x:.2f} %"


def _training_tool(m: TrainingMetrics, what: str) -> str:
    tools = (m.model_extra or {}).get("tools") or {}
    return f"{what} ({', '.join(f'{k} {v}' for k, v in tools.items())})" if tools else what


# ------------------------------------------------------------------------------------------------- sections

def _accuracy(i: Inputs) -> dict:
    m, cs, rs = i.metrics, i.csim, i.rtlsim
    acc: dict[str, Any] = {}
    acc["float"] = ({"value": m.float_test_accuracy, "tool": _training_tool(m, "PyTorch (float twin)")}
                    if m and m.float_test_accuracy is not None else NOT_RUN)
    acc["quantized (torch)"] = ({"value": m.test_accuracy, "tool": _training_tool(m, "PyTorch + Brevitas")}
                                if m and m.test_accuracy is not None else NOT_RUN)
    acc["C-sim"] = ({"value": cs.top1_accuracy, "tool": f"C-sim ({cs.tool})"}
                    if cs and cs.top1_accuracy is not None else NOT_RUN)
    acc["RTL sim"] = ({"value": rs.top1_accuracy, "tool": f"Verilator ({rs.verilator})"}
                      if rs and rs.top1_accuracy is not None else NOT_RUN)
    return acc


def _overflow(i: Inputs) -> dict:
    out: dict[str, Any] = {}
    out["audit (exported weights vs bound)"] = NOT_RUN if i.audit is None else {
        "ok": i.audit.ok, "tool": "a2qflow.training.audit (QONNX graph integers)"}
    out["C-sim"] = NOT_RUN if i.csim is None else {
        "samples": i.csim.samples, "mismatches_vs_golden": i.csim.mismatches,
        "overflow_events": i.csim.overflow_events, "overflow_events_per_layer": i.csim.overflow_events_per_layer,
        "tool": f"g++ C-sim, overflow monitor ({i.csim.tool})"}
    out["RTL sim"] = NOT_RUN if i.rtlsim is None else {
        "samples": i.rtlsim.samples, "mismatches_vs_golden": i.rtlsim.mismatches, "overflow_events": None,
        "overflow_events_per_layer": None, "tool": f"Verilator ({i.rtlsim.verilator})"}
    return out


def _resource_rows(res: SynthResources | None) -> list[dict]:
    """Pair planned and baseline32 (32-bit design) entries of resources.json per (family, mapping), % saved; rows
    keep the JSON names: baseline32, baseline_status (measured / not run), baseline_datatype (data-type design)."""
    if res is None:
        return []
    rows = []
    for e in res.entries:
        if e.design != "planned":
            continue
        b = res.entry("baseline32", e.family, e.mapping)
        pt = {k: e.total.get(k) for k in ("LUT", "FF", "CARRY", "DSP", "BRAM")}
        bt = {k: b.total.get(k) for k in pt} if b else {}
        saved = {k: (100.0 * (bt[k] - pt[k]) / bt[k]) if (bt.get(k) and pt[k] is not None) else None for k in pt}
        rows.append({"family": e.family, "mapping": e.mapping, "tool": e.tool, "version": e.version,
                     "planned": pt, "baseline32": bt, "saved_pct": saved,
                     "baseline_status": "measured" if b else NOT_RUN})
        d = res.entry("baseline_datatype", e.family, e.mapping)  # the data-type design: each layer at its bound
        if d is not None:
            rows[-1]["baseline_datatype"] = {k: d.total.get(k) for k in pt}
            rows[-1]["baseline_datatype_acc_bits"] = dict(d.acc_bits)
    return rows


def _layers(i: Inputs) -> list[dict]:
    if i.plan is None:
        return []
    ml = i.metrics.layers if i.metrics else {}
    per = (i.csim.overflow_events_per_layer or {}) if i.csim else {}
    rows = []
    for l in i.plan.layers:
        r = l.to_json()
        r["weight_quant"] = ml[l.name].weight_quant if l.name in ml else None
        r["overflow_events_csim"] = per.get(l.name)
        rows.append(r)
    return rows


def _quant_card(i: Inputs) -> list[dict]:
    if i.plan is None:
        return []
    ml = i.metrics.layers if i.metrics else {}
    policy = i.plan.policy
    card = []
    for l in i.plan.layers:
        m = ml.get(l.name)
        wq = m.weight_quant if m else None
        preset = QUANT_CARD.get(wq or "", {})
        card.append({
            "layer": l.name, "weight_quant": wq or NOT_RUN,
            "granularity": (m and m.granularity) or preset.get("granularity", "unknown"),
            "rounding": (m and m.rounding) or preset.get("rounding", "unknown"),
            "scheme": preset.get("scheme", "unknown"),
            "weight_bits": l.weight_bits, "input_bits": l.input_bits, "input_signed": l.input_signed,
            "target_acc_bits": l.target_acc_bits, "acc_bits": l.acc_bits,
            "accumulator_policy": ("exact worst-case bound of the trained integer weights" if policy == "exact"
                                   else f"forced to {policy.split(':')[-1]} bits")
                                  + (" (UNSAFE: below the exact bound)" if l.unsafe else ""),
        })
    return card


def _cycles_and_timing(i: Inputs) -> tuple[Any, Any]:
    rs, bit = i.rtlsim, i.bitstream
    cycles: Any = NOT_RUN
    if rs and rs.cycles_per_inference is not None:
        cycles = {"cycles_per_inference": rs.cycles_per_inference,
                  "initiation_interval_cycles": rs.initiation_interval_cycles,
                  "tool": f"Verilator ({rs.verilator})"}
    timing: Any = NOT_RUN
    if bit and bit.fmax_mhz is not None:
        timing = {"fmax_mhz": bit.fmax_mhz, "constraint_mhz": bit.constraint_mhz, "target": bit.target,
                  "tool": bit.tool_names()}
        if isinstance(cycles, dict) and bit.fmax_mhz:
            timing["latency_us_at_fmax"] = cycles["cycles_per_inference"] / bit.fmax_mhz
    return cycles, timing


def build_report(path: Path | str, train: Path | str | None = None, out: Path | str | None = None,
                 plots: bool = True, final_out: Path | str | None = None) -> RunReport:
    """Collect every stage's results into OUT/report.json, OUT/report.md and PNG plots; returns the report (its
    `build` / `train` as folders on this machine; the file stores them relative to itself).

    `final_out`: where OUT is renamed to afterwards (the pipeline writes into a temp folder); report.json's paths
    are relative to it."""
    lay = Layout.find(path, train, out)
    home = Path(final_out) if final_out is not None else lay.out
    i = Inputs.read(lay)
    cycles, timing = _cycles_and_timing(i)
    layers = _layers(i)
    bit = i.bitstream
    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "build": str(lay.build),
        "train": str(lay.train) if lay.train else None,
        "model": (i.metrics.name if i.metrics else None) or (i.plan.model if i.plan else None),
        "dataset": i.metrics.dataset if i.metrics else None,
        "inputs": i.found(),
        "accuracy": _accuracy(i),
        "layers": layers,
        "weight_sparsity": {l["name"]: l["sparsity"] for l in layers} or NOT_RUN,
        "overflow_checks": _overflow(i),
        "resources": _resource_rows(i.resources) or NOT_RUN,
        **({"resources_planned_design": i.resources.get("planned_design")}
           if i.resources and i.resources.get("planned_design") else {}),
        "timing": timing,
        "cycles": cycles,
        "bitstream": ({"file": bit.bitstream, "target": bit.target, "utilisation": bit.utilisation,
                       "tool": bit.tool_names(), **({"without_dsp": bit.get("without_dsp")}
                                                    if bit.get("without_dsp") else {})} if bit else NOT_RUN),
        "vitis": i.vitis.to_json() if i.vitis else NOT_RUN,
        "quantization_card": _quant_card(i),
        "plots": [],
    }
    lay.out.mkdir(parents=True, exist_ok=True)
    if plots:
        report["plots"] = _plots(report, lay.out)
    rep = RunReport.model_validate(report)
    stored = rep.file_json(home)  # paths relative to report.json's folder: a moved run still names its build
    atomic_write_json(lay.out / "report.json", stored)
    atomic_write_text(lay.out / "report.md", render_markdown(stored))
    return rep


def _plots(report: dict, out: Path) -> list[str]:
    from a2qflow.flows import plots as P

    made = []
    if report["layers"]:
        P.plot_acc_bits(report["layers"], out / "acc_bits.png", "a2qflow compile, plan.json (hw.bounds, exact integer "
                        "arithmetic)")
        made.append("acc_bits.png")
    if isinstance(report["resources"], list) and any(r["baseline32"] for r in report["resources"]):
        P.plot_resources([r for r in report["resources"] if r["baseline32"]], out / "resources.png")
        made.append("resources.png")
    if any(isinstance(v, dict) for v in report["accuracy"].values()):
        P.plot_accuracy(report["accuracy"], out / "accuracy.png")
        made.append("accuracy.png")
    return made


# ------------------------------------------------------------------------------------------------- markdown

def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def render_markdown(r: dict) -> str:
    """report.md from report.json's dict: one section per stage result, each naming the tool behind it."""
    L: list[str] = [f"# a2qflow report: {r.get('model') or '?'}", ""]
    where = " (folders relative to this report's)" if r.get("paths") == PATHS_RELATIVE else ""
    L.append(f"Build `{r['build']}`" + (f", training `{r['train']}`" if r.get("train") else "") + where +
             f"; dataset {r.get('dataset') or NOT_RUN}; generated {r['generated']}.")
    for section in (_md_accuracy, _md_layers, _md_overflow, _md_resources, _md_timing, _md_quant_card):
        L += [""] + section(r)
    missing = [k for k, v in r["inputs"].items() if v == NOT_RUN]
    if missing:
        L += ["", f"Not run (no file): {', '.join(missing)}."]
    return "\n".join(L) + "\n"


def _md_accuracy(r: dict) -> list[str]:
    L = ["## Accuracy (test set)", ""]
    L += markdown.table(["executor", "accuracy", "measured by"], "lrl",
                        ([k, _pct(v["value"]), v["tool"]] if isinstance(v, dict) else [k, NOT_RUN, "-"]
                         for k, v in r["accuracy"].items()))
    if "acc_bits.png" in r["plots"] or "accuracy.png" in r["plots"]:
        L.append("")
        L += [f"![{p}]({p})" for p in r["plots"]]
    return L


def _md_layers(r: dict) -> list[str]:
    L = ["## Accumulator widths per layer", ""]
    if not r["layers"]:
        return L + [f"{NOT_RUN} (no plan.json)"]
    L += ["Bounds from `plan.json` (a2qflow compile, exact integer arithmetic). *used* is what the hardware "
          "builds.", ""]
    L += markdown.table(
        ["layer", "kind", "K", "C", "N", "M", "data-type", "L1", "exact", "target P", "**used**", "thr bits",
         "sparsity", "SIMD x PE", "C-sim overflows"], "llrrrrrrrrrrrlr",
        ([l["name"], l["kind"], l["K"], l["out_channels"], f"{l['input_bits']}{'s' if l['input_signed'] else 'u'}",
          l["weight_bits"], l["acc_bits_datatype"], l["acc_bits_l1"], l["acc_bits_exact"],
          _fmt(l.get("target_acc_bits")), f"**{l['acc_bits']}**{' (UNSAFE)' if l.get('unsafe') else ''}",
          _fmt(l.get("thr_bits")), f"{100 * l['sparsity']:.1f} %", f"{l['simd']} x {l['pe']}",
          NOT_RUN if l.get("overflow_events_csim") is None else l["overflow_events_csim"]] for l in r["layers"]))
    packed = [l for l in r["layers"] if (l.get("dsp_lanes") or 1) > 1]
    if packed:  # hw.dsp.packing auto (hw/compiler/dsp.py): which bound lets several MAC lanes share one DSP
        L += ["", "Lanes per DSP (`hw.dsp`, plan.json `dsp_lanes`): several output channels share one multiplier "
                  "and one accumulator, safe because each channel's exact bound fits its lane:", ""]
        L += [f"- {l['name']}: {l['dsp_proof']}" for l in r["layers"] if l.get("dsp_proof")]
    return L


def _md_overflow(r: dict) -> list[str]:
    rows = []
    for k, v in r["overflow_checks"].items():
        if not isinstance(v, dict):
            rows.append([k, NOT_RUN, "-"])
        elif "ok" in v:
            rows.append([k, "bound holds" if v["ok"] else "VIOLATED", v["tool"]])
        else:
            rows.append([k, f"{_fmt(v['samples'])} samples, {_fmt(v['mismatches_vs_golden'])} mismatches vs golden "
                            f"model, {_fmt(v['overflow_events'])} overflow events", v["tool"]])
    return ["## Overflow checks", ""] + markdown.table(["check", "result", "measured by"], "lll", rows)


def _md_resources(r: dict) -> list[str]:
    L = ["## Resources: planned vs the 32-bit design", ""]
    if not isinstance(r["resources"], list):
        return L + [NOT_RUN]
    rows = []
    for row in r["resources"]:
        for k, v in row["planned"].items():
            if v is None and not row["baseline32"].get(k):
                continue
            s = row["saved_pct"].get(k)
            rows.append([f"{row['family']} {row['mapping']}", f"{row['tool']} {row.get('version') or ''}", k, _fmt(v),
                         _fmt(row["baseline32"].get(k)) if row["baseline32"] else NOT_RUN,
                         "-" if s is None else f"{s:.1f} %"])
    L += markdown.table(["flow", "measured by", "resource", "planned", "32-bit", "saved"], "lllrrr", rows)
    if r.get("resources_planned_design"):
        L += ["", f"Same multiplier mapping on both sides: {r['resources_planned_design']}."]
    layers = r.get("layers") or []
    if layers and not any(row.get("baseline_datatype") for row in r["resources"]):
        L += ["", "A fairer comparison than 32 bits is the data-type design, each layer at its data-type bound (the "
                  "width a designer without A2Q would pick): "
              + ", ".join(f"{l['name']} {l['acc_bits_datatype']}" for l in layers) +
              " bits, against " + ", ".join(f"{l['name']} {l['acc_bits']}" for l in layers) + " here (plan.json). "
              "Set `hw.datatype_baseline: true` (or `a2qflow synth --datatype-baseline`) to synthesise it."]
    for row in r["resources"]:
        d = row.get("baseline_datatype")
        if d and d.get("LUT") and row["planned"].get("LUT") is not None:
            widths = ", ".join(f"{n} {p}" for n, p in row["baseline_datatype_acc_bits"].items())
            L += ["", f"Against the data-type design ({widths} bits), the width a designer without A2Q would pick "
                      f"and a fairer comparison than 32 bits ({row['family']} {row['mapping']}, {row['tool']}): "
                      f"LUT {row['planned']['LUT']} vs {d['LUT']} "
                      f"({100.0 * (d['LUT'] - row['planned']['LUT']) / d['LUT']:.1f} % saved), "
                      f"FF {row['planned'].get('FF')} vs {d.get('FF')}"
                      + (f", DSP {row['planned'].get('DSP')} vs {d.get('DSP')}." if row["mapping"] == "dsp" else ".")]
    if "resources.png" in r["plots"]:
        L += ["", "![resources](resources.png)"]
    return L


def _md_timing(r: dict) -> list[str]:
    L = ["## Timing and throughput", ""]
    t, c, bs = r["timing"], r["cycles"], r["bitstream"]
    L.append(f"- Fmax: {NOT_RUN}" if not isinstance(t, dict) else
             f"- Fmax: {t['fmax_mhz']:.1f} MHz on {t.get('target')} (constraint {_fmt(t.get('constraint_mhz'))} MHz; "
             f"{t['tool']})")
    L.append(f"- Cycles per inference: {NOT_RUN}" if not isinstance(c, dict) else
             f"- Cycles per inference: {c['cycles_per_inference']} (initiation interval "
             f"{_fmt(c.get('initiation_interval_cycles'))} cycles; {c['tool']})")
    if isinstance(t, dict) and t.get("latency_us_at_fmax") is not None:
        L.append(f"- Latency at Fmax: {t['latency_us_at_fmax']:.2f} us")
    L.append(f"- Bitstream: {NOT_RUN}" if not isinstance(bs, dict) else
             f"- Bitstream: `{bs.get('file')}` for {bs.get('target')} ({bs['tool']})")
    if isinstance(bs, dict) and isinstance(bs.get("utilisation"), dict):
        L.append("- Utilisation: " + ", ".join(f"{k} {v}" if not isinstance(v, dict) else
                                               f"{k} {v.get('used')}/{v.get('available')}"
                                               for k, v in bs["utilisation"].items()))
    if isinstance(bs, dict) and isinstance(bs.get("without_dsp"), dict):
        L.append(_md_dsp_twin(bs["without_dsp"], r["layers"], bs["tool"]))
    if isinstance(r.get("vitis"), dict):
        L.append("- Vitis / Vivado: see report.json `vitis` (vendor tool figures)")
    return L


def _md_dsp_twin(w: dict, layers: list[dict], tool: str) -> str:
    """The logic cells the packed layers' SB_MAC16s save: the placed design vs its twin with every MAC in logic."""
    on = [f"{l['name']} ({l.get('dsp_slices')} x {l.get('dsp_lanes')} lanes)" for l in layers
          if (l.get("dsp_slices") or 0) > 0]
    saved, base = w.get("logic_cells_saved"), w.get("logic_cells")
    pct = f", {100 * saved / base:.1f} %" if saved is not None and base else ""
    return (f"- DSP slices: {w.get('dsp_used')} SB_MAC16 used by {', '.join(on) or 'no layer'}; logic cells "
            f"{w.get('logic_cells_with_dsp')} vs {base} for the same plan without DSPs (packing off), "
            f"**{saved} saved**{pct}; Fmax without DSPs {_fmt(w.get('fmax_mhz'))} MHz ({w.get('synth')}, "
            f"then nextpnr-ice40; {tool})")


def _md_quant_card(r: dict) -> list[str]:
    L = ["## Quantization card", "",
         "| layer | weights | granularity | rounding | M | N | target P | used P | accumulator policy |",
         "|---|---|---|---|---:|---:|---:|---:|---|"]
    for q in r["quantization_card"]:
        L.append(f"| {q['layer']} | {q['weight_quant']} | {q['granularity']} | {q['rounding']} | {q['weight_bits']} "
                 f"| {q['input_bits']}{'s' if q['input_signed'] else 'u'} | {_fmt(q['target_acc_bits'])} | "
                 f"{q['acc_bits']} | {q['accumulator_policy']} |")
    return L
