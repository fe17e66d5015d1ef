"""`a2qflow sweep CONFIG.yaml --acc-bits 10,12,14,16,20`: A2Q vs A2Q+ vs naive bit-shrinking, Pareto plots."""

from __future__ import annotations

import argparse

help = "sweep accumulator widths: accuracy vs accumulator bits and vs LUTs for A2Q, A2Q+ and naive N=M shrinking"


def _ints(text: str, option: str, lo: int = 2, hi: int = 32) -> list[int]:
    from a2qflow.hw.errors import A2QFlowError

    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise A2QFlowError(f"{option} {text!r}: expected comma-separated integers, e.g. 10,12,14,16,20") from None
    if not vals or any(v < lo or v > hi for v in vals):
        raise A2QFlowError(f"{option} {text!r}: every value must be an integer in {lo}..{hi}")
    return vals


def positive(value: int | None, option: str) -> None:
    """An optional count option (--epochs, --jobs, ...) must be at least 1: checked before any point runs, so a bad
    value is one line, not a sweep of points recorded as failed."""
    from a2qflow.hw.errors import A2QFlowError

    if value is not None and value < 1:
        raise A2QFlowError(f"{option} {value}: must be at least 1")


def names(text: str, option: str, choices: tuple[str, ...]) -> list[str]:
    """A comma-separated list of names from `choices` (at least one; unknown names are one line)."""
    from a2qflow.hw.errors import A2QFlowError

    out = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in out if m not in choices]
    if not out or bad:
        what = f"{','.join(bad)}: unknown" if bad else f"{text!r}: empty"
        raise A2QFlowError(f"{option} {what}; choose one or more of {', '.join(choices)}")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG.yaml")
    p.add_argument("--out", metavar="SWEEP", default=None, help="sweep folder (default: runs/sweep-<config name>)")
    p.add_argument("--acc-bits", required=True, metavar="P,P,..", help="target accumulator widths, e.g. 10,12,14,16,20")
    p.add_argument("--weight-bits", metavar="M,M,..", help="weight widths for a2q / a2q+ (default: the config's)")
    p.add_argument("--methods", default="a2q,a2q+,naive", metavar="A,B",
                   help="any of a2q, a2q+, naive, qat32 (default: the first three). qat32 is what the A2Q "
                        "paper compares against: unconstrained QAT at M = N with 32-bit accumulators; with it sweep.md "
                        "reports LUTs at iso-accuracy")
    p.add_argument("--architecture", default="folded", metavar="A,B",
                   help="datapaths to build every point with: folded, unrolled or folded,unrolled (default folded)")
    p.add_argument("--qat32-bits", default="2,3,4,5,6,8", metavar="M,M,..",
                   help="M = N of the qat32 points (default 2,3,4,5,6,8)")
    p.add_argument("--stages", default="csim,synth", metavar="A,B",
                   help="stages per point (and what they need); default csim,synth: hardware accuracy + LUTs. "
                        "train,compile is the quickest accuracy-vs-bits sweep")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="points run in parallel (local processes)")
    add_executor_arguments(p)
    p.add_argument("--epochs", type=int, metavar="E", help="override train.epochs for every point")
    p.add_argument("--prune", action="store_true",
                   help="synthesise only the points on the Pareto front of (estimated LUTs, accuracy); the resource "
                        "model (hw/synth/estimate.py) ranks, yosys measures the front")
    p.add_argument("--no-progress", action="store_true")


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """--executor local|ray and its Ray options (shared with `a2qflow search`)."""
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: this machine (--jobs processes); ray: each point is a Ray task (docs/flow.md)")
    p.add_argument("--ray-address", metavar="ADDR", default=None,
                   help="join an existing Ray cluster at its head's address HOST:PORT (e.g. 10.0.0.5:6379, from "
                        "a node of the cluster); default: start Ray locally")
    p.add_argument("--ray-cpus-per-point", type=float, default=1.0, metavar="C",
                   help="CPUs each point's Ray task declares (default 1: training uses one torch thread)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich import get_console

    from a2qflow.flows.commands.run import parse_stages
    from a2qflow.flows.sweep import run_sweep

    out = Path(args.out) if args.out else Path("runs") / f"sweep-{Path(args.config).stem}"
    from a2qflow.flows.sweep import ARCHITECTURES, EXTRA_METHODS, METHODS
    from a2qflow.hw.compiler.bounds import ACC_BITS_MAX, ACC_BITS_MIN
    from a2qflow.hw.errors import A2QFlowError
    from a2qflow.training.config import QUANT_BITS_MAX, QUANT_BITS_MIN

    # every argument is checked here, before the config is read or any point runs
    acc_bits = _ints(args.acc_bits, "--acc-bits", ACC_BITS_MIN, ACC_BITS_MAX)
    weight_bits = (_ints(args.weight_bits, "--weight-bits", QUANT_BITS_MIN, QUANT_BITS_MAX) if args.weight_bits
                   else None)
    methods = names(args.methods, "--methods", tuple(METHODS) + tuple(EXTRA_METHODS))
    architectures = names(args.architecture, "--architecture", tuple(ARCHITECTURES))
    qat32_bits = _ints(args.qat32_bits, "--qat32-bits", QUANT_BITS_MIN, QUANT_BITS_MAX)
    if not args.stages.strip():
        raise A2QFlowError("--stages '': empty; give at least one stage, e.g. csim,synth or train,compile")
    stages = parse_stages(args.stages) or []
    positive(args.epochs, "--epochs")
    positive(args.jobs, "--jobs")
    s = run_sweep(args.config, out, acc_bits, weight_bits, methods, stages,
                  jobs=args.jobs, epochs=args.epochs, progress=not args.no_progress, executor=args.executor,
                  ray_address=args.ray_address, ray_cpus_per_point=args.ray_cpus_per_point, prune=args.prune,
                  command=getattr(args, "_command_line", None), architectures=architectures, qat32_bits=qat32_bits)
    ok = sum(p.status == "ok" for p in s.points)
    get_console().print(f"sweep: {ok}/{len(s.points)} points ok -> [bold]{out / 'sweep.md'}[/] "
                        f"({', '.join(s.plots) or 'no plots'})")
    for p in s.points:
        if p.status == "failed":
            get_console().print(f"[red]{p.name}[/]: {p.reason}")
    return 0 if ok else 1
