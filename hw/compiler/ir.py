"""Integer layer IR: what the compiler lowers a QONNX graph to and what every backend reads.

Everything here is integer-only except `Affine` (the float scale / bias that turns the last layer's accumulator
into logits, applied off-chip). Tensors use ONNX layout: activations CHW, conv weights (OC, IC, KH, KW), and a
dense layer that follows a conv / pool consumes the CHW-flattened vector. Backends that stream HWC reorder
weights themselves (`dense_weights_hwc`, `conv_weights_ohwi`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_npz


@dataclass(frozen=True)
class IntType:
    """An integer datatype: `bits` wide, two's complement when `signed`."""

    bits: int
    signed: bool

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def __str__(self) -> str:
        return f"{'INT' if self.signed else 'UINT'}{self.bits}"


@dataclass
class Thresholds:
    """Multi-threshold activation: out = out_base + #{l : acc >= values[c, l]} (as FINN's MultiThreshold).

    `values` is int64 (C, L), ascending along L. The compiler computes them exactly from scales, bias, batch-norm
    and the activation quantizer, so no floating point reaches the hardware. `out_type` is the next layer's input
    type; out_base is out_type.min for a full-range quantizer (0 for unsigned).
    """

    values: np.ndarray
    out_type: IntType
    out_base: int


@dataclass
class Affine:
    """Last layer: logits[c] = acc[c] * scale[c] + bias[c], computed off-chip in float."""

    scale: np.ndarray
    bias: np.ndarray


Activation = Union[Thresholds, Affine]


@dataclass
class DenseLayer:
    """Fully connected: acc = weights @ x, weights int64 (out_features, K)."""

    name: str
    weights: np.ndarray
    in_type: IntType
    w_type: IntType
    act: Activation
    target_acc_bits: int | None = None  # the P the layer was trained for (A2Q), if any
    kind: str = field(default="dense", init=False)

    @property
    def K(self) -> int:
        return int(self.weights.shape[1])

    @property
    def out_channels(self) -> int:
        return int(self.weights.shape[0])

    def weight_matrix(self) -> np.ndarray:
        """(out_channels, K) integer matrix of the dot products this layer computes."""
        return self.weights


