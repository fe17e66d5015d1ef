"""`a2qflow rtl BUILD`: generate the Verilog design (BUILD/rtl/: sources, weight / threshold memories, manifest)."""

from __future__ import annotations

import argparse

help = "generate the RTL design (Verilog + $readmemh memories + manifest.json) into BUILD/rtl"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("build", metavar="BUILD", help="build folder written by `a2qflow compile` (ir.json, plan.json)")
    p.add_argument("--lint", action="store_true", help="also run `verilator --lint-only -Wall` on the result")


def run(args: argparse.Namespace) -> int:
    import json

    from a2qflow.hw.rtl.generate import generate

    rtl = generate(args.build)
    man = json.loads((rtl / "manifest.json").read_text())
    arch = man.get("architecture", {})
    widths = ", ".join(f"{k} P={v}{' unrolled' if arch.get(k) == 'unrolled' else ''}"
                       for k, v in man["acc_bits"].items())
    print(f"wrote {rtl}: top {man['top']} ({len(man['sources'])} sources, {len(man['mem_files'])} memory files); "
          f"{man['policy']}: {widths}")
    if args.lint:
        from a2qflow.hw.rtl.sim import lint

        msgs = lint(rtl)
        for m in msgs:
            print(m)
        if msgs:
            print("error: Verilator lint is not clean")
            return 1
        print("verilator --lint-only -Wall: clean")
    return 0
