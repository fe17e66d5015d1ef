"""QONNX export of any Brevitas network that carries the integer weights torch computes, plus a2qflow's metadata.

The trap (brevitas >= 0.12.1, checked on 0.13.4 with torch 2.13, both dynamo=True and dynamo=False): Brevitas'
QONNX weight handler writes the raw float weight `w` and a Quant node (scale = post_scale, rounding_mode=ROUND),
so QONNX computes round(w / post_scale). An A2Q / A2Q+ quantizer, however, computes
round_to_zero(w / pre_scale) * post_scale, where pre_scale carries the weight normalisation and the clamped L1
norm g. The two integers differ (on a small A2Q MLP the graph's per-channel L1 was ~3x the bound and top-1 agreed
with torch on ~30% of inputs).

The fix, for every QuantLinear / QuantConv1d / QuantConv2d wherever it sits in the module tree: after exporting,
replace the layer's weight initializer by q * s, where q are torch's own integers (layer.quant_weight(quant_input))
and s is the Quant node's scale, after checking s equals torch's post-scale. q * s lies on the Quant node's grid,
so QONNX re-quantizes it to exactly q. Before the file is written the export checks, bit for bit, that the graph's
integers are torch's, that qonnx' execution of the graph reproduces torch's outputs on the example input, and
that every layer meets its target P (`training.audit`). The accumulator width is not part of QONNX, so each
layer's target P (read from its own quantizer) and datatypes go into metadata_props["a2qflow"] (JSON; keys in
docs/training.md). Plain integer quantizers export exactly; they go through the same checks.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from a2qflow.hw.compiler.bounds import ACC_BITS_RANGE
from a2qflow.hw.compiler.ir import identifier
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import check_out_file
from a2qflow.training.audit import META_KEY, _Graph, audit_onnx
from a2qflow.training.config import LayerSpec

EXPORTER = "a2qflow.export_qonnx"


@dataclass
class TorchIntWeights:
    """One layer's quantized weights as torch computes them: value = q * scale (q int64, scale broadcastable)."""

    q: np.ndarray
    scale: np.ndarray
    bits: int


@dataclass
class LayerExport:
    """What the export knows about one MAC layer: its module path, name, preset, target and torch's integers."""

    path: str
    name: str
    module: torch.nn.Module
    weight_quant: str  # a2q | a2q+ | int | float (or the trainer's preset name)
    target_acc_bits: int | None
    ints: TorchIntWeights | None = None
    input_bits: int | None = None
    input_signed: bool | None = None
    onnx_weight: str | None = None


# ------------------------------------------------------------------------------------------ finding the layers

