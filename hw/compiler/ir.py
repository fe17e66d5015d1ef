"""Integer layer IR: what the compiler lowers a QONNX graph to and what every backend reads.

Everything here is integer-only except `Affine` (the float scale / bias that turns the last layer's accumulator
into logits, applied off-chip).

The model is a graph (a DAG) stored as a topologically ordered list: each layer names the layers it reads in
`inputs` (`INPUT` is the model's input). A layer built without `inputs` reads the layer before it, so a chain
needs no names at all. The last layer is the model's output. Every layer with an accumulator (dense, conv,
depthwise conv, average pooling's window sum, the residual add, a standalone requantization) is an integer dot
product per output channel with a (C, K) integer `weight_matrix()`: pooling sums and adds are dot products with
constant weights 1 / 2^k, so the bounds, the plan, the thresholds and the proof are the same code for all of them.

Tensors use ONNX layout: activations CHW, conv weights (OC, IC, KH, KW), and a dense layer that follows a
conv / pool consumes the CHW-flattened vector. Backends that stream HWC reorder weights themselves
(`dense_weights_hwc`, `conv_weights_ohwi`).
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
    inputs: tuple[str, ...] = ()  # producer layer names (INPUT for the model input); () = the previous layer
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
    inputs: tuple[str, ...] = ()
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
    inputs: tuple[str, ...] = ()
    kind: str = field(default="maxpool", init=False)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return c, (h - self.kernel[0]) // self.stride[0] + 1, (w - self.kernel[1]) // self.stride[1] + 1


@dataclass
class DepthwiseConvLayer(ConvLayer):
    """Depthwise 2-D convolution (groups = channels, one filter per channel): weights int64 (C, 1, KH, KW).

    Each output channel is a dot product of its own input channel's KH x KW window, so K = KH * KW (FINN's VVAU).
    """

    kind: str = field(default="dwconv", init=False)

    @property
    def K(self) -> int:
        return int(self.weights.shape[2] * self.weights.shape[3])


@dataclass
class AvgPoolLayer(DepthwiseConvLayer):
    """Average pooling (windowed or global) as its exact integer window sum: a depthwise layer whose weights are all
    1 (UINT1), unpadded. The division by the window size, a TruncAvgPool's shift and the quantizer after it are a
    monotone function of the sum, so they become thresholds like any other layer's requantization; the sum is an
    accumulator whose width the plan proves from the window size and the input range."""

    kind: str = field(default="avgpool", init=False)


def is_global_pool(layer: Layer) -> bool:
    """An average pool whose window is its whole unpadded input frame (one output pixel, all-ones weights).

    Why apart: its window sum needs no sliding window. A line buffer would hold the whole frame (and the VVAU's
    patch buffer again); a per-channel accumulator (FINN's GlobalAccPool) reads each pixel once. Both backends
    build it so (a2q_gap in hw/rtl, global_pool in hls_templates/pool.hpp) and ask this one predicate.
    """
    if layer.kind != "avgpool":
        return False
    c, h, w = layer.in_shape
    wm = np.asarray(layer.weight_matrix())
    return (tuple(layer.kernel) == (h, w) and not any(layer.pad) and tuple(layer.out_shape) == (c, 1, 1)
            and wm.size > 0 and bool((wm == 1).all()))


class _Elementwise:
    """Shape facts of a layer that keeps its input's shape (add, requant): C channels of `in_shape`, each a dot
    product of K constant weights (`_weights`: one row, the same for every channel)."""

    in_shape: tuple[int, ...]

    @property
    def K(self) -> int:
        return len(self._weights())

    @property
    def out_channels(self) -> int:
        return int(self.in_shape[0])

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.in_shape)

    @property
    def w_type(self) -> IntType:
        return IntType(max(int(w).bit_length() for w in self._weights()), False)

    def weight_matrix(self) -> np.ndarray:
        """(C, K) constant weights: (2^ka, 2^kb) for an add, (1,) for a requant."""
        return np.tile(np.array(self._weights(), dtype=np.int64), (self.out_channels, 1))


@dataclass
class AddLayer(_Elementwise):
    """Residual add of two integer tensors of the same type and shape: acc = a * 2^shifts[0] + b * 2^shifts[1].

    The shifts align two quantizers whose scales differ by a power of two (both 0 for a shared quantizer). Per
    channel it is a dot product of (a_c, b_c) with the constant weights (2^ka, 2^kb), so `weight_matrix()` is
    (C, 2) and the bounds are the MAC layers' own. `in_shape` is the shape of each input ((C,) or (C, H, W)).
    """

    name: str
    in_type: IntType
    act: Activation
    in_shape: tuple[int, ...]
    shifts: tuple[int, int] = (0, 0)
    inputs: tuple[str, ...] = ()
    target_acc_bits: int | None = None
    kind: str = field(default="add", init=False)

    def _weights(self) -> tuple[int, ...]:
        return (1 << self.shifts[0], 1 << self.shifts[1])


@dataclass
class RequantLayer(_Elementwise):
    """Requantization of an integer tensor to another quantizer (a Quant node right after a quantized tensor, e.g.
    a residual block's shared QuantIdentity on its skip branch): thresholds on the integer itself, FINN's
    standalone MultiThreshold. A dot product with K = 1 and weight 1, so the plan treats it like every layer."""

    name: str
    in_type: IntType
    act: Activation
    in_shape: tuple[int, ...]
    inputs: tuple[str, ...] = ()
    target_acc_bits: int | None = None
    kind: str = field(default="requant", init=False)

    def _weights(self) -> tuple[int, ...]:
        return (1,)


Layer = Union[DenseLayer, ConvLayer, DepthwiseConvLayer, AvgPoolLayer, MaxPoolLayer, AddLayer, RequantLayer]
# Layers with an accumulator: each output channel is an integer dot product (weight_matrix() is (C, K)).
MAC_KINDS = ("dense", "conv", "dwconv", "avgpool", "add", "requant")
# The name of the model's input in a layer's `inputs`; identifier() never produces it.
INPUT = "@input"


@dataclass
class InputQuant:
    """How float inputs become the first layer's integers, bit for bit as Brevitas does it.

    Brevitas' IntQuant (and qonnx' Quant) compute `clamp(round_half_even(x / scale + zero_point))` on float32
    tensors; the same arithmetic in float64 gives a different integer whenever x / scale lands within float32
    rounding of a .5 boundary (scale 0.33333334, x 0.5: 1.4999999 in float64, 1.5 -> 2 in float32). This is the
    one host-side quantization every executor uses (golden model, C-sim, RTL sim, the report's accuracy).
    """

    scale: float
    zero_point: int
    dtype: IntType

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.asarray(x, dtype=np.float32) / np.float32(self.scale) + np.float32(self.zero_point)
        return np.clip(np.round(q), self.dtype.min, self.dtype.max).astype(np.int64)


@dataclass
class Model:
    """An integer layer graph, topologically ordered; the last layer is the output. input_shape excludes the batch
    dimension ((K,) or (C, H, W); a 1-D convolution's (C, L) input is (C, 1, L))."""

    name: str
    input_shape: tuple[int, ...]
    input_quant: InputQuant
    layers: list[Layer]
    warnings: list[str] = field(default_factory=list)  # from the frontend (e.g. a file without a2qflow metadata)
    notes: list[str] = field(default_factory=list)  # what the frontend did on purpose (e.g. a dropped Softmax)

    def __post_init__(self) -> None:
        """Fill in chain inputs and check the graph: names unique, every input an earlier layer, every layer but
        the last read by another (a dangling branch would be hardware with no output)."""
        seen: set[str] = set()
        for i, layer in enumerate(self.layers):
            if not layer.inputs:
                layer.inputs = (self.layers[i - 1].name if i else INPUT,)
            layer.inputs = tuple(layer.inputs)
            if layer.name in seen or layer.name == INPUT:
                raise A2QFlowError(f"model {self.name}: two layers are named {layer.name!r}")
            bad = [n for n in layer.inputs if n != INPUT and n not in seen]
            if bad:
                raise A2QFlowError(f"model {self.name}: layer {layer.name} reads {bad[0]!r}, which is not an "
                                   "earlier layer (the layer list must be in topological order)")
            want = 2 if layer.kind == "add" else 1
            if len(layer.inputs) != want:
                raise A2QFlowError(f"model {self.name}: layer {layer.name} ({layer.kind}) reads "
                                   f"{len(layer.inputs)} tensors, expected {want}")
            seen.add(layer.name)
        read = {n for l in self.layers for n in l.inputs}
        dangling = [l.name for l in self.layers[:-1] if l.name not in read]
        if dangling:
            raise A2QFlowError(f"model {self.name}: layer {dangling[0]} is read by no layer and is not the output")

    def mac_layers(self) -> list[Layer]:
        """Every layer with an accumulator (MAC_KINDS), in order: the plan has one entry per such layer."""
        return [l for l in self.layers if l.kind in MAC_KINDS]

    def layer(self, name: str) -> Layer:
        for l in self.layers:
            if l.name == name:
                return l
        raise A2QFlowError(f"no layer named {name!r}; layers are {[l.name for l in self.layers]}")

    def consumers(self, name: str) -> list[Layer]:
        """The layers that read `name` (a layer name or INPUT), in order; more than one is a fork."""
        return [l for l in self.layers if name in l.inputs]

    def is_chain(self) -> bool:
        """True when every layer reads exactly the layer before it (no forks, no joins)."""
        return all(l.inputs == ((self.layers[i - 1].name if i else INPUT),) for i, l in enumerate(self.layers))


def num_classes(model: Model) -> int | None:
    """Logits per sample when the model ends in a dense layer or in float logits (an Affine: e.g. a global average
    pool after a classifier convolution), else None."""
    last = model.layers[-1] if model.layers else None
    if isinstance(last, DenseLayer) or isinstance(getattr(last, "act", None), Affine):
        return last.out_channels
    return None


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

def _act_to_json(name: str, act: Activation, arrays: dict[str, np.ndarray]) -> dict:
    if isinstance(act, Thresholds):
        arrays[f"{name}/thresholds"] = act.values.astype(np.int64)
        return {"kind": "thresholds", "out_type": asdict(act.out_type), "out_base": act.out_base}
    arrays[f"{name}/scale"] = np.asarray(act.scale, dtype=np.float64)
    arrays[f"{name}/bias"] = np.asarray(act.bias, dtype=np.float64)
    return {"kind": "affine"}


def _layer_to_json(l: Layer, arrays: dict[str, np.ndarray]) -> dict:
    """One layer's ir.json entry; its integer / float arrays go into `arrays` under `<name>/<what>`."""
    d: dict = {"kind": l.kind, "name": l.name, "inputs": list(l.inputs)}
    if l.kind == "maxpool":
        d.update(in_shape=list(l.in_shape), kernel=list(l.kernel), stride=list(l.stride), dtype=asdict(l.dtype))
        return d
    d.update(in_type=asdict(l.in_type), target_acc_bits=l.target_acc_bits, act=_act_to_json(l.name, l.act, arrays))
    if l.kind in ("add", "requant"):
        d["in_shape"] = list(l.in_shape)
        if l.kind == "add":
            d["shifts"] = list(l.shifts)
        return d
    arrays[f"{l.name}/weights"] = l.weights.astype(np.int64)
    d["w_type"] = asdict(l.w_type)
    if l.kind != "dense":
        d.update(in_shape=list(l.in_shape), stride=list(l.stride), pad=list(l.pad))
    return d


def save_model(model: Model, build: Path | str) -> None:
    """Write BUILD/ir.json (structure) and BUILD/ir.npz (integer arrays, float affine) atomically."""
    build = Path(build)
    arrays: dict[str, np.ndarray] = {}
    layers = [_layer_to_json(l, arrays) for l in model.layers]
    meta = {
        "name": model.name,
        "input_shape": list(model.input_shape),
        "input_quant": {"scale": model.input_quant.scale, "zero_point": model.input_quant.zero_point,
                        "dtype": asdict(model.input_quant.dtype)},
        "layers": layers,
        "notes": list(model.notes),
    }
    atomic_write_npz(build / "ir.npz", arrays)
    atomic_write_json(build / "ir.json", meta)


_CONV_CLASSES = {"conv": ConvLayer, "dwconv": DepthwiseConvLayer, "avgpool": AvgPoolLayer}


def _layer_from_json(d: dict, arr) -> Layer:
    """Inverse of `_layer_to_json` (chain files from before the graph IR have no `inputs`: the previous layer)."""
    n, inputs = d["name"], tuple(d.get("inputs", ()))
    if d["kind"] == "maxpool":
        return MaxPoolLayer(n, tuple(d["in_shape"]), tuple(d["kernel"]), tuple(d["stride"]), IntType(**d["dtype"]),
                            inputs=inputs)
    if d["act"]["kind"] == "thresholds":
        act: Activation = Thresholds(arr[f"{n}/thresholds"], IntType(**d["act"]["out_type"]), d["act"]["out_base"])
    else:
        act = Affine(arr[f"{n}/scale"], arr[f"{n}/bias"])
    in_type = IntType(**d["in_type"])
    if d["kind"] == "add":
        return AddLayer(n, in_type, act, tuple(d["in_shape"]), tuple(d["shifts"]), inputs, d.get("target_acc_bits"))
    if d["kind"] == "requant":
        return RequantLayer(n, in_type, act, tuple(d["in_shape"]), inputs, d.get("target_acc_bits"))
    common = dict(name=n, weights=arr[f"{n}/weights"], in_type=in_type, w_type=IntType(**d["w_type"]), act=act,
                  target_acc_bits=d.get("target_acc_bits"), inputs=inputs)
    if d["kind"] == "dense":
        return DenseLayer(**common)
    if d["kind"] not in _CONV_CLASSES:
        raise A2QFlowError(f"ir.json: layer {n} has unknown kind {d['kind']!r}; re-run `a2qflow compile`")
    return _CONV_CLASSES[d["kind"]](**common, in_shape=tuple(d["in_shape"]), stride=tuple(d["stride"]),
                                    pad=tuple(d["pad"]))


def load_model(build: Path | str) -> Model:
    """Read what `save_model` wrote; a missing or foreign folder is a one-line error."""
    build = Path(build)
    jp, npz = build / "ir.json", build / "ir.npz"
    if not jp.is_file() or not npz.is_file():
        raise A2QFlowError(f"{build}: no ir.json / ir.npz here; run `a2qflow compile MODEL.onnx --out {build}` first")
    meta = json.loads(jp.read_text())
    arr = np.load(npz)
    layers = [_layer_from_json(d, arr) for d in meta["layers"]]
    iq = meta["input_quant"]
    return Model(meta["name"], tuple(meta["input_shape"]),
                 InputQuant(iq["scale"], iq["zero_point"], IntType(**iq["dtype"])), layers,
                 notes=list(meta.get("notes", [])))
