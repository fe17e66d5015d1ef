"""HLS backend on graph models: forks, joins, depthwise / average pooling / add / requant kernels.

Every model of tests/_graph_models.py goes through the generated C++ (g++ C-sim) and must equal the golden model bit
for bit on random and saturating inputs with 0 overflow events at the planned widths; one layer forced below its
exact bound must overflow exactly as the golden model's wrap mode says. The dataflow model (hw/hls/dataflow.py)
checks that the skip FIFOs the generator sizes keep the dataflow from deadlocking. Each C-sim compiles in seconds.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from _graph_models import ALL, S4, U4, first_layer_model, input_fork_model, three_reader_model, thresholds
from _hls_util import random_inputs, write_build
from hypothesis import given, settings
from hypothesis import strategies as st

from a2qflow.hw.compiler.bounds import worst_case_inputs
from a2qflow.hw.compiler.ir import Affine, AvgPoolLayer, InputQuant, IntType, Model, RequantLayer, save_model
from a2qflow.hw.compiler.plan import load_plan, make_plan, save_plan
from a2qflow.hw.compiler.reference import run as golden_run
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.config import Folding, FoldingConfig, VitisConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.hls.csim import compile_testbench, run_csim
from a2qflow.hw.hls.dataflow import simulate, stage_ops
from a2qflow.hw.hls.generate import generate, render_project
from a2qflow.hw.hls.lowering import build_design


def saturating_inputs(model: Model) -> np.ndarray:
    """All-min and all-max inputs (the extremes a saturating input quantizer produces)."""
    t = model.input_quant.dtype
    return np.stack([np.full(model.input_shape, t.min), np.full(model.input_shape, t.max)]).astype(np.int64)


def check_exact(res) -> None:
    """C-sim == golden bit for bit; the monitor's per-layer counts and outputs == the golden model's."""
    assert res.mismatches == 0 and np.array_equal(res.outputs, res.golden.acc)
    assert res.overflow == {k: s.overflow_events for k, s in res.golden.stats.items()}
    assert res.summary["mac_outputs_per_layer"] == {k: s.outputs for k, s in res.golden.stats.items()}


MODELS = {**ALL, "input_fork": input_fork_model, "three_readers": three_reader_model}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_model_is_bit_exact_on_random_and_saturating_inputs(tmp_path, name):
    model = MODELS[name]()
    build = write_build(model, tmp_path / "b")
    x = np.concatenate([random_inputs(model, 40), saturating_inputs(model)])
    res = run_csim(build, x, progress=False)
    check_exact(res)
    assert res.overflow_events == 0 and set(res.overflow) == {l.name for l in model.mac_layers()}
    assert len(np.unique(res.outputs, axis=0)) > 3  # the outputs depend on the inputs (nothing is constant)


# (model, layer, bits below its exact bound): one layer of each new kind, narrowed just enough that 40 random plus
# the saturating inputs reach the wrapped range (one bit is enough except for the 36-input global pool, whose top
# bit only the all-15 window would need)
NARROW = [("residual", "block_skip", 1), ("residual", "block_add", 1), ("residual", "gap", 2),
          ("depthwise", "dw", 1), ("depthwise", "pool", 1), ("dense_residual", "add", 1),
          ("dense_residual", "skip", 1)]


def narrowed_build(model: Model, layer: str, below: int, build):
    """A build whose plan is exact except `layer`, forced `below` bits under its exact bound (thresholds refitted
    to the narrow width, recorded unsafe): one edited LayerPlan. Returns (build, plan)."""
    plan = make_plan(model)
    lp, ir = plan.layer(layer), model.layer(layer)
    lp.acc_bits, lp.unsafe = lp.acc_bits_exact - below, True
    lp.thresholds, lp.thr_bits = fit_thresholds(ir.act.values, ir.weight_matrix(), ir.in_type, lp.acc_bits)
    save_model(model, build)
    save_plan(plan, build)
    assert load_plan(build).unsafe
    return build, plan


def check_only_layer_overflows(res, model: Model, plan, x: np.ndarray, layer: str) -> None:
    """The monitor counts overflow events in `layer` only, exactly the golden model's wrap-mode count, and some."""
    check_exact(res)
    golden = golden_run(model, x, plan.acc_bits()).stats
    assert res.overflow[layer] == golden[layer].overflow_events > 0
    assert all(v == 0 for k, v in res.overflow.items() if k != layer)


@pytest.mark.parametrize("name,layer,below", NARROW)
def test_one_layer_below_its_exact_bound_overflows_as_the_golden_model_says(tmp_path, name, layer, below):
    model = MODELS[name]()
    build, plan = narrowed_build(model, layer, below, tmp_path / "b")
    x = np.concatenate([random_inputs(model, 40), saturating_inputs(model)])
    check_only_layer_overflows(run_csim(build, x, progress=False), model, plan, x, layer)