def mac_layer_types() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(supported Brevitas MAC layers, Brevitas MAC layers a2qflow cannot map, plain torch MAC layers)."""
    import brevitas.nn as qnn

    ok = (qnn.QuantLinear, qnn.QuantConv1d, qnn.QuantConv2d)
    bad = tuple(getattr(qnn, n) for n in ("QuantConv3d", "QuantConvTranspose1d", "QuantConvTranspose2d",
                                          "QuantConvTranspose3d") if hasattr(qnn, n))
    plain = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose1d,
             torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    return ok, bad, plain


def find_mac_layers(net: torch.nn.Module, allow_float: bool = False) -> list[tuple[str, torch.nn.Module]]:
    """Every QuantLinear / QuantConv1d / QuantConv2d in module order, whatever the nesting and names.

    A MAC layer a2qflow cannot map (a transposed or 3-D convolution, a float torch layer, a Brevitas layer without
    weight quantizer) is a one-line A2QFlowError naming the module, unless `allow_float` keeps float layers."""
    ok, bad, plain = mac_layer_types()
    float_ok = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)
    out = []
    for path, mod in net.named_modules():
        if isinstance(mod, bad) or (isinstance(mod, plain) and not isinstance(mod, ok + float_ok)):
            raise A2QFlowError(f"export: layer {path!r} ({type(mod).__name__}) is not supported; a2qflow maps "
                               "QuantLinear, QuantConv1d and QuantConv2d")
        if isinstance(mod, ok):
            if not mod.weight_quant.is_quant_enabled and not allow_float:
                raise A2QFlowError(f"export: layer {path!r} ({type(mod).__name__}) has no weight quantizer; give it "
                                   "an integer weight_quant (e.g. Int8AccumulatorAwareWeightQuant)")
            out.append((path, mod))
        elif isinstance(mod, float_ok):
            if not allow_float:
                raise A2QFlowError(f"export: layer {path!r} ({type(mod).__name__}) is a float torch layer; a2qflow "
                                   f"maps integer layers: use brevitas.nn.Quant{type(mod).__name__}")
            out.append((path, mod))
    if not out:
        raise A2QFlowError("export: the model has no QuantLinear / QuantConv1d / QuantConv2d layer")
    return out


def accumulator_target(mod: torch.nn.Module) -> tuple[str, int | None]:
    """(weight quantizer kind, the P it was trained for): a2q / a2q+ with the `weight_accumulator_bit_width`
    Brevitas stores in the quantizer, int for any other integer quantizer (no P), float without one."""
    from brevitas.core.scaling.pre_scaling import (
        AccumulatorAwareParameterPreScaling,
        AccumulatorAwareZeroCenterParameterPreScaling,
    )

    wq = getattr(mod, "weight_quant", None)
    if wq is None or not getattr(wq, "is_quant_enabled", False):
        return "float", None
    for m in wq.modules():
        if isinstance(m, AccumulatorAwareParameterPreScaling):
            kind = "a2q+" if isinstance(m, AccumulatorAwareZeroCenterParameterPreScaling) else "a2q"
            with torch.no_grad():
                return kind, int(round(float(m.accumulator_bit_width())))
    return "int", None


# ------------------------------------------------------------------------------------------ torch's integers

def capture_inputs(net: torch.nn.Module, mods: dict[str, torch.nn.Module], x: torch.Tensor) -> dict:
    """Run `net` once (eval, no grad) and return what each named module received (a QuantTensor when quantized)."""
    seen: dict = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=n: seen.__setitem__(name, args[0]))
             for n, m in mods.items()]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    except Exception as e:  # noqa: BLE001 - torch / Brevitas raise many types: name the module and the fix
        raise forward_error(net, x, e) from None
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    return seen


# ------------------------------------------------------------------------------------------ one-line model errors

_ACT_TYPES = ("QuantReLU", "QuantIdentity", "QuantHardTanh", "QuantSigmoid", "QuantTanh")


def _trace(net: torch.nn.Module, x: torch.Tensor) -> tuple[list, object, Exception | None]:
    """One eval forward pass with a pre-hook on every module: ([(name, module, first input)] in call order,
    the output or None, the exception the pass raised or None)."""
    entered: list = []
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=n: entered.append((name, mod, args[0] if args
                                                                                     else None)))
             for n, m in net.named_modules() if n]
    was_training = net.training
    y, err = None, None
    try:
        net.eval()
        with torch.no_grad():
            y = net(x)
    except Exception as e:  # noqa: BLE001 - reported by the caller
        err = e
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    return entered, y, err


def forward_error(net: torch.nn.Module, x: torch.Tensor, e: Exception,
                  given: tuple[int, ...] | None = None) -> A2QFlowError:
    """What went wrong in a failed forward pass on `x`, as one line naming the module and the fix (never torch's or
    Brevitas' own assertion); `given` is the shape of the user's whole example batch (default x's)."""
    entered, _, _ = _trace(net, x)
    shown = tuple(given if given is not None else x.shape)
    ok, _, _ = mac_layer_types()
    macs = [(n, m, i) for n, m, i in entered if isinstance(m, ok + (torch.nn.Linear, torch.nn.Conv1d,
                                                                     torch.nn.Conv2d))]
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if macs:
        name, mod, inp = macs[-1]
        kind = type(mod).__name__
        shape = tuple(getattr(getattr(inp, "value", inp), "shape", ()))
        if isinstance(mod, torch.nn.Linear) and shape and shape[-1] != mod.in_features:
            return A2QFlowError(f"export: example_input of shape {shown} does not fit the model: layer "
                                f"{name!r} ({kind}) expects {mod.in_features} input features, got {shape[-1]}; "
                                "pass a batch shaped like the training inputs")
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d)) and len(shape) > 1 and shape[1] != mod.in_channels:
            return A2QFlowError(f"export: example_input of shape {shown} does not fit the model: layer "
                                f"{name!r} ({kind}) expects {mod.in_channels} input channels, got {shape[1]}; "
                                "pass a batch shaped like the training inputs")
        if "No cached quant input" in text or "quant input" in text.lower():
            first = name == macs[0][0]
            fix = (f"add a QuantIdentity input quantizer (return_quant_tensor=True) before layer {name!r}" if first
                   else f"set return_quant_tensor=True on the activation quantizer before layer {name!r}")
            return A2QFlowError(f"export: layer {name!r} ({kind}) receives a float input, but its accumulator-aware "
                                f"weight quantizer needs a quantized one: {fix}, or give it input_quant=")
    where = f" in module {entered[-1][0]!r} ({type(entered[-1][1]).__name__})" if entered else ""
    return A2QFlowError(f"export: the model's forward pass failed{where} on example_input of shape "
                        f"{shown} ({type(e).__name__}: {text[:160]})")


