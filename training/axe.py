"""Accumulator-aware post-training quantization of one layer: RTN + projection, AXE-GPFQ and AXE-OPTQ.

Every function here works on one layer's float weights W (C output channels x K inputs), a per-channel scale s
(C, 1) and an integer L1 budget B (the largest ||q||_1 the layer's target P allows, see `integer_budget`), and
returns integers q (C, K) with |q| <= 2^(M-1) - 1 and ||q_c||_1 <= B for every channel c, by construction.

AXE (I. Colbert, F. Grob, G. Franco, J. Zhang, R. Saab, "Accumulator-Aware Post-Training Quantization",
arXiv 2409.17092) makes the greedy, error-correcting PTQ algorithms accumulator-aware with two changes, both
applied while the algorithm walks the K inputs of a channel in order:
  1. soft thresholding: before rounding, the error-corrected value v/s is shrunk by lambda_c, the threshold of the
     Euclidean projection of the channel's float integers w/s onto the L1 ball of radius B (Duchi et al. 2008), so
     the budget is spent evenly over the dot product instead of by the first inputs;
  2. a hard greedy limit: q_k is clipped to the budget still left, B - sum_{j<k} |q_j|, which guarantees the bound
     whatever the data.
Three choices beyond the paper (benchmarks/results/ptq.md compares AXE as published, `quantize_layer(paper=True)`
with the quantizer's max-scale): the scale is the one at which the float channel fits its budget
(training.ptq.layer_scales), lambda is raised per channel until the pass without the hard limit stays inside the
budget (`tune_thresholds`), and GPFQ's denominator is damped like OPTQ's; without them the greedy pass spends the
budget on the first inputs at tight budgets.
The reference implementation (brevitas_examples/common/axe.py, Brevitas 0.13.4) constrains the exact accumulator
range of plain integer quantizers; here the constraint is the A2Q L1 budget, so the result is a Brevitas A2Q layer
whose own quantizer keeps the guarantee (training.ptq plants q into it). Multi-stage (tiled) accumulation is not
modelled: a2qflow's hardware accumulates each dot product in one register.

GPFQ (Lybrand & Saab 2021; Zhang & Saab 2023) and OPTQ / GPTQ (Frantar et al. 2023) follow Brevitas' own
`brevitas.graph.gpfq.GPFQ` and `brevitas.graph.gptq.GPTQ` (0.13.4): GPFQ with G = X~^T X and H = X^T X (float and
quantized-network inputs), OPTQ with the upper Cholesky factor of the damped inverse Hessian (X^T X / n).
"""

from __future__ import annotations

import math

import torch

from a2qflow.training.init import project_l1_ball

METHODS = ("rtn", "axe-gpfq", "axe-optq")
TUNE_STEPS = 10  # bisection steps of `tune_thresholds`
PERCDAMP = 0.01  # OPTQ's Hessian damping, a fraction of the mean diagonal (GPTQ's and Brevitas' default)


def integer_budget(T: float) -> int:
    """The largest integer L1 norm planted into an A2Q quantizer at budget T: strictly below T - 1/4.

    The quarter unit of slack is what `training.ptq.plant_integers` spends on nudging each planted weight off the
    quantizer's round-toward-zero boundary, so float32 arithmetic inside Brevitas reproduces q exactly.
    """
    return max(0, math.ceil(T - 0.25) - 1)


def soft_thresholds(w_int: torch.Tensor, budget: int) -> torch.Tensor:
    """AXE's per-channel lambda (C, 1): the soft threshold that projects |w_int| onto the L1 ball of radius B."""
    radius = torch.full((w_int.shape[0], 1), float(budget), dtype=w_int.dtype)
    p = project_l1_ball(w_int, radius)
    shrink = (w_int.abs() - p.abs()).amax(1, keepdim=True)  # = theta on rows outside the ball, 0 inside
    return shrink.clamp(min=0)


def _limit(v: torch.Tensor, lam: torch.Tensor, left: torch.Tensor, qmax: float) -> torch.Tensor:
    """One greedy AXE step for a column: soft-threshold by lambda, round, clip to the budget left and to M bits."""
    v = torch.sign(v) * (v.abs() - lam).clamp(min=0)
    cap = torch.minimum(left, torch.full_like(left, qmax))
    return torch.maximum(torch.minimum(torch.round(v), cap), -cap)