def first_layer_worst_cases(model: Model) -> np.ndarray:
    """Saturating inputs, plus for a depthwise first layer the inputs that drive every channel's (0, 0) window to
    its exact hi and lo accumulator (channels are independent, so one image reaches all channels at once)."""
    x = saturating_inputs(model)
    layer = model.layers[0]
    if layer.kind != "dwconv":
        return x
    hi, lo = worst_case_inputs(layer.weight_matrix(), layer.in_type)  # (C, K) each
    imgs = np.zeros((2, *model.input_shape), dtype=np.int64)
    kh, kw = layer.kernel
    imgs[0, :, :kh, :kw] = hi.reshape(-1, kh, kw)
    imgs[1, :, :kh, :kw] = lo.reshape(-1, kh, kw)
    return np.concatenate([x, imgs])


@pytest.mark.parametrize("kind", ["avgpool", "global_avgpool", "global_avgpool_signed", "add", "requant", "dwconv"])
def test_new_kind_widths_are_exact_and_tight(tmp_path, kind):
    # at the planned (exact) width the worst-case inputs never overflow; one bit less and they do
    model = first_layer_model(kind)
    x = first_layer_worst_cases(model)
    res = run_csim(write_build(model, tmp_path / "exact"), x, progress=False)
    check_exact(res)
    assert res.overflow_events == 0
    build, plan = narrowed_build(model, "first", 1, tmp_path / "narrow")
    check_only_layer_overflows(run_csim(build, x, progress=False), model, plan, x, "first")


def test_folding_needs_width_converters_and_still_matches(tmp_path):
    # depthwise: SIMD 3 of K = 9 and PE 2 of C = 4 (VVAU folding), pool SIMD 1; residual: the add and the requant
    # at PE 2 behind PE 4 / PE 1 producers, so both add inputs go through width converters
    model = ALL["depthwise"]()
    build = write_build(model, tmp_path / "d", folding={"dw": (3, 2), "pool": (1, 4), "pw": (2, 1)})
    check_exact(run_csim(build, np.concatenate([random_inputs(model, 30), saturating_inputs(model)]),
                         progress=False))
    model = ALL["residual"]()
    build = write_build(model, tmp_path / "r", folding={"block_conv1": (4, 1), "block_skip": (1, 2),
                                                        "block_add": (1, 2), "gap": (9, 1)})
    d = build_design(model, load_plan(build))
    conv = sorted(stage.comment for stage in d.stages if stage.kind == "convert_width")
    # the global pool takes block_add's 2 channels per beat and gives 2 (its own kernel: the plan's SIMD / PE for
    # it do not apply), so only fc re-beats them
    assert conv == ["block_add input block_conv1: 1 -> 2 values per beat", "block_skip input: 4 -> 2 values per beat",
                    "fc: 2 -> 4 values per beat"]
    check_exact(run_csim(build, np.concatenate([random_inputs(model, 30), saturating_inputs(model)]),
                         progress=False))
    assert not simulate(d).deadlock