def check_model(net: torch.nn.Module, x: torch.Tensor) -> None:
    """Before the export: weights that no quantizer can map (NaN / inf, 1-bit), a forward pass that fails, a ReLU
    quantizer on the model's input, or a QuantTensor output; each a one-line error naming the module and the fix."""
    ok, _, _ = mac_layer_types()
    for name, mod in net.named_modules():
        if not isinstance(mod, ok):
            continue
        for what in ("weight", "bias"):
            t = getattr(mod, what, None)
            if isinstance(t, torch.Tensor) and not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise A2QFlowError(f"export: layer {name!r} ({type(mod).__name__}) has {bad} NaN / inf {what} "
                                   f"values (did training diverge?); retrain it or fix its {what}")
        bits = weight_bit_width(mod)
        if bits is not None and bits < 2:
            kind, _ = accumulator_target(mod)
            why = "Brevitas' A2Q gives NaN weights at 1 bit" if kind in ("a2q", "a2q+") else "a2qflow maps 2..32"
            raise A2QFlowError(f"export: layer {name!r} ({type(mod).__name__}) has {bits}-bit weights, which are not "
                               f"supported ({why}); use weight_bit_width >= 2")
    entered, y, err = _trace(net, x[:8])
    if err is not None:
        raise forward_error(net, x[:8], err, tuple(x.shape))
    _check_input_quantizer(entered, x)
    _check_output(net, entered, y)


def weight_bit_width(mod: torch.nn.Module) -> int | None:
    """The weight quantizer's bit width without a forward pass (A2Q's needs a quant input for `bit_width()`)."""
    wq = getattr(mod, "weight_quant", None)
    if wq is None or not getattr(wq, "is_quant_enabled", False):
        return None
    impl = getattr(getattr(wq, "tensor_quant", None), "msb_clamp_bit_width_impl", None)
    try:
        with torch.no_grad():
            return int(round(float(impl() if impl is not None else wq.bit_width())))
    except Exception:  # noqa: BLE001 - not knowable here: the export's later checks read it from torch
        return None


def _check_input_quantizer(entered: list, x: torch.Tensor) -> None:
    """The first quantizer on the raw input must not be a QuantReLU: compile needs Quant first, and a ReLU there
    silently clips every negative input."""
    ok, _, _ = mac_layer_types()
    for name, mod, inp in entered:
        if isinstance(mod, ok):
            return
        if type(mod).__name__ in _ACT_TYPES and isinstance(inp, torch.Tensor) and inp.data_ptr() == x.data_ptr():
            if type(mod).__name__ == "QuantReLU":
                raise A2QFlowError(f"export: module {name!r} (QuantReLU) is the model's input quantizer; a2qflow "
                                   "needs a plain quantizer there: replace it by brevitas.nn.QuantIdentity (act_quant="
                                   "Uint8ActPerTensorFloat for inputs >= 0, Int8ActPerTensorFloat for signed ones, "
                                   "return_quant_tensor=True)")
            return


