"""The demonstration the project rests on, on trained digits models, through the generated HLS C++ (g++ C-sim).

The session fixture digits_mlp_a2q is trained for P = 12, and the unconstrained MLP's exact bound is only 13 bits
on its first layer (12 on the others), so at P = 12 the unconstrained model does not overflow on digits data
(measured: 0 events). The demonstration therefore trains the same A2Q MLP for P = 10 (module fixture, a few
seconds), where the unconstrained model's first layer is 3 bits short (at P = 11 it overflows only 7 times and keeps
its accuracy):
1. The A2Q model at its planned accumulator widths: C-sim equals the golden model bit for bit on the whole test
   set, with zero overflow events, also on each first-layer channel's worst-case inputs.
2. The unconstrained model compiled with the same (A2Q) width overflows and loses accuracy.
3. The unconstrained model at 32 bits is exact again.
Plus: the trained MLP and CNN are bit-exact at their planned widths and at 32 bits on the whole test set.
"""

from __future__ import annotations

import numpy as np
import pytest

from a2qflow.hw.compiler.bounds import first_layer_worst_case_inputs
from a2qflow.hw.compiler.compile import compile_model
from a2qflow.hw.compiler.ir import load_model
from a2qflow.hw.compiler.plan import load_plan
from a2qflow.hw.compiler.reference import run as golden_run
from a2qflow.hw.hls.csim import run_csim

pytestmark = pytest.mark.slow  # trains digits models (session fixtures) and compiles several C-sims


def _test_set(run_dir):
    return np.load(run_dir / "test_inputs.npy"), np.load(run_dir / "test_labels.npy")


def _csim(run_dir, build, acc_bits=None, allow_unsafe=False):
    compile_model(run_dir / "model.onnx", build, acc_bits=acc_bits, allow_unsafe=allow_unsafe)
    x, y = _test_set(run_dir)
    return run_csim(build, x, labels=y, progress=False, inputs_name="test_inputs.npy")


def _assert_bit_exact(res):
    assert res.summary["samples"] > 300  # the whole digits test set
    assert np.array_equal(res.outputs, res.golden.acc)
    assert res.mismatches == 0 and res.summary["mismatching_outputs"] == 0
    assert res.overflow == {k: s.overflow_events for k, s in res.golden.stats.items()}


@pytest.fixture(scope="module")
def digits_mlp_a2q_p10(tmp_path_factory):
    """digits_mlp_a2q's architecture and quantizers, trained for a 10-bit accumulator (20 epochs from scratch with
    the budget-aware init: ~94% top-1; the unconstrained model wrapped to 10 bits scores ~44% with thousands of
    overflow events)."""
    from _training_util import train_run

    return train_run(tmp_path_factory, "digits_mlp_a2q_p10", quant={"acc_bits": 10}, train={"epochs": 20, "lr": 0.02})


@pytest.fixture(scope="module")
def a2q_mlp_exact(digits_mlp_a2q, tmp_path_factory):
    build = tmp_path_factory.mktemp("a2q_mlp") / "build"
    return build, _csim(digits_mlp_a2q, build)


def test_demonstration(digits_mlp_a2q_p10, digits_mlp_unconstrained, tmp_path):
    # 1. A2Q at its planned widths: exact, no overflow on data ...
    build = tmp_path / "a2q"
    a2q = _csim(digits_mlp_a2q_p10, build)
    plan = load_plan(build)
    for lp in plan.layers:
        assert not lp.unsafe
        if lp.target_acc_bits is not None:
            assert lp.acc_bits <= lp.target_acc_bits  # training kept every channel inside its L1 budget
    _assert_bit_exact(a2q)
    assert a2q.overflow_events == 0
    # ... and none on the per-channel worst-case inputs of the first layer (each reaches its exact hi / lo)
    wc = run_csim(build, first_layer_worst_case_inputs(load_model(build)), progress=False, write=False)
    assert np.array_equal(wc.outputs, wc.golden.acc)
    assert wc.overflow_events == 0 and wc.summary["compiled"] is False
    p = max(plan.acc_bits().values())

    # 2. the unconstrained model at the same width overflows and loses accuracy
    narrow = _csim(digits_mlp_unconstrained, tmp_path / "unconstrained_p", acc_bits=p, allow_unsafe=True)
    assert load_plan(tmp_path / "unconstrained_p").unsafe
    _assert_bit_exact(narrow)  # wrapped, but the C++ wraps exactly as the golden model says it should
    assert narrow.overflow_events > 0

    # 3. the unconstrained model at 32 bits is exact again (equals the ideal, unwrapped integer model)
    wide = _csim(digits_mlp_unconstrained, tmp_path / "unconstrained_32", acc_bits=32)
    _assert_bit_exact(wide)
    assert wide.overflow_events == 0
    x, y = _test_set(digits_mlp_unconstrained)
    model = load_model(tmp_path / "unconstrained_32")
    ideal = golden_run(model, model.input_quant.quantize(x))
    assert np.array_equal(wide.outputs, ideal.acc)
    assert narrow.summary["top1_accuracy"] < wide.summary["top1_accuracy"] - 0.05
    assert narrow.summary["top1_accuracy"] < a2q.summary["top1_accuracy"]
    print(f"\nA2Q MLP at P<={p}: top-1 {a2q.summary['top1_accuracy']:.3f}, 0 overflow events; unconstrained at P={p}: "
          f"top-1 {narrow.summary['top1_accuracy']:.3f}, {narrow.overflow_events} overflow events; unconstrained at "
          f"P=32: top-1 {wide.summary['top1_accuracy']:.3f}")


def test_a2q_mlp_bit_exact_at_planned_and_32_bits(digits_mlp_a2q, a2q_mlp_exact, tmp_path):
    planned = a2q_mlp_exact[1]
    _assert_bit_exact(planned)
    assert planned.overflow_events == 0
    wide = _csim(digits_mlp_a2q, tmp_path / "b32", acc_bits=32)
    _assert_bit_exact(wide)
    assert wide.overflow_events == 0
    # A2Q's planned widths lose nothing against 32 bits: same integers, same accuracy
    assert np.array_equal(wide.outputs, a2q_mlp_exact[1].outputs)
    assert wide.summary["top1_accuracy"] == a2q_mlp_exact[1].summary["top1_accuracy"]


@pytest.mark.parametrize("acc_bits", [None, 32])
def test_a2q_cnn_bit_exact_on_the_whole_test_set(digits_cnn_a2q, tmp_path, acc_bits):
    res = _csim(digits_cnn_a2q, tmp_path / "b", acc_bits=acc_bits)
    _assert_bit_exact(res)
    assert res.overflow_events == 0
    assert res.summary["top1_accuracy"] > 0.5
