"""Accumulator-aware post-training quantization of a float model the user already has (`a2qflow.quantize`).

Steps (each reuses the path a trained a2qflow model takes, training.recipe):
  1. read the float model as an a2qflow model config (training.ptq_model) and copy its weights into the config's
     float twin; build the quantized Brevitas A2Q model of the same config and load the twin's weights into it
     (`recipe.load_twin_weights`); budget-aware init (`training.init`) so every channel starts inside its budget;
  2. layer by layer, in order: calibrate the activation quantizer that feeds the layer (training-mode forward
     passes as in `recipe.calibrate`, only that quantizer in training mode, the pass stopped at the layer), on
     the network whose earlier layers are already quantized, so its range is the one the layer will really see;
     the calibration set is real data or, with calibration="zero-shot", synthesised from BN statistics
     (training.zeroshot);
  3. quantize the layer's weights (training.axe: rtn, axe-gpfq, axe-optq) from its inputs in that network (and,
     for GPFQ, the float network's);
  4. plant each layer's integers q and scale s into its Brevitas A2Q quantizer (`plant_integers`) and read them back
     through the quantizer, so the model computes exactly q * s and `a2qflow.export_qonnx` exports exactly q.
The A2Q quantizer's own clamp (g / s <= T) keeps the overflow guarantee even if the model is fine-tuned later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from a2qflow.hw.compiler.bounds import l1_norms
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.axe import METHODS, integer_budget, quantize_layer, zero_sum
from a2qflow.training.config import LayerSpec
from a2qflow.training.quant import l1_budget

MAX_ROWS = 8192  # input rows per layer for the PTQ statistics (conv patches are subsampled, seeded)
CALIBRATION_BATCHES = 300  # Brevitas' activation quantizers collect statistics over 300 training-mode calls
ZERO_FILL = 0.25  # an all-zero channel's planted |w| (alternating sign, zero mean), in units of s: < 1 leaves q = 0


@dataclass
class PTQResult:
    """A quantized model and what was done to it (training.ptq_job writes it into metrics.json)."""

    net: nn.Module
    specs: list[LayerSpec]
    model: object  # training.config.ModelConfig
    image_shape: tuple[int, int, int]
    method: str
    calibration: str
    layers: dict[str, dict] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def layer_specs(cfg, weight_bits: int, act_bits: int, input_bits: int | None, input_signed: bool,
                acc_bits: int, weight_quant: str) -> list[LayerSpec]:
    """Per-layer specs from the API's arguments (validated like a config's `quant:` section)."""
    from pydantic import ValidationError

    from a2qflow.training.config import QuantConfig, resolve_layer_specs

    try:
        q = QuantConfig(weight_quant=weight_quant, weight_bits=weight_bits, act_bits=act_bits,
                        input_bits=act_bits if input_bits is None else input_bits, input_signed=input_signed,
                        acc_bits=acc_bits)
    except ValidationError as e:
        err = e.errors()[0]
        raise A2QFlowError(f"quantize: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    return resolve_layer_specs(q, cfg)


def budget_of(spec: LayerSpec) -> tuple[float, int]:
    """(T, B): the layer's L1 bound and the integer budget PTQ plants (A2Q+: even, zero-sum q split it in halves)."""
    T = l1_budget(spec.weight_quant, spec.target_acc_bits, spec.in_type)
    B = integer_budget(T)
    return T, (B - B % 2 if spec.weight_quant == "a2q+" else B)


def check_specs(specs: list[LayerSpec]) -> None:
    """PTQ plants A2Q / A2Q+ integers; every layer's target P must leave an integer budget of at least 1 (2)."""
    for s in specs:
        if s.weight_quant not in ("a2q", "a2q+"):
            raise A2QFlowError(f"quantize: layer {s.name}: weight_quant {s.weight_quant!r} is not supported by PTQ; "
                               "use a2q or a2q+")
        T, B = budget_of(s)
        if B < 1:
            p = s.target_acc_bits
            while budget_of(LayerSpec(s.name, s.weight_quant, s.weight_bits, s.input_bits, s.input_signed, p))[1] < 1:
                p += 1
            raise A2QFlowError(f"quantize: layer {s.name}: acc_bits={s.target_acc_bits} with {s.in_type} inputs "
                               f"leaves an L1 budget of {T:.3g} (every weight would be zero); use acc_bits >= {p}")


