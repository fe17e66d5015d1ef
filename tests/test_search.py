"""Search: the ILP picks the least sensitive per-layer choice whose estimated LUTs fit, counts the next layer's
threshold memory in the coupling, returns distinct candidates, and a budget nothing fits is one line naming the
smallest design (exit 2) before any training starts."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from a2qflow.flows.cli import main
from a2qflow.flows.config import load_config
from a2qflow.flows.search import Option, layer_folding, layer_luts, option_space, out_channels, reference, solve_ilp

ROOT = Path(__file__).resolve().parents[1]
CFG = ROOT / "flows/configs/digits_mlp.yaml"


def _brute(space, drops, pair, last, budget):
    """Every combination: the least summed drop among those within budget (what the ILP must find)."""
    names = list(space)
    best = None
    for combo in itertools.product(*space.values()):
        ch = dict(zip(names, combo))
        luts = sum(pair[(names[i], ch[names[i]], ch[names[i + 1]])] for i in range(len(names) - 1))
        luts += last[ch[names[-1]]]
        drop = sum(drops[(l, o)] for l, o in ch.items())
        if luts <= budget and (best is None or drop < best[0] - 1e-12):
            best = (drop, ch, luts)
    return best


def test_space_reference_and_folding_follow_the_config():
    cfg = load_config(CFG)
    space = option_space(cfg, [3, 4], [0, 2])
    # data-type bound of K=64, 4-bit x and w: 64 * 8 * 16 = 8192 > 2^13 - 1, so 15 bits
    assert Option(4, 15) in space["fc0"] and Option(4, 13) in space["fc0"]
    assert reference(cfg, space) == {"fc0": Option(4, 15), "fc1": Option(4, 14), "fc2": Option(4, 14)}
    assert layer_folding(cfg) == {"fc0": (4, 4), "fc1": (4, 4), "fc2": (4, 2)}
    assert out_channels(cfg) == {"fc0": 32, "fc1": 32, "fc2": 10}


@pytest.mark.parametrize("frac", [0.45, 0.6, 0.8])
def test_ilp_matches_brute_force_under_the_budget(frac):
    cfg = load_config(CFG)
    space = option_space(cfg, [2, 3, 4], [0, 3])
    pair, last, _ = layer_luts(cfg, space)
    # a drop that prefers wide options, so the budget binds
    drops = {(l, o): (4 - o.bits) * 0.03 + (20 - o.P) * 0.001 * (i + 1) for i, l in enumerate(space)
             for o in space[l]}
    top = max(pair.values()) * 2 + max(last.values())
    got = solve_ilp(space, drops, pair, last, frac * top)
    want = _brute(space, drops, pair, last, frac * top)
    assert got is not None and want is not None
    choice, luts = got
    assert luts <= frac * top + 1e-6
    assert sum(drops[(l, o)] for l, o in choice.items()) == pytest.approx(want[0])
    # the next candidate is a different choice, and no better
    nxt, _ = solve_ilp(space, drops, pair, last, frac * top, exclude=[choice])
    assert nxt != choice and sum(drops[(l, o)] for l, o in nxt.items()) >= want[0] - 1e-9


def test_more_output_bits_cost_more_in_the_layer_before():
    cfg = load_config(CFG)
    space = option_space(cfg, [2, 4], [0])
    pair, _, _ = layer_luts(cfg, space)
    o = space["fc0"][0]
    # fc0 holds 2^b - 1 thresholds per channel for fc1's input bits b
    assert pair[("fc0", o, space["fc1"][-1])] > pair[("fc0", o, space["fc1"][0])]


def test_infeasible_budget_is_one_line_naming_the_smallest_design(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["search", str(CFG), "--budget-luts", "100", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no configuration fits 100 LUTs: the smallest design found is fc0b2P")
    assert "LUTs (estimate: a2qflow resource model" in err and len(err.splitlines()) == 1
    assert not (out / "sensitivity").exists()  # nothing was trained


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["search", str(CFG), "--budget-luts", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--budget-luts 0: must be a positive number of LUTs" in capsys.readouterr().err
    assert main(["search", str(CFG), "--budget-luts", "900", "--bits", "1,4", "--out", str(tmp_path / "s")]) == 2
    assert "--bits" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ DSP pricing
def _packed_cfg(tmp_path, family: str = "sb_mac16", packing: str = "auto"):
    import yaml

    d = yaml.safe_load(CFG.read_text())
    d["hw"]["dsp"] = {"packing": packing, "family": family}
    f = tmp_path / "packed.yaml"
    f.write_text(yaml.safe_dump(d))
    return f, load_config(f)


def test_tighter_p_buys_fewer_dsps_and_the_ilp_respects_the_dsp_budget(tmp_path):
    """hw.dsp.packing auto: a layer's DSP price is hw/compiler/dsp.py's slices at its option's P. On SB_MAC16 (16-bit
    operand) two 4-bit lanes need P + 4 + 1 <= 16, so fc0 (SIMD 4 x PE 4) costs 8 slices at P = 11 and 16 at its
    data-type bound 15; a DSP budget the wide options break makes the ILP take the tight ones, and a budget below
    the fewest slices is infeasible."""
    from a2qflow.flows.search import layer_dsps
    from a2qflow.hw.compiler import dsp

    _, cfg = _packed_cfg(tmp_path)
    space = option_space(cfg, [4], [0, 2, 4])
    dsps = layer_dsps(cfg, space)
    assert dsps[("fc0", Option(4, 11))] == dsp.slices(4, 4, 2) == 8
    assert dsps[("fc0", Option(4, 13))] == dsps[("fc0", Option(4, 15))] == dsp.slices(4, 4, 1) == 16
    assert dsps[("fc2", Option(4, 10))] == 4 and dsps[("fc2", Option(4, 14))] == 8  # fc2: SIMD 4 x PE 2
    assert layer_dsps(_packed_cfg(tmp_path, packing="off")[1], space) == {}  # packing off: LUT MACs, no DSP price
    pair, last, _ = layer_luts(cfg, space)
    drops = {(l, o): (20 - o.P) * 0.01 for l in space for o in space[l]}  # accuracy prefers the widest P
    wide, _ = solve_ilp(space, drops, pair, last, float("inf"))
    assert wide == {l: max(space[l], key=lambda o: o.P) for l in space}
    fewest = sum(min(v for (l, _), v in dsps.items() if l == name) for name in space)
    tight, _ = solve_ilp(space, drops, pair, last, float("inf"), dsps=dsps, budget_dsp=fewest)
    assert sum(dsps[(l, o)] for l, o in tight.items()) <= fewest
    assert tight["fc0"].P <= 11 and tight["fc2"].P <= 11
    assert solve_ilp(space, drops, pair, last, float("inf"), dsps=dsps, budget_dsp=fewest - 1) is None


def test_dsp_budget_nothing_fits_is_one_line_before_training(tmp_path, capsys):
    f, _ = _packed_cfg(tmp_path)
    out = tmp_path / "s"
    assert main(["search", str(f), "--budget-luts", "1000000", "--budget-dsp", "3", "--bits", "4",
                 "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no configuration fits --budget-dsp 3: the fewest sb_mac16 slices")
    assert len(err.splitlines()) == 1 and not (out / "sensitivity").exists()
