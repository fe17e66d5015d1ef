"""RTL backend: generated Verilog simulated with Verilator equals the golden model bit for bit (exact, 32-bit and
forced-narrow wrapping accumulators, dense and conv nets), is lint-clean, and its manifest tells synthesis the truth."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from _rtl_util import conv_net, dense_chain, random_and_worst_case_inputs, write_build

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.ir import load_model
from a2qflow.hw.compiler.plan import load_plan
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.rtl.generate import generate
from a2qflow.hw.rtl.sim import lint, run_rtlsim

# (policy, forced acc_bits, folding overrides). "narrow" is below every layer's exact bound, so accumulators wrap.
DENSE_CASES = {
    "exact": (None, None),
    "p32-fold-extremes": (32, {"fc0": (12, 8), "fc1": (1, 1), "fc.out": (3, 5)}),
    "narrow": (7, None),
}
CONV_CASES = {
    "exact": (None, None),
    "p32-fold-extremes": (32, {"conv0": (9, 4), "conv1": (1, 1), "fc0": (12, 3)}),
    "narrow": (6, None),
}


def _check(build, model, acc_bits, x):
    res = run_rtlsim(build, x)
    golden = reference.run(model, x, load_plan(build).acc_bits())
    out = np.load(build / "rtlsim" / "outputs.npy")
    np.testing.assert_array_equal(out, golden.acc)  # bit for bit, in the golden model's (CHW) order
    assert res["mismatches"] == 0 and res["samples"] == len(x)
    saved = json.loads((build / "rtlsim" / "rtlsim.json").read_text())
    assert saved["mismatches"] == 0 and saved["cycles_per_inference"] == res["cycles_per_inference"]
    assert res["cycles_per_inference"] > 0 and 0 < res["initiation_interval_cycles"] <= res["cycles_per_inference"]
    if acc_bits is not None and acc_bits < 12:
        assert golden.overflow_events > 0, "the narrow case must actually wrap, or it proves nothing"
    return res


def _cases(cases: dict) -> list:
    """Each case compiles its own simulator (~5 s CPU); only the exact-width one is left unlabelled."""
    return [pytest.param(c, marks=() if c == "exact" else pytest.mark.slow) for c in cases]


@pytest.mark.parametrize("case", _cases(DENSE_CASES))
def test_dense_chain_rtl_equals_golden(tmp_path, case):
    acc_bits, folding = DENSE_CASES[case]
    model = dense_chain(seed=3)
    write_build(tmp_path, model, acc_bits, allow_unsafe=True, folding=folding)
    _check(tmp_path, model, acc_bits, random_and_worst_case_inputs(model, 60, seed=4))


@pytest.mark.parametrize("case", _cases(CONV_CASES))
def test_conv_pool_dense_rtl_equals_golden(tmp_path, case):
    acc_bits, folding = CONV_CASES[case]
    model = conv_net(seed=5)
    write_build(tmp_path, model, acc_bits, allow_unsafe=True, folding=folding)
    res = _check(tmp_path, model, acc_bits, random_and_worst_case_inputs(model, 25, seed=6))
    # the conv datapath streams whole frames: a new inference can start before the previous one leaves
    assert res["initiation_interval_cycles"] < res["cycles_per_inference"]


def test_backpressure_does_not_change_results(tmp_path):
    model = conv_net(seed=5)
    write_build(tmp_path, model)
    x = random_and_worst_case_inputs(model, 12, seed=7)
    free = run_rtlsim(tmp_path, x)
    stalled = run_rtlsim(tmp_path, x, stall_percent=40, seed=3)
    assert stalled["mismatches"] == 0
    assert stalled["total_cycles"] > free["total_cycles"]  # the stalls really happened


@pytest.mark.parametrize("make,acc_bits", [(dense_chain, None), (dense_chain, 7), (conv_net, None), (conv_net, 6)])
def test_generated_design_is_lint_clean(tmp_path, make, acc_bits):
    write_build(tmp_path, make(), acc_bits, allow_unsafe=True)
    assert lint(generate(tmp_path)) == []


def test_manifest_and_widths_come_from_the_plan(tmp_path):
    model = conv_net(seed=5)
    write_build(tmp_path, model, 6, allow_unsafe=True)
    rtl = generate(tmp_path)
    plan = load_plan(tmp_path)
    man = json.loads((rtl / "manifest.json").read_text())
    assert man["top"] == "a2q_top" and man["sources"][-1] == "a2q_top.v"
    assert all((rtl / s).is_file() for s in man["sources"] + man["mem_files"])
    assert list(man["layers"]) == [l.name for l in model.layers]
    assert len(set(man["layers"].values())) == len(model.layers)  # one instance per layer
    assert len(set(man["modules"].values())) == len(model.layers)  # ... of its own module
    assert man["acc_bits"] == plan.acc_bits() == {"conv0": 6, "conv1": 6, "fc0": 6}
    assert (man["in_width"], man["in_elems"], man["out_elems"], man["out_width"]) == (4, 36, 3, 6)
    top = (rtl / "a2q_top.v").read_text()
    for l in plan.layers:
        body = top.split(f"module {man['modules'][l.name]} (")[1].split("endmodule")[0]
        assert f".ACC_BITS({l.acc_bits})" in body and f".SIMD({l.simd}), .PE({l.pe})" in body
        if l.thr_bits is not None:
            assert f".THR_BITS({l.thr_bits})" in body
            # threshold memory: one word per neuron fold, PE x (2^n - 1) thresholds of thr_bits each
            words = (rtl / f"{l.name}_thresholds.mem").read_text().split()
            n_thr = (1 << l.out_bits) - 1
            assert len(words[0]) == -(-l.pe * n_thr * l.thr_bits // 4)
    mvau = (rtl / "a2q_mvau.v").read_text()
    assert re.search(r"\(\* keep \*\) wire signed \[PW-1:0\] pr", mvau)  # full-width products kept
    assert re.search(r"\(\* keep \*\) wire \[\(2\*SIMD-1\)\*ACC_BITS-1:0\] tree", mvau)  # ACC_BITS adder tree


def test_weight_memory_layout(tmp_path):
    """Word nf*SF + sf of a layer's weight file holds w[nf*PE + p, sf*SIMD + s] at bits (p*SIMD + s)*M."""
    model = dense_chain(seed=3)
    write_build(tmp_path, model, folding={"fc0": (4, 2)})
    rtl = generate(tmp_path)
    w = load_model(tmp_path).layer("fc0").weights
    words = [int(t, 16) for t in (rtl / "fc0_weights.mem").read_text().split()]
    sf, M = 12 // 4, 4
    for nf in range(4):
        for k in range(3):
            for p in range(2):
                for s in range(4):
                    v = (words[nf * sf + k] >> ((p * 4 + s) * M)) & 0xF
                    assert v - 16 * (v >> 3) == w[nf * 2 + p, k * 4 + s]


