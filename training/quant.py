"""Quantizer presets, resolved per layer: what each MAC layer's weights and inputs are, and which Brevitas
quantizer trains them.

Presets (config name -> Brevitas weight quantizer):
  float         -> none (float weights; the hardware compiler rejects such layers, the float twin uses them)
  unconstrained -> Int8WeightPerChannelFloat with bit_width M: integer weights, no accumulator constraint
                   ("baseline", its old name, is still accepted with a warning naming the new one)
  a2q           -> Int8AccumulatorAwareWeightQuant, bit_width M, accumulator P: ||q||_1 <= (2^(P-1)-1) * 2^(s-N)
  a2q+          -> Int8AccumulatorAwareZeroCenterWeightQuant: zero-centred q, ||q||_1 <= 2 (2^(P-1)-1) / (2^N-1)
Brevitas is imported lazily so config validation (and `a2qflow --help`) stays fast.
"""

from __future__ import annotations

from a2qflow.hw.compiler.bounds import l1_limit, l1_limit_zero_centered
from a2qflow.hw.compiler.ir import IntType

# LayerSpec and its resolution from the config belong to the config (training.config); re-exported here, where
# older code imports them from.
from a2qflow.training.config import A2Q_QUANTS as A2Q_QUANTS
from a2qflow.training.config import LayerSpec as LayerSpec
from a2qflow.training.config import resolve_layer_specs as resolve_layer_specs


def l1_budget(weight_quant: str, P: int, in_type: IntType) -> float:
    """The largest ||q||_1 the preset allows at accumulator width P (hw.bounds holds the formulas)."""
    if weight_quant == "a2q+":
        return l1_limit_zero_centered(P, in_type)
    return l1_limit(P, in_type)


def min_workable_acc_bits(weight_quant: str, in_type: IntType) -> int:
    """Smallest P whose L1 budget is at least 1; below it every weight is forced to zero."""
    P = 2
    while l1_budget(weight_quant, P, in_type) < 1:
        P += 1
    return P


def weight_quant_kwargs(spec: LayerSpec) -> dict:
    """Keyword arguments for brevitas.nn.QuantLinear / QuantConv2d implementing the preset."""
    from brevitas.quant import (
        Int8AccumulatorAwareWeightQuant,
        Int8AccumulatorAwareZeroCenterWeightQuant,
        Int8WeightPerChannelFloat,
    )

    if spec.weight_quant == "float":
        return {"weight_quant": None}
    if spec.weight_quant == "unconstrained":
        return {"weight_quant": Int8WeightPerChannelFloat, "weight_bit_width": spec.weight_bits}
    quant = Int8AccumulatorAwareWeightQuant if spec.weight_quant == "a2q" else Int8AccumulatorAwareZeroCenterWeightQuant
    return {"weight_quant": quant, "weight_bit_width": spec.weight_bits,
            "weight_accumulator_bit_width": spec.target_acc_bits}


def input_quant_module(bits: int, signed: bool, input_range: str = "learned"):
    """The first layer's input quantizer: it fixes N (and the sign) the first A2Q layer is trained against.

    input_range "learned": Brevitas learns the scale from runtime statistics, then by gradient. "data": the scale is
    a constant set by the data's range [0, 1]: 1 / (2^N - 1) unsigned (1/3 at N = 2, 0.33333334 in float32, so a
    pixel of 0.5 is a rounding tie that float32 and float64 arithmetic round differently), 1 / 2^(N-1) signed.
    """
    import brevitas.nn as qnn
    from brevitas.inject.enum import ScalingImplType
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    quant = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
    fixed = {}
    if input_range == "data":
        fixed = {"scaling_impl_type": ScalingImplType.CONST, "max_val": 1.0, **({"min_val": -1.0} if signed else {})}
    return qnn.QuantIdentity(act_quant=quant, bit_width=bits, return_quant_tensor=True, **fixed)


def relu_quant_module(bits: int):
    """Hidden activation: unsigned `bits`-bit QuantReLU that hands the next layer a QuantTensor (N known)."""
    import brevitas.nn as qnn

    return qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
