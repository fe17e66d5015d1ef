"""Brevitas models of the families FPGA users bring, untrained but calibrated, for the compiler tests.

Each builder returns (model in eval mode, float inputs). The shapes are tiny so export, compile, C-sim and
Verilator take seconds: a residual block with a shared requantizer and global average pooling (AdaptiveAvgPool2d
+ QuantIdentity, or TruncAvgPool2d), a depthwise-separable block with a Softmax tail, a 1-D CNN (QuantConv1d +
MaxPool1d), and a W2A2 MLP whose 2-bit input quantizer has a scale of about 1/3 (the input-rounding trap).
"""

from __future__ import annotations

import torch
from torch import nn


def _a2q(bits: int = 4, P: int = 14) -> dict:
    from brevitas.quant import Int8AccumulatorAwareWeightQuant

    return {"weight_quant": Int8AccumulatorAwareWeightQuant, "weight_bit_width": bits,
            "weight_accumulator_bit_width": P}


def _relu(bits: int = 4):
    import brevitas.nn as qnn

    return qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)


def _uint_input(bits: int = 4):
    import brevitas.nn as qnn
    from brevitas.quant import Uint8ActPerTensorFloat

    return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)


class ResidualNet(nn.Module):
    """stem conv -> [conv + BN] + skip, both through one shared signed QuantIdentity -> add -> QuantReLU -> GAP ->
    linear. `trunc`: TruncAvgPool2d instead of AdaptiveAvgPool2d + QuantIdentity."""

    def __init__(self, trunc: bool = False, hw: int = 8):
        import brevitas.nn as qnn
        from brevitas.quant import Int8ActPerTensorFloat

        super().__init__()
        self.inp = _uint_input()
        self.stem = qnn.QuantConv2d(1, 4, 3, padding=1, bias=False, **_a2q())
        self.stem_bn, self.stem_act = nn.BatchNorm2d(4), _relu()
        self.conv = qnn.QuantConv2d(4, 4, 3, padding=1, bias=False, **_a2q())
        self.bn = nn.BatchNorm2d(4)
        self.shared = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=5, return_quant_tensor=True)
        self.act = _relu()
        self.trunc = trunc
        self.pool = qnn.TruncAvgPool2d(kernel_size=hw) if trunc else nn.AdaptiveAvgPool2d(1)
        self.pool_quant = _uint_input()
        self.fc = qnn.QuantLinear(4, 10, bias=True, **_a2q())

    def forward(self, x):
        x = self.stem_act(self.stem_bn(self.stem(self.inp(x))))
        y = self.act(self.shared(x) + self.shared(self.bn(self.conv(x))))
        y = self.pool(y) if self.trunc else self.pool_quant(self.pool(y))
        return self.fc(torch.flatten(y, 1))


class DepthwiseNet(nn.Module):
    """conv -> depthwise 3x3 -> pointwise 1x1 -> TruncAvgPool2d (global) -> linear -> Softmax."""

    def __init__(self, hw: int = 8):
        import brevitas.nn as qnn

        super().__init__()
        self.inp = _uint_input()
        self.stem, self.stem_bn, self.stem_act = qnn.QuantConv2d(1, 4, 3, padding=1, bias=False, **_a2q()), \
            nn.BatchNorm2d(4), _relu()
        self.dw = qnn.QuantConv2d(4, 4, 3, padding=1, groups=4, bias=False, **_a2q())
        self.dw_bn, self.dw_act = nn.BatchNorm2d(4), _relu()
        self.pw, self.pw_bn, self.pw_act = qnn.QuantConv2d(4, 8, 1, bias=False, **_a2q()), nn.BatchNorm2d(8), _relu()
        self.pool = qnn.TruncAvgPool2d(kernel_size=hw)
        self.fc = qnn.QuantLinear(8, 10, bias=True, **_a2q())
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.stem_act(self.stem_bn(self.stem(self.inp(x))))
        x = self.pw_act(self.pw_bn(self.pw(self.dw_act(self.dw_bn(self.dw(x))))))
        return self.softmax(self.fc(torch.flatten(self.pool(x), 1)))


class Conv1dNet(nn.Module):
    """Signed 4-bit input (8 channels x 12 steps) -> QuantConv1d k3 pad 1 + BN -> MaxPool1d -> QuantConv1d k3 ->
    linear."""

    def __init__(self):
        import brevitas.nn as qnn
        from brevitas.quant import Int8ActPerTensorFloat

        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.c0, self.bn0, self.act0 = qnn.QuantConv1d(8, 6, 3, padding=1, bias=True, **_a2q()), \
            nn.BatchNorm1d(6), _relu()
        self.pool = nn.MaxPool1d(2)
        self.c1, self.act1 = qnn.QuantConv1d(6, 6, 3, bias=False, **_a2q()), _relu()
        self.fc = qnn.QuantLinear(6 * 4, 10, bias=True, **_a2q())

    def forward(self, x):
        x = self.pool(self.act0(self.bn0(self.c0(self.inp(x)))))
        return self.fc(torch.flatten(self.act1(self.c1(x)), 1))


class W2A2MLP(nn.Module):
    """A W2A2 MLP with a 2-bit unsigned input quantizer: its scale (about 1/3) puts inputs such as 0.5 on a float32
    rounding boundary, where float64 arithmetic gives a different integer than Brevitas."""

    def __init__(self, k: int = 64):
        import brevitas.nn as qnn

        super().__init__()
        self.inp = _uint_input(2)
        self.fc0 = qnn.QuantLinear(k, 32, bias=True, **_a2q(2, 12))
        self.act = _relu(2)
        self.fc1 = qnn.QuantLinear(32, 10, bias=True, **_a2q(2, 12))

    def forward(self, x):
        return self.fc1(self.act(self.fc0(self.inp(x))))


def _calibrate(net: nn.Module, x: torch.Tensor, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.empty(m.num_features).uniform_(-0.2, 0.2, generator=g))
                m.running_var.copy_(torch.empty(m.num_features).uniform_(0.5, 2.0, generator=g))
                m.weight.copy_(torch.empty(m.num_features).uniform_(0.5, 1.5, generator=g))
            m.eval()
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(x)
    return net.eval()


def build(kind: str, n: int = 64, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """(calibrated model in eval mode, n float inputs) for residual, residual_trunc, depthwise, conv1d, w2a2."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    if kind in ("residual", "residual_trunc"):
        net, x = ResidualNet(trunc=kind == "residual_trunc"), torch.rand(n, 1, 8, 8, generator=g)
    elif kind == "depthwise":
        net, x = DepthwiseNet(), torch.rand(n, 1, 8, 8, generator=g)
    elif kind == "conv1d":
        net, x = Conv1dNet(), torch.rand(n, 8, 12, generator=g) * 2 - 1
    elif kind == "w2a2":
        net = W2A2MLP()
        x = torch.randint(0, 5, (n, 64), generator=g).float() / 4  # 0, .25, .5, .75, 1: 0.5 sits on a boundary
    else:
        raise ValueError(kind)
    return _calibrate(net, x, seed), x


KINDS = ("residual", "residual_trunc", "depthwise", "conv1d", "w2a2")
