"""Sweep additions of the unrolled architecture issue: points per architecture, the qat32 method (unconstrained QAT,
32-bit accumulators), and LUTs at iso-accuracy computed from measured points (never estimated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2qflow.flows.config import load_config
from a2qflow.flows.iso_accuracy import iso_accuracy, iso_markdown, plot_iso_accuracy
from a2qflow.flows.sweep import make_points, sweep_markdown
from a2qflow.hw.errors import A2QFlowError

ROOT = Path(__file__).resolve().parents[1]


def test_points_per_architecture_and_the_qat32_method():
    cfg = load_config(ROOT / "flows/configs/digits_mlp.yaml")
    pts = make_points(cfg, [12], methods=["a2q+", "qat32"], architectures=["folded", "unrolled"],
                      qat32_bits=[3, 4])
    assert [p.name for p in pts] == ["a2q+-W4-P12", "qat32-W3", "qat32-W4", "a2q+-W4-P12-unrolled",
                                     "qat32-W3-unrolled", "qat32-W4-unrolled"]
    assert [p.config["hw"]["architecture"] for p in pts] == ["folded"] * 3 + ["unrolled"] * 3
    q = pts[2].config["quant"]
    assert (q["weight_quant"], q["weight_bits"], q["input_bits"], q["act_bits"]) == ("unconstrained", 4, 4, 4)
    assert [p.forced_acc_bits for p in pts] == [None, 32, 32, None, 32, 32]
    # the config's float-twin recipe (auto + float_reference) holds for every point: each trains its own twin
    assert [p.config["train"]["float_reference"] for p in pts] == [True] * 6
    scratch = cfg.model_copy(update={"train": cfg.train.model_copy(update={"recipe": "scratch"})})
    assert [p.config["train"]["float_reference"] for p in make_points(scratch, [12, 16], methods=["a2q"])] == \
        [True, False]  # scratch training: one float twin, for the reference line
    assert len({p.config["name"] for p in pts}) == len(pts)  # every point its own run name
    with pytest.raises(A2QFlowError, match="--architecture folded,unroled: choose from folded, unrolled"):
        make_points(cfg, [12], architectures=["folded", "unroled"])


def _pt(name, method, acc, luts, arch="folded"):
    return {"name": name, "method": method, "accuracy": acc, "luts": luts, "status": "ok", "architecture": arch,
            "luts_tool": "yosys (test)"}


def test_iso_accuracy_takes_the_cheapest_design_on_each_side_per_level():
    pts = [_pt("a2q-P10", "a2q", 0.90, 500), _pt("a2q+-P12", "a2q+", 0.95, 800), _pt("a2q-P16", "a2q", 0.96, 1500),
           _pt("q-W3", "qat32", 0.91, 1200), _pt("q-W4", "qat32", 0.955, 2400), _pt("q-W8", "qat32", 0.97, 5000),
           _pt("naive", "naive", 0.99, 10), _pt("u-a2q", "a2q", 0.95, 100, "unrolled")]  # ignored: other method /
    iso = iso_accuracy(pts, float_acc=0.96)                                            # no unrolled qat32 point
    assert list(iso) == ["folded"]
    levels = {round(r["accuracy"], 3): r for r in iso["folded"]["levels"]}
    assert levels[0.9]["ratio"] == round(1200 / 500, 3) and levels[0.9]["a2q_point"] == "a2q-P10"
    assert levels[0.95]["baseline_point"] == "q-W4" and levels[0.95]["a2q_point"] == "a2q+-P12"
    assert levels[0.96]["ratio"] == round(5000 / 1500, 3)
    assert 0.97 not in levels  # no A2Q design reaches it: no ratio, nothing extrapolated
    best = iso["folded"]["best"]  # >= 99 % of 0.96 = 0.9504: levels 0.955 and 0.96 qualify
    assert best["accuracy"] == 0.96 and best["ratio"] == 3.333
    md = "\n".join(iso_markdown(iso))
    assert "**3.333x**" in md and "q-W8 (5000 LUTs) vs a2q-P16 (1500 LUTs)" in md


def test_sweep_markdown_and_plot_carry_the_iso_accuracy_section(tmp_path):
    pts = [_pt("a", "a2q", 0.9, 500), _pt("b", "qat32", 0.92, 1500)]
    for p in pts:
        p.update(target_acc_bits=12, weight_bits=4, input_bits=4, acc_bits_built=12, acc_bits_datatype=15,
                 accuracy_source="C-sim", overflow_events=0, luts_baseline32=None, reason="")
    iso = iso_accuracy(pts, None)
    s = {"name": "t", "config": "c.yaml", "epochs": 1, "stages": ["synth"], "float_accuracy": None,
         "methods": ["a2q", "qat32"], "points": pts, "plots": [], "iso_accuracy": iso}
    assert "LUTs at iso-accuracy" in sweep_markdown(s) and "**3.0x**" in sweep_markdown(s)
    assert plot_iso_accuracy(iso, tmp_path / "iso.png").read_bytes()[:4] == b"\x89PNG"
    assert "Not computed" in "\n".join(iso_markdown({}))


def test_lut_sites_count_lut_ram_by_the_sites_it_occupies():
    from a2qflow.hw.synth.cells import classify, lut_sites

    total = classify("xc7", {"LUT2": 10, "LUT6": 5, "RAM64M": 3, "RAM64X1D": 2, "SRLC32E": 1, "FDRE": 7})
    assert total["LUT"] == 15 and total["LUTRAM"] == 6
    assert lut_sites("xc7", total) == 15 + 3 * 4 + 2 * 2 + 1  # RAM64M 4 sites, RAM64X1D 2, SRLC32E 1; FFs none
    assert lut_sites("ice40", classify("ice40", {"SB_LUT4": 3})) is None  # only the xc7 count is defined
    assert lut_sites("xc7", {"LUT": 4}) is None  # a stored total without its raw cells: not guessed


def test_iso_accuracy_states_the_lut_ram_ratio_of_the_same_designs_when_measured():
    pts = [dict(_pt("a", "a2q+", 0.95, 1000), lut_sites=1400), dict(_pt("q", "qat32", 0.95, 3000), lut_sites=3400)]
    iso = iso_accuracy(pts, float_acc=0.95)
    best = iso["folded"].best
    assert (best.ratio, best.a2q_lut_sites, best.baseline_lut_sites) == (3.0, 1400, 3400)
    assert best.ratio_lut_sites == round(3400 / 1400, 3)
    md = "\n".join(iso_markdown(iso))
    assert "3400 vs 1400: 2.429x" in md and "ratio incl. LUT RAM" in md
    plain = "\n".join(iso_markdown(iso_accuracy([_pt("a", "a2q+", 0.95, 1000), _pt("q", "qat32", 0.95, 3000)], 0.95)))
    assert "LUT RAM" not in plain  # points without the count (older sweep.json): the table stays as it was