@dataclass
class ConvLayer:
    """2-D convolution, zero padding (integer 0), weights int64 (OC, IC, KH, KW); in_shape is (C, H, W)."""

    name: str
    weights: np.ndarray
    in_type: IntType
    w_type: IntType
    act: Activation
    in_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right (ONNX order: begins then ends)
    target_acc_bits: int | None = None
    kind: str = field(default="conv", init=False)

    @property
    def K(self) -> int:
        oc, ic, kh, kw = self.weights.shape
        return int(ic * kh * kw)

    @property
    def out_channels(self) -> int:
        return int(self.weights.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        kh, kw = self.kernel
        t, l, b, r = self.pad
        oh = (h + t + b - kh) // self.stride[0] + 1
        ow = (w + l + r - kw) // self.stride[1] + 1
        return self.out_channels, oh, ow

    def weight_matrix(self) -> np.ndarray:
        """(OC, IC*KH*KW) in (ic, kh, kw) order, the order `reference.im2col` produces."""
        return self.weights.reshape(self.weights.shape[0], -1)


@dataclass
class MaxPoolLayer:
    """Max pooling on integer activations (commutes with the monotone thresholds, so it stays integer)."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dtype: IntType
    kind: str = field(default="maxpool", init=False)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return c, (h - self.kernel[0]) // self.stride[0] + 1, (w - self.kernel[1]) // self.stride[1] + 1


Layer = Union[DenseLayer, ConvLayer, MaxPoolLayer]
MAC_KINDS = ("dense", "conv")


@dataclass
class InputQuant:
    """How float inputs become the first layer's integers: x_int = clip(round_half_even(x / scale) + zero_point)."""

    scale: float
    zero_point: int
    dtype: IntType

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.round(np.asarray(x, dtype=np.float64) / self.scale) + self.zero_point
        return np.clip(q, self.dtype.min, self.dtype.max).astype(np.int64)


@dataclass
class Model:
    """A chain of integer layers. input_shape excludes the batch dimension ((K,) or (C, H, W))."""

    name: str
    input_shape: tuple[int, ...]
    input_quant: InputQuant
    layers: list[Layer]
    warnings: list[str] = field(default_factory=list)  # from the frontend (e.g. a file without a2qflow metadata)

    def mac_layers(self) -> list[DenseLayer | ConvLayer]:
        return [l for l in self.layers if l.kind in MAC_KINDS]

    def layer(self, name: str) -> Layer:
        for l in self.layers:
            if l.name == name:
                return l
        raise A2QFlowError(f"no layer named {name!r}; layers are {[l.name for l in self.layers]}")


def num_classes(model: Model) -> int | None:
    """Logits per sample when the model ends in a dense layer (a classifier), else None."""
    last = model.layers[-1] if model.layers else None
    return last.out_channels if isinstance(last, DenseLayer) else None


def dense_weights_hwc(layer: DenseLayer, chw: tuple[int, int, int]) -> np.ndarray:
    """Permute a dense layer's columns from CHW-flattened to HWC-flattened input order (for streaming backends)."""
    c, h, w = chw
    return layer.weights.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(layer.weights.shape[0], -1)


def conv_weights_ohwi(layer: ConvLayer) -> np.ndarray:
    """(OC, KH*KW*IC) in (kh, kw, ic) order, the order an HWC sliding-window generator emits."""
    return layer.weights.transpose(0, 2, 3, 1).reshape(layer.weights.shape[0], -1)


# C++ and Verilog words a generated identifier must not be (backends use layer names in generated code)
_RESERVED = {"int", "char", "class", "struct", "namespace", "template", "typename", "union", "static", "const",
             "new", "delete", "operator", "this", "register", "auto", "default", "switch", "case", "do", "for",
             "if", "else", "while", "return", "module", "input", "output", "wire", "reg", "begin", "end", "assign",
             "always", "initial", "integer", "parameter", "localparam", "genvar", "generate", "function", "task"}


def identifier(name: str) -> str:
    """A layer name as a C++ / Verilog identifier: letters, digits and _ only, not starting with a digit, never
    a keyword. The one sanitiser of names that reach generated code."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "layer"
    s = s if not s[0].isdigit() else f"n{s}"
    return f"{s}_" if s in _RESERVED else s


# ---------------------------------------------------------------- serialisation (BUILD/ir.json + BUILD/ir.npz)

def save_model(model: Model, build: Path | str) -> None:
    """Write BUILD/ir.json (structure) and BUILD/ir.npz (integer arrays, float affine) atomically."""
    build = Path(build)
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for l in model.layers:
        d = {"kind": l.kind, "name": l.name}
        if l.kind == "maxpool":
            d.update(in_shape=list(l.in_shape), kernel=list(l.kernel), stride=list(l.stride), dtype=asdict(l.dtype))
        else:
            arrays[f"{l.name}/weights"] = l.weights.astype(np.int64)
            d.update(in_type=asdict(l.in_type), w_type=asdict(l.w_type), target_acc_bits=l.target_acc_bits)
            if l.kind == "conv":
                d.update(in_shape=list(l.in_shape), stride=list(l.stride), pad=list(l.pad))
            if isinstance(l.act, Thresholds):
                arrays[f"{l.name}/thresholds"] = l.act.values.astype(np.int64)
                d["act"] = {"kind": "thresholds", "out_type": asdict(l.act.out_type), "out_base": l.act.out_base}
            else:
                arrays[f"{l.name}/scale"] = np.asarray(l.act.scale, dtype=np.float64)
                arrays[f"{l.name}/bias"] = np.asarray(l.act.bias, dtype=np.float64)
                d["act"] = {"kind": "affine"}
        layers.append(d)
    meta = {
        "name": model.name,
        "input_shape": list(model.input_shape),
        "input_quant": {"scale": model.input_quant.scale, "zero_point": model.input_quant.zero_point,
                        "dtype": asdict(model.input_quant.dtype)},
        "layers": layers,
    }
    atomic_write_npz(build / "ir.npz", arrays)
    atomic_write_json(build / "ir.json", meta)


def load_model(build: Path | str) -> Model:
    """Read what `save_model` wrote; a missing or foreign folder is a one-line error."""
    build = Path(build)
    jp, npz = build / "ir.json", build / "ir.npz"
    if not jp.is_file() or not npz.is_file():
        raise A2QFlowError(f"{build}: no ir.json / ir.npz here; run `a2qflow compile MODEL.onnx --out {build}` first")
    meta = json.loads(jp.read_text())
    arr = np.load(npz)
    layers: list[Layer] = []
    for d in meta["layers"]:
        if d["kind"] == "maxpool":
            layers.append(MaxPoolLayer(d["name"], tuple(d["in_shape"]), tuple(d["kernel"]), tuple(d["stride"]),
                                       IntType(**d["dtype"])))
            continue
        n = d["name"]
        if d["act"]["kind"] == "thresholds":
            act: Activation = Thresholds(arr[f"{n}/thresholds"], IntType(**d["act"]["out_type"]), d["act"]["out_base"])
        else:
            act = Affine(arr[f"{n}/scale"], arr[f"{n}/bias"])
        common = dict(name=n, weights=arr[f"{n}/weights"], in_type=IntType(**d["in_type"]),
                      w_type=IntType(**d["w_type"]), act=act, target_acc_bits=d.get("target_acc_bits"))
        if d["kind"] == "dense":
            layers.append(DenseLayer(**common))
        else:
            layers.append(ConvLayer(**common, in_shape=tuple(d["in_shape"]), stride=tuple(d["stride"]),
                                    pad=tuple(d["pad"])))
    iq = meta["input_quant"]
    return Model(meta["name"], tuple(meta["input_shape"]),
                 InputQuant(iq["scale"], iq["zero_point"], IntType(**iq["dtype"])), layers)
