"""Typed results of the flows: what sweep.json, search.json, run.json and report.json hold, and what the sweep, the
search, the executors, the pipeline and the report pass between them (sweep point results, search candidates and
their yosys confirmation, stage records).

Why models rather than dicts: a key is spelt in one place (the model), a result is read with attributes, and a
bad file is one line naming the field. Like the stage results of hw/results.py (whose base they share) the models
allow extra keys (the JSON files are a public interface: keys are added, never renamed or dropped) and, for
callers written against the earlier dict results (benchmarks, scripts), still answer `result["key"]` and
`result.get("key")`.

Paths. In memory a path field (`run` of a point or candidate) names the folder on this machine. In a file it is
written relative to the folder holding that file (sweep.json: `points/<name>`; search.json:
`candidates/points/<name>`; run.json: `.`; report.json: `../build`), and the file says so with
`"paths": "relative"`; reading resolves it against the file's folder again. So a sweep, search or run folder can be
moved or copied (a Ray worker's temp folder, another disk) and its results still name its own folders: nothing
rewrites JSON text. A file without the `paths` key was written by an earlier a2qflow with paths as given on its
command line (absolute, or relative to the working folder then); it is read as it stands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

from pydantic import BaseModel

from a2qflow.hw.files import atomic_write_json, relative_path, resolve_path
from a2qflow.hw.results import StageResult

PATHS_RELATIVE = "relative"  # the `paths` key of a file whose path fields are relative to its folder

M = TypeVar("M", bound="FlowResult")


class FlowResult(StageResult):
    """Base of the flow results: `path_fields` name the fields holding a path, rebased as a whole model."""

    path_fields: ClassVar[tuple[str, ...]] = ()

    def map_paths(self: M, fn: Callable[[str], str]) -> M:
        """A copy with `fn` applied to every path field, nested results included."""
        update: dict[str, Any] = {}
        for name in type(self).model_fields:
            v = getattr(self, name)
            if name in self.path_fields and v is not None:
                update[name] = fn(v)
            elif isinstance(v, FlowResult):
                update[name] = v.map_paths(fn)
            elif isinstance(v, list) and any(isinstance(x, FlowResult) for x in v):
                update[name] = [x.map_paths(fn) if isinstance(x, FlowResult) else x for x in v]
            elif isinstance(v, dict) and any(isinstance(x, FlowResult) for x in v.values()):
                update[name] = {k: x.map_paths(fn) if isinstance(x, FlowResult) else x for k, x in v.items()}
        return self.model_copy(update=update)

    def relative_to(self: M, base: Path | str) -> M:
        """Every path relative to the folder `base` (what a file, or a Ray task's return value, holds)."""
        return self.map_paths(lambda p: relative_path(p, base))

    def resolved(self: M, base: Path | str) -> M:
        """Every relative path joined to `base` (absolute ones kept): the inverse of `relative_to`."""
        return self.map_paths(lambda p: str(resolve_path(p, base)))


class FlowFile(FlowResult):
    """A result that is a file of its own (sweep.json, search.json, run.json, report.json): paths relative to its
    folder."""

    written_by: ClassVar[str] = "command"  # what a bad file's one-line error tells the user to re-run
    paths: str | None = None  # "relative" in files this version writes; absent in earlier files

    def file_json(self, base: Path | str) -> dict:
        """The file's content: paths relative to `base`, the folder the file lives in, and `"paths": "relative"`.

        Python values, not JSON-mode ones: free-form parts (a stage's summary) may hold numpy numbers, which
        atomic_write_json's encoder writes as the earlier dict results were written."""
        data = self.relative_to(base).model_dump()
        data.pop("paths", None)
        return data | {"paths": PATHS_RELATIVE}  # last: the file's own keys keep their order

    def write(self, path: Path | str, base: Path | str | None = None) -> None:
        """Write atomically to `path`; `base` is the folder the file ends up in when that is not path's folder (a
        stage writes into a temp folder renamed into place afterwards)."""
        atomic_write_json(path, self.file_json(Path(path).parent if base is None else base))

    @classmethod
    def from_file_data(cls: type[M], data: Any, path: Path) -> M:
        """StageResult.read's last step: the model of the JSON read from `path`, paths resolved against its
        folder."""
        return cls.parse(data, path.parent, where=str(path))

    @classmethod
    def parse(cls: type[M], data: Any, base: Path | str, where: str = "result") -> M:
        """`data` (a file's JSON) as a model, paths resolved against `base` when the file stored them relative."""
        m = cls.validated(data, where)
        return m.resolved(base) if m.paths == PATHS_RELATIVE else m


# ------------------------------------------------------------------------------------------------ sweep

class MeasuredFigures(StageResult):
    """A design's two headline figures, each with the tool that produced it: one definition for a sweep point, a
    search candidate and the search's chosen design (the keys are the same in sweep.json and search.json)."""

    accuracy: float | None = None  # the hardware's (C-sim) top-1 when csim ran, else the torch quantized model's
    accuracy_source: str | None = None
    luts: int | None = None  # xc7 LUT-only synthesis of the planned design
    luts_tool: str | None = None


class PointResult(FlowResult, MeasuredFigures):
    """One sweep point's figures (a row of sweep.json `points`): what its run folder's stage results say."""

    path_fields: ClassVar[tuple[str, ...]] = ("run",)

    name: str
    method: str
    target_acc_bits: int | None = None  # absent from the benchmarks' short point rows
    weight_bits: int | None = None  # M (naive: = N)
    input_bits: int | None = None
    status: str  # ok | failed | infeasible (| unfinished: benchmarks/iso_accuracy.py --collect-only)
    reason: str = ""
    run: str | None = None  # the point's run folder
    torch_accuracy: float | None = None
    csim_accuracy: float | None = None
    float_accuracy: float | None = None
    acc_bits_built: int | None = None  # widest accumulator the hardware builds (plan.json, exact bound)
    acc_bits_datatype: int | None = None  # widest data-type bound
    overflow_events: int | None = None
    luts_baseline32: int | None = None
    lut_sites: int | None = None  # logic LUTs + the LUT sites LUT RAM takes (hw.synth.cells.lut_sites), xc7
    seconds: float = 0.0
    stages: dict[str, str] = {}
    luts_estimate: int | None = None  # the resource model's estimate from plan.json (hw/synth/estimate.py)
    synth_pruned: bool = False  # --prune: not synthesised, being off the estimated Pareto front
    architecture: str = "folded"


class LutConfirmation(BaseModel):
    """yosys synth_xilinx -family xc7 of a search candidate's planned RTL (BUILD/search_synth/result.json)."""

    luts: int
    dsp: int | None = None
    ff: int | None = None
    carry: int | None = None
    luts_tool: str
    layer_luts: dict[str, int] = {}


class CandidateResult(PointResult):
    """A search candidate's point result plus the yosys run that confirms its LUTs."""

    dsp: int | None = None
    ff: int | None = None
    carry: int | None = None
    layer_luts: dict[str, int] | None = None


class IsoLevel(StageResult):
    """One accuracy level reached by both sides, with the cheapest design of each (flows/iso_accuracy.py)."""

    accuracy: float
    a2q_point: str
    a2q_luts: int
    baseline_point: str
    baseline_luts: int
    ratio: float
    a2q_lut_sites: int | None = None  # the same two designs counted with their LUT RAM (logic + memory LUT sites)
    baseline_lut_sites: int | None = None
    ratio_lut_sites: float | None = None


class IsoAccuracy(StageResult):
    """LUTs at iso-accuracy of one architecture (sweep.json `iso_accuracy.<architecture>`)."""

    levels: list[IsoLevel] = []
    threshold: float | None = None
    best: IsoLevel | None = None
    luts_tool: str | None = None


class SweepSummary(FlowFile):
    """SWEEP/sweep.json: what was asked, every point's result, the plots and LUTs at iso-accuracy."""

    config: str | None = None  # the config file as given on the command line (an input, not a run folder)
    name: str | None = None
    acc_bits: list[int] = []
    weight_bits: list[int] | None = None
    methods: list[str] = []
    stages: list[str] = []
    epochs: int | None = None
    seconds: float | None = None
    float_accuracy: float | None = None
    x_axis: str | None = None
    points: list[PointResult] = []
    plots: list[str] = []
    executor: dict[str, Any] | None = None
    pruned: bool = False
    architectures: list[str] | None = None
    iso_accuracy: dict[str, IsoAccuracy] = {}
    command: str | None = None


# ------------------------------------------------------------------------------------------------ search

class SensitivityRow(StageResult):
    """One one-layer change of the reference and its validation accuracy (search.json `sensitivity`)."""

    layer: str
    bits: int
    acc_bits: int
    val_accuracy: float | None = None
    drop: float
    status: str


class SearchCandidate(FlowResult, MeasuredFigures):
    """One ILP solution as trained, C-simulated and synthesised (search.json `candidates`)."""

    path_fields: ClassVar[tuple[str, ...]] = ("run",)

    name: str
    acc_bits: dict[str, int]
    bits: dict[str, int]
    dsp_priced: int | None = None
    luts_estimate: int
    predicted_drop: float
    status: str
    reason: str = ""
    acc_bits_built: int | None = None
    overflow_events: int | None = None
    dsp: int | None = None
    layer_luts: dict[str, int] | None = None
    run: str | None = None  # the candidate's run folder


class SearchSummary(FlowFile, MeasuredFigures):
    """SEARCH/search.json: the job, the sensitivity, every candidate and the chosen one (None: nothing fits)."""

    config: str
    name: str
    method: str
    budget_luts: int
    budget_dsp: int | None = None
    bits: list[int] = []
    p_steps: list[int] = []
    sensitivity_epochs: int | None = None
    epochs: int | None = None
    reference: dict[str, dict[str, Any]] = {}
    reference_val_accuracy: float | None = None
    sensitivity: list[SensitivityRow] = []
    estimate_source: str | None = None
    candidates: list[SearchCandidate] = []
    executor: dict[str, Any] | None = None
    chosen: dict[str, int] | None = None  # P per layer of the chosen candidate
    chosen_bits: dict[str, int] | None = None
    chosen_name: str | None = None  # its figures: the MeasuredFigures fields
    seconds: float | None = None


# ------------------------------------------------------------------------------------------------ report

class RunReport(FlowFile):
    """RUN/report/report.json: every stage's figures, each naming its tool ("not run" where a stage did not run).

    The sections are the report's own rows (flows/report.py builds them from the typed stage results); `build` and
    `train` are the folders the report read, stored relative to report.json's folder (`../build`)."""

    path_fields: ClassVar[tuple[str, ...]] = ("build", "train")

    generated: str
    build: str
    train: str | None = None
    model: str | None = None
    dataset: str | None = None
    inputs: dict[str, str] = {}
    accuracy: dict[str, Any] = {}
    layers: list[dict[str, Any]] = []
    weight_sparsity: Any = None
    overflow_checks: dict[str, Any] = {}
    resources: Any = None
    timing: Any = None
    cycles: Any = None
    bitstream: Any = None
    vitis: Any = None
    quantization_card: list[dict[str, Any]] = []
    plots: list[str] = []


# ------------------------------------------------------------------------------------------------ pipeline

class StageRecord(StageResult):
    """One stage of one `run()` (a row of run.json `stages`): done | skipped (up to date) | disabled | failed |
    not run, with its seconds, input hash and the small summary its function returned."""

    name: str
    status: str
    seconds: float = 0.0
    input_hash: str | None = None
    reason: str = ""
    summary: dict[str, Any] | None = None


class RunRecord(FlowFile):
    """RUN/run.json: the stages of the last `run()` over the folder (`run` is the folder itself: `.`)."""

    path_fields: ClassVar[tuple[str, ...]] = ("run",)

    run: str | None = None
    stages: list[StageRecord] = []
