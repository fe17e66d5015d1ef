"""Canonical signed-digit (CSD, non-adjacent form) recoding of integer weights.

A constant multiplication w * x in logic costs one shifted copy of x per nonzero digit of w's signed-digit form,
so the CSD digit count is the adder count of a constant-weight datapath (the unrolled architecture) and the
natural size estimate for a layer too big to synthesize. CSD has the fewest nonzero digits of any signed-digit
form and no two adjacent nonzero digits (Reitwiesner 1960).
"""

from __future__ import annotations

import numpy as np


def csd(w: int) -> list[tuple[int, int]]:
    """Nonzero CSD digits of `w` as (shift, sign) pairs, lowest shift first: w == sum(sign << shift)."""
    w = int(w)
    out: list[tuple[int, int]] = []
    shift = 0
    while w != 0:
        if w & 1:
            d = 2 - (w & 3)  # +1 when w = 1 (mod 4), -1 when w = 3 (mod 4)
            out.append((shift, d))
            w -= d
        w >>= 1
        shift += 1
    return out


def csd_count(weights: np.ndarray) -> int:
    """Total nonzero CSD digits of an integer array (0 for zero weights)."""
    vals, counts = np.unique(np.asarray(weights, dtype=np.int64), return_counts=True)
    return int(sum(len(csd(v)) * int(n) for v, n in zip(vals.tolist(), counts.tolist())))


def max_csd_digits(bits: int) -> int:
    """The most nonzero CSD digits any `bits`-bit signed weight has (its worst case: ceil(bits / 2) or so)."""
    return max(len(csd(v)) for v in range(-(1 << (bits - 1)), 1 << (bits - 1)))
