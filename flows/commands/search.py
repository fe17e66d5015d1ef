"""`a2qflow search CONFIG.yaml --budget-luts N --out DIR`: the most accurate per-layer accumulator / bit-width
choice that yosys confirms fits N LUTs (sensitivity -> ILP over the resource model -> train, C-sim, synthesise)."""

from __future__ import annotations

import argparse

help = "search per-layer accumulator widths (and bits) for the most accurate design under a LUT budget"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from a2qflow.flows.commands.sweep import add_executor_arguments

    p.add_argument("config", metavar="CONFIG.yaml")
    p.add_argument("--budget-luts", type=int, required=True, metavar="N",
                   help="LUT budget (xc7 LUT-only synthesis, yosys: the flow `a2qflow synth` reports)")
    p.add_argument("--budget-dsp", type=int, default=None, metavar="D", help="DSP budget (LUT-only designs use 0)")
    p.add_argument("--out", metavar="DIR", default=None, help="search folder (default: runs/search-<config name>)")
    p.add_argument("--bits", default="2,3,4", metavar="B,B,..",
                   help="input / weight bits (N = M) offered per layer (default 2,3,4)")
    p.add_argument("--p-steps", default="0,2,4", metavar="S,S,..",
                   help="P offered per layer and bits: the data-type bound minus each step (default 0,2,4)")
    p.add_argument("--method", default="a2q+", choices=("a2q", "a2q+"), help="A2Q quantizer (default a2q+)")
    p.add_argument("--sensitivity-epochs", type=int, default=5, metavar="E",
                   help="epochs of each one-layer sensitivity training (default 5)")
    p.add_argument("--epochs", type=int, metavar="E", help="epochs of the candidates' training (default: config's)")
    p.add_argument("--candidates", type=int, default=3, metavar="K",
                   help="best distinct ILP solutions trained and synthesised (default 3)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="trainings in parallel (local processes)")
    add_executor_arguments(p)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich import get_console

    from a2qflow.flows.commands.sweep import _ints, positive
    from a2qflow.flows.search import run_search
    from a2qflow.training.config import QUANT_BITS_MAX, QUANT_BITS_MIN

    out = Path(args.out) if args.out else Path("runs") / f"search-{Path(args.config).stem}"
    # every argument is checked here, before the config is read or any training runs
    bits = _ints(args.bits, "--bits", QUANT_BITS_MIN, QUANT_BITS_MAX)
    steps = _ints(args.p_steps, "--p-steps", 0, 60) if args.p_steps.strip() else [0]
    for value, option in ((args.epochs, "--epochs"), (args.sensitivity_epochs, "--sensitivity-epochs"),
                          (args.candidates, "--candidates"), (args.jobs, "--jobs")):
        positive(value, option)
    s = run_search(args.config, out, args.budget_luts, args.budget_dsp, bits, steps,
                   args.method, args.sensitivity_epochs, args.epochs, args.candidates, args.executor, args.jobs,
                   args.ray_address, args.ray_cpus_per_point, progress=not args.no_progress)
    get_console().print(f"search: {s.chosen_name} -> {s.luts} LUTs (yosys), accuracy "
                        f"{100 * s.accuracy:.1f} % -> [bold]{out / 'search.md'}[/]")
    return 0
