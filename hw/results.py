"""Typed results of the hardware stages: what csim.json, rtlsim.json, resources.json and bitstream.json hold.

Each stage builds one of these models and writes exactly it (`StageResult.write`); the report and the sweep read
them back with `StageResult.read`, so a key is spelt in one place. The JSON files are a public interface: the
models declare the keys a2qflow reads and allow extra ones (`extra="allow"`), so producers may add keys freely
and older files still load. Every figure that a tool measured carries that tool's name and version (`tool`).

For the callers written against the earlier dict results, a model also answers `result["key"]` and
`result.get("key")`; new code should use attributes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from a2qflow.hw.compiler.golden_compare import GoldenComparison
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json

T = TypeVar("T", bound="StageResult")


class StageResult(BaseModel):
    """Base of every stage result: tolerant of added keys, written and read atomically with one-line errors."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())
    written_by: ClassVar[str] = "stage"  # what a bad file's one-line error tells the user to re-run

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in type(self).model_fields or key in (self.model_extra or {}))

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def to_json(self) -> dict:
        return self.model_dump(mode="json")

    def write(self, path: Path | str) -> None:
        atomic_write_json(path, self.to_json())

    @classmethod
    def read(cls: type[T], path: Path | str) -> T | None:
        """The result stored at `path`, or None when the stage has not run (no file)."""
        p = Path(path)
        if not p.is_file():
            return None
        return cls.from_file_data(cls.load_json(p), p)

    @classmethod
    def from_file_data(cls: type[T], data: Any, path: Path) -> T:
        """The model of `data`, the JSON read from `path` (subclasses whose files store relative paths resolve
        them here)."""
        return cls.validated(data, str(path))

    @classmethod
    def load_json(cls, path: Path) -> Any:
        """The JSON in `path`; a file that is not JSON is one line naming it and what writes it."""
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise A2QFlowError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); re-run the "
                               f"{cls.written_by} that writes it") from None

    @classmethod
    def validated(cls: type[T], data: Any, where: str) -> T:
        """`data` as this model; a bad field is one line naming `where`, the field's path and what writes it."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            at = ".".join(str(x) for x in err["loc"]) or "(top level)"
            raise A2QFlowError(f"{where}: {at}: {err['msg']}; re-run the {cls.written_by} that writes it") from None


class CsimSummary(StageResult):
    """BUILD/csim/csim.json: g++ C-simulation of the HLS design against the golden model."""

    model: str
    policy: str
    samples: int
    mismatches: int
    top1_accuracy: float | None = None
    overflow_monitor: bool = False
    overflow_events: int | None = None
    overflow_events_per_layer: dict[str, int] | None = None
    acc_bits: dict[str, int] = {}
    tool: str  # compiler name and version, and the ap_types' origin
    first_mismatch: dict | None = None  # sample, layer, channel, position, expected / golden, got / csim, output
    golden_comparison: GoldenComparison | None = None  # hw.compiler.golden_compare (absent in older files)


class RtlsimSummary(StageResult):
    """BUILD/rtlsim/rtlsim.json: Verilator simulation of the generated RTL against the golden model."""

    samples: int
    mismatches: int
    cycles_per_inference: int | None = None
    initiation_interval_cycles: float | None = None
    top1_accuracy: float | None = None
    overflow_events_golden: int | None = None
    acc_bits: dict[str, int] = {}
    verilator: str  # "verilator <version> (...)"
    first_mismatch: dict | None = None  # sample, layer, channel, position, expected / golden, got / rtl, output
    golden_comparison: GoldenComparison | None = None  # hw.compiler.golden_compare (absent in older files)
    csim_mismatches: int | None = None  # samples where RTL and C-sim differ (when C-sim outputs were given)
    csim_comparison: GoldenComparison | None = None  # the same comparison with C-sim as the reference


class ResourceEntry(StageResult):
    """One synthesis run: a design (planned / baseline32: the 32-bit design / baseline_datatype: the data-type
    design) in one flow (family, mapping)."""

    design: str
    family: str
    mapping: str
    tool: str
    version: str | None = None
    total: dict[str, Any] = {}  # LUT, FF, CARRY, DSP, BRAM, ... counts, plus raw `cells` and `other`
    layers: dict[str, dict] = {}


class SynthResources(StageResult):
    """BUILD/synth/resources.json: every synthesis run and its planned-vs-32-bit summary."""

    tool: str
    version: str | None = None
    entries: list[ResourceEntry] = []
    summary: list[dict] = []

    def entry(self, design: str, family: str = "xc7", mapping: str = "lut-only") -> ResourceEntry | None:
        return next((e for e in self.entries if (e.design, e.family, e.mapping) == (design, family, mapping)), None)


class BitstreamSummary(StageResult):
    """BUILD/bitstream/bitstream.json: nextpnr place and route, timing and utilisation, the bitstream file."""

    target: str
    bitstream: str | None = None
    fmax_mhz: float | None = None
    constraint_mhz: float | None = None
    timing_met: bool | None = None
    utilisation: dict[str, Any] = {}
    tools: dict[str, str] = {}

    def tool_names(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.tools.items()) or "nextpnr"


class VitisSummary(StageResult):
    """BUILD/vitis/vitis.json: figures parsed from Vitis HLS / Vivado reports (only where the tools ran)."""
