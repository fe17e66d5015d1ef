"""The one YAML config of a flow run: `name, seed, data, model, quant, train, hw`.

`load_config(path)` / `parse_config(dict, source)` return a validated FlowConfig or raise ONE-line A2QFlowError
naming the file, the dotted field and the allowed values, e.g.
  cfg.yaml: quant.weight_quant: 'a3q' is not one of float, baseline, a2q, a2q+
Checks that span sections (override layer names vs the model, a P a layer can never meet, pooling that shrinks
the input to nothing) run after the schema, so every message still names the field to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from a2qflow.hw.config import HardwareConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import DATASET_SHAPES, TrainingJob, dump_yaml, mac_layer_names

__all__ = ["DATASET_SHAPES", "FlowConfig", "dump_config", "load_config", "load_hw_config", "parse_config"]


class FlowConfig(TrainingJob):
    """The whole flow: what training reads (`TrainingJob`) plus the hardware section."""

    hw: HardwareConfig = HardwareConfig()


def load_config(path: Path | str) -> FlowConfig:
    """Read and validate a YAML flow config; every problem is a one-line A2QFlowError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise A2QFlowError(f"{path}: no such config file (try flows/configs/digits_mlp.yaml)")
    return parse_config(_read_yaml(path), str(path))


def _read_yaml(path: Path) -> Any:
    """The one YAML reader of the flow (safe loader); a syntax error names the file, line and column."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise A2QFlowError(f"{path}: invalid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise A2QFlowError(f"{path}: not a text (UTF-8) YAML file") from None


def load_hw_config(path: Path | str) -> HardwareConfig:
    """Only the `hw:` section of a flow config (for the stage commands that take `--config`), strictly checked."""
    path = Path(path)
    if not path.is_file():
        raise A2QFlowError(f"{path}: no such config file (try flows/configs/digits_mlp.yaml)")
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise A2QFlowError(f"{path}: expected a mapping with an `hw:` section, got {type(data).__name__}")
    try:
        return HardwareConfig.model_validate(data.get("hw") or {})
    except ValidationError as e:
        err = e.errors()[0]
        raise A2QFlowError(f"{path}: {_dotted(('hw',) + tuple(err['loc']))}: {err['msg']}") from None


def parse_config(d: Any, source: str) -> FlowConfig:
    """Validate a config dict (as read from YAML); `source` names it in error messages."""
    if not isinstance(d, dict):
        raise A2QFlowError(f"{source}: expected a mapping with keys {', '.join(FlowConfig.model_fields)}, "
                           f"got {type(d).__name__}")
    try:
        cfg = FlowConfig.model_validate(d)
    except ValidationError as e:
        raise A2QFlowError(f"{source}: {_one_line(e)}") from None
    _check_semantics(cfg, source)
    return cfg


def dump_config(cfg: FlowConfig) -> str:
    """The resolved config as YAML (every default spelt out), loadable again by load_config."""
    return dump_yaml(cfg)


# ------------------------------------------------------------------------------------------------ messages

def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at loc[-1] (walking dict / list values)."""
    cls: Any = FlowConfig
    for part in loc[:-1]:
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            if part not in cls.model_fields:
                return None
            cls = cls.model_fields[part].annotation
        else:  # a dict or list value: step into its value type
            cls = _value_type(cls)
            if cls is None:
                return None
        cls = _strip_optional(cls)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        cls = _strip_optional(_value_type(cls))
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _strip_optional(t):
    args = [a for a in get_args(t) if a is not type(None)]
    return args[0] if get_origin(t) is not None and len(args) == 1 and get_origin(t) not in (dict, list) else t


def _value_type(t):
    args = get_args(t)
    if get_origin(t) in (dict, list) and args:
        return args[-1]
    return None


def _one_line(e: ValidationError) -> str:
    errs = e.errors()
    first = errs[0]
    loc, kind, got = tuple(first["loc"]), first["type"], first.get("input")
    field = _dotted(loc)
    if kind == "literal_error":
        allowed = first["ctx"]["expected"].replace(" or ", ", ").replace("'", "")
        msg = f"{got!r} is not one of {allowed}"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        owner = _model_at(loc)
        allowed = ", ".join(owner.model_fields) if owner else "see docs/training.md"
        msg = f"unknown field {loc[-1]!r}; allowed fields: {allowed}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"expected a mapping, got {type(got).__name__} {got!r}"
    else:
        msg = f"{first['msg']}, got {got!r}"
    more = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
    return f"{field}: {msg}{more}"


def _check_semantics(cfg: FlowConfig, source: str) -> None:
    from a2qflow.hw.compiler.ir import IntType
    from a2qflow.training.quant import A2Q_QUANTS, l1_budget, min_workable_acc_bits

    names = mac_layer_names(cfg.model)
    for key in cfg.quant.layers:
        if key not in names:
            raise A2QFlowError(f"{source}: quant.layers.{key}: the {cfg.model.kind} has no layer {key!r}; "
                               f"its layers are {', '.join(names)}")
    if cfg.model.kind == "cnn":
        if not cfg.model.conv_channels:
            raise A2QFlowError(f"{source}: model.conv_channels: a cnn needs at least one conv block, e.g. [8, 16]")
        c, h, w = DATASET_SHAPES[cfg.data.dataset]
        blocks = len(cfg.model.conv_channels)
        if cfg.model.pool and min(h, w) >> blocks < 1:
            most = min(h, w).bit_length() - 1
            raise A2QFlowError(f"{source}: model.conv_channels: {blocks} pooled conv blocks shrink the {h}x{w} "
                               f"{cfg.data.dataset} input to nothing; use at most {most}")
        if cfg.model.kernel_size % 2 == 0:
            raise A2QFlowError(f"{source}: model.kernel_size: must be odd ('same' padding), got "
                               f"{cfg.model.kernel_size}")
    if any(v < 1 for v in cfg.model.hidden + (cfg.model.conv_channels if cfg.model.kind == "cnn" else [])):
        raise A2QFlowError(f"{source}: model.hidden / model.conv_channels: widths must be >= 1")
    if cfg.data.dataset != "digits" and not cfg.data.root:
        raise A2QFlowError(f"{source}: data.root: required for dataset {cfg.data.dataset} (the folder holding "
                           f"torchvision's on-disk layout); only digits is embedded")
    for spec in cfg.layer_specs():
        if spec.weight_quant not in A2Q_QUANTS:
            continue
        o = cfg.quant.layers.get(spec.name)
        field = f"quant.layers.{spec.name}.acc_bits" if o is not None and o.acc_bits is not None else "quant.acc_bits"
        if spec.target_acc_bits is None:
            raise A2QFlowError(f"{source}: {field}: required for weight_quant {spec.weight_quant} (layer "
                               f"{spec.name}); give a target accumulator width P in 2..32")
        in_type = IntType(spec.input_bits, spec.input_signed)
        p_min = min_workable_acc_bits(spec.weight_quant, in_type)
        if spec.target_acc_bits < p_min:
            budget = l1_budget(spec.weight_quant, spec.target_acc_bits, in_type)
            raise A2QFlowError(
                f"{source}: {field}: P={spec.target_acc_bits} is below what layer {spec.name} can ever meet "
                f"({spec.weight_quant}, {in_type} inputs: L1 budget {budget:.3g} < 1 forces every weight to 0); "
                f"use acc_bits >= {p_min}")
