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
from a2qflow.hw.errors import A2QFlowError

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


def test_bits_range_is_the_configs(tmp_path, capsys):
    """--bits offers what a config accepts (training.config: QUANT_BITS_MIN..QUANT_BITS_MAX, 2..16), no narrower
    range of its own: a width past the config's is one line naming --bits and the range; the config's widest is
    accepted by the same check, and the config itself rejects one past it."""
    from pydantic import ValidationError

    from a2qflow.flows.search import check_search_args
    from a2qflow.training.config import QUANT_BITS_MAX, QUANT_BITS_MIN, QuantConfig

    too_wide = str(QUANT_BITS_MAX + 1)
    assert main(["search", str(CFG), "--budget-luts", "900", "--bits", f"4,{too_wide}", "--out",
                 str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --bits") and f"{QUANT_BITS_MIN}..{QUANT_BITS_MAX}" in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "s").exists()
    check_search_args(900, None, [QUANT_BITS_MIN, 8, QUANT_BITS_MAX], "a2q+", 1)  # 16 was refused (2..8) before
    with pytest.raises(A2QFlowError, match=rf"--bits 1,4: every value must be in {QUANT_BITS_MIN}..{QUANT_BITS_MAX}"):
        check_search_args(900, None, [1, 4], "a2q+", 1)
    with pytest.raises(ValidationError):
        QuantConfig(weight_bits=QUANT_BITS_MAX + 1)
    assert QuantConfig(weight_bits=QUANT_BITS_MAX).weight_bits == QUANT_BITS_MAX


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


def _unrolled(cfg):
    return cfg.model_copy(update={"hw": cfg.hw.model_copy(update={"architecture": "unrolled"})})


def test_search_on_an_unrolled_config_prices_unrolled_layers():
    """hw.architecture: unrolled gives every dense layer the compiler's unrolled choice (SIMD = K, PE = C) and the
    ILP's LUTs are the unrolled datapath's estimate at the A2Q signed-digit bound, not the folded MVAU's."""
    from a2qflow.flows.search import layer_choices, signed_digit_bound
    from a2qflow.hw.compiler.folding import FoldingChoice
    from a2qflow.hw.synth.estimate import LayerShape, estimate_layer

    folded, cfg = load_config(CFG), _unrolled(load_config(CFG))
    assert layer_choices(cfg) == {"fc0": FoldingChoice("unrolled", 64, 32), "fc1": FoldingChoice("unrolled", 32, 32),
                                  "fc2": FoldingChoice("unrolled", 32, 10)}
    space = option_space(cfg, [2, 4], [0, 6])
    pair, last, _ = layer_luts(cfg, space, "a2q+")
    fpair, flast, _ = layer_luts(folded, space, "a2q+")
    o, o2 = space["fc0"][-1], space["fc1"][-1]
    digits = signed_digit_bound(64, 32, o, False, "a2q+")
    want = estimate_layer(LayerShape(K=64, C=32, simd=64, pe=32, N=o.bits, M=o.bits, P=o.P, architecture="unrolled",
                                     signed_digits=digits, n_thr=2 ** o2.bits - 1, thr_bits=o.P, out_bits=o2.bits))
    assert pair[("fc0", o, o2)] == pytest.approx(want.LUT) and want.source.startswith("estimate:")
    assert pair[("fc0", o, o2)] != pytest.approx(fpair[("fc0", o, o2)])
    # A2Q's budget is what shrinks an unrolled layer: a smaller P allows fewer digits (at P = 8 the L1 budget, 16
    # per channel, binds before K x 2 digits of 4-bit weights), so fewer LUTs
    lo, hi = (min((x for x in space["fc2"] if x.bits == 4), key=lambda x: x.P),
              max((x for x in space["fc2"] if x.bits == 4), key=lambda x: x.P))
    assert signed_digit_bound(32, 10, lo, False, "a2q+") < signed_digit_bound(32, 10, hi, False, "a2q+")
    assert last[lo] < last[hi] and flast[lo] > 0


def test_signed_digit_bound_is_never_below_a_trained_layer():
    """The bound holds for every weight matrix A2Q+ allows: digits <= min(K x max digits, L1 budget) per channel."""
    import numpy as np

    from a2qflow.flows.search import signed_digit_bound
    from a2qflow.hw.compiler.csd import csd_count, max_csd_digits
    from a2qflow.hw.compiler.ir import IntType
    from a2qflow.training.quant import l1_budget

    assert [max_csd_digits(b) for b in (2, 3, 4, 5, 8)] == [1, 2, 2, 3, 4]
    rng = np.random.default_rng(0)
    o = Option(4, 10)
    budget = int(l1_budget("a2q+", o.P, IntType(4, False)))
    for _ in range(50):
        w = rng.integers(-8, 8, (6, 40))
        for row in w:  # zero weights until the channel's L1 norm fits the budget, as A2Q+ training guarantees
            while np.abs(row).sum() > budget:
                row[rng.choice(np.flatnonzero(row))] = 0
        assert csd_count(w) <= signed_digit_bound(40, 6, o, False, "a2q+")


def test_search_cli_on_an_unrolled_config_names_the_unrolled_estimate(tmp_path, capsys):
    """`a2qflow search` on hw.architecture: unrolled: the infeasible-budget line names the smallest design at the
    unrolled datapath's estimate (the ILP's minimum over the unrolled prices), before any training."""
    text = CFG.read_text().replace("hw:\n", "hw:\n  architecture: unrolled\n", 1)
    cfg_path = tmp_path / "unrolled.yaml"
    cfg_path.write_text(text)
    cfg = load_config(cfg_path)
    assert cfg.hw.architecture == "unrolled"
    space = option_space(cfg, [2, 3, 4], [0, 2, 4])
    pair, last, glue = layer_luts(cfg, space, "a2q+")
    _, smallest = solve_ilp(space, {}, pair, last, float("inf"), minimise_luts=True)
    out = tmp_path / "s"
    assert main(["search", str(cfg_path), "--budget-luts", "100", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the smallest design found is fc0b2P" in err and f"at {round(smallest + glue)} LUTs (estimate:" in err
    assert not (out / "sensitivity").exists()
