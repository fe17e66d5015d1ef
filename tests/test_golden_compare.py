"""One golden comparison (hw/compiler/golden_compare.py) for every executor: a value flipped in a known layer,
channel and sample is reported with exactly that layer, channel and sample, by the comparison itself (every layer
of a CNN, CHW outputs), by the g++ C-sim path and by the Verilator RTL path (csim.json / rtlsim.json and the
stage error), while the earlier JSON keys keep their meaning."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _hls_util import conv_model, dense_model, random_inputs
from _hls_util import write_build as write_hls_build
from _rtl_util import dense_chain
from _rtl_util import write_build as write_rtl_build
from hypothesis import given, settings
from hypothesis import strategies as st

from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.golden_compare import compare_with_golden, layer_shape
from a2qflow.hw.compiler.plan import load_plan
from a2qflow.hw.errors import A2QFlowError

CNN = conv_model(seed=2)
CNN_X = random_inputs(CNN, 6)
CNN_RUN = reference.run(CNN, CNN_X, keep=True)


@settings(max_examples=60, deadline=None)
@given(layer=st.integers(0, len(CNN.layers) - 1), sample=st.integers(0, len(CNN_X) - 1), data=st.data())
def test_a_flipped_value_is_reported_at_its_layer_channel_position_and_sample(layer, sample, data):
    name = CNN.layers[layer].name
    shape = layer_shape(CNN.layers[layer])
    where = tuple(data.draw(st.integers(0, d - 1)) for d in shape)
    got = {k: v.copy() for k, v in CNN_RUN.values.items()}
    got[name][(sample, *where)] += 1
    res = compare_with_golden(CNN, CNN_RUN, got, "test executor")
    assert (res.n_samples, res.n_mismatches, res.mismatching_values) == (len(CNN_X), 1, 1)
    f = res.first
    assert (f.layer, f.channel, f.sample, tuple(f.position)) == (name, where[0], sample, where[1:])
    assert f.got == f.expected + 1 == int(CNN_RUN.values[name][(sample, *where)]) + 1
    assert [c.layer for c in res.layers] == [l.name for l in CNN.layers]  # the per-layer breakdown, in order
    assert [c.mismatching_values for c in res.layers] == [int(c.layer == name) for c in res.layers]
    assert f"layer {name}, channel {where[0]}" in res.message() and f"sample {sample}:" in res.message()


def test_the_earliest_differing_layer_is_the_first_mismatch_and_counts_are_per_sample():
    got = {k: v.copy() for k, v in CNN_RUN.values.items()}
    got["fc"][4, 2] -= 3  # later layer, earlier sample ...
    got["conv1"][5, 1, 0, 0] += 1  # ... but conv1 comes first in the graph: that is where a bug starts
    res = compare_with_golden(CNN, CNN_RUN, got, "x")
    assert (res.first.layer, res.first.sample, res.first.channel) == ("conv1", 5, 1)
    assert res.n_mismatches == 2 and res.mismatching_values == 2 and not res.ok
    ok = compare_with_golden(CNN, CNN_RUN, CNN_RUN.acc.copy(), "x")
    assert ok.ok and ok.first is None and [c.layer for c in ok.layers] == ["fc"]
    assert ok.message() == f"x agrees with the golden model on all {len(CNN_X)} samples"


def test_wrong_shapes_and_unknown_layers_are_one_line_errors():
    with pytest.raises(A2QFlowError, match=r"^C-sim: layer fc has outputs of shape \[6, 4\], expected \(6, 5\)"):
        compare_with_golden(CNN, CNN_RUN, CNN_RUN.acc[:, :4], "C-sim")
    with pytest.raises(A2QFlowError, match=r"^C-sim: outputs for 'nope', which is no layer of model 'rand_cnn'"):
        compare_with_golden(CNN, CNN_RUN, {"nope": CNN_RUN.acc}, "C-sim")


def _flip(y: np.ndarray, sample: int, index: int) -> np.ndarray:
    y = y.copy()
    y[sample, index] ^= 1  # flip the lowest bit of one output integer
    return y


def test_csim_reports_a_corrupted_output_by_layer_channel_and_sample(tmp_path, monkeypatch):
    from a2qflow.flows.stages import _no_mismatch
    from a2qflow.hw.hls import csim

    model = dense_model(seed=9)
    build = write_hls_build(model, tmp_path / "b")
    real = csim.run_testbench

    def corrupted(*args, **kwargs):
        y, counts, seconds = real(*args, **kwargs)
        return _flip(y, 7, 3), counts, seconds  # sample 7, channel 3 of the output layer fc2

    monkeypatch.setattr(csim, "run_testbench", corrupted)
    res = csim.run_csim(build, random_inputs(model, 20), progress=False)
    f = res.comparison.first
    assert (f.layer, f.channel, f.sample) == ("fc2", 3, 7) and f.got == f.expected ^ 1
    assert res.mismatches == 1 and res.summary["mismatching_outputs"] == 1
    js = json.loads((build / "csim" / "csim.json").read_text())
    assert js["mismatches"] == 1 and js["golden_comparison"]["first"]["layer"] == "fc2"
    assert {k: js["first_mismatch"][k] for k in ("sample", "layer", "channel", "output")} == {
        "sample": 7, "layer": "fc2", "channel": 3, "output": 3}
    assert js["first_mismatch"]["csim"] == f.got and js["first_mismatch"]["golden"] == f.expected
    with pytest.raises(A2QFlowError, match=r"^stage csim: C-sim disagrees with the golden model on 1 of 20 samples "
                                           r"\(1 values\); first at layer fc2, channel 3, sample 7: expected"):
        _no_mismatch(type("Ctx", (), {"name": "csim"}), res.comparison)


def test_rtlsim_reports_a_corrupted_output_by_layer_channel_and_sample(tmp_path, monkeypatch):
    from a2qflow.hw.rtl import sim

    model = dense_chain(seed=3)
    write_rtl_build(tmp_path, model)
    real = sim.simulate

    def corrupted(*args, **kwargs):
        y, times = real(*args, **kwargs)
        return _flip(y, 11, 4), times  # sample 11, channel 4 of the output layer fc.out

    monkeypatch.setattr(sim, "simulate", corrupted)
    x = np.random.default_rng(4).integers(0, 16, (16, 12))
    golden = reference.run(model, x, load_plan(tmp_path).acc_bits())
    res = sim.run_rtlsim(tmp_path, x, csim_outputs=golden.acc)  # the C-sim reference agrees with the golden model
    f = res.golden_comparison.first
    assert (f.layer, f.channel, f.sample) == ("fc.out", 4, 11) and f.expected == golden.acc[11, 4]
    assert res.mismatches == 1 and res.csim_mismatches == 1 and res.csim_comparison.first == f
    js = json.loads((tmp_path / "rtlsim" / "rtlsim.json").read_text())
    # the earlier keys keep their meaning (sample, output, rtl, golden), the new ones name layer and channel
    assert {k: js["first_mismatch"][k] for k in ("sample", "output", "rtl", "golden", "layer", "channel")} == {
        "sample": 11, "output": 4, "rtl": f.got, "golden": f.expected, "layer": "fc.out", "channel": 4}
    assert "first at layer fc.out, channel 4, sample 11:" in res.golden_comparison.message()


def _conv_output_model():
    """conv_net without its dense head: the output layer is conv1, (C, H, W) = (6, 2, 1), so a channel is not an
    output index (and the RTL streams it in HWC order)."""
    from _rtl_util import conv_net

    from a2qflow.hw.compiler.ir import Model

    m = conv_net(seed=5)
    return Model("conv_out", m.input_shape, m.input_quant, m.layers[:3])


def test_a_corrupted_conv_output_is_reported_at_its_channel_and_pixel_by_rtl_and_csim(tmp_path, monkeypatch):
    from a2qflow.hw.hls import csim
    from a2qflow.hw.rtl import sim

    model = _conv_output_model()
    x = np.random.default_rng(6).integers(0, 16, (5, 1, 6, 6))
    write_rtl_build(tmp_path / "r", model)
    real_sim, real_tb = sim.simulate, csim.run_testbench
    c, h, w = 4, 1, 0  # channel 4 at pixel (1, 0) of sample 3

    def rtl_corrupted(*args, **kwargs):
        y, times = real_sim(*args, **kwargs)
        return _flip(y, 3, (h * 1 + w) * 6 + c), times  # the RTL streams (H, W, C) order

    def csim_corrupted(*args, **kwargs):
        y, counts, seconds = real_tb(*args, **kwargs)
        return _flip(y, 3, c * 2 + h), counts, seconds  # C-sim writes the golden model's (C, H, W) order

    monkeypatch.setattr(sim, "simulate", rtl_corrupted)
    rtl = sim.run_rtlsim(tmp_path / "r", x).golden_comparison.first
    write_hls_build(model, tmp_path / "h")
    monkeypatch.setattr(csim, "run_testbench", csim_corrupted)
    hls = csim.run_csim(tmp_path / "h", x, progress=False).comparison.first
    for f in (rtl, hls):
        assert (f.layer, f.channel, f.position, f.sample, f.index) == ("conv1", c, [h, w], 3, c * 2 + h)
