"""Unrolled (constant-weight) architecture: config and plan record it, the RTL equals the golden model bit for bit
at one vector per clock (exact, wrapping and pipelined, mixed with folded layers, under back-pressure), the HLS
counterpart equals it in C-sim, and the datapath really is what the architecture promises (signed digits, exact
node widths capped at P, zero weights gone, never / always-firing thresholds tied off)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _rtl_util import conv_net, dense_chain, random_and_worst_case_inputs
from hypothesis import given
from hypothesis import strategies as st

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.bounds import channel_ranges
from a2qflow.hw.compiler.csd import csd, csd_count
from a2qflow.hw.compiler.ir import IntType, Model, save_model
from a2qflow.hw.compiler.plan import load_plan, make_plan, save_plan
from a2qflow.hw.config import ArchitectureConfig, Folding, FoldingConfig, HardwareConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.rtl.generate import generate
from a2qflow.hw.rtl.sim import lint, run_rtlsim
from a2qflow.hw.rtl.unrolled import _thermometer_count, build_channels, range_bits

U4 = IntType(4, False)


def _build(tmp_path, model, acc_bits=None, default="unrolled", layers=None, depth=0):
    arch = ArchitectureConfig(default=default, layers=layers or {}, pipeline_depth=depth)
    save_model(model, tmp_path)
    plan = make_plan(model, acc_bits=acc_bits, allow_unsafe=True, folding=FoldingConfig(default=Folding(simd=4, pe=2)),
                     architecture=arch)
    save_plan(plan, tmp_path)
    return plan


def _rtl_equals_golden(build, model, x, stall=0):
    res = run_rtlsim(build, x, stall_percent=stall, seed=1)
    golden = reference.run(model, x, load_plan(build).acc_bits())
    np.testing.assert_array_equal(np.load(build / "rtlsim" / "outputs.npy"), golden.acc)
    assert res["mismatches"] == 0 and res["samples"] == len(x)
    return res, golden


@given(st.integers(-(1 << 20), 1 << 20))
def test_csd_digits_sum_to_the_weight_and_are_non_adjacent(w):
    d = csd(w)
    assert sum(sign << shift for shift, sign in d) == w
    shifts = [s for s, _ in d]
    assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))
    assert len(d) <= len(bin(abs(w))) - 2  # never more digits than plain binary


def test_thermometer_to_count_is_exact():
    for n in range(1, 16):
        for m in range(n + 1):
            t = ["1'b1"] * m + ["1'b0"] * (n - m)
            bits = _thermometer_count(t)
            assert all(b in ("1'b0", "1'b1") for b in bits)
            assert sum((b == "1'b1") << i for i, b in enumerate(bits)) == m


def test_tree_nodes_have_exact_widths_capped_at_p_and_zero_weights_vanish():
    w = np.array([[1] * 12, [7, -7, 0, 0, 3, -3, 0, 0, 0, 0, 0, 5], [0] * 12])
    thr = np.array([[-5, 0, 10, 200, 500], [-300, -1, 0, 1, 300], [-1, 0, 1, 2, 3]])
    tb, chans = build_channels(w, U4, 10, thr)
    for n in tb.nodes:
        assert n.width == min(range_bits(n.lo, n.hi), 10 - n.shift)
    lo, hi = channel_ranges(w, U4)
    assert chans[0].pos.width == range_bits(0, 180) == 8 and chans[0].neg is None  # twelve x, 8 bits, no - tree
    # channel 0 spans [0, 180]: T = -5 and 0 always fire, T = 200 and 500 never; only T = 10 is a comparator
    assert chans[0].compares[:2] == ["1'b1", "1'b1"] and chans[0].compares[3:] == ["1'b0", "1'b0"]
    assert chans[0].width == 9 and (chans[0].acc_lo, chans[0].acc_hi) == (int(lo[0]), int(hi[0]))
    assert chans[2].pos is None and chans[2].neg is None and set(chans[2].compares) <= {"1'b0", "1'b1"}
    assert chans[0].compares[2].startswith("($signed(acc0) >=")
    # channel 1 has 2 + 2 + 2 + 2 + 2 nonzero signed digits (7 = 8 - 1, 3 = 4 - 1, 5 = 4 + 1)
    assert csd_count(w[1]) == 10


def test_config_and_plan_record_the_architecture(tmp_path):
    hw = HardwareConfig.model_validate({"architecture": "unrolled", "pipeline_depth": 2,
                                        "layers": {"fc1": {"architecture": "folded"}}})
    plan = make_plan(dense_chain(), architecture=hw.architecture_config())
    got = {l.name: (l.architecture, l.pipeline_depth, l.simd, l.pe) for l in plan.layers}
    assert got == {"fc0": ("unrolled", 2, 12, 8), "fc1": ("folded", 0, 8, 3), "fc.out": ("unrolled", 2, 6, 5)}
    assert "unrolled" in plan.table()
    w = dense_chain().layers[0].weights
    assert plan.layers[0].signed_digits == csd_count(w) and plan.layers[0].nonzero_weights == int((w != 0).sum())
    # a global `unrolled` leaves convolutions folded; an explicit one on a conv unrolls it (SIMD = K, PE = C), on a
    # depthwise conv it is refused, naming the field
    conv = make_plan(conv_net(), architecture=ArchitectureConfig(default="unrolled"))
    assert [l.architecture for l in conv.layers] == ["folded", "folded", "unrolled"]
    named = make_plan(conv_net(), architecture=ArchitectureConfig(layers={"conv0": "unrolled"})).layers[0]
    assert (named.architecture, named.simd, named.pe) == ("unrolled", 9, 4)
    from _graph_models import depthwise_model

    with pytest.raises(A2QFlowError, match=r"hw.layers.dw.architecture: unrolled is implemented for dense and conv"):
        make_plan(depthwise_model(), architecture=ArchitectureConfig(layers={"dw": "unrolled"}))
    with pytest.raises(A2QFlowError, match=r"hw.layers.fc9: the model has no MAC layer named 'fc9'"):
        make_plan(dense_chain(), architecture=ArchitectureConfig(layers={"fc9": "unrolled"}))
    with pytest.raises(A2QFlowError, match=r"hw.folding.layers.fc0: layer fc0 is unrolled"):
        make_plan(dense_chain(), folding=FoldingConfig(layers={"fc0": Folding(simd=4, pe=2)}),
                  architecture=ArchitectureConfig(default="unrolled"))


def test_bad_architecture_in_yaml_is_one_line(tmp_path, capsys):
    from a2qflow.flows.config import load_hw_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("hw:\n  layers: {fc0: {architecture: unrolld}}\n")
    with pytest.raises(A2QFlowError, match=r"hw.layers.fc0.architecture"):
        load_hw_config(cfg)


def test_unrolled_dense_chain_equals_golden_at_one_vector_per_clock(tmp_path):
    model = dense_chain(seed=3)
    _build(tmp_path, model)
    rtl = generate(tmp_path)
    assert lint(rtl) == []
    man = json.loads((rtl / "manifest.json").read_text())
    assert man["in_lanes"] == 12 and man["out_lanes"] == 5 and set(man["architecture"].values()) == {"unrolled"}
    res, _ = _rtl_equals_golden(tmp_path, model, random_and_worst_case_inputs(model, 60, seed=4))
    assert res["initiation_interval_cycles"] == 1.0 and res["cycles_per_inference"] == 4  # 3 layer registers
    top = (rtl / "a2q_top.v").read_text()
    assert "(* keep *) wire" in top and "a2q_mvau #" not in top and not man["mem_files"]


def test_mixed_pipelined_wrapping_unrolled_layer_under_backpressure(tmp_path):
    """fc1 unrolled with 2 pipeline stages between folded layers, at a width where accumulators wrap."""
    model = dense_chain(seed=3)
    _build(tmp_path, model, acc_bits=7, default="folded", layers={"fc1": "unrolled"}, depth=2)
    assert lint(generate(tmp_path)) == []
    res, golden = _rtl_equals_golden(tmp_path, model, random_and_worst_case_inputs(model, 40, seed=5), stall=30)
    assert golden.overflow_events > 0  # the narrow case really wraps


def test_unrolled_dense_after_folded_conv_and_pool(tmp_path):
    """Global unrolled on a CNN: convolutions stay folded, the dense layer collects the HWC stream (s2p)."""
    model = conv_net(seed=5)
    _build(tmp_path, model)
    _rtl_equals_golden(tmp_path, model, random_and_worst_case_inputs(model, 20, seed=6))


def test_hls_unrolled_csim_equals_golden(tmp_path):
    from a2qflow.hw.hls.csim import run_csim
    from a2qflow.hw.hls.generate import generate as hls_generate

    model = dense_chain(seed=3)
    _build(tmp_path, model, acc_bits=7, layers={"fc1": "folded"})
    hls = hls_generate(tmp_path)
    top = (hls / "top.cpp").read_text()
    assert top.count("dense_unrolled<") == 2 and top.count("mvau<") == 1
    x = random_and_worst_case_inputs(model, 40, seed=7)
    cs = run_csim(tmp_path, x, progress=False, write=False)
    golden = reference.run(model, x, load_plan(tmp_path).acc_bits())
    np.testing.assert_array_equal(cs.outputs, golden.acc)
    assert golden.overflow_events > 0


@pytest.mark.slow
def test_digits_mlp_unrolled_whole_test_set(digits_mlp_a2q, tmp_path):
    """The trained demo MLP, every layer unrolled: Verilator == golden == C-sim on every test image, II 1."""
    from a2qflow.hw.compiler.compile import compile_model

    build = tmp_path / "build"
    compile_model(digits_mlp_a2q / "model.onnx", build, architecture=ArchitectureConfig(default="unrolled"))
    x, y = np.load(digits_mlp_a2q / "test_inputs.npy"), np.load(digits_mlp_a2q / "test_labels.npy")
    res = run_rtlsim(build, x, csim_outputs=_csim_outputs(build, x), labels=y)
    assert res["mismatches"] == 0 and res["csim_mismatches"] == 0 and res["samples"] == len(x)
    assert res["initiation_interval_cycles"] == 1.0 and res["top1_accuracy"] > 0.8


@pytest.mark.slow
def test_mnist5k_mlp_unrolled_equals_golden_at_one_vector_per_clock(tmp_path):
    """The MNIST MLP (784-64-32-10, A2Q+ P=12, the packaged 5,000-image subset, short recipe): every layer unrolled,
    Verilator == golden model on 300 test images and on per-channel worst-case inputs, one vector per clock."""
    from _rtl_util import random_and_worst_case_inputs as worst
    from _training_util import train_run

    from a2qflow.hw.compiler.compile import compile_model
    from a2qflow.hw.compiler.frontend import load_qonnx

    class _Factory:  # train_run wants a tmp_path_factory
        def mktemp(self, name):
            (tmp_path / name).mkdir()
            return tmp_path / name

    run = train_run(_Factory(), "mnist5k_mlp", data={"dataset": "mnist5k"}, model={"kind": "mlp", "hidden": [64, 32]},
                    quant={"weight_quant": "a2q+"}, train={"epochs": 2, "float_reference": True,
                                                           "finetune_epochs": 2, "calibration_batches": 20})
    build = tmp_path / "build"
    compile_model(run / "model.onnx", build, architecture=ArchitectureConfig(default="unrolled"))
    x, y = np.load(run / "test_inputs.npy")[:300], np.load(run / "test_labels.npy")[:300]
    res = run_rtlsim(build, x, labels=y)
    assert res["mismatches"] == 0 and res["samples"] == 300 and res["initiation_interval_cycles"] == 1.0
    assert res["top1_accuracy"] > 0.7
    model = load_qonnx(run / "model.onnx")
    _rtl_equals_golden(build, model, worst(model, 20, seed=4))


def test_32_bit_and_data_type_designs_keep_the_architecture_and_the_data_type_one_uses_each_layers_bound(tmp_path):
    from a2qflow.hw.synth.yosys import make_baseline32, make_comparison_design

    model = dense_chain(seed=3)
    _build(tmp_path, model, layers={"fc1": "folded"}, depth=1)
    b32, bdt = load_plan(make_baseline32(tmp_path)), load_plan(make_comparison_design(tmp_path, "datatype"))
    mine = load_plan(tmp_path)
    for p in (b32, bdt):
        assert [(l.architecture, l.pipeline_depth, l.simd, l.pe) for l in p.layers] == \
               [(l.architecture, l.pipeline_depth, l.simd, l.pe) for l in mine.layers]
    assert set(b32.acc_bits().values()) == {32} and bdt.policy == "datatype"
    assert bdt.acc_bits() == {l.name: l.acc_bits_datatype for l in mine.layers}
    man = json.loads((tmp_path / "baseline_datatype" / "rtl" / "manifest.json").read_text())
    assert man["acc_bits"] == bdt.acc_bits() and man["architecture"]["fc1"] == "folded"
    assert {l.tree_widths for l in bdt.layers} == {"acc_bits"} and {l.tree_widths for l in mine.layers} == {"exact"}


@given(st.lists(st.integers(0, 60), max_size=40), st.integers(1, 100))
def test_channel_groups_cover_every_channel_once_within_the_term_budget(terms, budget):
    from a2qflow.hw.synth.split import channel_groups

    groups = channel_groups(terms, budget)
    assert [c for c0, c1 in groups for c in range(c0, c1)] == list(range(len(terms)))
    for c0, c1 in groups:
        assert c1 > c0 and (sum(terms[c0:c1]) <= budget or c1 - c0 == 1)
    for (a0, a1), (b0, _) in zip(groups, groups[1:]):  # greedy: the next channel would not have fitted
        assert sum(terms[a0:a1]) + terms[b0] > budget


def test_channel_terms_count_the_signed_digits():
    from a2qflow.hw.synth.split import channel_terms

    w = np.array([[7, 0, -3, 1], [0, 0, 0, 0]])
    assert channel_terms(w) == [csd_count(w[0]), 0] == [5, 0]


@pytest.mark.slow
def test_channel_group_synthesis_sums_groups_and_caches_them(tmp_path, monkeypatch):
    """Each group has its own output register and one handshake flip-flop: FFs add up exactly; a re-run is read
    from the cache (keyed by the group's Verilog, the yosys command and version) with the same counts."""
    from a2qflow.hw.synth.split import channel_groups, channel_terms, synth_layer_in_groups

    monkeypatch.setenv("A2QFLOW_CACHE", str(tmp_path / "cache"))
    model = dense_chain(seed=3)
    _build(tmp_path / "b", model)
    terms = channel_terms(model.layers[0].weights)
    budget = sum(terms[:3])
    r = synth_layer_in_groups(tmp_path / "b", "fc0", tmp_path / "groups", max_terms=budget)
    assert [tuple(g["channels"]) for g in r["per_group"]] == [(a, b - 1) for a, b in channel_groups(terms, budget)]
    assert r["per_group"][0]["channels"] == [0, 2] and r["groups"] >= 3 and r["cached_groups"] == 0
    assert r["total"]["FF"] == 8 * 4 + r["groups"]  # 8 channels x UINT4 outputs + one valid flip-flop per group
    assert r["total"]["LUT"] == sum(g["LUT"] for g in r["per_group"]) > 0
    assert f"sum of {r['groups']} channel-group runs" in r["label"]
    again = synth_layer_in_groups(tmp_path / "b", "fc0", tmp_path / "groups2", max_terms=budget)
    assert again["cached_groups"] == r["groups"] and again["total"] == r["total"]


def test_channel_group_is_the_generated_layer_logic_for_a_dense_layer_on_an_image(tmp_path):
    """A group of all channels renders the very module the layer generator wrote, here for a first dense layer on a
    (C, H, W) input, whose weights the design reads in HWC order (the CHW matrix would be different logic)."""
    from a2qflow.hw.compiler.plan import load_build
    from a2qflow.hw.rtl.generate import dense_weight_matrix, input_shapes
    from a2qflow.hw.synth.split import render_group

    m = dense_chain(seed=3)
    m = Model(m.name, (3, 2, 2), m.input_quant, m.layers)
    _build(tmp_path, m)
    top = (generate(tmp_path) / "a2q_top.v").read_text()
    model, plan = load_build(tmp_path)
    fc0 = model.layers[0]

    def body(wm):
        text = render_group(fc0, plan.layer("fc0"), wm, 0, fc0.out_channels, "a2q_layer_fc0", False)
        return "\n".join(x for x in text.splitlines() if "channels 0..7" not in x and "default_nettype" not in x)

    assert body(dense_weight_matrix(fc0, input_shapes(model)["fc0"])) in top
    assert body(fc0.weights) not in top


@pytest.mark.slow
def test_synth_splits_unrolled_layers_and_keeps_folded_ones_in_the_top_run(tmp_path, monkeypatch):
    """synthesize(): unrolled layers are black boxes in the top run and sums of group runs in the entry; a folded
    layer is counted from the top run; the total is the top run plus the groups; the label says so."""
    from a2qflow.hw.synth.yosys import synthesize

    monkeypatch.setenv("A2QFLOW_CACHE", str(tmp_path / "cache"))
    _build(tmp_path, dense_chain(seed=3), layers={"fc1": "folded"})
    e = synthesize(tmp_path, baseline32=False).entries[0]
    assert "blackbox a2q_layer_fc0" in e["command"] and "blackbox a2q_layer_fc1" not in e["command"]
    assert "channel-group runs" in e["label"] and "fc0" in e["label"]
    layers = e.layers
    assert layers["fc0"]["split"]["groups"] >= 1 and "split" not in layers["fc1"]
    assert layers["fc0"]["LUT"] > 0 and layers["fc1"]["LUT"] > 0
    assert e.total["LUT"] >= sum(v["LUT"] for v in layers.values())
    assert e.total["FF"] >= sum(v["FF"] for v in layers.values())


@pytest.mark.slow
def test_synth_splits_unrolled_convolutions_and_stream_fed_dense_layers_like_a_whole_run(tmp_path, monkeypatch):
    """A CNN unrolled end to end: each conv's constant-weight core and the dense layer behind the pool are channel
    groups, the conv's line buffer and serialiser stay in the top run. With the wide streams (docs/rtl.md) the cores
    take one whole window per clock and the dense layer one pixel beat, so none needs an s2p adapter run of its own.
    Against one whole-design run: FFs equal up to one valid flip-flop per extra group, LUTs close (channels share
    no logic); the per-layer figures add up to the total."""
    from a2qflow.hw.synth.yosys import Flow, synth_design, synthesize

    monkeypatch.setenv("A2QFLOW_CACHE", str(tmp_path / "cache"))
    b = tmp_path / "b"
    _build(b, conv_net(seed=5), layers={"conv0": "unrolled", "conv1": "unrolled"})
    e = synthesize(b, baseline32=False).entries[0]
    for box in ("a2q_layer_conv0_core", "a2q_layer_conv1_core", "a2q_layer_fc0_core"):
        assert f"blackbox {box}\n" in e["command"]
    assert "blackbox a2q_layer_conv0\n" not in e["command"]  # the wrapper (a2q_swg -> core -> a2q_p2s) is synthesised
    assert "blackbox a2q_layer_fc0\n" not in e["command"]  # so is fc0's (its a2q_s2p gathers the pool's pixel beats)
    split = {n: e.layers[n]["split"] for n in ("conv0", "conv1", "fc0")}
    assert all(s["s2p"] is None and s["groups"] >= 1 for s in split.values())
    (b / "whole").mkdir()
    whole = synth_design(b / "rtl", b, b / "whole", Flow("xc7", "lut-only"), "whole", split=False)
    extra = sum(s["groups"] - 1 for s in split.values())  # one valid flip-flop per group beyond the first
    assert e.total["FF"] == whole["total"]["FF"] + extra
    assert abs(e.total["LUT"] - whole["total"]["LUT"]) <= 0.1 * whole["total"]["LUT"]
    assert sum(v["LUT"] for v in e.layers.values()) <= e.total["LUT"]
    assert sum(v["FF"] for v in e.layers.values()) <= e.total["FF"]


def test_uniform_width_trees_of_the_32_bit_and_data_type_designs_wrap_like_the_golden_model(tmp_path):
    """The comparison designs' unrolled trees (every adder acc_bits wide) are exact too, also where they wrap."""
    model = dense_chain(seed=3)
    plan = _build(tmp_path, model, acc_bits=7)
    for l in plan.layers:
        l.tree_widths = "acc_bits"
    save_plan(plan, tmp_path)
    top = (generate(tmp_path) / "a2q_top.v").read_text()
    assert "every adder ACC_BITS wide" in top
    _, golden = _rtl_equals_golden(tmp_path, model, random_and_worst_case_inputs(model, 30, seed=8))
    assert golden.overflow_events > 0


def _csim_outputs(build, x):
    """The HLS C-sim's outputs on `x` (the flow compares the two backends; neither imports the other)."""
    from a2qflow.hw.hls.csim import run_csim

    return run_csim(build, x, monitor=False, progress=False, write=False).outputs