class _Stop(Exception):
    """Raised by a pre-hook to end a forward pass at the layer being quantized (later layers are not ready)."""


def _run_to(net: nn.Module, layer: nn.Module, x: torch.Tensor) -> list:
    """Run `net` on x (no grad, modes as they are) until `layer`; returns [what the layer received]."""
    seen: list = []

    def hook(mod, args):
        seen.append(args[0])
        raise _Stop

    h = layer.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            net(x)
    except _Stop:
        pass
    finally:
        h.remove()
    return seen


def input_of(net: nn.Module, layer: nn.Module, x: torch.Tensor):
    """What `layer` receives when `net` runs on x in eval mode (a QuantTensor after a quantizer)."""
    net.eval()
    return _run_to(net, layer, x)[0]


def calibrate_activation(net: nn.Module, act: nn.Module, layer: nn.Module, x: torch.Tensor, batches: int,
                         batch_size: int, seed: int) -> None:
    """`recipe.calibrate` for one activation quantizer: seeded passes with only `act` in training mode (Brevitas'
    runtime statistics), BatchNorm and every other module in eval mode, each pass stopped at `layer`."""
    gen = torch.Generator().manual_seed(seed)
    net.eval()
    act.train()
    try:
        for _ in range(batches):
            _run_to(net, layer, x[torch.randint(len(x), (min(batch_size, len(x)),), generator=gen)])
    finally:
        net.eval()