def test_errors_are_one_line_and_name_the_problem(tmp_path):
    with pytest.raises(A2QFlowError, match="run `a2qflow compile"):
        generate(tmp_path)
    model = dense_chain()
    write_build(tmp_path, model)
    with pytest.raises(A2QFlowError, match=r"outside the model's input type UINT4"):
        run_rtlsim(tmp_path, np.full((2, 12), 16))
    with pytest.raises(A2QFlowError, match=r"expected a non-empty \(N, 12\)"):
        run_rtlsim(tmp_path, np.zeros((2, 5), dtype=np.int64))
    plan = json.loads((tmp_path / "plan.json").read_text())
    plan["layers"][0]["thr_bits"] += 3
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(A2QFlowError, match=r"plan.json layer fc0: thr_bits=.*re-run `a2qflow compile`"):
        generate(tmp_path)


def test_cli_rtl_and_rtlsim(tmp_path, capsys):
    from a2qflow.flows.cli import main

    model = dense_chain(seed=3)
    write_build(tmp_path, model)
    assert main(["rtl", str(tmp_path), "--lint"]) == 0
    assert "lint-only -Wall: clean" in capsys.readouterr().out
    xf = tmp_path / "x.npy"
    # float inputs: quantized by the model
    np.save(xf, random_and_worst_case_inputs(model, 10, seed=1).astype(np.float64) / 15.0)
    assert main(["rtlsim", str(tmp_path), "--inputs", str(xf), "--limit", "8"]) == 0
    out = capsys.readouterr().out
    assert "8 samples, 0 mismatching" in out and "cycles per inference" in out
    assert main(["rtlsim", str(tmp_path), "--inputs", str(tmp_path / "nope.npy")]) == 2
    assert "--inputs" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ trained digits models

