"""Post-training quantization (`a2qflow.quantize`, training.ptq / axe / zeroshot): the bound holds on every channel,
the planted integers are the ones Brevitas computes and the file carries, the C-sim of a PTQ model equals its
golden model, and bad input is one line naming the layer. Tiny digits models (trained here in ~1 s)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import a2qflow
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.axe import METHODS, integer_budget, quantize_layer, zero_sum


def _digits():
    from a2qflow.training.config import DataConfig
    from a2qflow.training.data import load_dataset

    sp = load_dataset(DataConfig(dataset="digits"))
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f(sp.x_train), torch.tensor(sp.y_train), f(sp.x_test), torch.tensor(sp.y_test)


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 15) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 0.01)
    model.train()
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    return _digits()


@pytest.fixture(scope="module")
def float_mlp(digits):
    x, y, _, _ = digits
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))
    return _fit(m, x, y)


@pytest.fixture(scope="module")
def float_cnn(digits):
    x, y, _, _ = digits
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    return _fit(m, x, y, epochs=8)


def _l1_ok(report: dict) -> None:
    assert report["ok"], report["violations"]
    for layer in report["layers"]:
        assert layer["audited"] and max(layer["l1"]) <= layer["l1_bound"]
        assert layer["acc_bits_exact"] <= layer["target_acc_bits"]


# ------------------------------------------------------------------------------------------ the algorithms

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(METHODS), st.integers(2, 8), st.integers(1, 60))
def test_every_method_keeps_every_channel_inside_its_integer_budget(seed, method, bits, budget):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 20, generator=g, dtype=torch.float64)
    x = torch.randn(50, 20, generator=g, dtype=torch.float64) @ torch.randn(20, 20, generator=g, dtype=torch.float64)
    s = w.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
    q = quantize_layer(method, w, s, budget, bits, x, x)
    assert torch.equal(q, q.round())
    assert (q.abs() <= 2 ** (bits - 1) - 1).all()
    assert (q.abs().sum(1) <= budget).all()


def test_integer_budget_leaves_slack_below_the_bound():
    for T in (1.0, 1.2, 1.3, 7.98, 8.0, 128.5, 2184.47):
        B = integer_budget(T)
        assert B == int(B) and B <= T - 0.25 and B + 1 > T - 0.25 - 1e-9


def test_axe_optq_beats_rtn_where_the_budget_binds():
    """On correlated inputs with a budget well below the weights' own L1 norm, error correction must help."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 64, generator=g, dtype=torch.float64)
    x = torch.relu(torch.randn(400, 64, generator=g, dtype=torch.float64) @ torch.randn(64, 64, generator=g,
                                                                                         dtype=torch.float64))
    s = w.abs().amax(1, keepdim=True) / 7
    err = {}
    for method in METHODS:
        q = quantize_layer(method, w, s, 40, 4, x, x)
        err[method] = float((x @ (q * s - w).T).norm())
    assert err["axe-optq"] < err["rtn"] and err["axe-gpfq"] < err["rtn"], err


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 8), st.integers(8, 16), st.sampled_from(["a2q", "a2q+"]))
def test_planted_integers_are_exactly_what_brevitas_computes(seed, bits, P, wq):
    """plant_integers: the A2Q / A2Q+ quantizer (mean removed for A2Q+, round toward zero, clamp at T) reproduces
    q for any q inside the budget (zero-sum for A2Q+)."""
    import brevitas.nn as qnn

    from a2qflow.training.export import layer_integers
    from a2qflow.training.ptq import budget_of, plant_integers
    from a2qflow.training.quant import LayerSpec, input_quant_module, weight_quant_kwargs

    spec = LayerSpec("fc0", wq, bits, 4, False, P)
    T, B = budget_of(spec)
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-(2 ** (bits - 1) - 1), 2 ** (bits - 1), (5, 30), generator=g).double()
    q[0] = 0  # an all-zero channel
    q = torch.where(torch.rand(q.shape, generator=g) < 0.5, q, torch.zeros_like(q))
    from a2qflow.training.axe import rtn

    q = rtn(q, torch.ones(5, 1, dtype=torch.float64), B, bits)  # squeeze into the budget
    if wq == "a2q+":
        q = zero_sum(q, q + torch.rand(q.shape, generator=g, dtype=torch.float64) - 0.5)
        assert not q.sum(1).any()
    assert (q.abs().sum(1) <= B).all() and B <= T
    s = torch.exp(torch.randn(5, 1, generator=g, dtype=torch.float64) * 2 - 4)
    layer = qnn.QuantLinear(30, 5, bias=True, **weight_quant_kwargs(spec))
    plant_integers(layer, q, s, T, wq == "a2q+")
    inp = input_quant_module(4, False)(torch.rand(2, 30))
    got = layer_integers("fc0", layer, inp)
    assert np.array_equal(got.q, q.numpy().astype(np.int64))
    assert np.allclose(got.scale.reshape(-1), s.numpy().reshape(-1), rtol=1e-6)


# ------------------------------------------------------------------------------------------ the public API

