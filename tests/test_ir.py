"""The shared contract: IR round-trips, threshold fitting never changes a reachable result, wrap is two's complement."""

from __future__ import annotations

import numpy as np
import pytest
from _rtl_util import conv_net
from hypothesis import given, settings
from hypothesis import strategies as st

from a2qflow.hw.compiler.bounds import channel_ranges, signed_bits_for_range, wrap
from a2qflow.hw.compiler.ir import IntType, Model, load_model, save_model
from a2qflow.hw.compiler.plan import load_plan, make_plan, save_plan
from a2qflow.hw.compiler.thresholds import fit_thresholds
from a2qflow.hw.errors import A2QFlowError


def _cnn() -> Model:
    """conv -> maxpool -> conv (stride 2, asymmetric pad) -> dense, its first layer trained for P = 12."""
    model = conv_net(seed=1)
    model.layers[0].target_acc_bits = 12
    return model


def test_model_and_plan_round_trip(tmp_path):
    from a2qflow.hw.compiler import reference

    rng = np.random.default_rng(1)
    model = _cnn()
    plan = make_plan(model)
    save_model(model, tmp_path)
    save_plan(plan, tmp_path)
    back, plan_back = load_model(tmp_path), load_plan(tmp_path)
    assert plan_back.to_json() == plan.to_json()
    assert back.layers[0].target_acc_bits == 12 and back.layers[1].kind == "maxpool"
    x = rng.integers(0, 16, (7, *model.input_shape))
    a, b = reference.run(model, x), reference.run(back, x, plan_back.acc_bits())
    np.testing.assert_array_equal(a.acc, b.acc)
    np.testing.assert_allclose(a.logits, b.logits)
    assert b.overflow_events == 0
    assert not list(tmp_path.glob("*.tmp")), "atomic writes left temp files behind"


def test_load_model_names_missing_folder(tmp_path):
    with pytest.raises(A2QFlowError, match="run `a2qflow compile"):
        load_model(tmp_path)
    with pytest.raises(A2QFlowError, match="no plan.json"):
        load_plan(tmp_path)


def test_forced_width_below_exact_needs_explicit_flag():
    model = _cnn()
    with pytest.raises(A2QFlowError, match=r"layer conv0: --acc-bits 4 is below its exact bound"):
        make_plan(model, acc_bits=4)
    plan = make_plan(model, acc_bits=4, allow_unsafe=True)
    assert plan.unsafe and all(l.unsafe for l in plan.layers)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 24), st.integers(2, 8), st.integers(2, 8), st.booleans(), st.integers(0, 2**31 - 1),
       st.integers(-3, 2))
def test_fit_thresholds_keeps_every_reachable_comparison(k, n, m, signed, seed, delta):
    """Clipping thresholds into the channel's reachable range changes no `acc >= T` for reachable acc, at the
    exact width and at wider ones; thresholds always fit in thr_bits <= acc_bits + 1."""
    rng = np.random.default_rng(seed)
    in_t, w_t = IntType(n, signed), IntType(m, True)
    w = rng.integers(w_t.min, w_t.max + 1, (3, k))
    lo, hi = channel_ranges(w, in_t)
    span = int(max(abs(lo.min()), abs(hi.max()))) + 5
    t = np.sort(rng.integers(-3 * span, 3 * span + 1, (3, 7)), axis=1)
    exact = signed_bits_for_range(int(lo.min()), int(hi.max()))
    bits = max(exact + max(delta, 0), 1)
    fitted, thr_bits = fit_thresholds(t, w, in_t, bits)
    assert thr_bits <= bits + 1
    assert signed_bits_for_range(int(fitted.min()), int(fitted.max())) <= thr_bits
    for c in range(3):
        accs = np.arange(lo[c], hi[c] + 1)[:, None]
        np.testing.assert_array_equal(accs >= t[c], accs >= fitted[c])


@given(st.integers(-(2**40), 2**40), st.integers(1, 40))
def test_wrap_is_twos_complement(v, bits):
    got = int(wrap(np.array([v]), bits)[0])
    assert -(1 << (bits - 1)) <= got < (1 << (bits - 1))
    assert (got - v) % (1 << bits) == 0
