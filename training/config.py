"""Training sections of a flow config (`data:`, `model:`, `quant:`, `train:` in the YAML).

Strict on purpose (extra="forbid"): a misspelt key must be an error, not a silently ignored default. Checks that
need more than one section (override layer names, the smallest workable accumulator width) live in
`flows.config`, which knows the whole file and can name it in the message.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from a2qflow.hw.compiler.bounds import ACC_BITS_MAX, ACC_BITS_MIN
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import DeprecatedNameWarning

WEIGHT_QUANTS = ("float", "unconstrained", "a2q", "a2q+")
# Old preset names -> the name now. "baseline" was also the word for the 32-bit and data-type designs and for the
# qat32 method, so the preset got a name of its own; configs, ONNX metadata and metrics.json that say "baseline"
# keep working (a DeprecatedNameWarning names the new word).
RENAMED_WEIGHT_QUANTS = {"baseline": "unconstrained"}
# Weight / activation bit widths (M, N) a config accepts; every option that offers bits (search --bits, sweep
# --weight-bits / --qat32-bits) checks against this one range.
QUANT_BITS_MIN, QUANT_BITS_MAX = 2, 16
QuantBits = Annotated[int, Field(ge=QUANT_BITS_MIN, le=QUANT_BITS_MAX)]
DATASETS = ("digits", "mnist5k", "mnist", "cifar10")
# Datasets that ship inside an installed package (no data.root, no download).
EMBEDDED_DATASETS = ("digits", "mnist5k")
MODEL_KINDS = ("mlp", "cnn", "resnet", "mobilenet", "cnn1d")
# Model input shape (C, H, W) of each dataset, for checks that need it before any data is read.
DATASET_SHAPES = {"digits": (1, 8, 8), "mnist5k": (1, 28, 28), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
# Classes of each dataset (the classifier's outputs), for the same checks; training.data's loaders agree.
DATASET_CLASSES = {"digits": 10, "mnist5k": 10, "mnist": 10, "cifar10": 10}

WeightQuantName = Literal["float", "unconstrained", "a2q", "a2q+"]


def current_weight_quant(name: str | None, where: str | None = None, fix: str | None = None) -> str | None:
    """The preset's current name: an old one (RENAMED_WEIGHT_QUANTS) is mapped to the new, anything else returned as
    it is (validation reports unknown names).

    Args:
        name: a weight_quant value as read from a config, ONNX metadata or metrics.json.
        where: the file and field the one-line DeprecatedNameWarning names; None maps silently (a stage result
            such as an older metrics.json, which a re-run rewrites anyway).
        fix: what the warning tells the user to do (default: write the new name).

    Returns:
        The current preset name.
    """
    new = RENAMED_WEIGHT_QUANTS.get(name) if isinstance(name, str) else None
    if new is None:
        return name
    if where is not None:
        fix = fix or f"write '{new}'"
        warnings.warn(f"{where}: '{name}' is the old name of the weight quantizer '{new}' (integer weights, no "
                      f"accumulator constraint); {fix}", DeprecatedNameWarning, stacklevel=2)
    return new


def _where(info: ValidationInfo, field: str) -> str:
    """`<source>: <field>` for a message, the source being the file flows.config.parse_config validates (context)."""
    source = (info.context or {}).get("source") if isinstance(info.context, dict) else None
    return f"{source}: {field}" if source else field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    dataset: Literal["digits", "mnist5k", "mnist", "cifar10"] = "digits"
    root: str | None = Field(None, description="folder holding torchvision's on-disk layout (mnist / cifar10)")
    download: bool = Field(False, description="let torchvision download mnist / cifar10 into root (needs torchvision)")
    split_seed: int = Field(0, ge=0, le=2**32 - 1,
                            description="seed of the train/val/test split; fixed so runs share one test set")
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5, description="digits only; mnist5k keeps 1,000 test images, "
                                                              "mnist / cifar10 use their test set")
    max_train: int | None = Field(None, ge=1, description="use only the first max_train training samples")


class ModelConfig(_Strict):
    kind: Literal["mlp", "cnn", "resnet", "mobilenet", "cnn1d"]
    hidden: list[int] = Field([64, 64], description="widths of the hidden fully-connected layers (mlp, cnn, "
                                                    "cnn1d; resnet / mobilenet have a single classifier fc)")
    conv_channels: list[int] = Field([8, 16], description="cnn / cnn1d: output channels of each conv block")
    kernel_size: int = Field(3, ge=1, description="cnn / cnn1d: conv kernel (stride 1, 'same' padding)")
    batch_norm: bool = Field(False, description="cnn / cnn1d: batch norm between each conv and its activation "
                                                "(resnet / mobilenet always have it)")
    pool: bool = Field(True, description="cnn: MaxPool2d(2), cnn1d: MaxPool1d(2) after every conv block")
    channels: list[int] = Field([8, 16], description="resnet: width of each stage (the stem makes channels[0]); "
                                                    "mobilenet: the stem's width, then one depthwise-separable "
                                                    "block per further entry (its pointwise output channels)")
    blocks: int = Field(1, ge=0, description="resnet: residual blocks per stage (two 3x3 convs + skip each)")
    stem_stride: int = Field(1, ge=1, le=2, description="resnet / mobilenet: stride of the 3x3 stem conv")
    stem_pool: bool = Field(False, description="resnet / mobilenet: MaxPool2d(2) after the stem")
    gap: Literal["avg", "trunc"] = Field("avg", description="resnet / mobilenet: global average pooling as "
                                         "AdaptiveAvgPool2d + QuantIdentity (avg) or Brevitas' TruncAvgPool2d")
    downsample: bool = Field(True, description="resnet: each stage after the first opens with a stride-2 3x3 "
                                               "conv; mobilenet: every depthwise conv has stride 2 (else 1)")
    float_checkpoint: str | None = Field(None, description="a float state_dict of this config's float twin: the "
                                                           "`quantize` stage (post-training quantization, quant.ptq) "
                                                           "replaces training")

    @field_validator("conv_channels", "channels", "kernel_size")
    @classmethod
    def _family_sizes(cls, v, info: ValidationInfo):
        """Widths of the kind's own list (empty / < 1) and the 1-D CNN's odd kernel, as field errors."""
        kind = info.data.get("kind")
        own = {"conv_channels": ("cnn", "cnn1d"), "channels": ("resnet", "mobilenet")}.get(info.field_name, ())
        if kind in own and not v:
            raise PydanticCustomError("family_size", "a {kind} needs at least one entry, e.g. [8, 16]",
                                      {"kind": kind})
        if kind in own and any(w < 1 for w in v):
            raise PydanticCustomError("family_size", "widths must be >= 1")
        if info.field_name == "kernel_size" and kind == "cnn1d" and v % 2 == 0:
            raise PydanticCustomError("family_size", "must be odd ('same' padding)")
        return v


class LayerQuantOverride(_Strict):
    weight_quant: WeightQuantName | None = None
    weight_bits: QuantBits | None = None
    input_bits: QuantBits | None = Field(None, description="bits of the activation quantizer feeding it")
    acc_bits: int | None = Field(None, ge=ACC_BITS_MIN, le=ACC_BITS_MAX,
                                  description="target accumulator width P (a2q / a2q+)")

    @field_validator("weight_quant", mode="before")
    @classmethod
    def _renamed_preset(cls, v, info: ValidationInfo):
        """An old preset name (a layer override built directly; QuantConfig maps its own with the layer's name)."""
        return current_weight_quant(v, _where(info, "weight_quant"))


class PTQConfig(_Strict):
    """Post-training quantization of `model.float_checkpoint` (training.ptq; `a2qflow quantize`)."""

    method: Literal["rtn", "axe-gpfq", "axe-optq"] = Field(
        "axe-optq", description="rtn: round to nearest + L1 projection; axe-gpfq / axe-optq: accumulator-aware "
                                "GPFQ / OPTQ (AXE, arXiv 2409.17092)")
    calibration: Literal["data", "zero-shot"] = Field(
        "data", description="data: training images; zero-shot: synthesised from the model's BatchNorm statistics")
    samples: int = Field(512, ge=8, le=100_000, description="calibration set size (images or synthesised inputs)")


class QuantConfig(_Strict):
    weight_quant: WeightQuantName = "a2q"
    weight_bits: QuantBits = Field(4, description="M")
    input_bits: QuantBits = Field(4, description="N of the first layer (the input quantizer)")
    input_signed: bool = Field(False, description="signed input quantizer (the data lie in [0, 1] either way)")
    act_bits: QuantBits = Field(4, description="N of every later layer (unsigned QuantReLU outputs)")
    input_range: Literal["learned", "data"] = Field(
        "learned", description="scale of the input quantizer: learned by Brevitas (statistics, then gradients), or "
                               "fixed by the data's range [0, 1] (1 / (2^N - 1) unsigned)")
    acc_bits: int | None = Field(16, ge=ACC_BITS_MIN, le=ACC_BITS_MAX,
                                  description="global target accumulator width P (a2q / a2q+)")
    layers: dict[str, LayerQuantOverride] = {}
    ptq: PTQConfig = Field(PTQConfig(), description="post-training quantization of model.float_checkpoint")

    @model_validator(mode="before")
    @classmethod
    def _renamed_presets(cls, d, info: ValidationInfo):
        """Old preset names in quant.weight_quant and quant.layers.<name>.weight_quant, each warned with its field."""
        if not isinstance(d, dict):
            return d
        d = dict(d)
        if "weight_quant" in d:
            d["weight_quant"] = current_weight_quant(d["weight_quant"], _where(info, "quant.weight_quant"))
        if isinstance(d.get("layers"), dict):
            d["layers"] = {n: ({**o, "weight_quant": current_weight_quant(
                o["weight_quant"], _where(info, f"quant.layers.{n}.weight_quant"))}
                if isinstance(o, dict) and "weight_quant" in o else o) for n, o in d["layers"].items()}
        return d


class TrainConfig(_Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    float_reference: bool = Field(True, description="also train a float twin and report its test accuracy")
    recipe: Literal["auto", "float_twin", "scratch", "block-replacement"] = Field(
        "auto", description="float_twin: start the quantized model from the trained float twin, calibrate, "
                            "fine-tune; scratch: train it from its random init; auto: float_twin when "
                            "float_reference is on; block-replacement: float_twin whose fine-tune also trains "
                            "mixed models (quantized blocks followed by the frozen twin's float blocks)")
    init: Literal["budget", "brevitas"] = Field(
        "budget", description="A2Q / A2Q+ layers: budget-aware init (training.init) or Brevitas' own formulas")
    calibration_batches: int = Field(300, ge=0, description="float_twin: no-grad training-mode forward passes "
                                                            "that set the activation quantizers' ranges")
    finetune_lr: float = Field(1e-2, gt=0, description="float_twin: Adam learning rate of the fine-tune (0.01: "
                                                       "benchmarks/results/train_recipes.md compares 0.003)")
    finetune_epochs: int | None = Field(None, ge=1, description="float_twin: fine-tune epochs (default: epochs)")

    @model_validator(mode="after")
    def _twin_needs_reference(self):
        if self.recipe in ("float_twin", "block-replacement") and not self.float_reference:
            raise ValueError(f"recipe {self.recipe} needs float_reference: true (the twin is what it starts from); "
                             "use recipe: scratch or auto")
        return self

    @property
    def effective_recipe(self) -> str:
        """The recipe that runs: `auto` resolved by float_reference."""
        if self.recipe == "auto":
            return "float_twin" if self.float_reference else "scratch"
        return self.recipe

    @property
    def needs_float_twin(self) -> bool:
        """The recipe trains (or reads) a float twin first: float_twin, and block-replacement built on it."""
        return self.effective_recipe in ("float_twin", "block-replacement")


def mac_layer_names(model: ModelConfig) -> list[str]:
    """MAC layer names in graph order (training.models builds exactly these modules):
      mlp        fc0..fcN (the last fc classifies)
      cnn, cnn1d conv0..convK, then fc0..fcN
      resnet     stem, block0_conv0, block0_conv1, ..., per later stage i: stage{i} then its blocks, then fc
      mobilenet  stem, then per block j: dw{j} (depthwise), pw{j} (pointwise), then fc
    """
    if model.kind == "resnet":
        names, block = ["stem"], 0
        for i in range(len(model.channels)):
            if i > 0:
                names.append(f"stage{i}")
            for _ in range(model.blocks):
                names += [f"block{block}_conv0", f"block{block}_conv1"]
                block += 1
        return names + ["fc"]
    if model.kind == "mobilenet":
        return ["stem"] + [f"{p}{j}" for j in range(len(model.channels) - 1) for p in ("dw", "pw")] + ["fc"]
    convs = [f"conv{i}" for i in range(len(model.conv_channels))] if model.kind in ("cnn", "cnn1d") else []
    return convs + [f"fc{i}" for i in range(len(model.hidden) + 1)]


A2Q_QUANTS = ("a2q", "a2q+")


@dataclass(frozen=True)
class LayerSpec:
    """Everything the flow needs to know about one MAC layer's quantization (recorded in metrics and ONNX)."""

    name: str
    weight_quant: str
    weight_bits: int
    input_bits: int
    input_signed: bool
    target_acc_bits: int | None  # P for a2q / a2q+, None otherwise
    input_range: str = "learned"  # first layer only: "data" fixes the input quantizer's range to [0, 1]

    @property
    def in_type(self) -> IntType:
        return IntType(self.input_bits, self.input_signed)

    def to_json(self) -> dict:
        return asdict(self)


def resolve_layer_specs(quant: QuantConfig, model: ModelConfig) -> list[LayerSpec]:
    """Apply the global settings and per-layer overrides to every MAC layer, in graph order.

    Unknown override names are left to the caller (flows.config) to report with the file name.
    """
    specs = []
    for i, name in enumerate(mac_layer_names(model)):
        o = quant.layers.get(name)
        def pick(field: str, default):
            v = getattr(o, field) if o is not None else None
            return default if v is None else v

        wq = pick("weight_quant", quant.weight_quant)
        bits = pick("weight_bits", quant.weight_bits)
        n = pick("input_bits", quant.input_bits if i == 0 else quant.act_bits)
        signed = quant.input_signed if i == 0 else False
        p = pick("acc_bits", quant.acc_bits) if wq in A2Q_QUANTS else None
        specs.append(LayerSpec(name, wq, bits, n, signed, p, quant.input_range if i == 0 else "learned"))
    return specs


class TrainingJob(_Strict):
    """Everything training reads: the flow config without its `hw:` section.

    The flow's `FlowConfig` extends this with `hw`, so training never imports the flow layer (dependencies point
    one way: flows -> training, hw).
    """

    name: str = Field(..., min_length=1, description="run name (reports, file names)")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="torch / numpy seed of training (numpy takes 0..2^32-1)")
    data: DataConfig = DataConfig()
    model: ModelConfig
    quant: QuantConfig = QuantConfig()
    train: TrainConfig = TrainConfig()

    def layer_specs(self):
        """Per-MAC-layer quantization (LayerSpec), overrides applied, in graph order."""
        return resolve_layer_specs(self.quant, self.model)


def dump_yaml(cfg: BaseModel) -> str:
    """A config as YAML with every default spelt out (what a run folder keeps as config.yaml)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
