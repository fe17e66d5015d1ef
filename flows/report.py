"""Run report: report.md + report.json + PNG plots from whatever the flow's stages wrote.

Reads RUN/train/{metrics,audit}.json, BUILD/plan.json, BUILD/csim/csim.json, BUILD/rtlsim/rtlsim.json,
BUILD/synth/resources.json, BUILD/bitstream/bitstream.json (and BUILD/vitis/vitis.json). A stage that did not
run is reported as "not run" — the report never fills a gap with a guess — and every figure names the tool that
measured it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_text

NOT_RUN = "not run"

# What the training presets do (training/quant.py); used when metrics.json does not say it itself.
QUANT_CARD = {
    "a2q": {"granularity": "per-channel", "rounding": "round toward zero (keeps the L1 bound)",
            "scheme": "Brevitas Int8AccumulatorAwareWeightQuant (weight norm, L1 clamped to the P budget)"},
    "a2q+": {"granularity": "per-channel", "rounding": "round toward zero (keeps the L1 bound)",
             "scheme": "Brevitas Int8AccumulatorAwareZeroCenterWeightQuant (zero-centred, ~2x the A2Q L1 budget)"},
    "baseline": {"granularity": "per-channel", "rounding": "round half to even",
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


def _load(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise A2QFlowError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); re-run the stage that writes it")


def _first(d: dict | None, *keys: str, default: Any = None) -> Any:
    """The first key present in d (producers name some fields slightly differently)."""
    if not d:
        return default
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def _pct(x: float | None) -> str:
    return NOT_RUN if x is None else f"{100 * x:.2f} %"


# ------------------------------------------------------------------------------------------------- sections

def _accuracy(metrics: dict | None, csim: dict | None, rtlsim: dict | None) -> dict:
    acc: dict[str, Any] = {}
    acc["float"] = ({"value": metrics.get("float_test_accuracy"), "tool": "PyTorch (float twin)"}
                    if metrics and metrics.get("float_test_accuracy") is not None else NOT_RUN)
    acc["quantized (torch)"] = ({"value": metrics["test_accuracy"], "tool": "PyTorch + Brevitas"}
                                if metrics and metrics.get("test_accuracy") is not None else NOT_RUN)
    cs = _first(csim, "accuracy", "top1_accuracy", "test_accuracy")
    acc["C-sim"] = {"value": cs, "tool": f"C-sim ({_first(csim, 'tool', 'compiler', default='g++, ap_types')})"} \
        if cs is not None else NOT_RUN
    rs = _first(rtlsim, "accuracy", "top1_accuracy")
    acc["RTL sim"] = {"value": rs, "tool": f"Verilator {_first(rtlsim, 'verilator_version', 'verilator', default='')}"
                      .strip()} if rs is not None else NOT_RUN
    return acc


def _overflow(audit: dict | None, csim: dict | None, rtlsim: dict | None) -> dict:
    out: dict[str, Any] = {}
    if audit is None:
        out["audit (exported weights vs bound)"] = NOT_RUN
    else:
        ok = _first(audit, "ok", "passed")
        layers = audit.get("layers")
        if ok is None and isinstance(layers, (list, dict)):
            vals = layers.values() if isinstance(layers, dict) else layers
            oks = [_first(l, "ok", "passed") for l in vals if isinstance(l, dict)]
            ok = all(oks) if oks and None not in oks else None
        out["audit (exported weights vs bound)"] = {"ok": ok, "tool": "a2qflow.training.audit (QONNX graph integers)"}
    for key, d, tool in (("C-sim", csim, "g++ C-sim, overflow monitor"), ("RTL sim", rtlsim, "Verilator")):
        if d is None:
            out[key] = NOT_RUN
            continue
        ev, per_layer = _overflow_counts(d)
        out[key] = {"samples": d.get("samples"), "mismatches_vs_golden": d.get("mismatches"),
                    "overflow_events": ev, "overflow_events_per_layer": per_layer, "tool": tool}
    return out


def _overflow_counts(d: dict | None) -> tuple[int | None, dict | None]:
    """(total, per layer) overflow events; producers give a total plus a per-layer dict, or only the dict."""
    if not d:
        return None, None
    ev, per = d.get("overflow_events"), d.get("overflow_events_per_layer")
    if isinstance(ev, dict):
        per, ev = ev, sum(ev.values())
    if ev is None and isinstance(per, dict):
        ev = sum(per.values())
    return ev, per if isinstance(per, dict) else None


def _resource_rows(res: dict | None) -> list[dict]:
    """Pair planned and baseline32 entries of resources.json per (family, mapping) and compute % saved."""
    if not res:
        return []
    entries = res.get("entries", res.get("results")) if isinstance(res, dict) else res
    if not isinstance(entries, list):
        return []
    by: dict[tuple, dict] = {}
    for e in entries:
        key = (e.get("family"), e.get("mapping"))
        by.setdefault(key, {})[e.get("design")] = e
    rows = []
    for (family, mapping), d in by.items():
        p, b = d.get("planned"), d.get("baseline32")
        if p is None:
            continue
        pt = {k: p.get("total", {}).get(k) for k in ("LUT", "FF", "CARRY", "DSP", "BRAM")}
        bt = {k: (b or {}).get("total", {}).get(k) for k in pt}
        saved = {k: (100.0 * (bt[k] - pt[k]) / bt[k]) if (bt[k] and pt[k] is not None) else None for k in pt}
        rows.append({"family": family, "mapping": mapping, "tool": p.get("tool", "?"), "version": p.get("version"),
                     "planned": pt, "baseline32": bt if b else {}, "saved_pct": saved,
                     "baseline_status": "measured" if b else NOT_RUN})
    return rows


def _layers(plan: dict | None, metrics: dict | None, csim: dict | None) -> list[dict]:
    if plan is None:
        return []
    ml = (metrics or {}).get("layers", {})
    _, ev = _overflow_counts(csim)
    rows = []
    for l in plan["layers"]:
        m = ml.get(l["name"], {})
        r = dict(l)
        r["weight_quant"] = m.get("weight_quant")
        r["overflow_events_csim"] = ev.get(l["name"]) if isinstance(ev, dict) else None
        rows.append(r)
    return rows


def _quant_card(plan: dict | None, metrics: dict | None) -> list[dict]:
    if plan is None:
        return []
    ml = (metrics or {}).get("layers", {})
    card = []
    for l in plan["layers"]:
        m = ml.get(l["name"], {})
        wq = m.get("weight_quant")
        preset = QUANT_CARD.get(wq or "", {})
        policy = plan["policy"]
        card.append({
            "layer": l["name"],
            "weight_quant": wq or NOT_RUN,
            "granularity": m.get("granularity") or preset.get("granularity", "unknown"),
            "rounding": m.get("rounding") or preset.get("rounding", "unknown"),
            "scheme": preset.get("scheme", "unknown"),
            "weight_bits": l["weight_bits"],
            "input_bits": l["input_bits"],
            "input_signed": l["input_signed"],
            "target_acc_bits": l.get("target_acc_bits"),
            "acc_bits": l["acc_bits"],
            "accumulator_policy": ("exact worst-case bound of the trained integer weights" if policy == "exact"
                                   else f"forced to {policy.split(':')[-1]} bits")
                                  + (" (UNSAFE: below the exact bound)" if l.get("unsafe") else ""),
        })
    return card


def build_report(path: Path | str, train: Path | str | None = None, out: Path | str | None = None,
                 plots: bool = True) -> dict:
    """Collect every stage's results into OUT/report.json, OUT/report.md and PNG plots; returns the JSON dict."""
    lay = Layout.find(path, train, out)
    b = lay.build
    metrics = _load(lay.train / "metrics.json") if lay.train else None
    audit = _load(lay.train / "audit.json") if lay.train else None
    plan = _load(b / "plan.json")
    csim = _load(b / "csim" / "csim.json")
    rtlsim = _load(b / "rtlsim" / "rtlsim.json")
    res = _load(b / "synth" / "resources.json")
    bit = _load(b / "bitstream" / "bitstream.json")
    vitis = _load(b / "vitis" / "vitis.json")
    sources = {"metrics.json": metrics, "audit.json": audit, "plan.json": plan, "csim.json": csim,
               "rtlsim.json": rtlsim, "resources.json": res, "bitstream.json": bit, "vitis.json": vitis}

    cycles = NOT_RUN
    if rtlsim and _first(rtlsim, "cycles_per_inference") is not None:
        cycles = {"cycles_per_inference": rtlsim["cycles_per_inference"],
                  "initiation_interval_cycles": rtlsim.get("initiation_interval_cycles"),
                  "tool": f"Verilator {_first(rtlsim, 'verilator_version', 'verilator', default='')}".strip()}
    timing = NOT_RUN
    if bit and _first(bit, "fmax_mhz") is not None:
        timing = {"fmax_mhz": bit["fmax_mhz"], "constraint_mhz": bit.get("constraint_mhz"),
                  "target": _first(bit, "target", "device"), "tool": _tool_name(bit, "nextpnr")}
        if isinstance(cycles, dict) and bit["fmax_mhz"]:
            timing["latency_us_at_fmax"] = cycles["cycles_per_inference"] / bit["fmax_mhz"]
    layers = _layers(plan, metrics, csim)
    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "build": str(b),
        "train": str(lay.train) if lay.train else None,
        "model": (metrics or {}).get("name") or (plan or {}).get("model"),
        "dataset": (metrics or {}).get("dataset"),
        "inputs": {k: ("found" if v is not None else NOT_RUN) for k, v in sources.items()},
        "accuracy": _accuracy(metrics, csim, rtlsim),
        "layers": layers,
        "weight_sparsity": {l["name"]: l["sparsity"] for l in layers} or NOT_RUN,
        "overflow_checks": _overflow(audit, csim, rtlsim),
        "resources": _resource_rows(res) or NOT_RUN,
        "timing": timing,
        "cycles": cycles,
        "bitstream": ({"file": _first(bit, "bitstream", "file", "path"), "target": _first(bit, "target"),
                       "utilisation": _first(bit, "utilisation", "utilization"),
                       "tool": _tool_name(bit, "nextpnr")} if bit else NOT_RUN),
        "vitis": vitis if vitis else NOT_RUN,
        "quantization_card": _quant_card(plan, metrics),
        "plots": [],
    }
    lay.out.mkdir(parents=True, exist_ok=True)
    if plots:
        from a2qflow.flows import plots as P

        if layers:
            P.plot_acc_bits(layers, lay.out / "acc_bits.png", "a2qflow compile, plan.json (hw.bounds, exact integer "
                            "arithmetic)")
            report["plots"].append("acc_bits.png")
        if isinstance(report["resources"], list) and any(r["baseline32"] for r in report["resources"]):
            P.plot_resources([r for r in report["resources"] if r["baseline32"]], lay.out / "resources.png")
            report["plots"].append("resources.png")
        if any(isinstance(v, dict) for v in report["accuracy"].values()):
            P.plot_accuracy(report["accuracy"], lay.out / "accuracy.png")
            report["plots"].append("accuracy.png")
    atomic_write_json(lay.out / "report.json", report)
    atomic_write_text(lay.out / "report.md", render_markdown(report))
    return report


