"""`a2qflow bitstream BUILD`: a real iCE40 / ECP5 bitstream of the generated design inside a self-test shell."""

from __future__ import annotations

import argparse

help = "place and route BUILD/rtl in a self-test shell (yowasp-nextpnr) and pack a bitstream"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from a2qflow.hw.synth.bitstream import TARGETS

    p.add_argument("build", metavar="BUILD", help="a build folder with ir.json, plan.json (from `a2qflow compile`)")
    p.add_argument("--target", choices=list(TARGETS), default="ice40-up5k", help="FPGA part (default: ice40-up5k)")
    p.add_argument("--clock-mhz", type=float, default=12.0, help="clock constraint for nextpnr (default: 12)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--samples", type=int, default=2, help="test vectors in the self-test ROM (default: 2)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from a2qflow.hw.errors import A2QFlowError
    from a2qflow.hw.rtl.generate import ensure_generated
    from a2qflow.hw.synth.bitstream import build_bitstream, selftest_for_build

    if args.samples < 1:
        raise A2QFlowError(f"--samples {args.samples}: must be at least 1")
    ensure_generated(Path(args.build))
    res = build_bitstream(args.build, target=args.target, clock_mhz=args.clock_mhz, seed=args.seed,
                          test=selftest_for_build(Path(args.build), samples=args.samples))
    lc = ", ".join(f"{k} {v}" for k, v in res["utilisation_text"].items())
    Console().print(f"{res['target']}: [bold]{args.build}/bitstream/{res['bitstream']}[/], Fmax {res['fmax_mhz']} MHz "
                    f"(constraint {res['constraint_mhz']} MHz, {'met' if res['timing_met'] else 'NOT met'}); {lc}")
    return 0