def test_residual_design_forks_once_and_sizes_the_skip_fifo(tmp_path):
    model = ALL["residual"]()
    plan = make_plan(model)
    d = build_design(model, plan)
    dups = [stage for stage in d.stages if stage.kind == "duplicate"]
    assert len(dups) == 1 and dups[0].inp.shape == (4, 6, 6)
    add = next(stage for stage in d.stages if stage.kind == "add")
    assert add.inp2 is not None and add.inp.elem == add.inp2.elem == S4
    # the skip branch (dup -> requant -> add) holds what the line-buffered main branch reads ahead: the RTL rule's
    # 2 x 60 elements of the stem's output in beats of PE 4, plus two beats; less than the 36-beat frame
    skip = dups[0].out2
    beats = -(-2 * 60 // plan.layer("stem").pe) + 2
    assert beats < 4 * 6 * 6 // plan.layer("stem").pe
    assert d.fifo_depths == {skip.name: beats} and skip.depth == beats and dups[0].out.depth == 2
    top = render_project(d, VitisConfig())["top.cpp"]
    assert f"#pragma HLS stream variable={skip.name} depth={beats}" in top
    assert f"// depth {beats}: skip branch from stem to block_add: holds {beats} beats of 4 (120 elements" in top
    assert top.count("duplicate_stream<") == 1 and top.count("add_streams<") == 1 and top.count("requant<") == 1
    assert top.count("global_pool<") == 1 and "vvau<" not in top and "dw_sliding_window<" not in top


def test_a_global_pool_is_one_accumulator_pass_over_the_frame(tmp_path):
    # the residual block's 6x6 global pool on its own kernel (global_pool, pool.hpp): no window stage, no weight
    # table, and its loop (monitor build, --loops) runs once per input beat, so each pixel is read once and the C
    # sums are all it holds; bit-exact on random and saturating inputs with block_add's 2 channels per beat
    model = ALL["residual"]()
    build = write_build(model, tmp_path / "b", folding={"block_add": (1, 2)})
    d = build_design(model, load_plan(build))
    k, gap = next((k, sg) for k, sg in enumerate(d.stages) if sg.comment.startswith("gap:"))
    assert gap.kind == "global_pool" and gap.inp.beat == gap.out.beat == 2 and gap.out.shape == (4, 1, 1)
    assert [sg.kind for sg in d.stages if sg.ns == gap.ns] == ["global_pool"]
    ops = stage_ops(d, gap)
    assert [wr for wr, _ in ops].count(False) == gap.inp.beats == 4 * 36 // 2
    assert [wr for wr, _ in ops].count(True) == gap.out.beats == 2
    hls = generate(build)
    top, params = (hls / "top.cpp").read_text(), (hls / "params_l5_gap.h").read_text()
    assert "global_pool<l5_gap::C, l5_gap::N, l5_gap::BEAT, l5_gap::ACC_BITS" in top
    calls = [line.strip() for line in top.splitlines() if "l5_gap::" in line]  # the layer's only call: no window
    assert len(calls) == 1 and calls[0].startswith("global_pool<") and "vvau<" not in top
    assert "weights[" not in params and "constexpr unsigned N = 36;" in params
    assert "constexpr unsigned BEAT = 2;" in params and "ThresholdActivation<C, PE," in params
    exe, _, _ = compile_testbench(hls, monitor=True)
    x = np.concatenate([random_inputs(model, 20), saturating_inputs(model)])
    (tmp_path / "in.bin").write_bytes(x.astype(np.int32).tobytes())
    golden_run(model, x, load_plan(build).acc_bits()).acc.astype(np.int64).tofile(tmp_path / "expected.bin")
    res = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"), "--expect",
                          str(tmp_path / "expected.bin"), "--loops", str(tmp_path / "loops.txt")],
                         capture_output=True, text=True)
    assert res.returncode == 0 and f"{len(x)} samples, 0 mismatching outputs" in res.stdout, res.stdout + res.stderr
    loops = [tuple(int(v) for v in line.split()) for line in (tmp_path / "loops.txt").read_text().splitlines()]
    assert loops[k] == (k, gap.inp.beats, gap.inp.beats)  # every image: N * C / BEAT iterations, one beat read each


@pytest.mark.parametrize("pe", [1, 2, 6])
def test_a_last_global_pool_streams_its_raw_signed_sums_at_the_producers_beat(tmp_path, pe):
    # requant (INT4 -> INT4, PE pe) -> global pool 2x3 as the last layer: the raw ACC_BITS sums leave at the
    # requant's beat (1, 2 or all 6 channels), bit-exact on random and saturating signed inputs
    rng = np.random.default_rng(pe)
    c = 6
    req = RequantLayer("req", S4, thresholds(np.ones((c, 1), np.int64), S4, S4, rng, spread=1.0), (c, 2, 3))
    gap = AvgPoolLayer("gap", np.ones((c, 1, 2, 3), np.int64), S4, IntType(1, False),
                       Affine(np.ones(c), np.zeros(c)), (c, 2, 3), (2, 3))
    model = Model("gap_last", (c, 2, 3), InputQuant(1 / 7, 0, S4), [req, gap])
    build = write_build(model, tmp_path / "b", folding={"req": (1, pe)})
    d = build_design(model, load_plan(build))
    assert d.stages[-1].kind == "global_pool" and d.stages[-1].inp.beat == d.output.beat == pe
    res = run_csim(build, np.concatenate([random_inputs(model, 30), saturating_inputs(model)]), progress=False)
    check_exact(res)
    assert res.overflow_events == 0 and res.outputs.min() < 0 < res.outputs.max()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dataflow_never_deadlocks_with_the_planned_fifo_depths(name):
    model = MODELS[name]()
    d = build_design(model, make_plan(model))
    res = simulate(d, inferences=3)
    assert not res.deadlock, res.stalled
    assert all(res.peak[s.name] <= s.depth for s in d.streams)