def _tool_name(d: dict | None, default: str) -> str:
    if not d:
        return default
    tools = d.get("tools") or d.get("tool_versions")
    if isinstance(tools, dict) and tools:
        return ", ".join(f"{k} {v}" if isinstance(v, str) else k for k, v in tools.items())
    t = d.get("tool")
    return f"{t} {d.get('version', '')}".strip() if t else default


# ------------------------------------------------------------------------------------------------- markdown

def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def render_markdown(r: dict) -> str:
    L: list[str] = [f"# a2qflow report: {r.get('model') or '?'}", ""]
    L.append(f"Build `{r['build']}`" + (f", training `{r['train']}`" if r.get("train") else "") +
             f"; dataset {r.get('dataset') or NOT_RUN}; generated {r['generated']}.")
    L += ["", "## Accuracy (test set)", "", "| executor | accuracy | measured by |", "|---|---:|---|"]
    for k, v in r["accuracy"].items():
        L.append(f"| {k} | {_pct(v['value'])} | {v['tool']} |" if isinstance(v, dict) else f"| {k} | {NOT_RUN} | - |")
    if "acc_bits.png" in r["plots"] or "accuracy.png" in r["plots"]:
        L.append("")
        L += [f"![{p}]({p})" for p in r["plots"]]
    L += ["", "## Accumulator widths per layer", ""]
    if r["layers"]:
        L += ["Bounds from `plan.json` (a2qflow compile, exact integer arithmetic). *used* is what the hardware "
              "builds.", "",
              "| layer | kind | K | C | N | M | data-type | L1 | exact | target P | **used** | thr bits | sparsity | "
              "SIMD x PE | C-sim overflows |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
        for l in r["layers"]:
            L.append(f"| {l['name']} | {l['kind']} | {l['K']} | {l['out_channels']} | {l['input_bits']}"
                     f"{'s' if l['input_signed'] else 'u'} | {l['weight_bits']} | {l['acc_bits_datatype']} | "
                     f"{l['acc_bits_l1']} | {l['acc_bits_exact']} | {_fmt(l.get('target_acc_bits'))} | "
                     f"**{l['acc_bits']}**{' (UNSAFE)' if l.get('unsafe') else ''} | {_fmt(l.get('thr_bits'))} | "
                     f"{100 * l['sparsity']:.1f} % | {l['simd']} x {l['pe']} | "
                     f"{NOT_RUN if l.get('overflow_events_csim') is None else l['overflow_events_csim']} |")
    else:
        L.append(f"{NOT_RUN} (no plan.json)")
    L += ["", "## Overflow checks", "", "| check | result | measured by |", "|---|---|---|"]
    for k, v in r["overflow_checks"].items():
        if not isinstance(v, dict):
            L.append(f"| {k} | {NOT_RUN} | - |")
        elif "ok" in v:
            L.append(f"| {k} | {'bound holds' if v['ok'] else ('VIOLATED' if v['ok'] is False else 'see audit.json')}"
                     f" | {v['tool']} |")
        else:
            L.append(f"| {k} | {_fmt(v['samples'])} samples, {_fmt(v['mismatches_vs_golden'])} mismatches vs golden "
                     f"model, {_fmt(v['overflow_events'])} overflow events | {v['tool']} |")
    L += ["", "## Resources: planned vs 32-bit accumulators", ""]
    if isinstance(r["resources"], list):
        L += ["| flow | measured by | resource | planned | 32-bit | saved |", "|---|---|---|---:|---:|---:|"]
        for row in r["resources"]:
            for k, v in row["planned"].items():
                if v is None and not row["baseline32"].get(k):
                    continue
                s = row["saved_pct"].get(k)
                L.append(f"| {row['family']} {row['mapping']} | {row['tool']} {row.get('version') or ''} | {k} | "
                         f"{_fmt(v)} | {_fmt(row['baseline32'].get(k)) if row['baseline32'] else NOT_RUN} | "
                         f"{'-' if s is None else f'{s:.1f} %'} |")
        if "resources.png" in r["plots"]:
            L += ["", "![resources](resources.png)"]
    else:
        L.append(NOT_RUN)
    L += ["", "## Timing and throughput", ""]
    t, c = r["timing"], r["cycles"]
    L.append(f"- Fmax: {NOT_RUN}" if not isinstance(t, dict) else
             f"- Fmax: {t['fmax_mhz']:.1f} MHz on {t.get('target')} (constraint {_fmt(t.get('constraint_mhz'))} MHz; "
             f"{t['tool']})")
    L.append(f"- Cycles per inference: {NOT_RUN}" if not isinstance(c, dict) else
             f"- Cycles per inference: {c['cycles_per_inference']} (initiation interval "
             f"{_fmt(c.get('initiation_interval_cycles'))} cycles; {c['tool']})")
    if isinstance(t, dict) and t.get("latency_us_at_fmax") is not None:
        L.append(f"- Latency at Fmax: {t['latency_us_at_fmax']:.2f} us")
    bs = r["bitstream"]
    L.append(f"- Bitstream: {NOT_RUN}" if not isinstance(bs, dict) else
             f"- Bitstream: `{bs.get('file')}` for {bs.get('target')} ({bs['tool']})")
    if isinstance(bs, dict) and isinstance(bs.get("utilisation"), dict):
        L.append("- Utilisation: " + ", ".join(f"{k} {v}" if not isinstance(v, dict) else
                                               f"{k} {v.get('used')}/{v.get('available')}"
                                               for k, v in bs["utilisation"].items()))
    if isinstance(r.get("vitis"), dict):
        L.append("- Vitis / Vivado: see report.json `vitis` (vendor tool figures)")
    L += ["", "## Quantization card", "",
          "| layer | weights | granularity | rounding | M | N | target P | used P | accumulator policy |",
          "|---|---|---|---|---:|---:|---:|---:|---|"]
    for q in r["quantization_card"]:
        L.append(f"| {q['layer']} | {q['weight_quant']} | {q['granularity']} | {q['rounding']} | {q['weight_bits']} "
                 f"| {q['input_bits']}{'s' if q['input_signed'] else 'u'} | {_fmt(q['target_acc_bits'])} | "
                 f"{q['acc_bits']} | {q['accumulator_policy']} |")
    missing = [k for k, v in r["inputs"].items() if v == NOT_RUN]
    if missing:
        L += ["", f"Not run (no file): {', '.join(missing)}."]
    return "\n".join(L) + "\n"
