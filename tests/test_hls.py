"""HLS generator (hw/hls/generate.py, `a2qflow hls`): what lands in BUILD/hls and the errors a user can hit."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _hls_util import conv_model, dense_model, write_build
from hypothesis import given, settings
from hypothesis import strategies as st

from a2qflow.flows.cli import main
from a2qflow.hw.compiler.bounds import channel_ranges, first_layer_worst_case_inputs
from a2qflow.hw.compiler.plan import load_plan
from a2qflow.hw.compiler.reference import accumulate
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.config import VitisConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.hls.design import fold_thresholds, fold_weights
from a2qflow.hw.hls.generate import generate, render_project
from a2qflow.hw.hls.lowering import build_design


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4))
def test_fold_weights_matches_the_documented_layout(nf, pe, sf, simd):
    w = np.arange(nf * pe * sf * simd * 1).reshape(nf * pe, sf * simd)
    f = fold_weights(w, simd, pe)
    assert f.shape == (pe, nf * sf, simd)
    for n in range(nf):
        for p in range(pe):
            for s_ in range(sf):
                assert list(f[p, n * sf + s_]) == list(w[n * pe + p, s_ * simd:(s_ + 1) * simd])
    t = np.arange(nf * pe * 3).reshape(nf * pe, 3)
    ft = fold_thresholds(t, pe)
    assert all(list(ft[p, n]) == list(t[n * pe + p]) for n in range(nf) for p in range(pe))


def test_generate_writes_a_complete_project(tmp_path):
    build = write_build(conv_model(), tmp_path / "b")
    out = generate(build, VitisConfig(part="xcu50-fsvh2104-2-e", clock_ns=4.0))
    for name in ["top.cpp", "top.h", "tb.cpp", "run_hls.tcl", "vivado.tcl", "mvau.hpp", "thresholds.hpp",
                 "sliding_window.hpp", "pool.hpp", "stream_utils.hpp", "tb_data/inputs.bin", "tb_data/expected.bin"]:
        assert (out / name).is_file(), name
    tcl = (out / "run_hls.tcl").read_text()
    for cmd in ["open_project", "set_top a2q_top", "add_files", "open_solution", "set_part {xcu50-fsvh2104-2-e}",
                "create_clock -period 4.0", "csim_design", "csynth_design", "cosim_design", "export_design"]:
        assert cmd in tcl, cmd
    viv = (out / "vivado.tcl").read_text()
    for cmd in ["synth_design -top a2q_top -part $part -mode out_of_context", "report_utilization",
                "write_bitstream", "ip_repo_paths", "set part {xcu50-fsvh2104-2-e}"]:
        assert cmd in viv, cmd
    top = (out / "top.cpp").read_text()
    assert "#pragma HLS dataflow" in top
    # one explicit template instantiation per layer, named template arguments from the layer's namespace
    assert len(re.findall(r"\bmvau<", top)) == 3
    assert top.count("sliding_window<") == 2 and top.count("maxpool<") == 1
    assert "mvau<l0_conv0::K, l0_conv0::C, l0_conv0::SIMD, l0_conv0::PE, l0_conv0::ROWS, l0_conv0::ACC_BITS" in top


def test_params_carry_the_planned_widths_and_fitted_thresholds(tmp_path):
    model = dense_model(seed=3)
    build = write_build(model, tmp_path / "b", acc_bits=9, allow_unsafe=True)
    plan = load_plan(build)
    out = generate(build)
    hdr = (out / "params_l0_fc0.h").read_text()
    lp = plan.layer("fc0")
    assert "constexpr int ACC_BITS = 9;" in hdr and f"constexpr int THR_BITS = {lp.thr_bits};" in hdr
    assert f"constexpr unsigned SIMD = {lp.simd};" in hdr and f"constexpr unsigned PE = {lp.pe};" in hdr
    assert "UNSAFE" in hdr
    layer = model.layers[0]
    values, _ = fit_thresholds(layer.act.values, layer.weight_matrix(), layer.in_type, 9)
    body = hdr.split("static const act_t act =")[1]
    nums = [int(v) for v in re.findall(r"-?\d+", body.split(";")[0])]
    assert nums == fold_thresholds(values, lp.pe).reshape(-1).tolist()
    wbody = hdr.split("weights[PE][(C / PE) * (K / SIMD)][SIMD] =")[1].split(";")[0]
    folded = fold_weights(layer.weights, lp.simd, lp.pe).reshape(-1).tolist()
    assert [int(v) for v in re.findall(r"-?\d+", wbody)] == folded


def test_regenerating_leaves_identical_files_untouched(tmp_path):
    build = write_build(dense_model(), tmp_path / "b")
    out = generate(build)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    generate(build)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("make", [dense_model, conv_model])
def test_worst_case_inputs_reach_each_channels_exact_range(make):
    model = make()
    layer = model.layers[0]
    x = first_layer_worst_case_inputs(model)
    acc = accumulate(layer, x)
    acc = acc.reshape(acc.shape[0], acc.shape[1], -1)
    lo, hi = channel_ranges(layer.weight_matrix(), layer.in_type)
    c = layer.out_channels
    assert np.array_equal(acc[np.arange(c), np.arange(c)].max(axis=-1), hi)
    assert np.array_equal(acc[c + np.arange(c), np.arange(c)].min(axis=-1), lo)


def test_build_without_plan_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(A2QFlowError, match="no plan.json"):
        generate(tmp_path)
    assert main(["hls", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "plan.json" in err and err.count("\n") == 1
    with pytest.raises(A2QFlowError, match="no such build folder"):
        generate(tmp_path / "missing")


def test_plan_that_does_not_match_the_ir_is_rejected(tmp_path):
    build = write_build(dense_model(), tmp_path / "b")
    from a2qflow.hw.compiler.ir import save_model

    save_model(dense_model(sizes=(24, 8, 10)), build)  # a different model behind the same plan
    with pytest.raises(A2QFlowError, match="plan.json lists layers|has K=|made from a different IR"):
        generate(build)


def test_folding_from_the_plan_reaches_the_design(tmp_path):
    model = dense_model()
    build = write_build(model, tmp_path / "b", folding={"fc0": (3, 2), "fc1": (4, 6)})
    d = build_design(model, load_plan(build))
    calls = render_project(d, VitisConfig())["top.cpp"]
    assert "convert_width<3, 4, 16" not in calls  # fc0 emits PE=2 beats; fc1 reads SIMD=4 beats
    assert "convert_width<2, 4, 16, ap_uint<3>>" in calls
    assert d.input.beat == 3 and d.output.beat == load_plan(build).layer("fc2").pe


def test_cli_hls_uses_the_config_part_and_clock(tmp_path, capsys):
    build = write_build(dense_model(), tmp_path / "b")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("name: t\nmodel: {kind: mlp}\nhw:\n  vitis: {part: xc7a35tcpg236-1, clock_ns: 5.0}\n")
    try:
        rc = main(["hls", str(build), "--config", str(cfg)])
    except A2QFlowError:  # flows.config may demand more fields than this minimal config has
        pytest.skip("flows.config rejects the minimal config")
    out = capsys.readouterr()
    if rc == 2 and "hw." not in out.err:
        pytest.skip(f"flows.config rejects the minimal config: {out.err.strip()}")
    assert rc == 0, out.err
    tcl = (build / "hls" / "run_hls.tcl").read_text()
    assert "set_part {xc7a35tcpg236-1}" in tcl and "create_clock -period 5.0" in tcl


def test_cli_hls_bad_config_field_is_named(tmp_path, capsys):
    build = write_build(dense_model(), tmp_path / "b")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("name: t\nmodel: {kind: mlp}\nhw:\n  vitis: {part: xc7a35tcpg236-1, clock_ns: -1}\n")
    assert main(["hls", str(build), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "clock_ns" in err and err.count("\n") == 1