def _check_output(net: torch.nn.Module, entered: list, y) -> None:
    """A QuantTensor output exports as 6 graph outputs (value, scale, zero point, ...): name the module to change."""
    from brevitas.quant_tensor import QuantTensor

    if not isinstance(y, QuantTensor):
        return
    last = [n for n, m, _ in entered if getattr(m, "return_quant_tensor", False)]
    who = f"module {last[-1]!r}" if last else "the model's last module"
    raise A2QFlowError(f"export: the model returns a QuantTensor; set return_quant_tensor=False on {who} so it "
                       "returns a plain tensor (the logits)")


def _quant_input(name: str, mod: torch.nn.Module, inp):
    """The layer's input as a QuantTensor (through its own input quantizer if it has one), or None."""
    from brevitas.quant_tensor import QuantTensor

    if not isinstance(inp, QuantTensor) and getattr(mod, "input_quant", None) is not None \
            and mod.input_quant.is_quant_enabled:
        with torch.no_grad():
            inp = mod.input_quant(inp)
    return inp if isinstance(inp, QuantTensor) else None


def layer_integers(name: str, mod: torch.nn.Module, inp) -> TorchIntWeights:
    """Integer weights of one layer exactly as torch uses them in its forward pass; raises when they cannot be
    recovered (no integer grid, a zero point, scales that vary inside an output channel)."""
    qin = _quant_input(name, mod, inp)
    if mod.weight_quant.requires_quant_input and qin is None:
        raise A2QFlowError(f"export: layer {name}: its accumulator-aware quantizer needs a quantized input "
                           "(input_quant= on the layer, or a QuantIdentity / QuantReLU with "
                           "return_quant_tensor=True before it)")
    try:
        with torch.no_grad():
            qt = mod.quant_weight(quant_input=qin) if mod.weight_quant.requires_quant_input else mod.quant_weight()
    except Exception as e:  # noqa: BLE001 - Brevitas asserts; the user needs the layer and the first line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise A2QFlowError(f"export: layer {name}: Brevitas could not quantize its weights ({type(e).__name__}: "
                           f"{msg[:160]})") from None
    from brevitas.quant_tensor import IntQuantTensor

    if not isinstance(qt, IntQuantTensor):
        raise A2QFlowError(f"export: layer {name}: its weight quantizer gives a {type(qt).__name__}, not integers "
                           "(a float / minifloat quantizer?); a2qflow needs an integer weight quantizer")
    value = qt.value.detach().cpu().double().numpy()
    scale = np.broadcast_to(qt.scale.detach().cpu().double().numpy(), value.shape)
    if not np.all(np.isfinite(value)) or not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        raise dead_layer_error(name, mod, qin, value)
    zp = np.asarray(qt.zero_point.detach().cpu().double().numpy())
    if np.any(zp != 0):
        raise A2QFlowError(f"export: layer {name}: the weight quantizer has a non-zero zero point; a2qflow needs "
                           "symmetric integer weights")
    r = value / scale
    q = np.round(r)
    bits = int(qt.bit_width)
    if not np.all(np.abs(r - q) <= 1e-3) or np.abs(q).max(initial=0) > 2 ** bits:
        raise A2QFlowError(f"export: layer {name}: its quantized weights are not integers times the scale (is it a "
                           f"float / minifloat quantizer?); a2qflow needs an integer weight quantizer")
    per = scale.reshape(scale.shape[0], -1)
    if not np.all(per == per[:, :1]):
        raise A2QFlowError(f"export: layer {name}: the weight scale varies inside an output channel (group-wise "
                           "scales); use per-tensor or per-output-channel scales")
    return TorchIntWeights(q=q.astype(np.int64), scale=qt.scale.detach().cpu().numpy().astype(np.float32),
                           bits=bits)


