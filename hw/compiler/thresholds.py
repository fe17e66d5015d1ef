"""Fit multi-threshold values to the accumulator width the hardware uses.

A threshold below everything a channel can reach always fires and one above never does, so clipping each
channel's thresholds into [lo_c, hi_c + 1] changes no reachable result and lets them be stored at (almost always)
the accumulator width. A second clip into [-2^(P-1), 2^(P-1)] keeps them representable in P + 1 bits when P is
forced below the exact bound (unsafe mode), so C-sim, RTL and the golden model compare the very same integers.
"""

from __future__ import annotations

import numpy as np

from a2qflow.hw.compiler.bounds import channel_ranges, signed_bits_for_range
from a2qflow.hw.compiler.ir import IntType


def fit_thresholds(values: np.ndarray, weights: np.ndarray, in_type: IntType, acc_bits: int) -> tuple[np.ndarray, int]:
    """Return (clipped int64 thresholds (C, L), thr_bits) for a layer computed at `acc_bits`.

    thr_bits is the signed width the threshold memory and comparator need: acc_bits, or acc_bits + 1 in the
    rare case a never-firing threshold must sit at 2^(P-1).
    """
    t = np.asarray(values, dtype=np.int64)
    lo, hi = channel_ranges(weights, in_type)
    t = np.clip(t, lo[:, None], hi[:, None] + 1)
    t = np.clip(t, -(1 << (acc_bits - 1)), 1 << (acc_bits - 1))
    if t.size == 0:
        return t, acc_bits
    return t, max(acc_bits, signed_bits_for_range(int(t.min()), int(t.max())))
