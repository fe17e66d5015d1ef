"""Budget-aware initialisation of A2Q / A2Q+ layers: start every output channel inside its L1 budget.

Why (measured, see docs/training.md): Brevitas 0.13.4 initialises an A2Q layer's post-scale s at
max|w| / (2^(M-1) - 1) and its norm g at the channel's L1 norm, ignoring the accumulator budget T (the largest
||q||_1 allowed at the target P). At M = 8 the ratio g / s is ~4,000 against T = 128 (P = 16): the clamp
`min(g / s, T)` is active on every channel from step 0, g never receives a gradient, and round-toward-zero zeroes
98-100 % of the weights. This module chooses, per output channel, the scale that best represents the weights
*within* the budget and sets the quantizer's parameters so no channel starts clamped.

Per channel w (mean removed for A2Q+, whose quantizer zero-centres w itself):
  1. scan `SCALES` geometric values s from s_lo = max|w| / (2^(M-1) - 1) (no clipping) up to
     s_hi = max(s_lo, ||w||_1 / T) (where w already fits the budget unprojected);
  2. for each s, project w onto the L1 ball of radius T * s (Euclidean projection, Duchi et al. 2008) and
     quantize with the quantizer's own rounding, q = clip(round_toward_zero(p / s));
  3. keep the s with the smallest squared error ||q * s - w||^2.
Then weight <- p, s <- s (both of Brevitas' copies, see below), g <- ||p||_1, so g / s <= T.

Brevitas parameters (read from brevitas/core/scaling/pre_scaling.py and brevitas/quant/base.py, 0.13.4):
  weight_quant.tensor_quant.scaling_impl.value                   log2 of the post-scale s (LogFloatRestrictValue)
  weight_quant.tensor_quant.pre_scaling_impl.scaling_impl.value  log2 of the s inside the clamp g / s; a second,
                                                                 separately trained Parameter with the same init
  weight_quant.tensor_quant.pre_scaling_impl.value               log2 of the norm g
The quantizer computes pre_scale = ||w_c||_1 / min(g / s, T) and q = clip(round_toward_zero(w_c / pre_scale)),
with w_c = w - mean(w) per channel for A2Q+ (PreZeroCenterZeroPoint) and w_c = w for A2Q. With w = p and
g = ||p||_1 <= T * s this is q = round_toward_zero(p / s): exactly what the scan evaluated. Values are written
through each parameter's own `restrict_init_tensor`, so a change of Brevitas' log base would follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import A2Q_QUANTS, LayerSpec
from a2qflow.training.quant import l1_budget

SCALES = 48
MARGIN = 1.0 - 1e-5  # project onto a ball a hair smaller than T * s so float rounding never leaves g / s above T


@dataclass(frozen=True)
class LayerInit:
    """What the initialisation did to one layer (recorded in metrics.json under `init`)."""

    name: str
    budget: float            # T: the largest ||q||_1 at the layer's P
    max_ratio: float         # max over channels of g / s after init (<= T: no channel starts clamped)
    clamped_before: int      # channels whose Brevitas-default g / s exceeded T before init
    zero_fraction: float     # fraction of zero integer weights right after init
    projected: int           # channels whose chosen scale needed the projection (||w||_1 > T * s)

    def to_json(self) -> dict:
        return {"budget": self.budget, "max_ratio": self.max_ratio, "clamped_before": self.clamped_before,
                "zero_fraction": self.zero_fraction, "projected": self.projected}


def project_l1_ball(v: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row of v (..., K) onto the L1 ball of radius `radius` (..., 1).

    Duchi, Shalev-Shwartz, Singer, Chandra (ICML 2008), sort-based: soft-threshold |v| by the theta that makes the
    L1 norm equal the radius; rows already inside the ball are returned unchanged.
    """
    a = v.abs()
    inside = a.sum(-1, keepdim=True) <= radius
    u, _ = torch.sort(a, dim=-1, descending=True)
    css = u.cumsum(-1) - radius
    j = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
    rho = ((u - css / j) > 0).sum(-1, keepdim=True).clamp(min=1)
    theta = (css.gather(-1, rho - 1) / rho.to(v.dtype)).clamp(min=0)
    out = torch.sign(v) * (a - theta).clamp(min=0)
    return torch.where(inside, v, out)


