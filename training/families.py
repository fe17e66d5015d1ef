"""The model families FPGA users bring beyond chains: a small ResNet, a small MobileNet, and a 1-D CNN.

Each is a module class with stable, flat attribute names (the flow addresses layers as `getattr(net, name)`:
budget-aware init, export, per-layer overrides), built either quantized (Brevitas A2Q / A2Q+ MAC layers, unsigned
QuantReLU activations) or as its float twin (the same names with plain torch layers), so the float-twin recipe
loads the twin's weights by name.

ResNet (He et al. 2016, the A2Q paper's ResNet family, shrunk for an FPGA):
  input_quant -> stem (3x3, stride stem_stride) -> stem_bn -> stem_relu [-> stem_pool]
  -> per stage i: [stage{i} (3x3, stride 2) -> _bn -> _relu, for i > 0]
                  then `blocks` residual blocks k: block{k}_conv0 -> _bn0 -> _relu0 -> block{k}_conv1 -> _bn1,
                  both the main branch and the skip requantized by ONE shared block{k}_add_quant (a signed
                  QuantIdentity, so both branches share one scale and the add is an integer add), `+`,
                  block{k}_relu
  -> gap (AdaptiveAvgPool2d(1)) -> gap_quant (unsigned QuantIdentity), or gap (TruncAvgPool2d) -> flatten -> fc
MobileNet (Howard et al. 2017, depthwise-separable blocks):
  input_quant -> stem (3x3) -> stem_bn -> stem_relu [-> stem_pool]
  -> per block j: dw{j} (3x3, groups = channels, stride 2 or 1) -> _bn -> _relu -> pw{j} (1x1) -> _bn -> _relu
  -> gap -> gap_quant -> flatten -> fc
Every activation quantizer takes the input bit width of the MAC layer it feeds (the next one in graph order);
the add quantizer has one bit more, signed, so the unsigned skip keeps its range next to the signed main branch.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from a2qflow.training.config import LayerSpec, ModelConfig, mac_layer_names
from a2qflow.training.quant import input_quant_module, relu_quant_module, weight_quant_kwargs


class Parts:
    """Builds one layer at a time, quantized or as the float twin, from the layer specs."""

    def __init__(self, specs: list[LayerSpec], float_twin: bool):
        self.by_name = {s.name: s for s in specs}
        self.order = [s.name for s in specs]
        self.float_twin = float_twin

    def next_bits(self, after: str | None) -> int:
        """Input bits of the MAC layer after `after` in graph order (the first layer's for None)."""
        i = 0 if after is None else self.order.index(after) + 1
        return self.by_name[self.order[i]].input_bits

    def conv(self, name: str, dims: int, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0,
             groups: int = 1) -> nn.Module:
        import brevitas.nn as qnn

        if self.float_twin:
            cls = nn.Conv1d if dims == 1 else nn.Conv2d
            return cls(c_in, c_out, k, stride=stride, padding=padding, groups=groups)
        cls = qnn.QuantConv1d if dims == 1 else qnn.QuantConv2d
        return cls(c_in, c_out, k, stride=stride, padding=padding, groups=groups, bias=True,
                   **weight_quant_kwargs(self.by_name[name]))

    def linear(self, name: str, k: int, c: int) -> nn.Module:
        import brevitas.nn as qnn

        if self.float_twin:
            return nn.Linear(k, c)
        return qnn.QuantLinear(k, c, bias=True, **weight_quant_kwargs(self.by_name[name]))

    def relu(self, bits: int) -> nn.Module:
        return nn.ReLU() if self.float_twin else relu_quant_module(bits)

    def input_quant(self) -> nn.Module:
        first = self.by_name[self.order[0]]
        return nn.Identity() if self.float_twin else input_quant_module(first.input_bits, first.input_signed,
                                                                          first.input_range)

    def requant(self, bits: int, signed: bool) -> nn.Module:
        """A QuantIdentity (return_quant_tensor=True) that puts a float or re-scaled tensor on a `bits` grid."""
        return nn.Identity() if self.float_twin else input_quant_module(bits, signed)


class _Stepped(nn.Module):
    """A module whose forward is a list of steps; each step is a callable on the running tensor."""

    steps: list[Callable]

    def forward(self, x):
        for step in self.steps:
            x = step(x)
        return x

    def _add(self, name: str, mod: nn.Module) -> None:
        setattr(self, name, mod)
        self.steps.append(mod)

    def _conv_bn_relu(self, p: Parts, name: str, c_in: int, c_out: int, k: int, stride: int = 1,
                      groups: int = 1) -> None:
        """name (a k x k conv, 'same' padding) -> name_bn -> name_relu (the next MAC layer's input bits)."""
        self._add(name, p.conv(name, 2, c_in, c_out, k, stride=stride, padding=k // 2, groups=groups))
        self.hw = tuple((v + 2 * (k // 2) - k) // stride + 1 for v in self.hw)  # torch's Conv2d output size
        self._add(f"{name}_bn", nn.BatchNorm2d(c_out))
        self._add(f"{name}_relu", p.relu(p.next_bits(name)))

    def _stem(self, p: Parts, m: ModelConfig, image_shape: tuple[int, int, int]) -> None:
        self.steps = []
        self.hw = tuple(image_shape[1:])  # (H, W) of the running feature map (TruncAvgPool2d needs its window)
        self._add("input_quant", p.input_quant())
        self._conv_bn_relu(p, "stem", image_shape[0], m.channels[0], 3, stride=m.stem_stride)
        if m.stem_pool:
            self._add("stem_pool", nn.MaxPool2d(2))
            self.hw = tuple(v // 2 for v in self.hw)

    def _head(self, p: Parts, m: ModelConfig, c: int, num_classes: int) -> None:
        """Global average pooling to the classifier's input bits, the classifier fc.

        gap "avg": AdaptiveAvgPool2d(1), then an unsigned QuantIdentity (gap_quant) requantizes the mean.
        gap "trunc": Brevitas' TruncAvgPool2d over the whole map with the classifier's input bits: the window sum
        keeps its most significant bits (an integer shift, no requantizer; float twin: AvgPool2d)."""
        bits = p.by_name["fc"].input_bits
        if m.gap == "trunc":
            import brevitas.nn as qnn

            self._add("gap", nn.AvgPool2d(self.hw) if p.float_twin else
                      qnn.TruncAvgPool2d(kernel_size=self.hw, bit_width=bits, return_quant_tensor=True))
        else:
            self._add("gap", nn.AdaptiveAvgPool2d(1))
            self._add("gap_quant", p.requant(bits, False))
        self._add("flatten", nn.Flatten())
        self._add("fc", p.linear("fc", c, num_classes))


class ResidualBlock:
    """The forward of one residual block (a step of the parent's forward, not a module): its layers live on the
    parent so their names stay flat (block{k}_conv0, ...)."""

    def __init__(self, parent: nn.Module, k: int):
        self.names = [f"block{k}_{s}" for s in ("conv0", "bn0", "relu0", "conv1", "bn1", "add_quant", "relu")]
        self.parent = parent

    def __call__(self, x):
        conv0, bn0, relu0, conv1, bn1, add_quant, relu = (getattr(self.parent, n) for n in self.names)
        main = bn1(conv1(relu0(bn0(conv0(x)))))
        return relu(add_quant(main) + add_quant(x))  # ONE quantizer on both branches: one scale, integer add


class ResNet(_Stepped):
    """A small ResNet; see the module docstring for its layers and names."""

    def __init__(self, m: ModelConfig, p: Parts, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self._stem(p, m, image_shape)
        c, block = m.channels[0], 0
        for i, width in enumerate(m.channels):
            if i > 0:
                self._conv_bn_relu(p, f"stage{i}", c, width, 3, stride=2 if m.downsample else 1)
                c = width
            for _ in range(m.blocks):
                n = f"block{block}"
                setattr(self, f"{n}_conv0", p.conv(f"{n}_conv0", 2, c, c, 3, padding=1))
                setattr(self, f"{n}_bn0", nn.BatchNorm2d(c))
                setattr(self, f"{n}_relu0", p.relu(p.next_bits(f"{n}_conv0")))
                setattr(self, f"{n}_conv1", p.conv(f"{n}_conv1", 2, c, c, 3, padding=1))
                setattr(self, f"{n}_bn1", nn.BatchNorm2d(c))
                setattr(self, f"{n}_add_quant", p.requant(p.next_bits(f"{n}_conv1") + 1, True))
                setattr(self, f"{n}_relu", p.relu(p.next_bits(f"{n}_conv1")))
                self.steps.append(ResidualBlock(self, block))
                block += 1
        self._head(p, m, c, num_classes)


class MobileNet(_Stepped):
    """A small MobileNet of depthwise-separable blocks; see the module docstring for its layers and names."""

    def __init__(self, m: ModelConfig, p: Parts, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self._stem(p, m, image_shape)
        c = m.channels[0]
        for j, width in enumerate(m.channels[1:]):
            self._conv_bn_relu(p, f"dw{j}", c, c, 3, stride=2 if m.downsample else 1, groups=c)
            self._conv_bn_relu(p, f"pw{j}", c, width, 1)
            c = width
        self._head(p, m, c, num_classes)


def build_family(m: ModelConfig, specs: list[LayerSpec], image_shape: tuple[int, int, int], num_classes: int,
                 float_twin: bool) -> nn.Module:
    """The resnet / mobilenet of `m` (quantized, or its float twin); checks the names match the layer specs."""
    p = Parts(specs, float_twin)
    net = (ResNet if m.kind == "resnet" else MobileNet)(m, p, image_shape, num_classes)
    names = mac_layer_names(m)
    if names != p.order or any(not hasattr(net, n) for n in names):
        raise AssertionError("layer specs and model structure disagree")
    return net