def dead_layer_error(name: str, mod: torch.nn.Module, qin, value: np.ndarray) -> A2QFlowError:
    """A layer whose quantized weights are NaN / inf (A2Q divides by the L1 norm of a row: an all-zero row, or a
    target P whose budget leaves no room for any weight, gives 0 / 0): say which layer, why, and what to change."""
    from a2qflow.hw.compiler.ir import IntType
    from a2qflow.training.quant import l1_budget, min_workable_acc_bits

    kind, P = accumulator_target(mod)
    rows = np.flatnonzero(~np.isfinite(value.reshape(value.shape[0], -1)).all(axis=1)).tolist()
    head = f"export: layer {name!r} ({type(mod).__name__}): its quantized weights are NaN / inf in " + (
        f"output channel(s) {rows[:6]}{' ...' if len(rows) > 6 else ''}" if rows else "its scale")
    if kind in ("a2q", "a2q+") and P is not None and qin is not None:
        in_type = IntType(int(qin.bit_width), bool(qin.signed))
        budget = l1_budget(kind, P, in_type)
        if budget < 1:
            return A2QFlowError(f"{head}: its {kind} target P={P} with {in_type} inputs leaves an L1 budget of "
                                f"{budget:.3g} < 1, no budget for a single weight; raise weight_accumulator_bit_width "
                                f"to at least {min_workable_acc_bits(kind, in_type)} or use fewer input bits")
    float_w = mod.weight.detach().reshape(mod.weight.shape[0], -1)
    zero = [r for r in rows if not bool(float_w[r].any())]
    if zero:
        return A2QFlowError(f"{head}: those rows of its float weight are all zero and {kind} normalises each row by "
                            "its norm (0 / 0); retrain the layer or remove the dead channels")
    return A2QFlowError(f"{head}; the weight quantizer produced no usable integers: check its scale and bit width")


def collect_layers(net: torch.nn.Module, x: torch.Tensor, allow_float: bool = False,
                   presets: dict[str, str] | None = None) -> list[LayerExport]:
    """Every MAC layer of `net` with its target P, torch's integers and its input datatype (from `x`)."""
    found = find_mac_layers(net, allow_float)
    inputs = capture_inputs(net, dict(found), x)
    out = []
    for path, mod in found:
        kind, P = accumulator_target(mod)
        name = identifier(path)
        le = LayerExport(path, name, mod, (presets or {}).get(name, kind), P)
        if path not in inputs:
            raise A2QFlowError(f"export: layer {path!r} is not used by the model's forward pass on the example "
                               "input; remove it or pass an input that reaches it")
        if kind != "float":
            le.ints = layer_integers(path, mod, inputs[path])
            qin = _quant_input(path, mod, inputs[path])
            if qin is not None:
                le.input_bits, le.input_signed = int(qin.bit_width), bool(qin.signed)
        out.append(le)
    return out


def _apply_overrides(layers: list[LayerExport], acc_bits: int | dict[str, int] | None) -> None:
    """acc_bits: one P for every integer layer, or {layer: P} keyed by module path or a2qflow name."""
    if acc_bits is None:
        return
    if isinstance(acc_bits, dict):
        known = {k for le in layers for k in (le.path, le.name)}
        unknown = sorted(set(acc_bits) - known)
        if unknown:
            raise A2QFlowError(f"export: acc_bits names {unknown}; the model's layers are "
                               f"{[le.path for le in layers]}")
    for le in layers:
        p = acc_bits if not isinstance(acc_bits, dict) else acc_bits.get(le.path, acc_bits.get(le.name))
        if p is None or le.ints is None:
            continue
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or int(p) not in ACC_BITS_RANGE:
            raise A2QFlowError(f"export: acc_bits for layer {le.path}: expected an integer in {ACC_BITS_RANGE.start}"
                               f"..{ACC_BITS_RANGE.stop - 1}, got {p!r}")
        le.target_acc_bits = int(p)


# ------------------------------------------------------------------------------------------ the QONNX file

