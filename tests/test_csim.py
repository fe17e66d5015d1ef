"""C-simulation (hw/hls/csim.py, `a2qflow csim`): bit-exact against the golden model, overflow counts included.

Random integer IR models keep these tests independent of training; each C-sim compile takes a few seconds (a
precompiled ap_types header is cached), so the cases are chosen to cover dense / conv / pool / width converters,
signed and unsigned inputs, exact, 32-bit and forced-narrow (unsafe) widths.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _hls_util import conv_model, dense_model, random_inputs, write_build

from a2qflow.flows.cli import main
from a2qflow.hw.compiler.bounds import first_layer_worst_case_inputs
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.compiler.plan import load_plan
from a2qflow.hw.compiler.reference import run as golden_run
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.hls.csim import compile_testbench, run_csim
from a2qflow.hw.hls.generate import generate


def _check_exact(res, expect_overflow: bool | None = None):
    """C-sim == golden bit for bit, and the monitor's per-layer counts == the golden model's."""
    assert res.outputs.dtype == np.int64
    assert np.array_equal(res.outputs, res.golden.acc)
    assert res.mismatches == 0
    assert res.overflow == {k: s.overflow_events for k, s in res.golden.stats.items()}
    assert res.summary["mac_outputs_per_layer"] == {k: s.outputs for k, s in res.golden.stats.items()}
    if expect_overflow is not None:
        assert (res.overflow_events > 0) == expect_overflow


@pytest.mark.parametrize("acc_bits", [None, 32, 8])
def test_dense_chain_is_bit_exact_at_exact_32_and_narrow_widths(tmp_path, acc_bits):
    model = dense_model(seed=1)
    build = write_build(model, tmp_path / "b", acc_bits=acc_bits, allow_unsafe=True)
    x = random_inputs(model, 300)
    res = run_csim(build, x, progress=False)
    _check_exact(res, expect_overflow=acc_bits == 8)
    if acc_bits == 8:
        assert load_plan(build).unsafe
        # wrapped results are wrong on purpose: the unsafe plan visibly differs from the ideal model
        assert not np.array_equal(res.outputs, golden_run(model, x).acc)
    saved = np.load(build / "csim" / "outputs.npy")
    assert np.array_equal(saved, res.outputs)
    js = json.loads((build / "csim" / "csim.json").read_text())
    assert js["samples"] == 300 and js["mismatches"] == 0 and js["overflow_events"] == res.overflow_events
    if acc_bits == 8:
        # the plain build (exactly the synthesised datapath, no monitor) computes the same integers
        plain = run_csim(build, x, monitor=False, progress=False)
        assert np.array_equal(plain.outputs, res.outputs) and plain.overflow == {}
        assert plain.summary["overflow_events"] is None


@pytest.mark.parametrize("acc_bits", [None, 32, 7])
def test_conv_pool_dense_chain_is_bit_exact(tmp_path, acc_bits):
    model = conv_model(seed=2)
    build = write_build(model, tmp_path / "b", acc_bits=acc_bits, allow_unsafe=True)
    res = run_csim(build, random_inputs(model, 200), progress=False)
    _check_exact(res, expect_overflow=acc_bits == 7)
    if acc_bits is None:
        # per-channel worst-case inputs of the first layer: still exact, still no overflow (same binary: cached)
        wc = run_csim(build, first_layer_worst_case_inputs(model), progress=False)
        assert wc.summary["compiled"] is False and wc.summary["seconds"]["compile"] == 0.0
        _check_exact(wc, expect_overflow=False)


def test_folding_variants_and_signed_inputs(tmp_path):
    # SIMD 1 / PE 1 everywhere, then odd folds that need width converters; signed 3-bit inputs, 5-bit weights
    model = dense_model(seed=4, sizes=(18, 12, 9, 6), in_type=IntType(3, True), w_bits=5, act_type=IntType(2, True))
    for i, fold in enumerate([{"fc0": (1, 1), "fc1": (1, 1), "fc2": (1, 1)},
                              {"fc0": (9, 4), "fc1": (3, 9), "fc2": (9, 2)}]):
        build = write_build(model, tmp_path / f"b{i}", folding=fold)
        res = run_csim(build, random_inputs(model, 200), progress=False)
        _check_exact(res, expect_overflow=False)


def test_conv_with_odd_folding(tmp_path):
    model = conv_model(seed=5, in_shape=(3, 7, 6))
    build = write_build(model, tmp_path / "b", folding={"conv0": (9, 2), "conv1": (4, 1), "fc": (9, 5)})
    _check_exact(run_csim(build, random_inputs(model, 100), progress=False), expect_overflow=False)


def test_worst_case_inputs_overflow_one_bit_below_the_exact_width(tmp_path):
    model = conv_model(seed=7)
    exact = write_build(model, tmp_path / "e")
    p = load_plan(exact).layer("conv0").acc_bits
    narrow = write_build(model, tmp_path / "n", acc_bits=p - 1, allow_unsafe=True)
    res = run_csim(narrow, first_layer_worst_case_inputs(model), progress=False)
    _check_exact(res)
    assert res.overflow["conv0"] > 0  # the exact bound is tight: these inputs need every one of its bits


def test_cli_csim_writes_outputs_and_json(tmp_path, capsys):
    model = dense_model(seed=9)
    build = write_build(model, tmp_path / "b")
    x_int = random_inputs(model, 50)
    labels = golden_run(model, x_int).logits.argmax(1)
    labels[:5] = (labels[:5] + 1) % 10  # 5 wrong labels: top-1 must read 90%
    # float inputs (dequantized) are quantized by the model's input quantizer back to the same integers
    np.save(tmp_path / "test_inputs.npy", (x_int * model.input_quant.scale).astype(np.float32))
    np.save(tmp_path / "test_labels.npy", labels)
    assert main(["csim", str(build), "--inputs", str(tmp_path / "test_inputs.npy")]) == 0
    out = capsys.readouterr().out
    assert "0 mismatching" in out and "top-1 accuracy: 90.00%" in out
    js = json.loads((build / "csim" / "csim.json").read_text())
    assert js["top1_accuracy"] == 0.9 == js["golden_top1_accuracy"] and js["samples"] == 50
    assert np.array_equal(np.load(build / "csim" / "outputs.npy"),
                          golden_run(model, x_int, load_plan(build).acc_bits()).acc)
    # wrong shape: one line naming the file and the expected shape
    np.save(tmp_path / "bad.npy", np.zeros((5, 7), dtype=np.int64))
    assert main(["csim", str(build), "--inputs", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert "bad.npy" in err and "(N, 24)" in err and err.count("\n") == 1


def test_bad_inputs_and_missing_plan(tmp_path):
    model = dense_model()
    build = write_build(model, tmp_path / "b")
    with pytest.raises(A2QFlowError, match=r"shape \[10, 23\].*\(N, 24\)"):
        run_csim(build, np.zeros((10, 23)), progress=False)
    with pytest.raises(A2QFlowError, match="outside the model's input type UINT4"):
        run_csim(build, np.full((3, 24), 16, dtype=np.int64), progress=False)
    with pytest.raises(A2QFlowError, match="no plan.json"):
        run_csim(tmp_path / "empty", np.zeros((1, 24)), progress=False)


def test_missing_compiler_or_headers_are_clear_errors(tmp_path, monkeypatch):
    build = write_build(dense_model(), tmp_path / "b")
    monkeypatch.setenv("CXX", "no-such-g++")
    with pytest.raises(A2QFlowError, match="compiler 'no-such-g\\+\\+' not found.*install g\\+\\+"):
        run_csim(build, random_inputs(dense_model(), 2), progress=False)
    monkeypatch.delenv("CXX")
    import a2qflow.hw.hls.csim as csim_mod

    monkeypatch.setattr(csim_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(A2QFlowError, match="hls4ml package is not installed"):
        run_csim(build, random_inputs(dense_model(), 2), progress=False)


def test_compile_error_names_the_generated_file_and_line(tmp_path):
    build = write_build(dense_model(), tmp_path / "b")
    out = generate(build)
    hdr = out / "params_l1_fc1.h"
    lines = hdr.read_text().splitlines()
    bad = next(i for i, l in enumerate(lines) if "constexpr unsigned PE" in l)
    lines[bad] = "constexpr unsigned PE = ;"
    hdr.write_text("\n".join(lines) + "\n")
    with pytest.raises(A2QFlowError, match=rf"params_l1_fc1\.h:{bad + 1}: .*full log") as e:
        compile_testbench(out)
    assert "\n" not in str(e.value)