@pytest.mark.parametrize("method,wq", [(m, "a2q") for m in METHODS] + [("rtn", "a2q+"), ("axe-gpfq", "a2q+")])
def test_quantize_exports_and_audits_every_channel_inside_its_bound(tmp_path, digits, float_mlp, method, wq):
    x, _, xt, yt = digits
    before = {k: v.clone() for k, v in float_mlp.state_dict().items()}
    qnet = a2qflow.quantize(float_mlp, x[:300], acc_bits=11, weight_bits=4, act_bits=4, method=method,
                            weight_quant=wq)
    assert all(torch.equal(before[k], v) for k, v in float_mlp.state_dict().items())  # untouched
    res = a2qflow.export_qonnx(qnet, xt[:16].reshape(16, -1), tmp_path / "m.onnx")
    _l1_ok(res["audit"])
    _l1_ok(a2qflow.audit(tmp_path / "m.onnx"))
    with torch.no_grad():
        acc = float((qnet(xt.reshape(len(xt), -1)).argmax(1) == yt).double().mean())
    assert acc > 0.5  # a working classifier, not a zeroed one (float ~0.95 on digits)


def test_ptq_cnn_with_batchnorm_compiles_and_csim_equals_golden(tmp_path, digits, float_cnn):
    x, _, xt, _ = digits
    qnet = a2qflow.quantize(float_cnn, x[:256], acc_bits=12, weight_bits=4, act_bits=4, method="axe-optq")
    _l1_ok(a2qflow.export_qonnx(qnet, xt[:16], tmp_path / "m.onnx")["audit"])
    plan = a2qflow.compile(tmp_path / "m.onnx", tmp_path / "build")
    assert all(l.acc_bits <= 12 for l in plan.layers)
    res = a2qflow.csim(tmp_path / "build", xt[:24].numpy(), monitor=False)
    assert res.summary["samples"] == 24 and res.summary["mismatches"] == 0


def test_zero_shot_calibration_is_repeatable_and_matches_bn_statistics(float_cnn):
    from a2qflow.training.zeroshot import bn_layers, synthesize

    a = synthesize(float_cnn, (1, 8, 8), samples=32, seed=3, steps=60)
    b = synthesize(float_cnn, (1, 8, 8), samples=32, seed=3, steps=60)
    assert torch.equal(a, b) and a.shape == (32, 1, 8, 8) and a.min() >= 0 and a.max() <= 1
    start = synthesize(float_cnn, (1, 8, 8), samples=32, seed=3, steps=0)

    def gap(x):
        seen = []
        (_, bn), = bn_layers(float_cnn)
        h = bn.register_forward_pre_hook(lambda m, args: seen.append(args[0].mean((0, 2, 3))))
        with torch.no_grad():
            float_cnn(x)
        h.remove()
        return float((seen[0] - bn.running_mean).norm())

    assert gap(a) < 0.5 * gap(start)


def test_zero_shot_ptq_model_audits(tmp_path, float_cnn, digits):
    _, _, xt, _ = digits
    qnet = a2qflow.quantize(float_cnn, "zero-shot", acc_bits=12, weight_bits=4, act_bits=4, method="axe-gpfq",
                            samples=64, input_shape=(1, 8, 8))
    _l1_ok(a2qflow.export_qonnx(qnet, xt[:8], tmp_path / "z.onnx")["audit"])


# ------------------------------------------------------------------------------------------ bad input, one line each

def _one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_unsupported_layer_is_named(digits):
    x = digits[0]
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10))
    with pytest.raises(A2QFlowError) as e:
        a2qflow.quantize(m, x[:32], method="rtn")
    _one_line(e, "'2'", "Tanh")


def test_accumulator_below_what_the_weights_can_reach_is_named(digits, float_mlp):
    with pytest.raises(A2QFlowError) as e:
        a2qflow.quantize(float_mlp, digits[0][:32], acc_bits=5, weight_bits=4, act_bits=4, method="rtn")
    _one_line(e, "fc0", "acc_bits=5", "use acc_bits >=")


def test_zero_shot_without_batchnorm_names_the_model(float_mlp):
    class TinyNet(nn.Sequential):
        pass

    m = TinyNet(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(A2QFlowError) as e:
        a2qflow.quantize(m, "zero-shot", method="rtn")
    _one_line(e, "TinyNet", "BatchNorm")


def test_unknown_method_and_bad_calibration_shape(digits, float_mlp):
    with pytest.raises(A2QFlowError) as e:
        a2qflow.quantize(float_mlp, digits[0][:32], method="gptq")
    _one_line(e, "gptq", "axe-optq")
    with pytest.raises(A2QFlowError) as e:
        a2qflow.quantize(float_mlp, torch.rand(8, 50), method="rtn")
    _one_line(e, "(50,)", "64 inputs")


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_zero_sum_balances_every_row_without_growing_its_l1(seed):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(4, 12, generator=g, dtype=torch.float64) * 3
    q = torch.round(target + torch.randn(4, 12, generator=g, dtype=torch.float64))
    z = zero_sum(q, target)
    assert not z.sum(1).any()
    assert (z.abs() <= q.abs()).all() and (torch.sign(z) * torch.sign(q) >= 0).all()