def _example(example_input) -> torch.Tensor:
    """The example batch as a float32 tensor (N, ...); a missing or batch-less input is a one-line error."""
    if example_input is None:
        raise A2QFlowError("export: example_input is missing; pass a batch of real inputs (N, ...) so the export "
                           "can read the input datatypes and check the QONNX graph against torch")
    x = example_input if isinstance(example_input, torch.Tensor) else torch.as_tensor(np.asarray(example_input))
    if x.ndim < 2 or x.shape[0] == 0:
        raise A2QFlowError(f"export: example_input has shape {tuple(x.shape)}; it needs a batch dimension first "
                           "and at least one sample, e.g. (8, 64) or (8, 3, 32, 32)")
    return x.detach().to(torch.float32).cpu()


def _brevitas_export(net: torch.nn.Module, x1: torch.Tensor, tmp: str) -> None:
    from brevitas.export import export_qonnx as brevitas_export_qonnx

    try:
        with torch.no_grad():
            brevitas_export_qonnx(net, args=x1, export_path=tmp, dynamo=False)
    except Exception as e:  # torch.onnx / Brevitas raise many types; the user needs the first line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise A2QFlowError(f"export: Brevitas' export_qonnx failed ({type(e).__name__}: {msg[:160]})") from None


def _weight_initializer(g: _Graph, le: LayerExport, taken: set[str]) -> str:
    """The initializer holding the layer's weight: `<module path>.weight` as torch names it, else the one
    initializer whose value is the module's float weight."""
    name = f"{le.path}.weight"
    if name in g.init and name not in taken:
        return name
    w = le.module.weight.detach().cpu().numpy()
    same = [k for k, v in g.init.items() if k not in taken and v.shape == w.shape and np.array_equal(v, w)]
    if len(same) != 1:
        raise A2QFlowError(f"export: layer {le.path}: cannot find its weight in the exported graph "
                           f"({len(same)} initializers match)")
    return same[0]


def _rewrite_weights(model, layers: list[LayerExport]) -> None:
    """Replace each quantized layer's float weight by torch's integers on the Quant node's grid; verify bit for bit."""
    from onnx import numpy_helper

    g = _Graph(model)
    inits = {i.name: i for i in model.graph.initializer}
    taken: set[str] = set()
    for le in layers:
        wname = le.onnx_weight = _weight_initializer(g, le, taken)
        taken.add(wname)
        users = g.consumers.get(wname, [])
        if len(users) != 1:
            raise A2QFlowError(f"export: layer {le.path}: weight {wname!r} feeds {len(users)} nodes, expected 1")
        if le.ints is None:
            continue
        if users[0].op_type != "Quant":
            raise A2QFlowError(f"export: layer {le.path}: weight {wname!r} feeds {users[0].op_type}, not Quant")
        tw, qp = le.ints, g.quant(users[0])
        s_graph = np.asarray(qp.scale, dtype=np.float32)
        if qp.bits != tw.bits or not np.allclose(np.broadcast_to(s_graph, tw.scale.shape), tw.scale, rtol=1e-6,
                                                 atol=0):
            raise A2QFlowError(f"export: layer {le.path}: the Quant node's scale / bit width differ from torch's "
                               "post-scale; this Brevitas version exports weights differently (see training/export.py)")
        fixed = (tw.q.astype(np.float32) * s_graph).astype(np.float32)
        got = qp.integers(fixed, np.float32)
        if not np.array_equal(got, tw.q):
            raise A2QFlowError(f"export: layer {le.path}: {int(np.sum(got != tw.q))} integer weights still differ "
                               "from torch after the rewrite")
        inits[wname].CopyFrom(numpy_helper.from_array(fixed, wname))


def export_metadata(layers: list[LayerExport], input_shape: tuple[int, ...], extra: dict | None = None) -> dict:
    """The metadata_props["a2qflow"] dict: per layer name, weight initializer, preset, target P, datatypes."""
    meta = {"layers": [{"name": le.name, "module": le.path, "onnx_weight": le.onnx_weight,
                        "weight_quant": le.weight_quant, "target_acc_bits": le.target_acc_bits,
                        "weight_bits": None if le.ints is None else le.ints.bits,
                        "input_bits": le.input_bits, "input_signed": le.input_signed} for le in layers],
            "input_shape": list(input_shape), "exporter": EXPORTER}
    meta.update(extra or {})
    return meta


