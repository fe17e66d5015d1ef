"""Xilinx backend: tool detection messages and the report parsers, on hand-written format samples
(tests/data/vitis/README.md: invented numbers in the real layouts; no AMD tool runs here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.synth import vitis

DATA = Path(__file__).parent / "data" / "vitis"


def test_csynth_xml_resources_latency_and_clocks():
    r = vitis.parse_csynth_xml(DATA / "a2q_top_csynth.xml")
    assert r["resources"] == {"BRAM_18K": 3, "DSP": 0, "FF": 2417, "LUT": 3902, "URAM": 0}
    assert r["available"]["LUT"] == 53200 and r["available"]["BRAM_18K"] == 280
    assert r["latency_cycles"] == {"best": 171, "average": 171, "worst": 173}
    assert r["interval_cycles"] == {"min": 129, "max": 130}
    assert r["target_clock_ns"] == 10.0 and r["estimated_clock_ns"] == 6.912
    assert r["top"] == "a2q_top" and r["part"] == "xc7z020-clg400-1" and r["version"] == "2023.2"
    assert "Vitis HLS estimate" in r["source"]


def test_utilization_text_summary_rows_and_state():
    r = vitis.parse_utilization(DATA / "utilization_ooc.rpt")
    assert r["summary"] == {"LUT": 3120, "FF": 2210, "CARRY": 312, "BRAM_tiles": 1.5, "DSP": 0}
    assert r["rows"]["LUT as Memory"] == {"used": 132, "available": 17400, "util_pct": 0.76}
    assert r["design"] == "a2q_top" and r["device"] == "xc7z020clg400-1"
    assert r["source"] == "Vivado report_utilization (Synthesized)"
    assert r["tool_version"].startswith("Vivado v.2023.2")


def test_utilization_xml_matches_the_same_fields():
    r = vitis.parse_utilization(DATA / "utilization_impl.xml")
    assert r["summary"] == {"LUT": 6412, "FF": 7933, "BRAM_tiles": 4.5, "DSP": 0}
    assert r["design_state"] == "Routed" and r["design"] == "a2q_wrapper"
    assert r["rows"]["Slice Registers"]["available"] == 106400


def test_parsers_reject_foreign_files_with_the_file_name(tmp_path):
    bad = tmp_path / "notes.rpt"
    bad.write_text("hello\n| a | b |\n")
    with pytest.raises(A2QFlowError, match="notes.rpt.*Site Type"):
        vitis.parse_utilization(bad)
    x = tmp_path / "x_csynth.xml"
    x.write_text("<profile><UserAssignments/></profile>")
    with pytest.raises(A2QFlowError, match="x_csynth.xml.*AreaEstimates"):
        vitis.parse_csynth_xml(x)
    x.write_text("<profile")
    with pytest.raises(A2QFlowError, match="not a readable csynth xml"):
        vitis.parse_csynth_xml(x)


def test_missing_tools_named_in_one_line():
    msg = vitis.missing_tools_message({"vitis_hls": None, "vitis-run": None, "vivado": None})
    assert "vitis_hls (or vitis-run) and vivado" in msg and "\n" not in msg
    assert vitis.missing_tools_message({"vitis_hls": None, "vitis-run": "/x", "vivado": None}).count("vivado") == 1
    assert vitis.missing_tools_message({"vitis_hls": "/a", "vitis-run": None, "vivado": "/b"}) is None
    assert vitis.missing_tools_message({"vitis_hls": "/a", "vitis-run": None, "vivado": None},
                                       need_vivado=False) is None


def test_run_vitis_without_tools_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(A2QFlowError, match=r"^--backend vitis needs vitis_hls \(or vitis-run\) and vivado"):
        vitis.run_vitis(tmp_path)


def test_collect_reports_finds_the_standard_locations(tmp_path):
    rep = tmp_path / "proj_a2q_top" / "sol1" / "syn" / "report"
    rep.mkdir(parents=True)
    shutil.copy(DATA / "a2q_top_csynth.xml", rep)
    (tmp_path / "reports").mkdir()
    shutil.copy(DATA / "utilization_ooc.rpt", tmp_path / "reports")
    shutil.copy(DATA / "utilization_impl.xml", tmp_path / "reports")
    out = vitis.collect_reports(tmp_path)
    assert out["csynth"]["resources"]["LUT"] == 3902
    assert [u["design_state"] for u in out["utilization"]] == ["Synthesized", "Routed"]
    md = vitis.vitis_markdown(out)
    assert "Vitis HLS estimate" in md and "Vivado report_utilization (Routed)" in md and "| 3120 | 2210 |" in md
    with pytest.raises(A2QFlowError, match="no proj_"):
        vitis.collect_reports(tmp_path / "reports")


def test_run_vitis_runs_both_scripts_in_build_hls_and_records_reports(tmp_path, monkeypatch):
    """Stand-in executables (the real tools cannot run here) check the runner's contract: cwd BUILD/hls, the
    scripts and A2Q_STEPS it passes, and that it parses what the tools leave behind."""
    bin_dir, hls = tmp_path / "bin", tmp_path / "build" / "hls"
    bin_dir.mkdir()
    hls.mkdir(parents=True)
    (hls / "run_hls.tcl").write_text("# generated\n")
    (bin_dir / "vitis_hls").write_text(
        "#!/bin/sh\n[ \"$1 $2\" = \"-f run_hls.tcl\" ] || exit 3\necho \"$A2Q_STEPS\" > steps.txt\n"
        f"mkdir -p proj_a2q_top/sol1/syn/report && cp {DATA}/a2q_top_csynth.xml proj_a2q_top/sol1/syn/report/\n")
    (bin_dir / "vivado").write_text(
        "#!/bin/sh\n[ \"$1 $2 $3 $4\" = \"-mode batch -source vivado.tcl\" ] || exit 3\n"
        f"mkdir -p reports && cp {DATA}/utilization_ooc.rpt reports/\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    res = vitis.run_vitis(tmp_path / "build", steps="csynth")
    assert (hls / "steps.txt").read_text().strip() == "csynth"
    assert res["csynth"]["resources"]["FF"] == 2417 and res["utilization"][0]["summary"]["LUT"] == 3120
    assert [r["command"].split()[0] for r in res["runs"]] == ["vitis_hls", "vivado"]
    saved = (tmp_path / "build" / "vitis" / "vitis.json").read_text()
    assert '"Vivado report_utilization (Synthesized)"' in saved
    (bin_dir / "vivado").write_text("#!/bin/sh\necho 'ERROR: [Common 17-69] Command failed: no license'\nexit 1\n")
    with pytest.raises(A2QFlowError, match=r"vivado failed \(exit 1\).*no license.*vivado.out"):
        vitis.run_vitis(tmp_path / "build", steps="csynth")


# ------------------------------------------------------------------------------------------------ real tool output
# tests/data/vitis/vivado_hls_*/ hold reports written by Vivado HLS itself, copied from public repositories (the
# README there names each file's source). They catch what hand-made samples cannot: old column names and the
# sub-module reports that share the folder with the top's.

def test_vivado_hls_dsp48e_column_is_read_as_dsp():
    r = vitis.parse_csynth_xml(DATA / "vivado_hls_2018.2_mnist" / "csynth.xml")
    assert r["version"] == "2018.2" and r["top"] == "c_mnist" and r["part"] == "xcvu13p-flga2577-2-e"
    assert r["resources"] == {"BRAM_18K": 3391, "DSP": 80, "FF": 14744, "LUT": 21133, "URAM": 0}
    assert r["available"]["DSP"] == 12288 and "DSP48E" not in r["available"]
    assert "| 80 |" in vitis.vitis_markdown({"csynth": r, "utilization": []})


def _report_folder(tmp_path, names):
    rep = tmp_path / "proj_x" / "solution1" / "syn" / "report"
    rep.mkdir(parents=True)
    for n in names:
        shutil.copy(DATA / "vivado_hls_2018.3_sobel" / n, rep / n)
    return rep


def test_collect_reports_takes_the_top_report_not_the_first_sub_module_in_sort_order(tmp_path):
    """Real folder: Filter2D_csynth.xml and Sobel_csynth.xml (sub-modules) sort before csynth.xml (the top)."""
    rep = _report_folder(tmp_path, ["Filter2D_csynth.xml", "Sobel_csynth.xml", "csynth.xml"])
    assert sorted(p.name for p in rep.glob("*_csynth.xml"))[0] == "Filter2D_csynth.xml"
    out = vitis.collect_reports(tmp_path, top="hls_sobel")
    assert out["csynth"]["top"] == "hls_sobel" and out["csynth"]["file"].endswith("/csynth.xml")
    assert out["csynth"]["resources"] == {"BRAM_18K": 9, "FF": 1680, "LUT": 4546, "DSP": 0}
    assert vitis.collect_reports(tmp_path, top=None)["csynth"]["top"] == "hls_sobel"
    # <top>_csynth.xml wins by name when present (Vitis HLS writes both)
    shutil.copy(rep / "Sobel_csynth.xml", rep / "Sobel_top_csynth.xml")
    assert vitis.find_top_csynth(rep, "Sobel_top").name == "Sobel_top_csynth.xml"


def test_collect_reports_fails_loudly_when_it_cannot_tell_the_top(tmp_path):
    _report_folder(tmp_path, ["Filter2D_csynth.xml", "Sobel_csynth.xml"])
    with pytest.raises(A2QFlowError, match=r"cannot tell the top's synthesis report: no csynth.xml among "
                                           r"Filter2D_csynth.xml, Sobel_csynth.xml"):
        vitis.collect_reports(tmp_path, top=None)


def test_collect_reports_refuses_a_report_of_another_top(tmp_path):
    _report_folder(tmp_path, ["Sobel_csynth.xml", "csynth.xml"])
    with pytest.raises(A2QFlowError, match=r"reports top 'hls_sobel', expected 'a2q_top'"):
        vitis.collect_reports(tmp_path)