def test_a_shallow_skip_fifo_deadlocks_the_residual_block():
    model = ALL["residual"]()
    d = build_design(model, make_plan(model))
    (skip,) = d.fifo_depths
    res = simulate(d, depths={skip: 2})
    assert res.deadlock and any("stem" in c for c in res.stalled)
    # the planned depth (the line-buffer rule) is an upper bound on the smallest depth that works
    need = next(k for k in range(2, d.fifo_depths[skip] + 1) if not simulate(d, depths={skip: k}).deadlock)
    assert 2 < need <= d.fifo_depths[skip]


def test_non_blocking_window_reads_need_a_shallower_skip_fifo():
    # a window loop that blocked on its eager read would stop writing ready windows while the fork waits for the
    # skip FIFO: the residual block would then need a deeper skip FIFO to keep moving
    model = ALL["residual"]()
    fold = {"stem": (3, 1), "block_conv1": (6, 1), "block_skip": (1, 1), "block_add": (1, 1), "gap": (1, 4)}
    d = build_design(model, make_plan(model, folding=FoldingConfig(layers={n: Folding(simd=s, pe=p)
                                                                           for n, (s, p) in fold.items()})))
    (skip,) = d.fifo_depths

    def smallest(blocking: bool) -> int:
        return next(k for k in range(2, d.fifo_depths[skip] + 1)
                    if not simulate(d, depths={skip: k}, blocking_windows=blocking).deadlock)

    assert smallest(False) < smallest(True) <= d.fifo_depths[skip]
    assert simulate(d, depths={skip: smallest(False)}, blocking_windows=True).deadlock


def test_three_readers_chain_two_duplicators(tmp_path):
    model = three_reader_model()
    d = build_design(model, make_plan(model))
    dups = [stage for stage in d.stages if stage.kind == "duplicate"]
    assert len(dups) == 2 and dups[1].inp is dups[0].out2


def test_graph_design_renders_the_vitis_project(tmp_path):
    model = ALL["residual"]()
    build = write_build(model, tmp_path / "b")
    out = generate(build, VitisConfig(part="xczu3eg-sbva484-1-e", clock_ns=5.0))
    for name in ["vvau.hpp", "elementwise.hpp", "stream_utils.hpp", "sliding_window.hpp", "tb_data/inputs.bin",
                 "tb_data/expected.bin", "params_l4_block_add.h", "params_l5_gap.h"]:
        assert (out / name).is_file(), name
    tcl = (out / "run_hls.tcl").read_text()
    for cmd in ["set_top a2q_top", "set_part {xczu3eg-sbva484-1-e}", "create_clock -period 5.0", "csim_design",
                "csynth_design", "cosim_design", "export_design"]:
        assert cmd in tcl, cmd
    viv = (out / "vivado.tcl").read_text()
    assert "synth_design -top a2q_top -part $part -mode out_of_context" in viv
    assert "set part {xczu3eg-sbva484-1-e}" in viv
    top = (out / "top.cpp").read_text()
    assert '#include "vvau.hpp"' in top and '#include "elementwise.hpp"' in top
    gap = (out / "params_l5_gap.h").read_text()
    lp = load_plan(build).layer("gap")
    assert f"constexpr int ACC_BITS = {lp.acc_bits};" in gap and "constexpr unsigned K = 36;" in gap
    add = (out / "params_l4_block_add.h").read_text()
    assert "constexpr unsigned KA = 0;" in add and "weights[" not in add


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]), st.sampled_from([1, 3, 9]))
def test_any_folding_of_the_residual_block_is_deadlock_free(pe_stem, pe_conv1, pe_add, simd_gap):
    # the skip FIFO follows the fork's beat width; whatever the folding, the depth keeps the dataflow moving
    model = ALL["residual"]()
    fold = {"stem": (3, pe_stem), "block_conv1": (6, pe_conv1), "block_skip": (1, pe_add),
            "block_add": (1, pe_add), "gap": (simd_gap, 4)}
    d = build_design(model, make_plan(model, folding=FoldingConfig(layers={n: Folding(simd=s, pe=p)
                                                                           for n, (s, p) in fold.items()})))
    (skip,) = d.fifo_depths.values()
    assert skip == -(-2 * 60 // pe_stem) + 2  # the line-buffer rule (hw.compiler.skip_fifos) in the fork's beats
    res = simulate(d, inferences=2)
    assert not res.deadlock and all(res.peak[s.name] <= s.depth for s in d.streams)


def test_a_join_of_two_different_types_is_a_one_line_error():
    model = ALL["residual"]()
    model.layer("block_add").in_type = U4  # the main branch produces INT4 (block_conv1), the add now expects UINT4
    with pytest.raises(A2QFlowError, match=r"add block_add expects two UINT4 inputs of shape \[4, 6, 6\] but "
                                           r"receives INT4") as e:
        build_design(model, make_plan(model))
    assert "\n" not in str(e.value)
