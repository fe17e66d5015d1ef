"""Resource model: the packaged coefficients load and are labelled as an estimate, more hardware never costs fewer
LUTs, plan.json layers map to the right shapes, and bad shapes are one-line errors."""

from __future__ import annotations

import pytest

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.synth.estimate import (
    LayerShape,
    estimate_design,
    estimate_layer,
    load_resource_model,
    shape_from_plan_layer,
)


def _s(**kw):
    base = dict(K=64, C=32, simd=4, pe=4, N=4, M=4, P=12, n_thr=15)
    return LayerShape(**(base | kw))


def test_packaged_model_loads_and_labels_itself():
    m = load_resource_model()
    assert set(m["coefficients"]) == {"LUT", "FF", "CARRY"} and m["version"] >= 1
    assert estimate_layer(_s()).source.startswith("estimate: a2qflow resource model v")


@pytest.mark.parametrize("field,small,big", [("P", 10, 16), ("N", 2, 4), ("M", 2, 4), ("simd", 2, 8), ("pe", 2, 8),
                                             ("n_thr", 3, 15)])
def test_more_hardware_never_costs_fewer_luts(field, small, big):
    a, b = estimate_layer(_s(**{field: small})), estimate_layer(_s(**{field: big}))
    assert b.LUT >= a.LUT and b.FF >= a.FF


def test_plan_layer_shape_and_design_total():
    row = {"name": "fc0", "K": 64, "out_channels": 32, "simd": 4, "pe": 4, "input_bits": 4, "weight_bits": 3,
           "acc_bits": 12, "thr_bits": 13, "out_bits": 2}
    s = shape_from_plan_layer(row)
    assert (s.N, s.M, s.P, s.n_thr, s.thr_bits, s.out_bits) == (4, 3, 12, 3, 13, 2)
    last = shape_from_plan_layer(row | {"thr_bits": None, "out_bits": None})
    assert last.n_thr == 0
    d = estimate_design([s, last])
    assert d["total"]["LUT"] >= sum(x["LUT"] for x in d["layers"]) - 1


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(A2QFlowError, match="simd=3 must divide K=64"):
        _s(simd=3)
    with pytest.raises(A2QFlowError, match="P=0 must be a positive integer"):
        _s(P=0)


def test_threshold_word_flip_flops_are_bounded_by_distinct_fold_functions():
    """yosys keeps at most 2^(C/PE) - 2 distinct non-constant threshold-word columns (the FF model's cap)."""
    from a2qflow.hw.synth.estimate import thr_columns

    assert thr_columns(_s(C=8, pe=4)) <= 2 and thr_columns(_s(C=16, pe=4)) <= 14
    assert thr_columns(_s(C=32, pe=1), 0.5) == pytest.approx(0.5 * 15 * 12)  # 2^32 functions: every column distinct
    assert thr_columns(_s(C=4, pe=4)) == 0 and thr_columns(_s(n_thr=0)) == 0


def _u(**kw):
    base = dict(K=64, C=32, simd=64, pe=32, N=4, M=4, P=12, n_thr=15, architecture="unrolled", signed_digits=2000)
    return LayerShape(**(base | kw))


def test_unrolled_layers_have_their_own_fitted_coefficients():
    m = load_resource_model()
    assert set(m["unrolled"]["coefficients"]) == {"LUT", "FF", "CARRY"}
    assert "channel-group" in m["unrolled"]["fitted_to"]
    u, f = estimate_layer(_u()), estimate_layer(_s(simd=64, pe=32))
    assert u.source == f.source and u.LUT != pytest.approx(f.LUT)


@pytest.mark.parametrize("field,small,big", [("signed_digits", 500, 3000), ("n_thr", 3, 15), ("P", 10, 16)])
def test_more_unrolled_hardware_never_costs_fewer_luts(field, small, big):
    a, b = estimate_layer(_u(**{field: small})), estimate_layer(_u(**{field: big}))
    assert b.LUT >= a.LUT and b.CARRY >= a.CARRY


def test_unrolled_plan_layers_are_priced_as_unrolled_and_need_their_digits():
    row = {"name": "fc0", "kind": "dense", "K": 64, "out_channels": 32, "simd": 64, "pe": 32, "input_bits": 4,
           "weight_bits": 4, "acc_bits": 12, "thr_bits": 12, "out_bits": 4, "architecture": "unrolled",
           "signed_digits": 2099, "tree_widths": "exact"}
    s = shape_from_plan_layer(row)
    assert (s.architecture, s.signed_digits, s.tree_widths, s.n_thr) == ("unrolled", 2099, "exact", 15)
    assert shape_from_plan_layer(row | {"architecture": "folded"}).architecture == "folded"
    with pytest.raises(A2QFlowError, match="layer conv0 is an unrolled conv"):
        shape_from_plan_layer(row | {"name": "conv0", "kind": "conv"})
    with pytest.raises(A2QFlowError, match="signed digits; got signed_digits=None"):
        shape_from_plan_layer(row | {"signed_digits": None})
    no_unrolled = {k: v for k, v in load_resource_model().items() if k != "unrolled"}
    with pytest.raises(A2QFlowError, match="no coefficients for unrolled layers; re-run benchmarks/fit_resource"):
        estimate_layer(s, no_unrolled)
