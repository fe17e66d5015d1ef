"""`a2qflow hls BUILD`: write the Vitis HLS project BUILD/hls/ from plan.json (widths, folding) and the IR."""

from __future__ import annotations

import argparse

help = "generate the Vitis HLS project (top.cpp, params, tb.cpp, run_hls.tcl, vivado.tcl) into BUILD/hls"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("build", metavar="BUILD", help="build folder written by `a2qflow compile` (ir.json, plan.json)")
    p.add_argument("--config", metavar="CFG.yaml", help="flow config; its hw.vitis section sets part and clock")


def run(args: argparse.Namespace) -> int:
    from a2qflow.flows.config import load_hw_config
    from a2qflow.hw.compiler.plan import load_plan
    from a2qflow.hw.config import VitisConfig
    from a2qflow.hw.hls.generate import generate

    vitis = load_hw_config(args.config).vitis if args.config else VitisConfig()
    out = generate(args.build, vitis)
    plan = load_plan(args.build)
    print(f"wrote {out}/ for part {vitis.part} at {vitis.clock_ns} ns ({plan.policy} plan)")
    for l in plan.layers:
        print(f"  {l.name}: ACC_BITS {l.acc_bits}, SIMD {l.simd}, PE {l.pe}{'  UNSAFE' if l.unsafe else ''}")
    print(f"next: `a2qflow csim {args.build} --inputs X.npy`, or `cd {out} && vitis_hls -f run_hls.tcl`")
    return 0
