"""Accumulator-width sweep: the A2Q paper's central comparison on our models.

For every target accumulator width P (and weight width M) the flow trains and builds:
  a2q    Brevitas A2Q weights constrained to P,
  a2q+   the zero-centred A2Q+ variant,
  naive  the way to reach P without A2Q: the largest N = M (>= 2) whose *data-type* bound fits P in every
         layer, trained with the `unconstrained` weight quantizer (any weights of M bits are safe at P).
  qat32  (opt-in) what the A2Q paper compares against: unconstrained QAT at several M = N with 32-bit accumulators;
         with it, sweep.md reports LUTs at iso-accuracy (flows/iso_accuracy.py).
`architectures` (folded, unrolled) repeats every point per datapath (hw.architecture); unrolled points are named
`<point>-unrolled`. An unrolled point unrolls the convolutions too (hw.layers.<conv>.architecture, which a global
hw.architecture leaves folded), so a CNN's unrolled point is the whole constant-weight datapath; a conv the config
pins (its own hw.layers architecture or hw.folding.layers override) keeps its setting.
Each point is an ordinary resumable run folder (SWEEP/points/<name>/), so a re-run only does what is missing.
Points report typed results (flows/results.py: PointResult, SweepSummary), read with attributes.
Outputs: SWEEP/sweep.json (every point; each point's `run` stored relative to SWEEP), SWEEP/sweep.md, and the Pareto
plots pareto_acc_bits.png (accuracy vs
accumulator bits) and pareto_luts.png (accuracy vs LUTs, when synth ran), with float accuracy as a reference line.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel

from a2qflow.flows.results import PointResult, RunRecord, SweepSummary
from a2qflow.hw import markdown
from a2qflow.hw.compiler.bounds import acc_bits_datatype
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_text

METHODS = ("a2q", "a2q+", "naive")
EXTRA_METHODS = ("qat32",)  # opt-in: unconstrained QAT at M = N with 32-bit accumulators (the paper's reference)
QAT32_BITS = (2, 3, 4, 5, 6, 8)
ARCHITECTURES = ("folded", "unrolled")
DEFAULT_STAGES = ("csim", "synth")


class SweepPoint(BaseModel):
    """One point to run (a task's payload, pickled to a worker): its method, widths and full config."""

    name: str
    method: str
    target_acc_bits: int
    weight_bits: int | None = None  # M (naive: = N)
    input_bits: int | None = None  # N of every layer for naive; the config's otherwise
    config: dict | None = None  # the full config dict of this point (None when infeasible)
    reason: str = ""  # why infeasible
    architecture: str = "folded"
    forced_acc_bits: int | None = None  # qat32: every accumulator built at 32 bits


def point_result(p: SweepPoint, status: str | None = None, reason: str | None = None,
                 run: Path | str | None = None) -> PointResult:
    """A point's result row before any figure is collected (status: infeasible without a config, else ok)."""
    return PointResult(name=p.name, method=p.method, target_acc_bits=p.target_acc_bits, weight_bits=p.weight_bits,
                       input_bits=p.input_bits, status=status or ("infeasible" if p.config is None else "ok"),
                       reason=p.reason if reason is None else reason, run=None if run is None else str(run),
                       architecture=p.architecture)


# ------------------------------------------------------------------------------------------------ point design

def dot_lengths(cfg) -> dict[str, int]:
    """K (dot-product length per output channel) of every MAC layer, measured on the model the config builds
    (training.models.layer_shapes): a depthwise conv's K is its kernel size, not channels x kernel."""
    from a2qflow.training.models import layer_shapes

    return {n: s.K for n, s in layer_shapes(cfg).items()}


def naive_bits(cfg, P: int) -> int | None:
    """Largest N = M >= 2 such that every layer's data-type bound fits a P-bit accumulator (None if none does)."""
    ks = dot_lengths(cfg)
    first = next(iter(ks))
    for n in range(16, 1, -1):
        if all(acc_bits_datatype(k, IntType(n, cfg.quant.input_signed if name == first else False),
                                 IntType(n, True)) <= P for name, k in ks.items()):
            return n
    return None


def make_points(cfg, acc_bits: Sequence[int], weight_bits: Sequence[int] | None = None,
                methods: Sequence[str] = METHODS, epochs: int | None = None,
                architectures: Sequence[str] = ("folded",), qat32_bits: Sequence[int] = QAT32_BITS) -> list[SweepPoint]:
    """One config per (architecture, method, M, P), each trained with the config's recipe (a float-twin recipe
    starts every point from its own twin)."""
    bad = [m for m in methods if m not in METHODS + EXTRA_METHODS]
    if bad:
        raise A2QFlowError(f"--methods {','.join(bad)}: unknown; choose from {', '.join(METHODS + EXTRA_METHODS)}")
    bad = [a for a in architectures if a not in ARCHITECTURES]
    if bad or not architectures:
        raise A2QFlowError(f"--architecture {','.join(architectures)}: choose from {', '.join(ARCHITECTURES)}")
    points: list[SweepPoint] = []
    for arch in architectures:
        pts = _points(cfg, acc_bits, weight_bits, [m for m in methods if m != "qat32"], epochs,
                      need_float=not points)
        if "qat32" in methods:
            pts += _qat32_points(cfg, qat32_bits, epochs)
        convs = unrolled_convs(cfg) if arch == "unrolled" else []
        for p in pts:
            p.architecture = arch
            if p.config is not None:
                p.config["hw"]["architecture"] = arch
                for name in convs:
                    p.config["hw"]["layers"][name] = {"architecture": "unrolled"}
            if arch != "folded":
                p.name += f"-{arch}"
                if p.config is not None:
                    p.config["name"] += f"-{arch}"
        points += pts
    return points


def unrolled_convs(cfg) -> list[str]:
    """The conv layers an unrolled sweep point names as unrolled: every (non-depthwise) 2-D conv of the model the
    config builds, except those the config pins with hw.layers.<name>.architecture or a hw.folding.layers entry."""
    from a2qflow.training.models import layer_shapes

    pinned = {n for n, l in cfg.hw.layers.items() if l.architecture is not None} | set(cfg.hw.folding.layers)
    shapes = layer_shapes(cfg)
    return [n for n, s in shapes.items() if s.op == "conv" and n not in pinned]


def _qat32_points(cfg, bits: Sequence[int], epochs: int | None) -> list[SweepPoint]:
    """The paper's reference designs: unconstrained QAT at M = N, every accumulator built at 32 bits."""
    from a2qflow.flows.config import parse_config

    base = cfg.model_dump(mode="json")
    if epochs is not None:
        base["train"]["epochs"] = int(epochs)
    out = []
    for n in bits:
        d = _deep_copy(base)
        d["quant"]["layers"] = {}
        d["quant"].update(weight_quant="unconstrained", weight_bits=n, input_bits=n, act_bits=n, acc_bits=None)
        d["train"]["float_reference"] = cfg.train.needs_float_twin
        d["hw"]["baseline32"] = False  # the planned design is the 32-bit one: a second synthesis would repeat it
        name = f"qat32-W{n}"
        d["name"] = f"{base['name']}-{name}"
        try:
            parse_config(d, f"sweep point {name}")
        except A2QFlowError as e:
            out.append(SweepPoint(name=name, method="qat32", target_acc_bits=32, weight_bits=n, input_bits=n,
                                  reason=str(e)))
            continue
        out.append(SweepPoint(name=name, method="qat32", target_acc_bits=32, weight_bits=n, input_bits=n, config=d,
                              forced_acc_bits=32))
    return out


def _points(cfg, acc_bits: Sequence[int], weight_bits: Sequence[int] | None, methods: Sequence[str],
            epochs: int | None, need_float: bool = True) -> list[SweepPoint]:
    """The a2q / a2q+ / naive points of one architecture."""
    from a2qflow.flows.config import parse_config

    if not acc_bits:
        raise A2QFlowError("--acc-bits: give at least one width, e.g. --acc-bits 10,12,14,16,20")
    base = cfg.model_dump(mode="json")
    if epochs is not None:
        base["train"]["epochs"] = int(epochs)
    points: list[SweepPoint] = []
    for method in methods:
        for M in ([None] if method == "naive" else (weight_bits or [None])):
            for P in acc_bits:
                d = _deep_copy(base)
                q = d["quant"]
                q["layers"] = {}  # per-layer overrides would break the one-P / one-N=M comparison
                if method == "naive":
                    n = naive_bits(cfg, P)
                    name = f"naive-P{P}"
                    if n is None:
                        points.append(SweepPoint(name=name, method=method, target_acc_bits=P,
                                                 reason=f"no N = M >= 2 fits P={P} under the data-type bound"))
                        continue
                    q.update(weight_quant="unconstrained", weight_bits=n, input_bits=n, act_bits=n, acc_bits=None)
                    M_, N_ = n, n
                else:
                    q.update(weight_quant=method, acc_bits=P)
                    if M is not None:
                        q["weight_bits"] = M
                    M_, N_ = q["weight_bits"], q["input_bits"]
                    name = f"{method}-W{M_}-P{P}"
                # the float-twin recipe starts every point from its own twin; scratch: one twin, the reference line
                d["train"]["float_reference"] = need_float or cfg.train.needs_float_twin
                d["name"] = f"{base['name']}-{name}"
                try:
                    parse_config(d, f"sweep point {name}")
                except A2QFlowError as e:
                    points.append(SweepPoint(name=name, method=method, target_acc_bits=P, weight_bits=M_,
                                             input_bits=N_, reason=str(e)))
                    continue
                points.append(SweepPoint(name=name, method=method, target_acc_bits=P, weight_bits=M_, input_bits=N_,
                                         config=d))
                need_float = False
    return points


def _deep_copy(d: Any) -> Any:
    import copy

    return copy.deepcopy(d)


# ------------------------------------------------------------------------------------------------ running

def run_point(point: SweepPoint, run_dir: str, stages: Sequence[str], command: str | None = None,
              shown_as: str | None = None) -> PointResult:
    """Run one point's flow (in this process) and collect its figures; never raises for a failed flow.

    `shown_as`: where messages say the point folder is (a Ray task runs it in a worker's temp folder)."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from a2qflow.flows.config import parse_config
    from a2qflow.flows.stages import make_pipeline

    res = point_result(point, run=run_dir)
    if point.config is None:
        return res
    t0 = time.perf_counter()
    cfg = parse_config(point.config, f"sweep point {point.name}")
    pipe = make_pipeline(cfg, run_dir, acc_bits=point.forced_acc_bits,
                         command_hint=f"re-run `{command}`" if command else "re-run the same `a2qflow sweep` command",
                         shown_as=shown_as)
    try:
        r = pipe.run(only=list(stages), progress=False)
        res.stages = {x.name: x.status for x in r.results}
    except A2QFlowError as e:
        res.status, res.reason = "failed", str(e)
    except Exception as e:  # noqa: BLE001 - one bad point must not lose the others
        res.status, res.reason = "failed", f"{type(e).__name__}: {e}"
    res.seconds = round(time.perf_counter() - t0, 2)
    collect(Path(run_dir), res)
    return res


def collect(run: Path, res: PointResult) -> None:
    """Fill a point's figures from its run folder's typed stage results (what exists; nothing is estimated)."""
    from a2qflow.hw.results import CsimSummary, SynthResources
    from a2qflow.hw.synth.cells import lut_sites
    from a2qflow.training.results import TrainingMetrics

    def read(model, path: Path):
        try:
            return model.read(path)
        except A2QFlowError:  # a damaged file counts as a missing figure; the point's status says why
            return None

    m = read(TrainingMetrics, run / "train" / "metrics.json")
    if m:
        res.torch_accuracy, res.float_accuracy = m.test_accuracy, m.float_test_accuracy
    plan = _read_plan(run / "build")
    if plan and plan.layers:
        res.acc_bits_built = max(l.acc_bits for l in plan.layers)
        res.acc_bits_datatype = max(l.acc_bits_datatype for l in plan.layers)
        res.luts_estimate = _estimate(run / "build" / "plan.json")
    cs = read(CsimSummary, run / "build" / "csim" / "csim.json")
    if cs:
        res.csim_accuracy, res.overflow_events = cs.top1_accuracy, cs.overflow_events
    if res.csim_accuracy is not None:
        res.accuracy, res.accuracy_source = res.csim_accuracy, "C-sim (g++, bit-exact hardware model)"
    elif res.torch_accuracy is not None:
        res.accuracy, res.accuracy_source = res.torch_accuracy, "PyTorch + Brevitas"
    syn = read(SynthResources, run / "build" / "synth" / "resources.json")
    planned, base = (syn.entry("planned"), syn.entry("baseline32")) if syn else (None, None)
    if planned:
        res.luts = planned.total.get("LUT")
        res.luts_tool = luts_tool(planned)
        res.lut_sites = lut_sites(planned.family, planned.total)
    if base:
        res.luts_baseline32 = base.total.get("LUT")


def luts_tool(entry) -> str:
    """What produced a point's LUTs: the tool, its version, the flow, and whether unrolled layers were split."""
    split = any("split" in v for v in entry.layers.values())
    return (f"{entry.tool} {entry.version or ''} synth_xilinx -family xc7 (LUT-only)"
            + (", unrolled layers as sums of channel-group runs" if split else ""))


def _estimate(plan_json: Path) -> int | None:
    from a2qflow.hw.synth.estimate import estimate_plan

    try:
        return estimate_plan(plan_json)["total"]["LUT"]
    except (A2QFlowError, KeyError, ValueError):  # a plan the model cannot read is a missing estimate, not an error
        return None


def _read_plan(build: Path):
    from a2qflow.hw.compiler.plan import load_plan

    try:
        return load_plan(build) if (build / "plan.json").is_file() else None
    except A2QFlowError:
        return None


def run_sweep(config: Path | str, out: Path | str, acc_bits: Sequence[int], weight_bits: Sequence[int] | None = None,
              methods: Sequence[str] = METHODS, stages: Sequence[str] = DEFAULT_STAGES, jobs: int = 1,
              epochs: int | None = None, progress: bool = True, executor: str = "local",
              ray_address: str | None = None, ray_cpus_per_point: float = 1.0,
              ray_num_cpus: int | None = None, prune: bool = False, command: str | None = None,
              architectures: Sequence[str] = ("folded",), qat32_bits: Sequence[int] = QAT32_BITS) -> SweepSummary:
    """Run every point (local processes or Ray tasks), then write sweep.json, sweep.md and the Pareto plots.

    prune: synthesise only the points on the Pareto front of (estimated LUTs, accuracy); the resource model ranks,
    yosys measures the front. `command` is the command line to repeat in resume hints (the CLI passes what the
    user typed)."""
    from a2qflow.flows.config import load_config
    from a2qflow.flows.executors import make_executor
    from a2qflow.flows.lock import run_lock

    check_stages(stages)
    ex = make_executor(executor, jobs, ray_address, ray_cpus_per_point, ray_num_cpus)
    cfg = load_config(config)
    out = Path(out)
    points = make_points(cfg, acc_bits, weight_bits, methods, epochs, architectures, qat32_bits)
    with run_lock(out):  # one sweep per folder: a second one fails at once naming this one's pid
        t0 = time.perf_counter()
        if prune and "synth" in stages:
            results = run_pruned(points, out, stages, ex, progress, command)
        else:
            results = run_points(points, out, stages, ex, progress, command=command)
        summary = sweep_summary(config, cfg, acc_bits, weight_bits, methods, stages, epochs, points, results,
                                time.perf_counter() - t0, ex.describe(), bool(prune and "synth" in stages))
        summary.architectures = list(architectures)
        summary.command = command  # sweep.md says what produced it
        write_outputs(out, summary)
    return summary


def sweep_summary(config, cfg, acc_bits, weight_bits, methods, stages, epochs, points, results, seconds: float,
                  executor: dict, pruned: bool) -> SweepSummary:
    """sweep.json's content (keys are public: add, never rename)."""
    ordered = [results[p.name] for p in points]
    float_acc = next((r.float_accuracy for r in ordered if r.float_accuracy is not None), None)
    return SweepSummary(config=str(config), name=cfg.name, acc_bits=list(acc_bits),
                        weight_bits=list(weight_bits) if weight_bits else None, methods=list(methods),
                        stages=list(stages), epochs=epochs if epochs is not None else cfg.train.epochs,
                        seconds=round(seconds, 1), float_accuracy=float_acc,
                        x_axis="acc_bits_built: widest accumulator the hardware builds (plan.json)", points=ordered,
                        plots=[], executor=executor, pruned=pruned)


def run_pruned(points: list[SweepPoint], out: Path, stages: Sequence[str], ex, progress: bool,
               command: str | None = None) -> dict[str, PointResult]:
    """Every point without synthesis, then synthesis only for the points on the estimated LUT / accuracy front."""
    from a2qflow.flows.pareto import pareto_front

    first = [s for s in stages if s != "synth"] or ["compile"]
    results = run_points(points, out, first if "compile" in first else [*first, "compile"], ex, progress,
                         command=command)
    ok = [r for r in results.values() if r.status == "ok" and r.luts_estimate is not None
          and r.accuracy is not None]
    front = set(pareto_front([(r.luts_estimate, r.accuracy) for r in ok]))
    keep = [p for p in points if (results[p.name].luts_estimate, results[p.name].accuracy) in front
            and results[p.name].status == "ok"]
    for p in points:
        results[p.name].synth_pruned = results[p.name].status == "ok" and p not in keep
    for name, r in run_points(keep, out, stages, ex, progress, label="synth", command=command).items():
        r.synth_pruned = False
        results[name] = r
    return results


def check_stages(stages: Sequence[str]) -> None:
    from a2qflow.flows.stages import ALL_STAGES

    bad = [s for s in stages if s not in ALL_STAGES]
    if bad:
        raise A2QFlowError(f"--stages {','.join(bad)}: unknown stage; stages are {', '.join(ALL_STAGES)}")


def failed_result(p: SweepPoint, reason: str = "") -> PointResult:
    return point_result(p, "failed", reason)


def run_points(points: list[SweepPoint], out: Path, stages: Sequence[str], ex, progress: bool, label: str = "sweep",
               fn=run_point, command: str | None = None) -> dict[str, PointResult]:
    """Results by point name, each point run by `fn` in out/points/<name>. The Ray executor gets only the points
    with something left to do (when `fn` is run_point); the others (and the infeasible ones) are collected here from
    their folders, so a re-run ships nothing that is finished."""
    from a2qflow.flows.executors import PointTask, Progress

    results: dict[str, PointResult] = {}
    tasks = []
    for p in points:
        d = out / "points" / p.name
        if ex.name == "ray" and fn is run_point and (p.config is None or not point_outdated(p, d, stages)):
            results[p.name] = finished_point(p, d)
            continue
        tasks.append(PointTask(p.name, fn, p, d, list(stages), meta=failed_result(p), extra=(command,)))
    with Progress(label, len(points), progress) as prog:
        for p in points:
            if p.name in results:
                prog.finished(p.name, results[p.name].status)
        for task, res in ex.run(tasks, prog):
            res.run = str(task.run_dir)  # where the driver keeps it (a Ray task's result is relative to it)
            results[task.name] = res
            prog.finished(task.name, res.status)
        prog.set_running(0)
    return results


def point_outdated(p: SweepPoint, run_dir: Path, stages: Sequence[str]) -> bool:
    from a2qflow.flows.config import parse_config
    from a2qflow.flows.stages import make_pipeline

    if not run_dir.is_dir():
        return True
    return bool(make_pipeline(parse_config(p.config, f"sweep point {p.name}"), run_dir,
                              acc_bits=p.forced_acc_bits).outdated(list(stages)))


def finished_point(p: SweepPoint, run_dir: Path) -> PointResult:
    """The result of a point with nothing left to run, read from its folder (as run_point would report it)."""
    res = point_result(p, run=run_dir)
    if p.config is None:
        return res
    try:
        rec = RunRecord.read(run_dir / "run.json")
    except A2QFlowError:  # a damaged run.json: the stages are unknown, the figures still come from the folder
        rec = None
    if rec is not None:
        res.stages = {r.name: "skipped" for r in rec.stages if r.status in ("done", "skipped")}
    collect(run_dir, res)
    return res


def write_outputs(out: Path, summary: SweepSummary | dict) -> SweepSummary:
    """sweep.json (paths relative to `out`), sweep.md, the Pareto plots and iso_accuracy_luts.png; returns the
    summary with its `plots` and `iso_accuracy` filled in (a dict is read as sweep.json's content first)."""
    from a2qflow.flows.iso_accuracy import iso_accuracy, plot_iso_accuracy
    from a2qflow.flows.plots import plot_pareto, tool_labels

    s = summary if isinstance(summary, SweepSummary) else SweepSummary.parse(summary, out, "sweep summary")
    ok = [p for p in s.points if p.status == "ok"]
    pts = [p.to_json() | {"acc_bits": p.acc_bits_built if p.acc_bits_built is not None else p.target_acc_bits}
           for p in ok]  # plots take plain rows
    acc_src = sorted({p.accuracy_source for p in ok if p.accuracy_source})
    if any(p.accuracy is not None for p in ok):
        plot_pareto(pts, "acc_bits", "accumulator bits (widest layer, as built)", out / "pareto_acc_bits.png",
                    s.float_accuracy, f"accuracy: {'; '.join(acc_src)}; widths: plan.json exact bounds")
        s.plots.append("pareto_acc_bits.png")
    if any(p.luts is not None and p.accuracy is not None for p in ok):
        tools = tool_labels(p.luts_tool for p in ok)
        plot_pareto(pts, "luts", "LUTs (xc7 synthesis, LUT-only MACs)", out / "pareto_luts.png",
                    s.float_accuracy, f"LUTs: {'; '.join(tools)}; accuracy: {'; '.join(acc_src)}")
        s.plots.append("pareto_luts.png")
    s.iso_accuracy = iso_accuracy(s.points, s.float_accuracy)
    if plot_iso_accuracy(s.iso_accuracy, out / "iso_accuracy_luts.png"):
        s.plots.append("iso_accuracy_luts.png")
    s.write(out / "sweep.json")
    atomic_write_text(out / "sweep.md", sweep_markdown(s))
    return s


def copy_outputs(out: Path, dest: Path, summary: SweepSummary) -> None:
    """Copy a finished sweep's sweep.json, sweep.md and plots from its folder `out` into `dest` (a benchmark's
    results folder, kept in the repository next to the figures the README quotes). sweep.json stores its points'
    folders relative to its own folder, so the copy names `points/<name>` as the original does."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ["sweep.json", "sweep.md", *summary.plots]:
        if (Path(out) / name).is_file():
            shutil.copy2(Path(out) / name, dest / name)


def sweep_markdown(s: SweepSummary | dict) -> str:
    def f(v, pct=False):
        if v is None:
            return "-"
        return f"{100 * v:.1f}" if pct else str(v)

    s = s if isinstance(s, SweepSummary) else SweepSummary.model_validate(s)
    L = [f"# Accumulator sweep: {s.name}", "",
         f"Config `{_shown(s.config)}`, {s.epochs} epochs, stages {', '.join(s.stages)}; "
         f"float reference: {f(s.float_accuracy, True)} %.{executor_note(s)}", ""]
    L += markdown.table(
        ["point", "method", "target P", "M", "N", "built P", "data-type P", "accuracy %", "measured by", "overflows",
         "LUT", "LUT @32", "status"], "llrrrrrrlrrrl",
        ([p.name, p.method, p.target_acc_bits, f(p.weight_bits), f(p.input_bits),
          f(p.acc_bits_built), f(p.acc_bits_datatype), f(p.accuracy, True), p.accuracy_source or "-",
          f(p.overflow_events), "pruned" if p.synth_pruned else f(p.luts), f(p.luts_baseline32),
          f"{p.status}{': ' + p.reason if p.reason else ''}"] for p in s.points))
    if "qat32" in s.methods:
        from a2qflow.flows.iso_accuracy import iso_markdown

        L += [""] + iso_markdown(s.iso_accuracy)
    L += [""] + [f"![{x}]({x})" for x in s.plots]
    if s.command:
        L += ["", f"Produced by `{s.command}`."]
    return "\n".join(L) + "\n"


def _shown(path: str) -> str:
    """A path as the table shows it: relative to the working folder when inside it (no machine's home in a report)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def executor_note(s: SweepSummary) -> str:
    ex = s.executor
    if not ex:
        return ""
    if ex.get("kind") == "ray":
        return f" Ran on Ray ({ex.get('address')}, {ex.get('cpus_per_point')} CPU per point)."
    return f" Ran locally ({ex.get('jobs')} process{'es' if ex.get('jobs', 1) > 1 else ''})."
