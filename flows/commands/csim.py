"""`a2qflow csim BUILD --inputs X.npy`: C-simulate the generated HLS design on a whole test set (g++ + ap_types)
and compare it with the golden model bit for bit; writes BUILD/csim/outputs.npy and csim.json."""

from __future__ import annotations

import argparse
from pathlib import Path

help = "C-simulate the HLS design on a test set and compare with the golden model (BUILD/csim/csim.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("build", metavar="BUILD", help="build folder written by `a2qflow compile`")
    p.add_argument("--inputs", required=True, metavar="X.npy",
                   help="inputs (N, *input_shape) or (N, K): float (quantized by the model) or integer")
    p.add_argument("--labels", metavar="Y.npy",
                   help="labels for top-1 accuracy (default: a sibling *labels.npy of X.npy, if one exists)")
    p.add_argument("--no-monitor", action="store_true",
                   help="build without the overflow monitor (exactly the synthesised datapath; no overflow counts)")
    p.add_argument("--config", metavar="CFG.yaml", help="flow config (hw.vitis part / clock for the HLS project)")


def run(args: argparse.Namespace) -> int:
    from a2qflow.flows.config import load_hw_config
    from a2qflow.hw.arrays import check_labels, load_npy
    from a2qflow.hw.compiler.ir import num_classes
    from a2qflow.hw.compiler.plan import load_build
    from a2qflow.hw.hls.csim import run_csim

    vitis = load_hw_config(args.config).vitis if args.config else None
    model, _ = load_build(args.build)
    x_path = Path(args.inputs)
    x = load_npy(x_path, "--inputs")
    labels = None
    sibling = x_path.parent / x_path.name.replace("inputs", "labels")
    if args.labels or ("inputs" in x_path.name and sibling.is_file()):
        y_path = Path(args.labels) if args.labels else sibling
        labels = check_labels(load_npy(y_path, "--labels"), len(x), num_classes(model), f"--labels {y_path}")
    res = run_csim(args.build, x, labels=labels, monitor=not args.no_monitor, vitis=vitis, inputs_name=str(x_path))
    s = res.summary
    print(f"C-sim {s['model']} ({s['policy']}): {s['samples']} samples, {s['mismatches']} mismatching vs golden model, "
          f"{s['seconds']['run']:.2f} s ({s['inferences_per_second']} inferences/s)")
    if s["overflow_events"] is not None:
        per = ", ".join(f"{k} {v}" for k, v in s["overflow_events_per_layer"].items())
        print(f"overflow events: {s['overflow_events']} ({per})")
    if s["top1_accuracy"] is not None:
        print(f"top-1 accuracy: {100 * s['top1_accuracy']:.2f}% (golden model {100 * s['golden_top1_accuracy']:.2f}%)")
    print(f"wrote {Path(args.build) / 'csim' / 'csim.json'} and outputs.npy")
    if s["mismatches"]:
        print(f"error: {res.comparison.message()}; see csim.json")
        return 1
    return 0
