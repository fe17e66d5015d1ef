"""Xilinx backend: run BUILD/hls/run_hls.tcl and vivado.tcl when the AMD tools are installed, parse their reports.

The tools are not redistributable, so they are looked up on PATH (source Vitis' settings64.sh first) and a missing
one is a one-line message, never a traceback. Parsers read the reports the tools write:
  * Vitis HLS  csynth.xml / <top>_csynth.xml, picked by the top's name (never a sub-module's by sort order):
    AreaEstimates/Resources (BRAM_18K, DSP, FF, LUT, URAM; Vivado HLS' DSP48E read as DSP), latency and interval
    (PerformanceEstimates/SummaryOfOverallLatency), target / estimated clock (UserAssignments, SummaryOfTimingAnalysis)
  * Vivado     report_utilization, as text (the '| Site Type | Used | ... |' tables) or as xml (-format xml)
Every figure is labelled with its source: "Vitis HLS estimate" (post-csynth, pre-implementation) or
"Vivado report_utilization" plus the design state the report names (Synthesized, Routed, ...).
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_text, relative_path
from a2qflow.hw.results import VitisSummary
from a2qflow.hw.tools import run_tool

HLS_TOOLS = ("vitis_hls", "vitis-run")  # vitis_hls up to 2024.x; `vitis-run --mode hls` from 2024.2 on
HLS_RESOURCES = ("BRAM_18K", "DSP", "FF", "LUT", "URAM")


# ------------------------------------------------------------------------------------------------ tools

def find_tools() -> dict[str, str | None]:
    """{tool: path or None} for vitis_hls, vitis-run and vivado."""
    return {t: shutil.which(t) for t in (*HLS_TOOLS, "vivado")}


def missing_tools_message(tools: dict[str, str | None], need_vivado: bool = True) -> str | None:
    """One line naming what is missing, or None when the backend can run."""
    missing = []
    if not (tools.get("vitis_hls") or tools.get("vitis-run")):
        missing.append("vitis_hls (or vitis-run)")
    if need_vivado and not tools.get("vivado"):
        missing.append("vivado")
    if not missing:
        return None
    return (f"--backend vitis needs {' and '.join(missing)} on PATH; install AMD Vitis / Vivado and `source "
            "<install>/settings64.sh`, or use --backend yosys (open tools, installed)")


def run_vitis(build: Path | str, steps: str = "csim csynth cosim export", vivado: bool = True,
              timeout: float = 6 * 3600.0) -> dict:
    """Run BUILD/hls/run_hls.tcl (A2Q_STEPS=steps) and, if asked, vivado.tcl; parse and record the reports.

    The tools run in BUILD/hls; the parsed figures go to BUILD/vitis/vitis.json and vitis.md. Raises A2QFlowError
    (one line) when a tool is missing.
    """
    import os

    build = Path(build)
    hls = build / "hls"
    msg = missing_tools_message(find_tools(), need_vivado=vivado)
    if msg:
        raise A2QFlowError(msg)
    if not (hls / "run_hls.tcl").is_file():
        raise A2QFlowError(f"{hls}: no run_hls.tcl; run `a2qflow hls {build}` first")
    tools = find_tools()
    env = dict(os.environ, A2Q_STEPS=steps)
    runs = []
    if tools["vitis_hls"]:
        argv = ["vitis_hls", "-f", "run_hls.tcl"]
    else:
        argv = ["vitis-run", "--mode", "hls", "--tcl", "run_hls.tcl"]
    runs.append(run_tool(argv[0], argv[1:], hls, "vitis_hls.log", timeout, status=argv[0], env=env))
    if vivado:
        argv = ["vivado", "-mode", "batch", "-source", "vivado.tcl", "-nojournal", "-log", "vivado.log"]
        runs.append(run_tool(argv[0], argv[1:], hls, "vivado.out", timeout, status="vivado", env=env))
    result = collect_reports(hls)
    for report in [result["csynth"], *result["utilization"]]:  # stored relative to vitis.json's folder
        if report:
            report["file"] = relative_path(report["file"], build / "vitis")
    result["runs"] = [{"command": r.command, "seconds": r.seconds} for r in runs]
    result["tools"] = {t: p for t, p in tools.items() if p}
    VitisSummary.model_validate(result).write(build / "vitis" / "vitis.json")
    atomic_write_text(build / "vitis" / "vitis.md", vitis_markdown(result))
    return result


def find_top_csynth(report_dir: Path, top: str | None = None) -> Path:
    """The top function's csynth report in one syn/report folder, chosen by name, never by sort order.

    Vivado / Vitis HLS write csynth.xml (the top) and <module>_csynth.xml for the top and every sub-module; in real
    report folders a sub-module's file often sorts first. So: <top>_csynth.xml when the top is known, else
    csynth.xml, else the only *_csynth.xml; anything else is an error listing the candidates.
    """
    names = sorted(p.name for p in report_dir.glob("*csynth.xml"))
    for name in ([f"{top}_csynth.xml"] if top else []) + ["csynth.xml"]:
        if name in names:
            return report_dir / name
    if not top and len(names) == 1:
        return report_dir / names[0]
    want = f"{top}_csynth.xml or csynth.xml" if top else "csynth.xml"
    raise A2QFlowError(f"{report_dir}: cannot tell the top's synthesis report: no {want} among "
                       f"{', '.join(names) or 'no *_csynth.xml files'}; pass the top function's name")


def collect_reports(hls: Path | str, top: str | None = "a2q_top") -> dict:
    """Parse whatever reports exist under BUILD/hls (the top's csynth xml, Vivado utilization .rpt / .xml).

    `top` is the HLS top function (a2qflow's is a2q_top); None accepts csynth.xml or a single *_csynth.xml.
    """
    hls = Path(hls)
    out: dict = {"csynth": None, "utilization": []}
    dirs = sorted({p.parent for p in hls.glob("proj_*/sol*/syn/report/*csynth.xml")})
    if len(dirs) > 1:
        raise A2QFlowError(f"{hls}: csynth reports in several solutions ({', '.join(str(d) for d in dirs)}); "
                           "remove the stale project folders and re-run")
    if dirs:
        path = find_top_csynth(dirs[0], top)
        out["csynth"] = parse_csynth_xml(path)
        if top and out["csynth"]["top"] not in (None, top):
            raise A2QFlowError(f"{path}: reports top {out['csynth']['top']!r}, expected {top!r}")
    for p in sorted(hls.glob("reports/utilization*.rpt")) + sorted(hls.glob("reports/utilization*.xml")):
        if p.name.endswith("_hier.rpt"):
            continue
        out["utilization"].append(parse_utilization(p))
    if out["csynth"] is None and not out["utilization"]:
        raise A2QFlowError(f"{hls}: no proj_*/sol*/syn/report/*_csynth.xml or reports/utilization*.rpt found after "
                           "the run; check vitis_hls.log / vivado.log there")
    return out


# ------------------------------------------------------------------------------------------------ csynth.xml

def _num(text: str | None):
    if text is None:
        return None
    t = text.strip()
    if t in ("", "-", "undef", "NA"):
        return None
    try:
        return int(t)
    except ValueError:
        try:
            return float(t)
        except ValueError:
            return t


# Vivado HLS (up to 2019.2) names the DSP column after the slice (DSP48E, DSP48E2 on UltraScale); Vitis HLS says DSP.
_RESOURCE_ALIASES = {"DSP48E": "DSP", "DSP48E1": "DSP", "DSP48E2": "DSP", "DSP58": "DSP"}


def _resources(node) -> dict:
    """{resource: count} of an <AreaEstimates> child, with old DSP48E* names mapped to DSP (one key per report)."""
    out = {}
    for c in node:
        key = _RESOURCE_ALIASES.get(c.tag, c.tag)
        if key not in out or out[key] is None:
            out[key] = _num(c.text)
    return out


def parse_csynth_xml(path: Path | str) -> dict:
    """Vitis HLS <top>_csynth.xml -> resources, available resources, latency / interval (cycles), clocks (ns)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise A2QFlowError(f"{path}: not a readable csynth xml report ({e})") from None
    res = root.find("AreaEstimates/Resources")
    if res is None:
        raise A2QFlowError(f"{path}: no <AreaEstimates><Resources> element; is this a Vitis HLS *_csynth.xml?")
    avail = root.find("AreaEstimates/AvailableResources")
    lat = root.find("PerformanceEstimates/SummaryOfOverallLatency")
    ua = root.find("UserAssignments")

    def g(node, tag):
        return None if node is None else _num(node.findtext(tag))

    return {
        "source": "Vitis HLS estimate (csynth, before implementation)",
        "file": str(path),
        "version": root.findtext("ReportVersion/Version"),
        "top": g(ua, "TopModelName"),
        "part": g(ua, "Part"),
        "target_clock_ns": g(ua, "TargetClockPeriod"),
        "clock_uncertainty_ns": g(ua, "ClockUncertainty"),
        "estimated_clock_ns": _num(root.findtext("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        "latency_cycles": {"best": g(lat, "Best-caseLatency"), "average": g(lat, "Average-caseLatency"),
                           "worst": g(lat, "Worst-caseLatency")},
        "interval_cycles": {"min": g(lat, "Interval-min"), "max": g(lat, "Interval-max")},
        "resources": _resources(res),
        "available": {} if avail is None else _resources(avail),
    }


# ------------------------------------------------------------------------------------------------ report_utilization

_SUMMARY_ROWS = {  # our key -> row names Vivado uses (7-series "Slice ...", UltraScale "CLB ...")
    "LUT": ("Slice LUTs", "CLB LUTs"),
    "FF": ("Slice Registers", "CLB Registers"),
    "CARRY": ("CARRY4", "CARRY8"),
    "BRAM_tiles": ("Block RAM Tile",),
    "DSP": ("DSPs",),
    "URAM": ("URAM",),
}


def _summary(rows: dict[str, dict]) -> dict:
    out = {}
    for key, names in _SUMMARY_ROWS.items():
        for n in names:
            if n in rows:
                out[key] = rows[n]["used"]
                break
    return out


def parse_utilization(path: Path | str) -> dict:
    """Vivado report_utilization, text (.rpt) or xml (-format xml), by content."""
    path = Path(path)
    try:
        head = path.read_text(errors="replace")[:200].lstrip()
    except OSError as e:
        raise A2QFlowError(f"{path}: cannot read ({e})") from None
    return parse_utilization_xml(path) if head.startswith("<") else parse_utilization_text(path)


def _clean_site(name: str) -> str:
    return name.strip().rstrip("*").strip()


def parse_utilization_text(path: Path | str) -> dict:
    """Text report: header fields ('| Design : x'), then every '| Site Type | Used | ... | Available | Util% |'
    table row as {used, available, util_pct}; the first occurrence of a site type wins (section order)."""
    path = Path(path)
    text = path.read_text(errors="replace")
    header = {}
    for m in re.finditer(r"^\|\s*(Tool Version|Design|Device|Design State|Command)\s*:\s*(.*?)\s*$", text, re.M):
        header[m.group(1)] = m.group(2)
    rows: dict[str, dict] = {}
    cols: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in ("Site Type", "Ref Name"):
            cols = cells
            continue
        if cols is None or len(cells) != len(cols) or "Used" not in cols:
            continue
        rec = dict(zip(cols, cells))
        name = _clean_site(rec.get("Site Type", rec.get("Ref Name", "")))
        if not name or name in rows:
            continue
        used = _num(rec.get("Used"))
        if not isinstance(used, (int, float)):
            continue
        rows[name] = {"used": used, "available": _num(rec.get("Available")), "util_pct": _num(rec.get("Util%"))}
    if not rows:
        raise A2QFlowError(f"{path}: no '| Site Type | Used | ... |' rows; is this a Vivado report_utilization?")
    return _util_result(path, header, rows)


def _util_result(path: Path, header: dict, rows: dict) -> dict:
    state = header.get("Design State", "")
    return {
        "source": f"Vivado report_utilization ({state or 'state not stated'})",
        "file": str(path), "tool_version": header.get("Tool Version"), "design": header.get("Design"),
        "device": header.get("Device"), "design_state": state or None,
        "summary": _summary(rows), "rows": rows,
    }


def _xml_cell_text(c) -> str:
    return (c.get("contents") if c.get("contents") is not None else (c.text or "")).strip()


def _xml_table_rows(root) -> dict[str, dict]:
    """Site -> {used, available, util_pct} from every <table> of the report (the first row per site wins)."""
    rows: dict[str, dict] = {}
    for table in root.iter("table"):
        cols: list[str] | None = None
        for tr in table.iter("tablerow"):
            hdr = [_xml_cell_text(c) for c in tr if c.tag == "tableheader"]
            if hdr:
                cols = hdr
                continue
            cells = [_xml_cell_text(c) for c in tr if c.tag == "tablecell"]
            if cols is None or len(cells) != len(cols):
                continue
            rec = dict(zip(cols, cells))
            name = _clean_site(rec.get("Site Type", rec.get("Ref Name", "")))
            used = _num(rec.get("Used"))
            if name and name not in rows and isinstance(used, (int, float)):
                rows[name] = {"used": used, "available": _num(rec.get("Available")),
                              "util_pct": _num(rec.get("Util%"))}
    return rows


def parse_utilization_xml(path: Path | str) -> dict:
    """XML report (report_utilization -format xml): <RptDoc> with <section title=...><table><tablerow> of
    <tableheader>/<tablecell contents=...>; header fields in the 'Utilization Design Information' key/values."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise A2QFlowError(f"{path}: not a readable report_utilization xml ({e})") from None

    rows = _xml_table_rows(root)
    header: dict[str, str] = {}
    for kv in root.iter("keyvalue"):  # design information block
        k, v = kv.get("key") or kv.findtext("key"), kv.get("value") or kv.findtext("value")
        if k:
            header[k.strip()] = (v or "").strip()
    if not rows:
        raise A2QFlowError(f"{path}: no utilization table rows with Site Type / Used columns")
    return _util_result(path, header, rows)


# ------------------------------------------------------------------------------------------------ output

def vitis_markdown(result: dict) -> str:
    lines = ["# Xilinx backend reports", ""]
    cs = result.get("csynth")
    if cs:
        r = cs["resources"]
        lines += [f"## {cs['source']} — {cs['top']} on {cs['part']} (Vitis HLS {cs['version']})", "",
                  "| BRAM_18K | DSP | FF | LUT | URAM | latency (cycles, best/worst) | interval "
                  "| clock target / est. (ns) |",
                  "|---:|---:|---:|---:|---:|---|---|---|",
                  f"| {r.get('BRAM_18K')} | {r.get('DSP')} | {r.get('FF')} | {r.get('LUT')} | {r.get('URAM')} | "
                  f"{cs['latency_cycles']['best']} / {cs['latency_cycles']['worst']} | "
                  f"{cs['interval_cycles']['min']}-{cs['interval_cycles']['max']} | "
                  f"{cs['target_clock_ns']} / {cs['estimated_clock_ns']} |", ""]
    for u in result.get("utilization", []):
        s = u["summary"]
        lines += [f"## {u['source']} — {u['design']} on {u['device']} ({u['tool_version']})", "",
                  "| LUT | FF | CARRY | BRAM tiles | DSP |", "|---:|---:|---:|---:|---:|",
                  f"| {s.get('LUT', '-')} | {s.get('FF', '-')} | {s.get('CARRY', '-')} | {s.get('BRAM_tiles', '-')} | "
                  f"{s.get('DSP', '-')} |", ""]
    return "\n".join(lines)
