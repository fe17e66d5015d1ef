"""The one decoder of QONNX `Quant` nodes: their parameters, and the integers they produce.

A QONNX `Quant` node computes `y = (round(clip(x / scale + zero_point, qmin, qmax)) - zero_point) * scale`
(qonnx' IntQuant: clip first, then round by `rounding_mode`). Everything in a2qflow that reads a Quant node goes
through `QuantParams`: the compiler's frontend (float64, the function the model means, for thresholds) and the
training audit / export check (float32, exactly what qonnx' `execute_onnx` computes on the file), so the two can
never disagree about which integers a file carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from a2qflow.hw.errors import A2QFlowError

# The bit widths a Quant node may have in a file a2qflow reads: 32 covers Brevitas' 32-bit bias quantizers, and
# anything wider could not be a layer's input or weight with an accumulator of at most 63 bits anyway.
QUANT_BITS_RANGE = range(2, 33)


def node_attrs(node) -> dict:
    """An ONNX node's attributes as plain Python values (bytes decoded to str)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class _LevelRange:
    """qmin / qmax of a quantizer's integer levels (qonnx' own min_int / max_int), for Quant and Trunc alike."""

    bits: int
    signed: bool
    narrow: bool

    @property
    def qmin(self) -> int:
        from qonnx.custom_op.general.intquant import min_int

        return int(min_int(self.signed, self.narrow, self.bits))

    @property
    def qmax(self) -> int:
        from qonnx.custom_op.general.intquant import max_int

        return int(max_int(self.signed, self.narrow, self.bits))