def choose_scales(w: torch.Tensor, budget: float, bits: int, zero_center: bool,
                  scales: int = SCALES) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel (rows of w, shape (C, K)): the best scale s (C, 1) and the projected weights p (C, K).

    Args:
        w: float weights, one output channel per row.
        budget: T, the largest ||q||_1 the layer's P allows (quant.l1_budget).
        bits: M; integers are clipped to +-(2^(M-1) - 1) (narrow range, as Brevitas' A2Q quantizers).
        zero_center: A2Q+: remove each row's mean first (the quantizer does the same) and keep p zero-mean.
        scales: how many geometric scale values to try.
    Returns:
        (s, p) with round_toward_zero(p / s) the integers the quantizer will produce, ||p||_1 <= T * s.
    """
    w = w.detach().to(torch.float64)
    if zero_center:
        w = w - w.mean(1, keepdim=True)
    qmax = 2.0 ** (bits - 1) - 1
    s_lo = (w.abs().amax(1, keepdim=True) / qmax).clamp(min=1e-12)
    s_hi = torch.maximum(s_lo, w.abs().sum(1, keepdim=True) / budget)
    steps = torch.linspace(0.0, 1.0, scales, dtype=w.dtype)
    s = torch.exp(torch.log(s_lo) + (torch.log(s_hi) - torch.log(s_lo)) * steps)  # (C, S)
    p = _project(w.unsqueeze(1).expand(-1, scales, -1), (budget * MARGIN * s).unsqueeze(-1), zero_center)
    q = torch.trunc(p / s.unsqueeze(-1)).clamp(-qmax, qmax)
    err = ((q * s.unsqueeze(-1) - w.unsqueeze(1)) ** 2).sum(-1)  # (C, S)
    best = err.argmin(1)
    rows = torch.arange(w.shape[0])
    return s[rows, best].unsqueeze(1), p[rows, best]


def _project(w: torch.Tensor, radius: torch.Tensor, zero_center: bool) -> torch.Tensor:
    """Projection onto the L1 ball; for A2Q+ re-centred (the quantizer re-centres) and shrunk back inside."""
    p = project_l1_ball(w, radius)
    if zero_center:
        p = p - p.mean(-1, keepdim=True)
        l1 = p.abs().sum(-1, keepdim=True)
        p = p * torch.where(l1 > radius, radius / l1.clamp(min=1e-30), torch.ones_like(l1))
    return p


def _params(layer: nn.Module):
    tq = layer.weight_quant.tensor_quant
    try:
        return tq.scaling_impl, tq.pre_scaling_impl.scaling_impl, tq.pre_scaling_impl
    except AttributeError:
        raise A2QFlowError(f"{type(layer).__name__}: not a Brevitas A2Q / A2Q+ weight quantizer (no "
                           f"pre_scaling_impl); this Brevitas version is not supported by training.init") from None


def _set_log_param(impl: nn.Module, value: torch.Tensor) -> None:
    restrict = impl.restrict_clamp_scaling.restrict_value_impl
    target = impl.value
    target.data.copy_(restrict.restrict_init_tensor(value.to(target.dtype)).reshape(target.shape))


def _current_ratio(layer: nn.Module, zero_center: bool) -> torch.Tensor:
    """Brevitas' current g / s per channel (before the clamp)."""
    post, pre_s, pre = _params(layer)
    with torch.no_grad():
        g = pre.restrict_clamp_scaling(pre.value).flatten()
        s = pre_s.restrict_clamp_scaling(pre_s.value).flatten()
    return g / s


def budget_init(layer: nn.Module, spec: LayerSpec) -> LayerInit:
    """Apply the budget-aware initialisation to one A2Q / A2Q+ QuantLinear / QuantConv2d (in place).

    Raises A2QFlowError if, after init, a channel's g / s still exceeds its budget (it never should).
    """
    if spec.weight_quant not in A2Q_QUANTS:
        raise A2QFlowError(f"layer {spec.name}: budget_init needs an a2q / a2q+ layer, not {spec.weight_quant}")
    zc = spec.weight_quant == "a2q+"
    T = l1_budget(spec.weight_quant, spec.target_acc_bits, spec.in_type)
    w = layer.weight.detach()
    flat = w.reshape(w.shape[0], -1)
    before = int((_current_ratio(layer, zc) > T).sum())
    s, p = choose_scales(flat, T, spec.weight_bits, zc)
    g = p.abs().sum(1, keepdim=True).clamp(min=1e-12 * float(s.max()))  # an all-zero row keeps a tiny norm
    post, pre_s, pre = _params(layer)
    with torch.no_grad():
        layer.weight.data.copy_(p.to(w.dtype).reshape(w.shape))
        for impl in (post, pre_s):
            _set_log_param(impl, s)
        _set_log_param(pre, g)
    ratio = _current_ratio(layer, zc)
    if not bool((ratio <= T).all()):
        raise A2QFlowError(f"layer {spec.name}: budget init left g/s = {float(ratio.max()):.4g} above the budget "
                           f"T = {T:.4g}; please report this")
    q = torch.trunc(p / s).clamp(-(2.0 ** (spec.weight_bits - 1) - 1), 2.0 ** (spec.weight_bits - 1) - 1)
    wc = flat.to(torch.float64)
    wc = wc - wc.mean(1, keepdim=True) if zc else wc
    projected = int((wc.abs().sum(1, keepdim=True) > T * MARGIN * s).sum())
    return LayerInit(spec.name, T, float(ratio.max()), before, float((q == 0).double().mean()), projected)


def brevitas_default_init(layer: nn.Module, spec: LayerSpec) -> None:
    """Re-apply Brevitas' own init to the current weights: s = max|w_c| / (2^(M-1) - 1), g = ||w_c||_1.

    Used when float-twin weights are loaded into a layer but the budget-aware init is off, so the quantizer's
    parameters describe the loaded weights rather than the random ones the layer was built with.
    """
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1).to(torch.float64)
    if spec.weight_quant == "a2q+":
        w = w - w.mean(1, keepdim=True)
    s = (w.abs().amax(1, keepdim=True) / (2.0 ** (spec.weight_bits - 1) - 1)).clamp(min=1e-12)
    g = w.abs().sum(1, keepdim=True).clamp(min=1e-12)
    post, pre_s, pre = _params(layer)
    with torch.no_grad():
        for impl in (post, pre_s):
            _set_log_param(impl, s)
        _set_log_param(pre, g)


def init_model(net: nn.Module, specs: list[LayerSpec], budget_aware: bool = True) -> dict[str, LayerInit]:
    """Initialise every A2Q / A2Q+ layer of `net` (budget-aware, or Brevitas' formulas when budget_aware=False).

    Returns the per-layer record for budget-aware init ({} otherwise).
    """
    out: dict[str, LayerInit] = {}
    for spec in specs:
        if spec.weight_quant not in A2Q_QUANTS:
            continue
        layer = getattr(net, spec.name)
        if budget_aware:
            out[spec.name] = budget_init(layer, spec)
        else:
            brevitas_default_init(layer, spec)
    return out
