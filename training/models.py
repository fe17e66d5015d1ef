"""Models built from config: a chain the hardware compiler can lower, named so every stage agrees.

MLP:  input_quant -> fc0 -> fc0_relu -> fc1 -> ... -> fcN (float logits)
CNN:  input_quant -> conv0 [-> conv0_bn] -> conv0_relu [-> pool0] -> ... -> flatten -> fc0 -> ... -> fcN
CNN1D: the CNN with QuantConv1d / BatchNorm1d / MaxPool1d over a (C*H, W) input: each image row is one channel,
      a signal over the W columns (mnist5k: 28 channels x 28 steps, digits: 8 x 8)
ResNet / MobileNet: module classes in training.families (residual blocks + global average pooling,
      depthwise-separable blocks + global average pooling)
Each `*_relu` is an unsigned QuantReLU whose bit width is the next MAC layer's N; the input quantizer gives the
first layer its N. Sizes come from the config only, so MNIST / CIFAR-10 sized CNNs need no code change.
The float twin has the same names and shapes with plain torch layers (no quantizer at all).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from a2qflow.training.config import DATASET_CLASSES, DATASET_SHAPES, LayerSpec, ModelConfig, TrainingJob
from a2qflow.training.quant import input_quant_module, relu_quant_module, weight_quant_kwargs


def model_input_shape(model: ModelConfig, image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Input shape without the batch dimension: (C*H*W,) for the MLP, (C*H, W) for the 1-D CNN (rows as
    channels), (C, H, W) for the 2-D models."""
    c, h, w = image_shape
    if model.kind == "mlp":
        return (c * h * w,)
    if model.kind == "cnn1d":
        return (c * h, w)
    return tuple(image_shape)


