"""What follows a layer's accumulator up to its activation quantizer: a monotone per-channel map, and its thresholds.

After qonnx' canonicalisation the ops between an accumulator and the quantizer that ends the layer are per-channel
affine steps (bias, scale, batch-norm), Relu and intermediate quantizers. `PostOpChain` evaluates them in float64
on exact integer accumulators (the function the model means) and `chain_thresholds` turns the chain into FINN-style
thresholds: T[c, l] = the smallest accumulator whose output level is >= base + l + 1, by binary search over the
channel's exact accumulator range. A decreasing channel (negative scale) gets its weight row negated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from a2qflow.hw.compiler.bounds import channel_ranges
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.compiler.quant import QuantParams, TruncParams


@dataclass
class PostOp:
    """One monotone per-channel step of acc -> level: affine (v*mul + add), relu, or a (non-final) quantizer."""

    kind: str  # affine | relu | quant
    mul: np.ndarray | None = None  # (C, 1)
    add: np.ndarray | None = None
    quant: QuantParams | TruncParams | None = None


@dataclass
class PostOpChain:
    ops: list[PostOp] = field(default_factory=list)
    final: QuantParams | TruncParams | None = None  # the activation quantizer that ends the layer (None: float logits)

    def value(self, acc: np.ndarray, linear: bool = False) -> np.ndarray:
        """Float value before the final quantizer; linear=True drops relu / rounding (for the slope sign)."""
        v = acc.astype(np.float64)
        for op in self.ops:
            if op.kind == "affine":
                v = v * op.mul + op.add
            elif op.kind == "relu":
                v = v if linear else np.maximum(v, 0.0)
            elif not linear:
                v = op.quant.dequantize(op.quant.levels(v))
        return v

    def level(self, acc: np.ndarray) -> np.ndarray:
        return self.final.levels(self.value(acc))

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, bias) per channel when the chain is affine (last layer)."""
        scale = np.ones_like(self.ops[0].mul)
        bias = np.zeros_like(self.ops[0].mul)
        for op in self.ops:
            scale, bias = scale * op.mul, bias * op.mul + op.add
        return scale[:, 0], bias[:, 0]


def chain_thresholds(chain: PostOpChain, weights: np.ndarray,
                     in_type: IntType) -> tuple[np.ndarray, np.ndarray, IntType, int]:
    """Exact thresholds for every channel and level, negating the weight rows of decreasing channels.

    Returns (weights, thresholds (C, L) int64, out_type, out_base).
    """
    q = chain.final
    base, top = q.qmin, q.qmax
    C = weights.shape[0]
    slope = chain.value(np.ones((C, 1)), linear=True) - chain.value(np.zeros((C, 1)), linear=True)
    flip = slope[:, 0] < 0
    weights = np.where(flip[:, None], -weights, weights)
    sign = np.where(flip, -1, 1)[:, None]
    lo, hi = channel_ranges(weights, in_type)
    levels = np.arange(base + 1, top + 1, dtype=np.int64)[None, :]  # (1, L)
    left = np.broadcast_to(lo[:, None], (C, levels.shape[1])).copy()
    right = np.broadcast_to(hi[:, None] + 1, (C, levels.shape[1])).copy()  # hi + 1: "never fires"
    while np.any(left < right):
        mid = (left + right) // 2
        ok = chain.level(sign * mid) >= levels
        active = left < right
        right = np.where(active & ok, mid, right)
        left = np.where(active & ~ok, mid + 1, left)
    return weights, left.astype(np.int64), IntType(q.bits, q.signed), base