def rtn(w: torch.Tensor, s: torch.Tensor, budget: int, bits: int) -> torch.Tensor:
    """Round to nearest, then project each channel onto its L1 budget (the naive accumulator-aware reference).

    The projection is done on the real-valued integers (Duchi et al.) and rounded again; channels whose rounding
    still exceeds B lose one unit on the entries that were rounded up the most (there are always enough of them:
    each contributes at most 1/2 of the excess).
    """
    qmax = 2.0 ** (bits - 1) - 1
    x = (w / s).clamp(-qmax, qmax)
    p = project_l1_ball(x, torch.full((x.shape[0], 1), float(budget), dtype=x.dtype))
    q = torch.round(p)
    excess = (q.abs().sum(1) - budget).clamp(min=0).to(torch.long)
    if bool((excess > 0).any()):
        up = torch.where(q != 0, q.abs() - p.abs(), torch.full_like(p, -math.inf))
        order = up.argsort(1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(q.shape[1]).expand_as(order).contiguous())
        cut = rank < excess.unsqueeze(1)
        q = torch.where(cut, q - torch.sign(q), q)
    return q


def axe_gpfq(w: torch.Tensor, s: torch.Tensor, budget: float, bits: int, G: torch.Tensor,
             H: torch.Tensor, lam: torch.Tensor | None = None, damp: float = PERCDAMP) -> torch.Tensor:
    """Accumulator-aware GPFQ: q_t greedily cancels the running output error of the float layer on float inputs.

    Args:
        w, s: float weights (C, K) and per-channel scale (C, 1).
        budget, bits: integer L1 budget B and weight bits M.
        G: X~^T X (K, K), float-network inputs against quantized-network inputs.
        H: X^T X (K, K), quantized-network inputs.
        lam: per-channel soft threshold (C, 1); default AXE's (`soft_thresholds`).
        damp: d below, as a fraction of the mean diagonal of H (0: Brevitas' GPFQ).
    Returns:
        integer q (C, K). The float value GPFQ rounds at step t is
        (sum_{j<=t} w_j G[j, t] - sum_{j<t} q_j s H[j, t]) / (H[t, t] + d), the least-squares best w_t given the
        error so far. d (PERCDAMP of the mean diagonal, OPTQ's damping) is not in Brevitas' GPFQ: without it the
        greedy path inflates ||q||_1 far above the budget on correlated inputs (image pixels) and the budget then
        cuts the last inputs off (benchmarks/results/ptq.md, ablation: AXE as published).
    """
    qmax = 2.0 ** (bits - 1) - 1
    C, K = w.shape
    lam = soft_thresholds(w / s, budget) if lam is None else lam
    left = torch.full((C, 1), float(budget), dtype=w.dtype)
    qs = torch.zeros_like(w)  # q * s, the quantized weights in float units
    q = torch.zeros_like(w)
    dh = torch.diagonal(H)
    damp = damp * dh.mean()
    for t in range(K):
        if dh[t] <= 0:
            continue  # an input that is always zero: its weight does not matter, keep 0
        num = w[:, : t + 1] @ G[: t + 1, t] - qs[:, :t] @ H[:t, t]
        v = (num / (dh[t] + damp)).unsqueeze(1) / s
        qt = _limit(v, lam, left, qmax)
        q[:, t : t + 1] = qt
        qs[:, t : t + 1] = qt * s
        left = left - qt.abs()
    return q


def _inverse_hessian_factor(H: torch.Tensor) -> torch.Tensor:
    """Upper Cholesky factor of the damped inverse Hessian, as GPTQ computes it (Brevitas' GPTQ.single_layer_update)."""
    H = H.clone()
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1.0
    damp = PERCDAMP * torch.mean(torch.diagonal(H))
    H = H + damp * torch.eye(H.shape[0], dtype=H.dtype)
    hinv = torch.cholesky_inverse(torch.linalg.cholesky(H))
    return torch.linalg.cholesky(hinv, upper=True)


def axe_optq(w: torch.Tensor, s: torch.Tensor, budget: float, bits: int, H: torch.Tensor,
             lam: torch.Tensor | None = None) -> torch.Tensor:
    """Accumulator-aware OPTQ: quantize column t, then spread its error over the columns not yet quantized.

    Args:
        w, s: float weights (C, K) and per-channel scale (C, 1).
        budget, bits: integer L1 budget B and weight bits M.
        H: X^T X / n (K, K) of the quantized network's inputs to this layer.
        lam: per-channel soft threshold (C, 1); default AXE's (`soft_thresholds`).
    Returns:
        integer q (C, K).
    """
    qmax = 2.0 ** (bits - 1) - 1
    C, K = w.shape
    w = w.clone()
    w[:, torch.diagonal(H) == 0] = 0
    U = _inverse_hessian_factor(H)
    lam = soft_thresholds(w / s, budget) if lam is None else lam
    left = torch.full((C, 1), float(budget), dtype=w.dtype)
    q = torch.zeros_like(w)
    for t in range(K):
        v = w[:, t : t + 1]
        qt = _limit(v / s, lam, left, qmax)
        q[:, t : t + 1] = qt
        left = left - qt.abs()
        err = (v - qt * s) / U[t, t]
        w[:, t + 1 :] -= err @ U[t : t + 1, t + 1 :]
    return q


