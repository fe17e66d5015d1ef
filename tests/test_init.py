"""Budget-aware initialisation (training.init): no A2Q / A2Q+ channel starts clamped, the norm g gets a gradient,
and Brevitas' own quantizer produces exactly the integers the scale scan chose (no training here; < 2 s)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from a2qflow.training.init import budget_init, choose_scales, project_l1_ball
from a2qflow.training.quant import LayerSpec, input_quant_module, l1_budget, weight_quant_kwargs


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=1, max_size=24),
       st.floats(0.01, 40))
def test_l1_projection_is_inside_and_nearest(v, radius):
    v = torch.tensor([v], dtype=torch.float64)
    r = torch.tensor([[radius]], dtype=torch.float64)
    p = project_l1_ball(v, r)
    assert float(p.abs().sum()) <= radius * (1 + 1e-9) + 1e-12
    if float(v.abs().sum()) <= radius:
        assert torch.equal(p, v)  # inside points are left alone
    # nearest point of the ball: no random point of the ball (on its surface) is closer to v
    g = torch.Generator().manual_seed(0)
    cand = torch.randn(200, v.shape[1], generator=g, dtype=torch.float64)
    cand = cand / cand.abs().sum(1, keepdim=True) * radius
    assert float(((cand - v) ** 2).sum(1).min()) >= float(((p - v) ** 2).sum()) - 1e-9


def _layer(wq: str, bits: int, P: int, k: int = 64, c: int = 12):
    import brevitas.nn as qnn

    spec = LayerSpec("fc0", wq, bits, bits, False, P)
    torch.manual_seed(0)
    layer = qnn.QuantLinear(k, c, bias=True, **weight_quant_kwargs(spec))
    layer.weight.data.normal_(0.0, 0.3)  # a trained-looking weight (float twin) rather than the tiny default
    return spec, layer


def _int_weights(layer, spec):
    iq = input_quant_module(spec.input_bits, spec.input_signed)
    layer.eval()
    return layer.quant_weight(iq(torch.rand(4, layer.in_features))).int().double()


def _g_grad(layer, spec) -> torch.Tensor:
    iq = input_quant_module(spec.input_bits, spec.input_signed)
    layer.train()
    g = layer.weight_quant.tensor_quant.pre_scaling_impl.value
    g.grad = None
    out = layer(iq(torch.rand(16, layer.in_features)))
    (out.value if hasattr(out, "value") else out).pow(2).sum().backward()
    return g.grad.flatten()


@pytest.mark.parametrize("wq,bits,P", [("a2q", 8, 16), ("a2q", 8, 14), ("a2q+", 8, 12), ("a2q", 4, 12),
                                       ("a2q+", 4, 12)])
def test_budget_init_starts_inside_the_budget_and_matches_brevitas(wq, bits, P):
    spec, layer = _layer(wq, bits, P)
    T = l1_budget(wq, P, spec.in_type)
    w0 = layer.weight.detach().clone()
    rec = budget_init(layer, spec)
    assert rec.max_ratio <= T
    q = _int_weights(layer, spec)
    assert (q.abs().sum(1) <= T).all()  # Brevitas' own quantizer, after init
    # the integers Brevitas produces are those the scan evaluated, trunc(p / s), up to float32 vs float64
    # rounding of values that sit on an integer (e.g. max|w| / s_lo = 2^(M-1) - 1 exactly)
    s, p = choose_scales(w0, T, bits, wq == "a2q+")
    qmax = 2 ** (bits - 1) - 1
    ratio = p / s
    differ = q != torch.trunc(ratio).clamp(-qmax, qmax)
    assert float((ratio - ratio.round()).abs()[differ].sum()) < 1e-5 * max(1, int(differ.sum()))
    assert differ.double().mean() < 0.01
    assert rec.zero_fraction == pytest.approx(float((q == 0).double().mean()))
    assert (_g_grad(layer, spec) != 0).all()  # the norm g learns on every channel


def test_brevitas_default_init_clamps_every_w8_channel_and_freezes_g():
    """The measured cause (docs/training.md): at W8A8 P=14 Brevitas starts every channel clamped, g gets no
    gradient; the budget-aware init fixes both."""
    spec, layer = _layer("a2q", 8, 14)
    assert (_g_grad(layer, spec) == 0).all()
    rec = budget_init(layer, spec)
    assert rec.clamped_before == layer.out_features
    assert (_g_grad(layer, spec) != 0).all()


def test_scan_prefers_no_projection_when_the_budget_is_loose():
    w = torch.tensor([[0.5, -0.25, 0.125, 0.0]], dtype=torch.float64)
    s, p = choose_scales(w, budget=1e6, bits=8, zero_center=False)
    assert torch.equal(p, w) and float(s) == pytest.approx(0.5 / 127)  # finest scale, nothing clipped