def _save(model, meta: dict, tmp: str) -> None:
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    keep = [(p.key, p.value) for p in model.metadata_props if p.key != META_KEY]
    del model.metadata_props[:]
    for k, v in keep:
        model.metadata_props.add(key=k, value=v)
    model.metadata_props.add(key=META_KEY, value=json.dumps(meta))
    model = ModelWrapper(model).transform(InferShapes()).model  # so execute_onnx runs the file as written
    onnx.save(model, tmp)


def _check_all_audited(report: dict, layers: list[LayerExport], path: Path) -> None:
    """Every integer layer must have been found and audited in the graph (not skipped as float / unquantized)."""
    audited = {l["onnx_weight"] for l in report["layers"] if l.get("audited")}
    for le in layers:
        if le.ints is not None and le.onnx_weight not in audited:
            raise A2QFlowError(f"export: layer {le.path}: its weight {le.onnx_weight!r} does not reach a "
                               "Gemm / MatMul / Conv through a Quant node with a quantized input in the graph; "
                               f"a2qflow cannot audit {path.name}")


def torch_outputs(net: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The model's output on `x` as a float array (a QuantTensor output gives its value)."""
    with torch.no_grad():
        y = net.eval()(x)
    y = getattr(y, "value", y)
    if not isinstance(y, torch.Tensor):
        raise A2QFlowError(f"export: the model returns {type(y).__name__}; a2qflow maps single-output models")
    return y.detach().cpu().numpy()


def qonnx_execute(onnx_path: Path | str, x: np.ndarray) -> np.ndarray:
    """qonnx' execute_onnx on a whole batch: the graph output of `hw.compiler.qonnx_check.qonnx_outputs`, the one
    runner of qonnx on a file (batch re-shaped to len(x), exact no-ops bypassed as the compiler does)."""
    from a2qflow.hw.compiler.qonnx_check import qonnx_outputs

    return next(iter(qonnx_outputs(onnx_path, x).values()))


def _check_outputs(tmp: str, net: torch.nn.Module, x: torch.Tensor) -> None:
    """qonnx' execution of the graph must reproduce torch's outputs on the example batch (float32 rounding aside)."""
    x = x[:64]
    t = torch_outputs(net, x)
    try:
        q = qonnx_execute(tmp, x.numpy()).reshape(t.shape)
    except Exception as e:  # noqa: BLE001 - onnxruntime / qonnx raise many types: one line, the first of theirs
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise A2QFlowError(f"export: qonnx cannot execute the exported graph ({type(e).__name__}: {msg[:160]}); "
                           "the model uses an op or shape a2qflow's export cannot reproduce") from None
    tol = 1e-3 * max(1.0, float(np.abs(t).max(initial=0.0)))
    bad = np.abs(t - q).reshape(len(x), -1).max(axis=1) > tol
    if bad.any():
        raise A2QFlowError(f"export: the QONNX graph disagrees with torch on {int(bad.sum())} of {len(x)} example "
                           f"inputs (max |difference| {float(np.abs(t - q).max()):.3g}); the model uses an op "
                           "a2qflow's export cannot reproduce")


def _check_golden(tmp: str, x: torch.Tensor, path: Path) -> None:
    """The integer golden model must compute, layer by layer, what qonnx (== torch, checked above) computes on the
    example batch: the hardware executors (C-sim, RTL) are checked against the golden model, so a difference here
    (an input rounded differently, a threshold off by one) would otherwise go unnoticed. A file the compiler cannot
    lower is left for `a2qflow compile` to report."""
    from a2qflow.hw.compiler.frontend import load_qonnx_traced
    from a2qflow.hw.compiler.qonnx_check import check_layerwise

    try:
        traced = load_qonnx_traced(tmp)
    except A2QFlowError:
        return
    try:
        check_layerwise(tmp, x[:16].numpy(), "export", traced)
    except A2QFlowError as e:
        raise A2QFlowError(str(e).replace(tmp, str(path))) from None


def export_brevitas(net: torch.nn.Module, example_input, path: Path | str,
                    acc_bits: int | dict[str, int] | None = None, *, presets: dict[str, str] | None = None,
                    extra_meta: dict | None = None, allow_float: bool = False, audit: bool = True) -> dict:
    """Export `net` to QONNX at `path` with torch's integer weights, metadata, and the checks above.

    The trainer's export and the public `a2qflow.export_qonnx` are this function: `presets` renames the weight
    quantizer kind per layer (the trainer's preset names), `extra_meta` adds metadata keys, `allow_float` keeps
    float layers (the trainer's `float` preset), `audit=False` leaves the audit to the caller (the trainer writes
    audit.json itself). Returns {"metadata": ..., "audit": ... or None}. Written atomically: a
    failure or interrupt leaves no (partial) file at `path`; `net` itself is never modified.
    """
    import onnx

    path = check_out_file(path, "export: path", "model.onnx")
    x = _example(example_input)
    net = copy.deepcopy(net).eval()
    find_mac_layers(net, allow_float)
    check_model(net, x)
    layers = collect_layers(net, x, allow_float, presets)
    _apply_overrides(layers, acc_bits)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _brevitas_export(net, x[:1], tmp)
        model = onnx.load(tmp)
        _rewrite_weights(model, layers)
        meta = export_metadata(layers, tuple(x.shape[1:]), extra_meta)
        _save(model, meta, tmp)
        _check_outputs(tmp, net, x)
        if not allow_float:
            _check_golden(tmp, x, path)
        report = None
        if audit:
            try:
                report = audit_onnx(tmp, raise_on_violation=True)
            except A2QFlowError as e:
                raise A2QFlowError(str(e).replace(tmp, str(path))) from None
            report["model"] = str(path)
            _check_all_audited(report, layers, path)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"metadata": meta, "audit": report}


