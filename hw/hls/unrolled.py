"""HLS emitter for an unrolled dense layer (plan.json architecture `unrolled`): hls_templates/dense_unrolled.hpp.

The layer's parameters header is the MVAU one at SIMD = K, PE = C (the plan records exactly that for an unrolled
layer), so weights and thresholds are the same constant tables; only the stage differs: one whole input vector in
and one whole output vector out per call, every product in parallel at II = 1, accumulator ap_int<ACC_BITS>, in
the style of hls4ml's latency strategy. Called from the dense path of `a2qflow.hw.hls.emitters`.
"""

from __future__ import annotations

from a2qflow.hw.compiler.plan import LayerPlan
from a2qflow.hw.hls.design import DesignBuilder, Stream

HEADER = "dense_unrolled.hpp"


def add_stage(b: DesignBuilder, ns: str, lp: LayerPlan, out: Stream) -> None:
    """Append the `dense_unrolled` stage (call macro in calls.j2) of unrolled dense layer `lp`, writing `out`."""
    b.add_stage("dense_unrolled", f"{lp.name}: unrolled, {lp.out_channels} channels x K={lp.K} constant weights, "
                                  f"ACC_BITS={lp.acc_bits} (one vector per cycle)", out, ns,
                mac_index=len(b.design.mac_names))