def layer_rows(mod: nn.Module, inp: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """The layer's input as (n, K) rows: samples for Linear, im2col patches for Conv2d (subsampled by idx)."""
    x = inp.value if hasattr(inp, "value") else inp
    x = x.detach().to(torch.float64)
    if isinstance(mod, nn.Conv2d) or "Conv" in type(mod).__name__:
        k, pad = mod.kernel_size, mod.padding
        x = torch.nn.functional.unfold(x, k, padding=pad).transpose(1, 2).reshape(-1, x.shape[1] * k[0] * k[1])
    else:
        x = x.reshape(len(x), -1)
    return x if idx is None else x[idx]


def _row_index(n: int, gen: torch.Generator) -> torch.Tensor | None:
    return None if n <= MAX_ROWS else torch.randperm(n, generator=gen)[:MAX_ROWS].sort().values


def plant_integers(layer: nn.Module, q: torch.Tensor, s: torch.Tensor, T: float, zero_center: bool = False) -> None:
    """Set a Brevitas A2Q layer so its quantizer yields exactly q (C, K) with post-scale s (C, 1).

    The quantizer computes q' = round_toward_zero(w / pre_scale) with pre_scale = s * ||w||_1 / min(g / s, T)
    (brevitas/core/scaling/pre_scaling.py, 0.13.4). Planting w = (q + sign(q) * delta) * s and g = ||w||_1 gives
    pre_scale = s and w / pre_scale = q + sign(q) * delta, whose truncation is q for any 0 <= delta < 1. delta is
    as large as the budget allows (||q||_1 + delta * nnz stays below T, so the clamp never binds; `integer_budget`
    leaves at least 1/4 of slack), capped at 1/4, so float32 rounding inside Brevitas cannot move q.
    A2Q+ (`zero_center`): the quantizer first subtracts each channel's mean; for zero-sum q the planted w has mean
    delta * s * (n+ - n-) / K, which moves every entry by less than delta toward zero, so truncation still gives q.
    """
    from a2qflow.training.init import _params, _set_log_param

    q, s = q.to(torch.float64), s.to(torch.float64)
    nnz = (q != 0).sum(1, keepdim=True).clamp(min=1)
    delta = ((T - q.abs().sum(1, keepdim=True)) / (4 * nnz)).clamp(max=0.25)
    w = (q + torch.sign(q) * delta) * s
    alt = 1.0 - 2.0 * (torch.arange(q.shape[1], dtype=q.dtype) % 2)  # +1 -1 +1 ...: (nearly) zero mean
    w = torch.where((q == 0).all(1, keepdim=True), ZERO_FILL / q.shape[1] * s * alt, w)
    wc = w - w.mean(1, keepdim=True) if zero_center else w
    g = wc.abs().sum(1, keepdim=True)
    post, pre_s, pre = _params(layer)
    with torch.no_grad():
        layer.weight.data.copy_(w.to(layer.weight.dtype).reshape(layer.weight.shape))
        for impl in (post, pre_s):
            _set_log_param(impl, s)
        _set_log_param(pre, g)


def layer_scales(method: str, w: torch.Tensor, budget: int, bits: int) -> torch.Tensor:
    """Per-channel scale s (C, 1) for `method`.

    rtn: training.init's budget-aware scan (the scale with the least squared error after projecting w onto the
    budget and rounding): rtn has no error correction, so it needs the finest grid the budget allows.
    axe-*: the smallest scale at which the float channel already fits its budget, ||w||_1 / B (or the unclipped
    max|w| / (2^(M-1) - 1) if larger). The greedy pass corrects rounding errors itself, so a coarse grid costs it
    little, while a finer scale leaves it a budget far below the channel's L1 norm, which the greedy pass spends
    on the first inputs (benchmarks/results/ptq.md, ablation: AXE as published, with the max-scale).
    """
    from a2qflow.training.init import choose_scales

    qmax = 2.0 ** (bits - 1) - 1
    if method == "max":  # the quantizer's own max-scale, AXE as published (the benchmark's ablation)
        return (w.abs().amax(1, keepdim=True) / qmax).clamp(min=1e-12)
    if method == "rtn":
        return choose_scales(w, float(max(budget, 1)), bits, zero_center=False)[0]
    fit = w.abs().sum(1, keepdim=True) / max(budget, 1)
    return torch.maximum(w.abs().amax(1, keepdim=True) / qmax, fit).clamp(min=1e-12)


def quantize_one(name: str, spec: LayerSpec, net: nn.Module, twin: nn.Module, x: torch.Tensor, method: str,
                 gen: torch.Generator, paper: bool = False) -> dict:
    """Quantize layer `name` of `net` by `method`, plant its integers, check them; returns the layer's record.

    `paper`: AXE as published (max-scale, untuned lambda, undamped GPFQ), for the benchmark's ablation.
    """
    from a2qflow.training.export import capture_inputs, layer_integers

    layer, flt = getattr(net, name), getattr(twin, name)
    qin = input_of(net, layer, x)
    w = flt.weight.detach().to(torch.float64).reshape(flt.weight.shape[0], -1)
    zc = spec.weight_quant == "a2q+"
    T, B = budget_of(spec)
    xq_all = layer_rows(layer, qin, None) if zc or method != "rtn" else None
    if zc:  # A2Q+ drops each channel's mean: quantize w - mean, move mean * E[sum of the inputs] into the bias
        mean = w.mean(1, keepdim=True)
        w = w - mean
        with torch.no_grad():
            layer.bias += (mean.squeeze(1) * xq_all.sum(1).mean()).to(layer.bias.dtype)
    s = layer_scales("max" if paper and method != "rtn" else method, w, B, spec.weight_bits)
    xq = xf = None
    if method != "rtn":
        idx = _row_index(len(xq_all), gen)
        xq = xq_all if idx is None else xq_all[idx]
        if method == "axe-gpfq":
            xf = layer_rows(flt, capture_inputs(twin, {name: flt}, x)[name], idx)
    q = quantize_layer(method, w, s, B, spec.weight_bits, xf, xq, paper)
    q = zero_sum(q, w / s) if zc else q
    l1 = l1_norms(q.numpy().astype(np.int64))
    if l1.max(initial=0) > T:  # by construction impossible: the exact integer check the audit repeats on the file
        raise A2QFlowError(f"quantize: layer {name}: ||q||_1 = {l1.max()} exceeds the budget {T:.4g}; please report")
    plant_integers(layer, q, s, T, zc)
    got = layer_integers(name, layer, input_of(net, layer, x[:2])).q.reshape(q.shape)
    mism = int((got != q.numpy().astype(np.int64)).sum())
    if mism:
        raise A2QFlowError(f"quantize: layer {name}: {mism} planted integers did not survive Brevitas' quantizer; "
                           "please report this")
    return {"budget": T, "integer_budget": B, "l1_max": int(l1.max(initial=0)),
            "zero_fraction": float((q == 0).double().mean()), "rows": 0 if xq is None else int(len(xq))}


def quantize_float_model(float_model: nn.Module, calibration, *, method: str, acc_bits: int = 16,
                         weight_bits: int = 4, act_bits: int = 4, input_bits: int | None = None,
                         input_signed: bool = False, weight_quant: str = "a2q", seed: int = 0, samples: int = 256,
                         input_shape: tuple[int, ...] | None = None, specs: list[LayerSpec] | None = None,
                         name: str | None = None, progress: bool = False, paper_axe: bool = False) -> PTQResult:
    """The whole PTQ (module docstring); `a2qflow.quantize` documents the arguments. `float_model` is untouched.

    `specs` (a config's resolved layer specs, training.ptq_job) replace acc_bits / weight_bits / act_bits /
    input_bits / input_signed / weight_quant when given; `name` names the model in errors (default: its class);
    `paper_axe` runs AXE as published (training.axe.quantize_layer), for the benchmark's ablation.
    """
    from a2qflow.training.models import build_model
    from a2qflow.training.ptq_model import copy_into_twin, describe

    if method not in METHODS:
        raise A2QFlowError(f"quantize: method {method!r} is not one of {', '.join(METHODS)}")
    t0 = time.perf_counter()
    if not isinstance(calibration, str):
        calibration = torch.as_tensor(calibration, dtype=torch.float32)
        input_shape = input_shape or tuple(calibration.shape[1:])
    fm = describe(float_model, input_shape)
    if specs is None:
        specs = layer_specs(fm.cfg, weight_bits, act_bits, input_bits, input_signed, acc_bits, weight_quant)
    input_signed = specs[0].input_signed
    check_specs(specs)
    torch.manual_seed(seed)
    twin = build_model(fm.cfg, specs, fm.image_shape, fm.num_classes, float_twin=True).eval()
    copy_into_twin(fm, twin)
    x, kind = _calibration_set(twin, fm, calibration, samples, seed, input_signed, progress,
                               name or type(float_model).__name__)
    times = {"calibration_set": time.perf_counter() - t0}
    net = _quantized_twin(fm, specs, twin)
    gen = torch.Generator().manual_seed(seed)
    layers, times["activations"], times["weights"] = {}, 0.0, 0.0
    for i, spec in enumerate(specs):
        t1 = time.perf_counter()
        act = net.input_quant if i == 0 else getattr(net, f"{specs[i - 1].name}_relu")
        calibrate_activation(net, act, getattr(net, spec.name), x, CALIBRATION_BATCHES, 64, seed + i)
        t2 = time.perf_counter()
        layers[spec.name] = quantize_one(spec.name, spec, net, twin, x, method, gen, paper_axe)
        times["activations"] += t2 - t1
        times["weights"] += time.perf_counter() - t2
    return PTQResult(net.eval(), specs, fm.cfg, fm.image_shape, method, kind, layers, times)


def _calibration_set(twin: nn.Module, fm, calibration, samples: int, seed: int, signed: bool,
                     progress: bool, model_name: str) -> tuple[torch.Tensor, str]:
    """The calibration inputs in the twin's input shape, and "data" or "zero-shot"."""
    from a2qflow.training.models import model_input_shape

    shape = model_input_shape(fm.cfg, fm.image_shape)
    if isinstance(calibration, str):
        if calibration != "zero-shot":
            raise A2QFlowError(f"quantize: calibration {calibration!r}: pass a tensor of inputs or \"zero-shot\"")
        from a2qflow.training.zeroshot import synthesize

        return synthesize(twin, shape, samples=samples, seed=seed, signed=signed, progress=progress,
                          name=model_name), "zero-shot"
    x = calibration
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != int(np.prod(shape)):
        raise A2QFlowError(f"quantize: calibration inputs of shape {tuple(x.shape)} do not fit the model's input "
                           f"{shape} (batch first)")
    return x.reshape(len(x), *shape), "data"


def _quantized_twin(fm, specs: list[LayerSpec], twin: nn.Module) -> nn.Module:
    """Step 1: the Brevitas A2Q model of the twin's config, loaded with its weights, budget-aware initialised."""
    from a2qflow.training.init import init_model
    from a2qflow.training.models import build_model
    from a2qflow.training.recipe import load_twin_weights

    net = build_model(fm.cfg, specs, fm.image_shape, fm.num_classes)
    load_twin_weights(net, twin.state_dict())
    init_model(net, specs, budget_aware=True)
    return net