# ------------------------------------------------------------------------------------------ the trainer's export

def _spec_modules(net: torch.nn.Module, specs: list[LayerSpec]) -> dict[str, torch.nn.Module]:
    return {s.name: getattr(net, s.name) for s in specs}


def capture_layer_inputs(net: torch.nn.Module, specs: list[LayerSpec], x: torch.Tensor) -> dict:
    """Run `net` once (eval, no grad) and return what each MAC layer received (a QuantTensor when quantized)."""
    return capture_inputs(net, _spec_modules(net, specs), x)


def torch_integer_weights(net: torch.nn.Module, specs: list[LayerSpec], x: torch.Tensor) -> dict[str, TorchIntWeights]:
    """Integer weights of every quantized layer exactly as torch uses them in its forward pass."""
    mods = _spec_modules(net, specs)
    inputs = capture_inputs(net, mods, x)
    return {s.name: layer_integers(s.name, mods[s.name], inputs[s.name]) for s in specs if s.weight_quant != "float"}


def weight_sparsity(ints: dict[str, TorchIntWeights], specs: list[LayerSpec], net: torch.nn.Module) -> dict:
    """Fraction of zero weights per layer (integers for quantized layers, exact zeros for float ones)."""
    res = {}
    for s in specs:
        if s.name in ints:
            res[s.name] = float(np.mean(ints[s.name].q == 0))
        else:
            res[s.name] = float((getattr(net, s.name).weight == 0).float().mean())
    return res


def export_model(net: torch.nn.Module, specs: list[LayerSpec], input_shape: tuple[int, ...], path: Path | str,
                 dataset: str, calib: torch.Tensor) -> dict:
    """The trainer's export: `export_brevitas` with the config's preset names, the dataset and float layers allowed.

    `calib` is an input batch (it tells the A2Q quantizers the input datatype and checks the graph against torch).
    Returns the metadata dict."""
    calib = torch.as_tensor(calib).reshape(-1, *input_shape)
    presets = {s.name: s.weight_quant for s in specs}
    res = export_brevitas(net, calib, path, presets=presets, extra_meta={"dataset": dataset}, allow_float=True,
                          audit=False)
    return res["metadata"]
