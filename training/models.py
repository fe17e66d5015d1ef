"""Models built from config: a chain the hardware compiler can lower, named so every stage agrees.

MLP:  input_quant -> fc0 -> fc0_relu -> fc1 -> ... -> fcN (float logits)
CNN:  input_quant -> conv0 [-> conv0_bn] -> conv0_relu [-> pool0] -> ... -> flatten -> fc0 -> ... -> fcN
Each `*_relu` is an unsigned QuantReLU whose bit width is the next MAC layer's N; the input quantizer gives the
first layer its N. Sizes come from the config only, so MNIST / CIFAR-10 sized CNNs need no code change.
The float twin has the same names and shapes with plain torch layers (no quantizer at all).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from a2qflow.training.config import ModelConfig
from a2qflow.training.quant import LayerSpec, input_quant_module, relu_quant_module, weight_quant_kwargs


def model_input_shape(model: ModelConfig, image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Input shape without the batch dimension: (C*H*W,) for the MLP, (C, H, W) for the CNN."""
    if model.kind == "mlp":
        c, h, w = image_shape
        return (c * h * w,)
    return tuple(image_shape)


def build_model(model: ModelConfig, specs: list[LayerSpec], image_shape: tuple[int, int, int],
                num_classes: int, float_twin: bool = False) -> nn.Sequential:
    """The quantized network (or its float twin) as an nn.Sequential with the flow's layer names."""
    import brevitas.nn as qnn

    by_name = {s.name: s for s in specs}
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    mods["input_quant"] = nn.Identity() if float_twin else input_quant_module(specs[0].input_bits,
                                                                             specs[0].input_signed)
    order = [s.name for s in specs]

    def act_before(idx: int) -> nn.Module:
        return nn.ReLU() if float_twin else relu_quant_module(by_name[order[idx]].input_bits)

    def dense(name: str, k: int, c: int) -> nn.Module:
        return nn.Linear(k, c) if float_twin else qnn.QuantLinear(k, c, bias=True, **weight_quant_kwargs(by_name[name]))

    idx = 0
    if model.kind == "cnn":
        c_in, h, w = image_shape
        k = model.kernel_size
        for i, c in enumerate(model.conv_channels):
            name = f"conv{i}"
            mods[name] = (nn.Conv2d(c_in, c, k, padding=k // 2) if float_twin else
                          qnn.QuantConv2d(c_in, c, k, padding=k // 2, bias=True, **weight_quant_kwargs(by_name[name])))
            if model.batch_norm:
                mods[f"{name}_bn"] = nn.BatchNorm2d(c)
            idx += 1
            mods[f"{name}_relu"] = act_before(idx)
            if model.pool:
                mods[f"pool{i}"] = nn.MaxPool2d(2)
                h, w = h // 2, w // 2
            c_in = c
        mods["flatten"] = nn.Flatten()
        k_in = c_in * h * w
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

