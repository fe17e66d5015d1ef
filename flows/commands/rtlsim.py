"""`a2qflow rtlsim BUILD --inputs X.npy`: simulate the generated RTL with Verilator and compare it with the golden
model bit for bit; reports cycles per inference. Writes BUILD/rtlsim/outputs.npy and rtlsim.json."""

from __future__ import annotations

import argparse
from pathlib import Path

help = "simulate the RTL design with Verilator, compare with the golden model (BUILD/rtlsim/rtlsim.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("build", metavar="BUILD", help="build folder written by `a2qflow compile`")
    p.add_argument("--inputs", required=True, metavar="X.npy",
                   help="inputs (N, *input_shape) or (N, K): float (quantized by the model) or integer")
    p.add_argument("--labels", metavar="Y.npy", help="labels: rtlsim.json then reports the RTL outputs' top-1")
    p.add_argument("--limit", type=int, metavar="N", help="simulate only the first N samples")
    p.add_argument("--stall", type=int, default=0, metavar="PERCENT",
                   help="drop in_valid / out_ready at random this often (tests back-pressure; default 0)")
    p.add_argument("--csim", action="store_true", help="also compare with the HLS C-simulation on the same inputs")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from a2qflow.hw.arrays import check_labels, load_npy
    from a2qflow.hw.compiler.ir import num_classes
    from a2qflow.hw.compiler.plan import load_build
    from a2qflow.hw.errors import A2QFlowError
    from a2qflow.hw.rtl.sim import run_rtlsim

    model, _ = load_build(args.build)
    x_path = Path(args.inputs)
    x = load_npy(x_path, "--inputs")
    labels = None
    if args.labels:
        labels = check_labels(load_npy(args.labels, "--labels"), len(x), num_classes(model), f"--labels {args.labels}")
    if args.limit is not None:
        if args.limit < 1:
            raise A2QFlowError(f"--limit {args.limit}: must be at least 1")
        x = x[: args.limit]
        labels = None if labels is None else labels[: args.limit]
    if not 0 <= args.stall < 100:
        raise A2QFlowError(f"--stall {args.stall}: must be a percentage in [0, 100)")
    cs = None
    if args.csim:
        from a2qflow.hw.hls.csim import run_csim

        with Console(stderr=True).status("C-sim: g++ on the same inputs"):
            cs = run_csim(args.build, x, monitor=False, progress=False, write=False).outputs
    with Console(stderr=True).status("Verilator: generating, building (cached by source hash) and simulating"):
        r = run_rtlsim(args.build, x, stall_percent=args.stall, csim_outputs=cs, source=f"--inputs {x_path}",
                       labels=labels)
    ii = r["initiation_interval_cycles"]
    print(f"RTL sim ({r['policy']}): {r['samples']} samples, {r['mismatches']} mismatching vs golden model; "
          f"{r['cycles_per_inference']} cycles per inference (latency), "
          f"{'-' if ii is None else f'{ii:.1f}'} cycles between inferences; {r['seconds']:.2f} s, {r['verilator']}")
    if r["csim_mismatches"] is not None:
        print(f"RTL vs C-sim: {r['csim_mismatches']} mismatching samples")
    print(f"wrote {Path(args.build) / 'rtlsim' / 'rtlsim.json'} and outputs.npy")
    if r["mismatches"] or r["csim_mismatches"]:
        bad = r.golden_comparison if r["mismatches"] else r.csim_comparison
        print(f"error: {bad.message()}")
        return 1
    return 0