def _add_conv_blocks(mods: OrderedDict, model: ModelConfig, image_shape: tuple[int, int, int],
                     by_name: dict[str, LayerSpec], float_twin: bool, act_before) -> int:
    """Append a cnn / cnn1d's conv blocks (conv, batch norm, ReLU quantizer, pool) to mods; returns the flattened
    width the first dense layer reads."""
    import brevitas.nn as qnn

    one_d = model.kind == "cnn1d"
    shape = list(model_input_shape(model, image_shape))
    c_in, k = shape[0], model.kernel_size
    for i, c in enumerate(model.conv_channels):
        name = f"conv{i}"
        if float_twin:
            mods[name] = (nn.Conv1d if one_d else nn.Conv2d)(c_in, c, k, padding=k // 2)
        else:
            mods[name] = (qnn.QuantConv1d if one_d else qnn.QuantConv2d)(
                c_in, c, k, padding=k // 2, bias=True, **weight_quant_kwargs(by_name[name]))
        if model.batch_norm:
            mods[f"{name}_bn"] = nn.BatchNorm1d(c) if one_d else nn.BatchNorm2d(c)
        mods[f"{name}_relu"] = act_before(i + 1)
        if model.pool:
            mods[f"pool{i}"] = nn.MaxPool1d(2) if one_d else nn.MaxPool2d(2)
            shape[1:] = [v // 2 for v in shape[1:]]
        c_in = c
    mods["flatten"] = nn.Flatten()
    return c_in * math.prod(shape[1:])


def build_model(model: ModelConfig, specs: list[LayerSpec], image_shape: tuple[int, int, int],
                num_classes: int, float_twin: bool = False) -> nn.Module:
    """The quantized network (or its float twin) with the flow's layer names (mac_layer_names) as attributes:
    an nn.Sequential for mlp / cnn / cnn1d, a module class for resnet / mobilenet (training.families)."""
    import brevitas.nn as qnn

    if model.kind in ("resnet", "mobilenet"):
        from a2qflow.training.families import build_family

        return build_family(model, specs, image_shape, num_classes, float_twin)

    by_name = {s.name: s for s in specs}
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    mods["input_quant"] = nn.Identity() if float_twin else input_quant_module(
        specs[0].input_bits, specs[0].input_signed, specs[0].input_range)
    order = [s.name for s in specs]

    def act_before(idx: int) -> nn.Module:
        return nn.ReLU() if float_twin else relu_quant_module(by_name[order[idx]].input_bits)

    def dense(name: str, k: int, c: int) -> nn.Module:
        return nn.Linear(k, c) if float_twin else qnn.QuantLinear(k, c, bias=True, **weight_quant_kwargs(by_name[name]))

    idx = 0
    if model.kind in ("cnn", "cnn1d"):
        k_in = _add_conv_blocks(mods, model, image_shape, by_name, float_twin, act_before)
        idx = len(model.conv_channels)
    else:
        k_in = int(image_shape[0] * image_shape[1] * image_shape[2])
    widths = list(model.hidden) + [num_classes]
    for i, width in enumerate(widths):
        name = f"fc{i}"
        mods[name] = dense(name, k_in, width)
        idx += 1
        if i < len(widths) - 1:
            mods[f"{name}_relu"] = act_before(idx)
        k_in = width
    assert idx == len(specs), "layer specs and model structure disagree"
    return nn.Sequential(mods)


@dataclass(frozen=True)
class LayerShape:
    """One MAC layer as the built model has it (what sweep / search / the compiler's plan reason about)."""

    name: str
    op: str                   # dense | conv | depthwise | conv1d
    in_shape: tuple[int, ...]  # without the batch dimension
    out_shape: tuple[int, ...]
    K: int                    # dot-product length per output channel: IC / groups * prod(kernel)
    channels: int             # output channels (C)
    groups: int

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference: C * K per output position."""
        return self.K * math.prod(self.out_shape)


class _TooSmall(Exception):
    """A stride-2 layer met a 1-pixel input (raised from a forward hook, turned into an A2QFlowError)."""


def layer_shapes(model: ModelConfig | TrainingJob, image_shape: tuple[int, int, int] | None = None,
                 num_classes: int | None = None) -> dict[str, LayerShape]:
    """Every MAC layer's shapes, K and C, in graph order, measured by building the float twin and running one
    zero input through it (so they can never drift from build_model's arithmetic).

    The one source of model shapes for everyone who reasons about a config before training (the config checks,
    the sweep, the search): `layer_shapes(cfg)` takes a whole config (a TrainingJob or FlowConfig) and its
    dataset's input shape and classes; `layer_shapes(model, image_shape, num_classes)` a model section alone.

    Raises A2QFlowError when the config's sizes do not fit the input (e.g. too many stride-2 stages)."""
    if isinstance(model, TrainingJob):
        image_shape, num_classes = DATASET_SHAPES[model.data.dataset], DATASET_CLASSES[model.data.dataset]
        model = model.model
    import warnings

    import torch

    from a2qflow.hw.errors import A2QFlowError
    from a2qflow.training.config import QuantConfig, resolve_layer_specs

    specs = resolve_layer_specs(QuantConfig(), model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a zero-sized layer warns; the forward below names it
        net = build_model(model, specs, tuple(image_shape), num_classes, float_twin=True).eval()
    seen: dict[str, LayerShape] = {}

    def hook(name: str):
        def run(mod, args, out):
            groups = int(getattr(mod, "groups", 1))
            op = ("dense" if isinstance(mod, nn.Linear) else "conv1d" if isinstance(mod, nn.Conv1d)
                  else "depthwise" if groups > 1 and groups == mod.in_channels == mod.out_channels else "conv")
            stride = getattr(mod, "stride", (1,))
            if max(stride) > 1 and min(args[0].shape[2:]) == 1:
                raise _TooSmall(name)
            seen[name] = LayerShape(name, op, tuple(args[0].shape[1:]), tuple(out.shape[1:]),
                                    int(mod.weight[0].numel()), int(mod.weight.shape[0]), groups)
        return run

    handles = [getattr(net, s.name).register_forward_hook(hook(s.name)) for s in specs]
    try:
        with torch.no_grad():
            net(torch.zeros(1, *model_input_shape(model, tuple(image_shape))))
    except _TooSmall as e:
        raise A2QFlowError(f"model: the {model.kind}'s layer {e} has stride 2 but gets a 1-pixel-wide input from "
                           f"the {'x'.join(map(str, image_shape[1:]))} image; use fewer model.channels entries or "
                           f"model.downsample: false") from None
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise A2QFlowError(f"model: the {model.kind}'s layers do not fit the {'x'.join(map(str, image_shape[1:]))} "
                           f"image ({first[:120]}); use fewer stages / pools or stride-1 layers") from None
    finally:
        for h in handles:
            h.remove()
    return {s.name: seen[s.name] for s in specs}