def _digits_equivalence(run_dir, tmp_path, acc_bits=None):
    from a2qflow.hw.compiler.compile import compile_model

    build = tmp_path / "build"
    compile_model(run_dir / "model.onnx", build, acc_bits=acc_bits)
    x, y = np.load(run_dir / "test_inputs.npy"), np.load(run_dir / "test_labels.npy")
    res = run_rtlsim(build, x, csim_outputs=_csim_outputs(build, x), labels=y)
    assert res["samples"] == len(x) and res["mismatches"] == 0, res["first_mismatch"]
    assert res["csim_mismatches"] == 0
    from a2qflow.hw.compiler import reference
    from a2qflow.hw.compiler.ir import load_model
    from a2qflow.hw.compiler.plan import load_plan

    model = load_model(build)
    golden = reference.run(model, model.input_quant.quantize(x), load_plan(build).acc_bits())
    assert res["top1_accuracy"] == float((golden.logits.argmax(axis=1) == y).mean()) > 0.5
    return res


@pytest.mark.slow
def test_digits_mlp_rtl_equals_golden_and_csim(digits_mlp_a2q, tmp_path):
    _digits_equivalence(digits_mlp_a2q, tmp_path)


@pytest.mark.slow
def test_digits_cnn_rtl_equals_golden_and_csim(digits_cnn_a2q, tmp_path):
    _digits_equivalence(digits_cnn_a2q, tmp_path)


def _csim_outputs(build, x):
    """The HLS C-sim's outputs on `x` (the flow compares the two backends; neither imports the other)."""
    from a2qflow.hw.hls.csim import run_csim

    return run_csim(build, x, monitor=False, progress=False, write=False).outputs


def test_shared_fold_fragments_are_pasted_into_whole_units(tmp_path):
    """The units share their fold code, parameter / port lists and packer through hw/rtl/verilog/a2q_*.vh: every
    fragment is used, each generated unit is whole (no `include left, so BUILD/rtl needs no include path and its
    content hash covers the shared code), and a unit carries each fragment it includes (directly or through another)
    exactly once."""
    from importlib import resources

    from a2qflow.hw.rtl.generate import LIBRARY, library_text

    folder = resources.files("a2qflow.hw.rtl.verilog")
    fragments = sorted(f.name for f in folder.iterdir() if f.name.endswith(".vh"))

    def included(name: str) -> set[str]:
        direct = set(re.findall(r'`include "(a2q_\w+\.vh)"', folder.joinpath(name).read_text()))
        return direct.union(*(included(f) for f in direct))

    assert fragments and set().union(*(included(n) for n in LIBRARY)) == set(fragments)
    for name in LIBRARY:
        text = library_text(name)
        assert not re.search(r"^\s*`include", text, re.MULTILINE)
        for f in included(name):
            assert text.count(library_text(f).rstrip("\n")) == 1
    rtl = generate(write_build(tmp_path, dense_chain()))
    assert (rtl / "a2q_mvau.v").read_text() == library_text("a2q_mvau.v") and not list(rtl.glob("*.vh"))
