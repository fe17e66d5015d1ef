"""The one YAML config of a flow run: `name, seed, data, model, quant, train, hw`.

`load_config(path)` / `parse_config(dict, source)` return a validated FlowConfig or raise ONE-line A2QFlowError
naming the file, the dotted field and the allowed values, e.g.
  cfg.yaml: quant.weight_quant: 'a3q' is not one of float, unconstrained, a2q, a2q+
Checks that span sections (override layer names vs the model, a P a layer can never meet, pooling that shrinks
the input to nothing) run after the schema, so every message still names the field to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from a2qflow.hw.compiler.bounds import ACC_BITS_MAX, ACC_BITS_MIN
from a2qflow.hw.config import HardwareConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.config import DATASET_SHAPES, EMBEDDED_DATASETS, TrainingJob, dump_yaml, mac_layer_names

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


# Limits of the config reader: a flow config is a few hundred bytes of plain mappings. The limits turn a hostile
# or broken file (an alias "billion laughs" bomb, 50,000 nested levels, a huge file) into one line, not a hang.
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB
MAX_YAML_DEPTH = 32  # nested mappings / lists
MAX_YAML_NODES = 100_000  # values after expanding every alias


class _YAMLLimit(Exception):
    """A structural limit of the config reader was hit (message says which)."""


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that rejects duplicate keys, deep nesting and alias expansion beyond MAX_YAML_NODES."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _YAMLLimit(f"nested more than {MAX_YAML_DEPTH} levels deep at line {mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # SafeConstructor reports unhashable keys itself
                if key in seen:
                    raise _YAMLLimit(f"duplicate key {key!r} at line {key_node.start_mark.line + 1} (first at line "
                                     f"{seen[key] + 1}); keep one")
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _expanded_size(node, limit: int) -> int:
    """Number of nodes the document expands to (an alias counts its target again every time it is used)."""
    sizes: dict[int, int] = {}

    def size(n) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = 1  # a cycle counts once (SafeLoader builds it as a self-reference)
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
        else:
            total = 1
        sizes[id(n)] = min(total, limit + 1)
        return sizes[id(n)]

    return size(node)


def _read_yaml(path: Path) -> Any:
    """The one YAML reader of the flow: safe loader, size / depth / alias-expansion limits, duplicate keys rejected.

    Every problem is one line naming the file (and the line and column where the parser says)."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise A2QFlowError(f"{path}: {size} bytes is too large for a config file (limit {MAX_CONFIG_BYTES}); "
                               "is this the right file?")
        text = path.read_text()
    except UnicodeDecodeError:
        raise A2QFlowError(f"{path}: not a text (UTF-8) YAML file") from None
    except OSError as e:
        raise A2QFlowError(f"{path}: cannot read ({e.strerror})") from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, MAX_YAML_NODES) > MAX_YAML_NODES:
            raise _YAMLLimit(f"expands to more than {MAX_YAML_NODES} values through aliases (&anchor / *alias); "
                             "write the values out")
        return loader.construct_document(node)
    except _YAMLLimit as e:
        raise A2QFlowError(f"{path}: invalid config: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise A2QFlowError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise A2QFlowError(f"{path}: invalid config: nested too deeply") from None
    finally:
        loader.dispose()


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
        cfg = FlowConfig.model_validate(d, context={"source": source})  # source: named in old-name warnings
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


def _short(value: Any, limit: int = 60) -> str:
    """repr of a bad value, cut to `limit` characters (a config value can be megabytes long)."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "..."


def _one_line(e: ValidationError) -> str:
    errs = e.errors()
    first = errs[0]
    loc, kind, got = tuple(first["loc"]), first["type"], first.get("input")
    field = _dotted(loc)
    if kind == "literal_error":
        allowed = first["ctx"]["expected"].replace(" or ", ", ").replace("'", "")
        msg = f"{_short(got)} is not one of {allowed}"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        owner = _model_at(loc)
        allowed = ", ".join(owner.model_fields) if owner else "see docs/training.md"
        msg = f"unknown field {loc[-1]!r}; allowed fields: {allowed}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"expected a mapping, got {type(got).__name__} {_short(got)}"
    else:
        msg = f"{first['msg']}, got {_short(got)}"
    more = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
    return f"{field}: {msg}{more}"


def _check_layer_names(cfg: FlowConfig, source: str) -> None:
    """Every per-layer override names a MAC layer the model has."""
    names = mac_layer_names(cfg.model)
    for section, keys in (("quant.layers", cfg.quant.layers), ("hw.folding.layers", cfg.hw.folding.layers),
                          ("hw.layers", cfg.hw.layers)):
        for key in keys:
            if key not in names:
                raise A2QFlowError(f"{source}: {section}.{key}: the {cfg.model.kind} has no layer {key!r}; "
                                   f"its layers are {', '.join(names)}")


def _check_cnn(cfg: FlowConfig, source: str) -> None:
    """A cnn has conv blocks, its pools leave at least one pixel, and its kernel is odd ('same' padding)."""
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


def _check_model(cfg: FlowConfig, source: str) -> None:
    """The model fits its dataset: cnn rules, sizes of the models checked on the model they build, widths >= 1."""
    if cfg.model.kind == "cnn":
        _check_cnn(cfg, source)
    if cfg.model.kind in ("resnet", "mobilenet", "cnn1d"):  # sizes checked on the model they build
        from a2qflow.training.models import layer_shapes

        try:
            layer_shapes(cfg)
        except A2QFlowError as e:
            raise A2QFlowError(f"{source}: {cfg.data.dataset}: {e}") from None
    if any(v < 1 for v in cfg.model.hidden + (cfg.model.conv_channels if cfg.model.kind == "cnn" else [])):
        raise A2QFlowError(f"{source}: model.hidden / model.conv_channels: widths must be >= 1")


def _check_acc_targets(cfg: FlowConfig, source: str) -> None:
    """Every A2Q layer has a target P, and one it can meet with at least one non-zero weight."""
    from a2qflow.hw.compiler.ir import IntType
    from a2qflow.training.config import A2Q_QUANTS
    from a2qflow.training.quant import l1_budget, min_workable_acc_bits

    for spec in cfg.layer_specs():
        if spec.weight_quant not in A2Q_QUANTS:
            continue
        o = cfg.quant.layers.get(spec.name)
        field = f"quant.layers.{spec.name}.acc_bits" if o is not None and o.acc_bits is not None else "quant.acc_bits"
        if spec.target_acc_bits is None:
            raise A2QFlowError(f"{source}: {field}: required for weight_quant {spec.weight_quant} (layer "
                               f"{spec.name}); give a target accumulator width P in "
                               f"{ACC_BITS_MIN}..{ACC_BITS_MAX}")
        in_type = IntType(spec.input_bits, spec.input_signed)
        p_min = min_workable_acc_bits(spec.weight_quant, in_type)
        if spec.target_acc_bits < p_min:
            budget = l1_budget(spec.weight_quant, spec.target_acc_bits, in_type)
            raise A2QFlowError(
                f"{source}: {field}: P={spec.target_acc_bits} is below what layer {spec.name} can ever meet "
                f"({spec.weight_quant}, {in_type} inputs: L1 budget {budget:.3g} < 1 forces every weight to 0); "
                f"use acc_bits >= {p_min}")


def _check_semantics(cfg: FlowConfig, source: str) -> None:
    """What the schema cannot say: layer names, model sizes, the data folder, reachable accumulator targets."""
    _check_layer_names(cfg, source)
    _check_model(cfg, source)
    if cfg.data.dataset not in EMBEDDED_DATASETS and not cfg.data.root:
        raise A2QFlowError(f"{source}: data.root: required for dataset {cfg.data.dataset} (the folder holding "
                           f"torchvision's on-disk layout); only {', '.join(EMBEDDED_DATASETS)} are embedded")
    _check_acc_targets(cfg, source)