@dataclass(frozen=True)
class QuantParams(_LevelRange):
    """A Quant node's scale, zero point (arrays, broadcast against its input), bit width, sign, range, rounding."""

    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    signed: bool
    narrow: bool
    rounding: str

    def levels(self, v: np.ndarray, dtype=np.float64) -> np.ndarray:
        """round(clip(v / scale + zero_point)) in `dtype`, qonnx' order; the zero point is still included."""
        from qonnx.custom_op.general.intquant import resolve_rounding_mode

        y = np.asarray(v, dtype=dtype) / np.asarray(self.scale, dtype=dtype) + np.asarray(self.zero_point, dtype)
        y = np.clip(y, self.qmin, self.qmax)
        return resolve_rounding_mode(self.rounding)(y)

    def integers(self, v: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The integers q the node produces from `v` (levels minus zero point) as int64; float32 by default, as
        qonnx executes it. Raises if they are not integral (a non-integer zero point)."""
        y = self.levels(v, dtype) - np.asarray(self.zero_point, dtype=dtype)
        if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise A2QFlowError("Quant node output is not integral (non-integer zero point?)")
        return y.astype(np.int64)

    def dequantize(self, levels: np.ndarray) -> np.ndarray:
        """The float value of quantized levels (as returned by `levels`), in float64."""
        return (np.asarray(levels, dtype=np.float64) - self.zero_point) * self.scale

    def as_kwargs(self) -> dict:
        """The parameters under the names `training.audit.quant_integers` takes."""
        return {"scale": self.scale, "zero_point": self.zero_point, "bits": self.bits, "signed": self.signed,
                "narrow": self.narrow, "rounding_mode": self.rounding}


def _level_attrs(node, default_rounding: str, fail: Callable[[str], Exception]) -> tuple[bool, bool, str]:
    """The attributes a Quant and a Trunc node share, with qonnx' defaults: (signed, narrow, rounding_mode), the
    rounding mode upper-cased and checked against qonnx' own list (`fail` names an unknown one).

    Args:
        node: an ONNX `Quant` or `Trunc` NodeProto.
        default_rounding: qonnx' default for the op ("ROUND" for Quant, "FLOOR" for Trunc).
        fail: builds the exception to raise from a short description of what is wrong.
    """
    from qonnx.custom_op.general.intquant import resolve_rounding_mode

    a = node_attrs(node)
    rounding = str(a.get("rounding_mode", default_rounding)).upper()
    try:
        resolve_rounding_mode(rounding)
    except ValueError:
        raise fail(f"rounding_mode {rounding!r} is unknown to qonnx") from None
    return bool(a.get("signed", 1)), bool(a.get("narrow", 0)), rounding


def decode_quant(node, const: Callable[[str], np.ndarray | None], fail: Callable[[str], Exception]) -> QuantParams:
    """Read a Quant node's parameters; every problem is `fail(what)` (the caller names file and node).

    Args:
        node: an ONNX `Quant` NodeProto (inputs: x, scale, zero_point, bit_width).
        const: tensor name -> constant value (float64 or float32 array), or None when the tensor is not constant.
        fail: builds the exception to raise from a short description of what is wrong.

    Returns:
        The validated parameters (scale and zero point keep the dtype `const` returned).
    """
    vals = [const(i) if i else None for i in node.input[1:4]]
    if len(node.input) < 4 or any(v is None for v in vals):
        raise fail("scale, zero point and bit width must be constant initializers")
    scale, zp, bits = (np.asarray(v) for v in vals)
    b = float(bits.ravel()[0]) if bits.size else float("nan")
    if bits.size != 1 or not np.isfinite(b) or b != round(b) or int(b) not in QUANT_BITS_RANGE:
        raise fail(f"bit width must be one integer in {QUANT_BITS_RANGE.start}..{QUANT_BITS_RANGE.stop - 1}, got "
                   f"{bits.ravel().tolist()[:4]}")
    if not np.all(np.isfinite(scale)) or not np.all(np.isfinite(zp)):
        raise fail("quantizer scales and zero points must be finite numbers")
    if np.any(scale <= 0):
        raise fail("quantizer scales must be positive")
    return QuantParams(scale, zp, int(b), *_level_attrs(node, "ROUND", fail))


@dataclass(frozen=True)
class TruncParams(_LevelRange):
    """A QONNX `Trunc` node (Brevitas' TruncAvgPool2d / TruncIntQuant): the input's integers at `in_scale` are
    divided by the power of two `out_scale / in_scale`, clipped to `bits` and rounded by `rounding` (FLOOR for a
    truncation). As qonnx' trunc_v2: y = round(x / in_scale + zp) / 2^t, clip, round_mode(y); value =
    (y - zp / 2^t) * out_scale. Exposes the same interface as `QuantParams` (`scale` / `zero_point` are the
    output's), so a layer may end in either."""

    in_scale: np.ndarray
    in_zero_point: np.ndarray
    scale: np.ndarray
    bits: int
    signed: bool
    narrow: bool
    rounding: str

    @property
    def shift(self) -> float:
        return float(2.0 ** np.round(np.log2(float(np.ravel(self.scale)[0]) / float(np.ravel(self.in_scale)[0]))))

    @property
    def zero_point(self) -> np.ndarray:
        return np.asarray(self.in_zero_point, dtype=np.float64) / self.shift

    def levels(self, v: np.ndarray, dtype=np.float64) -> np.ndarray:
        from qonnx.custom_op.general.intquant import resolve_rounding_mode

        y = np.round(np.asarray(v, dtype=dtype) / np.asarray(self.in_scale, dtype=dtype)
                     + np.asarray(self.in_zero_point, dtype=dtype))
        y = np.clip(y / dtype(self.shift), self.qmin, self.qmax)
        return resolve_rounding_mode(self.rounding)(y)

    def dequantize(self, levels: np.ndarray) -> np.ndarray:
        return (np.asarray(levels, dtype=np.float64) - self.zero_point) * np.asarray(self.scale, dtype=np.float64)


def decode_trunc(node, const: Callable[[str], np.ndarray | None], fail: Callable[[str], Exception]) -> TruncParams:
    """Read a Trunc node's parameters (inputs: x, scale, zero_point, input_bit_width, output_scale,
    output_bit_width); the truncation must be by a power of two, per tensor."""
    if len(node.input) < 6:
        raise fail("Trunc needs (x, scale, zero_point, input_bit_width, output_scale, output_bit_width) inputs "
                   "(qonnx Trunc v2; re-export with brevitas >= 0.12)")
    vals = [const(i) if i else None for i in node.input[1:6]]
    if any(v is None for v in vals):
        raise fail("Trunc scale, zero point, bit widths and output scale must be constants")
    scale, zp, _, out_scale, bits = (np.asarray(v, dtype=np.float64) for v in vals)
    if scale.size != 1 or out_scale.size != 1 or zp.size != 1:
        raise fail("Trunc must be per tensor (one scale, zero point and output scale)")
    b = float(bits.ravel()[0])
    if bits.size != 1 or b != round(b) or b < 1:
        raise fail(f"Trunc output bit width must be one integer >= 1, got {bits.ravel().tolist()[:4]}")
    ratio = float(out_scale.ravel()[0]) / float(scale.ravel()[0])
    if scale.ravel()[0] <= 0 or ratio <= 0 or abs(np.log2(ratio) - np.round(np.log2(ratio))) > 1e-6:
        raise fail(f"Trunc output scale / input scale = {ratio:g} is not a power of two")
    return TruncParams(scale, zp, out_scale, int(b), *_level_attrs(node, "FLOOR", fail))