def zero_sum(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each row of integer q moved to sum exactly zero (A2Q+: its quantizer only represents zero-mean channels).

    A row summing to d > 0 loses one unit on the d positive entries rounded furthest above `target` (the float
    integers it approximates), repeatedly if it has fewer than d positive entries; d < 0 likewise. Magnitudes only
    shrink, so ||q||_1 never grows and a budget that held still holds.
    """
    q = q.clone()
    while True:
        d = q.sum(1)
        if not bool(d.any()):
            return q
        sgn = torch.sign(d).unsqueeze(1)
        cand = (torch.sign(q) == sgn) & (sgn != 0)
        score = torch.where(cand, (q - target) * sgn, torch.full_like(q, -math.inf))
        rank = torch.empty_like(q, dtype=torch.long)
        rank.scatter_(1, score.argsort(1, descending=True), torch.arange(q.shape[1]).expand_as(q).contiguous())
        k = torch.minimum(d.abs().to(torch.long), cand.sum(1)).unsqueeze(1)
        q = q - sgn * (cand & (rank < k)).to(q.dtype)


def tune_thresholds(run, w_int: torch.Tensor, budget: int, steps: int = TUNE_STEPS) -> torch.Tensor:
    """Per-channel soft thresholds (C, 1) at which the greedy pass stays inside the budget without the hard limit.

    AXE's lambda projects the *float* weights onto the budget, but error correction then pushes the values it
    rounds above them, so the greedy pass spends the budget on the first inputs and the hard limit zeroes the rest
    (on MNIST, the image's lower rows: a tight-budget MLP fell below rtn). Here lambda starts at AXE's and rises,
    per channel, by doubling then bisection, to the smallest value whose pass without the hard limit keeps
    ||q||_1 <= B; the final pass keeps the hard limit, so the guarantee does not depend on the search.

    Args:
        run: lam (C, 1) -> integer q (C, K) of one greedy pass without the hard limit.
        w_int: the float integers w / s (C, K).
        budget: B.
        steps: bisection steps after the doubling.
    """
    lo = soft_thresholds(w_int, budget)
    fits = lambda lam: run(lam).abs().sum(1, keepdim=True) <= budget  # noqa: E731
    ok = fits(lo)
    if bool(ok.all()):
        return lo
    hi = torch.where(ok, lo, 2 * lo + 1)
    for _ in range(30):
        f = fits(hi)
        if bool(f.all()):
            break
        lo, hi = torch.where(f, lo, hi), torch.where(f, hi, 2 * hi)
    lo = torch.where(ok, hi, lo)
    for _ in range(steps):
        mid = (lo + hi) / 2
        f = fits(mid)
        lo, hi = torch.where(f, lo, mid), torch.where(f, mid, hi)
    return hi


def quantize_layer(method: str, w: torch.Tensor, s: torch.Tensor, budget: int, bits: int,
                   x_float: torch.Tensor | None, x_quant: torch.Tensor | None, paper: bool = False) -> torch.Tensor:
    """Integers for one layer by `method` (one of METHODS); x_* are (n, K) input rows (not needed by rtn).

    `paper`: AXE as published, for the benchmark's ablation: AXE's lambda untuned, GPFQ without damping.
    """
    w, s = w.to(torch.float64), s.to(torch.float64)
    if method == "rtn":
        return rtn(w, s, budget, bits)
    xq = x_quant.to(torch.float64)
    H = xq.T @ xq / len(xq)
    if method == "axe-optq":
        run = lambda lam, b=math.inf: axe_optq(w, s, b, bits, H, lam)  # noqa: E731
    else:
        G = x_float.to(torch.float64).T @ xq / len(xq)
        run = lambda lam, b=math.inf: axe_gpfq(w, s, b, bits, G, H, lam, 0.0 if paper else PERCDAMP)  # noqa: E731
    if paper:
        return run(soft_thresholds(w / s, budget), budget)
    return run(tune_thresholds(run, w / s, budget), budget)
