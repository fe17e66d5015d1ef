"""Brevitas models of shapes a2qflow's trainer never builds, for the "bring your own model" tests.

Each builder returns (model, example inputs, {layer module path: the P its quantizer was built for}). The models
are untrained but not trivial: weights and BatchNorm statistics are random (seeded), and a few calibration
batches set the activation scales, so thresholds, negative BN scales and clipping all occur.
"""

from __future__ import annotations

import torch
from torch import nn


def _quant_kwargs(kind: str, bits: int = 4, P: int | None = None) -> dict:
    from brevitas.quant import (
        Int8AccumulatorAwareWeightQuant,
        Int8AccumulatorAwareZeroCenterWeightQuant,
        Int8WeightPerChannelFloat,
        Int8WeightPerTensorFloat,
    )

    if kind == "a2q":
        return {"weight_quant": Int8AccumulatorAwareWeightQuant, "weight_bit_width": bits,
                "weight_accumulator_bit_width": P}
    if kind == "a2q+":
        return {"weight_quant": Int8AccumulatorAwareZeroCenterWeightQuant, "weight_bit_width": bits,
                "weight_accumulator_bit_width": P}
    if kind == "per_tensor":
        return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": bits}
    return {"weight_quant": Int8WeightPerChannelFloat, "weight_bit_width": bits}


def _act(bits: int, signed: bool = False):
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat

    if signed:
        return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)
    return qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)


def _randomize_bn(bn: nn.modules.batchnorm._BatchNorm, g: torch.Generator) -> None:
    c = bn.num_features
    with torch.no_grad():
        bn.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=g) * torch.where(
            torch.rand(c, generator=g) < 0.25, -1.0, 1.0))  # a few decreasing channels
        bn.bias.copy_(torch.randn(c, generator=g) * 0.2)
        bn.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
        bn.running_var.copy_(torch.empty(c).uniform_(0.5, 2.0, generator=g))


def _calibrate(net: nn.Module, x: torch.Tensor) -> nn.Module:
    """A few training-mode passes so the activation quantizers' scales see the data, then eval."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.eval()  # keep the random statistics
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(x)
    net.eval()
    return net


class SignedMLP(nn.Module):
    """Signed 6-bit input; A2Q P=12; A2Q+ P=9 with BatchNorm; a per-tensor 8-bit last layer; nested modules."""

    def __init__(self):
        import brevitas.nn as qnn

        super().__init__()
        self.inp = _act(6, signed=True)
        self.body = nn.ModuleDict({
            "fc_a": qnn.QuantLinear(20, 16, bias=True, **_quant_kwargs("a2q", 4, 12)),
            "act_a": _act(4),
            "fc_b": qnn.QuantLinear(16, 12, bias=False, **_quant_kwargs("a2q+", 4, 9)),
        })
        self.bn = nn.BatchNorm1d(12)
        self.act_b = _act(4)
        self.head = nn.Sequential(qnn.QuantLinear(12, 5, bias=True, **_quant_kwargs("per_tensor", 8)))

    def forward(self, x):
        x = self.body["act_a"](self.body["fc_a"](self.inp(x)))
        return self.head(self.act_b(self.bn(self.body["fc_b"](x))))


class StridedCNN(nn.Module):
    """3x10x10 unsigned input; k3 padded conv A2Q P=10; stride-2 padded conv A2Q P=11 with BatchNorm; a
    per-channel linear layer."""

    def __init__(self):
        import brevitas.nn as qnn
        from brevitas.quant import Uint8ActPerTensorFloat

        super().__init__()
        self.features = nn.Sequential(
            qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True),
            qnn.QuantConv2d(3, 6, 3, padding=1, bias=True, **_quant_kwargs("a2q", 4, 10)),
            _act(4),
            qnn.QuantConv2d(6, 8, 3, stride=2, padding=1, bias=False, **_quant_kwargs("a2q", 4, 11)),
            nn.BatchNorm2d(8),
            _act(3),
        )
        self.classifier = nn.Sequential(nn.Flatten(), qnn.QuantLinear(8 * 5 * 5, 4, bias=True,
                                                                      **_quant_kwargs("per_channel", 4)))

    def forward(self, x):
        return self.classifier(self.features(x))


def build(kind: str, seed: int = 0, n: int = 64) -> tuple[nn.Module, torch.Tensor, dict[str, int]]:
    """(model in eval mode, n example inputs, {module path: target P}) for kind 'mlp' or 'cnn'."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if kind == "mlp":
        net, x = SignedMLP(), torch.randn(n, 20, generator=g)
        _randomize_bn(net.bn, g)
        targets = {"body.fc_a": 12, "body.fc_b": 9}
    else:
        net, x = StridedCNN(), torch.rand(n, 3, 10, 10, generator=g)
        _randomize_bn(net.features[4], g)
        targets = {"features.1": 10, "features.3": 11}
    return _calibrate(net, x), x, targets
