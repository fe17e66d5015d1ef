"""Read a user's float torch model as an a2qflow model config, and copy its weights into the config's float twin.

PTQ reuses the path every trained a2qflow model takes (training.recipe): the float twin
(training.models.build_model(..., float_twin=True)) holds the float weights, `recipe.load_twin_weights` copies them
into the quantized Brevitas model of the same config. A user's model therefore has to be one the twin can express:

  MLP: [Flatten] (Linear ReLU)* Linear
  CNN: (Conv2d [BatchNorm2d] ReLU [MaxPool2d(2)])+ Flatten (Linear ReLU)* Linear

in any nn.Module tree (only the leaf modules and their order matter; nn.Identity / nn.Dropout are skipped), convs
square, stride 1, 'same' padding, BatchNorm and pooling on every conv block or on none. Anything else is an
A2QFlowError naming the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import ModelConfig

SKIPPED = (nn.Identity, nn.Dropout)
SUPPORTED = "Linear, Conv2d, BatchNorm2d, ReLU, MaxPool2d(2), Flatten (Identity / Dropout are skipped)"


@dataclass
class FloatModel:
    """What a float model is in a2qflow's terms."""

    cfg: ModelConfig
    image_shape: tuple[int, int, int]
    num_classes: int
    params: list[tuple[str, nn.Module]]  # Linear / Conv2d / BatchNorm2d in order (paired with the twin's)


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules in registration order (the order nn.Sequential runs them), skipping Identity / Dropout."""
    out = [(n or type(model).__name__, m) for n, m in model.named_modules() if not list(m.children())]
    return [(n, m) for n, m in out if not isinstance(m, SKIPPED)]


def _kind(path: str, m: nn.Module) -> str:
    """One token per leaf; an unsupported layer is the one-line error the user sees."""
    for cls, tok in ((nn.Linear, "L"), (nn.Conv2d, "C"), (nn.BatchNorm2d, "B"), (nn.ReLU, "R"),
                     (nn.MaxPool2d, "P"), (nn.Flatten, "F")):
        if type(m) is cls:
            return tok
    raise A2QFlowError(f"quantize: layer {path!r} ({type(m).__name__}) is not supported by post-training "
                       f"quantization; supported layers: {SUPPORTED}")


def _check_conv(path: str, m: nn.Conv2d, k: int | None) -> int:
    ks = m.kernel_size[0]
    ok = (m.kernel_size == (ks, ks) and m.stride == (1, 1) and m.dilation == (1, 1) and m.groups == 1
          and m.padding == (ks // 2, ks // 2) and ks % 2 == 1 and (k is None or ks == k))
    if not ok:
        raise A2QFlowError(f"quantize: layer {path!r} (Conv2d kernel {m.kernel_size}, stride {m.stride}, padding "
                           f"{m.padding}, groups {m.groups}): a2qflow's CNN needs one odd square kernel for every "
                           f"conv, stride 1, 'same' padding (k // 2), groups 1")
    return ks


def _check_pool(path: str, m: nn.MaxPool2d) -> None:
    if m.kernel_size not in (2, (2, 2)) or m.stride not in (2, (2, 2)) or m.padding not in (0, (0, 0)):
        raise A2QFlowError(f"quantize: layer {path!r} (MaxPool2d kernel {m.kernel_size}, stride {m.stride}): "
                           "a2qflow's CNN pools with MaxPool2d(2)")


def _conv_blocks(toks: list[str], lv: list[tuple[str, nn.Module]], i: int) -> tuple[int, list[int], int, list, list]:
    """Parse (Conv [BN] ReLU [Pool])* from position i; returns (next i, channels, kernel, bn flags, pool flags)."""
    chans, bns, pools, k = [], [], [], None
    while i < len(toks) and toks[i] == "C":
        path, conv = lv[i]
        k = _check_conv(path, conv, k)
        chans.append(conv.out_channels)
        i += 1
        bns.append(i < len(toks) and toks[i] == "B")
        i += bns[-1]
        if i >= len(toks) or toks[i] != "R":
            where = lv[i][0] if i < len(toks) else "the end of the model"
            raise A2QFlowError(f"quantize: expected a ReLU after conv {path!r}, found {where!r}; a2qflow's CNN "
                               "blocks are Conv2d [BatchNorm2d] ReLU [MaxPool2d(2)]")
        i += 1
        pools.append(i < len(toks) and toks[i] == "P")
        if pools[-1]:
            _check_pool(*lv[i])
        i += pools[-1]
    return i, chans, k or 3, bns, pools


def _dense(toks: list[str], lv: list[tuple[str, nn.Module]], i: int) -> list[int]:
    """Parse (Linear ReLU)* Linear from position i to the end; returns the output widths."""
    widths = []
    while i < len(toks):
        path, m = lv[i]
        if toks[i] != "L":
            raise A2QFlowError(f"quantize: layer {path!r} ({type(m).__name__}) is out of place: after the convs "
                               "a2qflow expects Flatten, then (Linear ReLU)* Linear")
        widths.append(m.out_features)
        i += 1
        last = i == len(toks)
        if not last and toks[i] != "R":
            raise A2QFlowError(f"quantize: layer {lv[i][0]!r} ({type(lv[i][1]).__name__}) follows Linear "
                               f"{path!r}; a2qflow expects a ReLU between Linear layers")
        i += 0 if last else 1
        if not last and i == len(toks):
            raise A2QFlowError(f"quantize: the model ends with a ReLU after {path!r}; a2qflow's last layer is a "
                               "Linear classifier (float logits)")
    if not widths:
        raise A2QFlowError("quantize: the model has no Linear layer; a2qflow's last layer is a Linear classifier")
    return widths


def _uniform(flags: list[bool], what: str, lv_convs: list[str]) -> bool:
    if any(flags) and not all(flags):
        bad = lv_convs[flags.index(not flags[0])]
        raise A2QFlowError(f"quantize: conv {bad!r}: {what} must follow every conv block or none")
    return bool(flags and flags[0])


def _image_shape(cfg: ModelConfig, first: nn.Module, flat_in: int, input_shape) -> tuple[int, int, int]:
    """(C, H, W) of the model input: given, or (MLP) 1 x 1 x K, or (CNN) the square image the classifier implies."""
    if input_shape is not None:
        shape = tuple(int(v) for v in input_shape)
        if cfg.kind == "mlp" and math.prod(shape) != first.in_features:
            raise A2QFlowError(f"quantize: inputs of shape {shape} ({math.prod(shape)} values) do not fit the first "
                               f"Linear layer ({first.in_features} inputs)")
        return shape if len(shape) == 3 else (1, 1, math.prod(shape))
    if cfg.kind == "mlp":
        return (1, 1, first.in_features)
    side = math.isqrt(flat_in // cfg.conv_channels[-1])
    side <<= len(cfg.conv_channels) if cfg.pool else 0
    return (first.in_channels, side, side)


def describe(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> FloatModel:
    """The ModelConfig, input shape and class count of a float model (see the module docstring for the forms).

    Args:
        model: the float torch model.
        input_shape: the model's input shape without the batch dimension, when known (e.g. (1, 28, 28)); else a
            CNN's input is taken to be the square image its classifier implies.
    """
    lv = leaves(model)
    toks = [_kind(p, m) for p, m in lv]
    i = 1 if toks[:1] == ["F"] else 0
    i, chans, k, bns, pools = _conv_blocks(toks, lv, i)
    convs = [p for p, m in lv if isinstance(m, nn.Conv2d)]
    if chans:
        if i >= len(toks) or toks[i] != "F":
            where = lv[i][0] if i < len(toks) else "the end of the model"
            raise A2QFlowError(f"quantize: expected Flatten after the conv blocks, found {where!r}")
        i += 1
    widths = _dense(toks, lv, i)
    cfg = ModelConfig(kind="cnn" if chans else "mlp", hidden=widths[:-1], conv_channels=chans or [8, 16],
                      kernel_size=k, batch_norm=_uniform(bns, "BatchNorm2d", convs),
                      pool=_uniform(pools, "MaxPool2d(2)", convs) if chans else True)
    first = lv[[t in "CL" for t in toks].index(True)][1]
    flat_in = next(m for m in dict(lv).values() if isinstance(m, nn.Linear)).in_features
    shape = _image_shape(cfg, first, flat_in, input_shape)
    params = [(p, m) for p, m in lv if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))]
    return FloatModel(cfg, shape, widths[-1], params)


def copy_into_twin(fm: FloatModel, twin: nn.Module) -> None:
    """Copy the user's weights (and BN statistics) into the twin, layer by layer in order; biases default to 0."""
    mine = [(n, m) for n, m in twin.named_children() if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))]
    for (path, src), (name, dst) in zip(fm.params, mine, strict=True):
        if src.weight is not None and src.weight.shape != dst.weight.shape:
            raise A2QFlowError(f"quantize: layer {path!r}: weight shape {tuple(src.weight.shape)} does not fit "
                               f"a2qflow's {name} {tuple(dst.weight.shape)} (is input_shape right?)")
        with torch.no_grad():
            dst.weight.copy_(src.weight if src.weight is not None else torch.ones_like(dst.weight))
            if getattr(src, "bias", None) is not None:
                dst.bias.copy_(src.bias)
            else:
                dst.bias.zero_()
            if isinstance(src, nn.BatchNorm2d):
                if src.running_mean is None:
                    raise A2QFlowError(f"quantize: layer {path!r} (BatchNorm2d) tracks no running statistics; "
                                       "a2qflow folds BatchNorm with them (track_running_stats=True)")
                dst.eps = src.eps
                for buf in ("running_mean", "running_var", "num_batches_tracked"):
                    getattr(dst, buf).copy_(getattr(src, buf))
