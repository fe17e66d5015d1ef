"""`a2qflow compile MODEL.onnx --out BUILD`: lower a QONNX model and write the accumulator plan."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

help = "lower a QONNX model to integer layers and plan each layer's accumulator width (BUILD/plan.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="QONNX model, e.g. the model.onnx written by `a2qflow train`")
    p.add_argument("--out", type=Path, required=True, help="build folder (ir.json, ir.npz, plan.json, plan.md)")
    p.add_argument("--acc-bits", type=int, default=None, metavar="N",
                   help="force every layer's accumulator to N bits (default: each layer's exact bound; "
                        "32 builds the 32-bit design)")
    p.add_argument("--allow-unsafe", action="store_true",
                   help="allow --acc-bits below a layer's exact bound (can overflow; recorded as unsafe)")
    p.add_argument("--config", type=Path, default=None, metavar="CFG.yaml",
                   help="flow config whose hw.folding sets SIMD / PE per layer")


def print_plan(plan, build: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Accumulator plan: {plan.model} ({plan.policy})")
    for col in ("layer", "kind", "K", "C", "N", "M", "datatype", "L1", "exact", "target", "used", "SIMD x PE"):
        t.add_column(col, justify="left" if col in ("layer", "kind", "SIMD x PE") else "right")
    for l in plan.layers:
        used = f"[bold red]{l.acc_bits} UNSAFE[/]" if l.unsafe else f"[bold]{l.acc_bits}[/]"
        t.add_row(l.name, l.kind, str(l.K), str(l.out_channels), f"{l.input_bits}{'s' if l.input_signed else 'u'}",
                  str(l.weight_bits), str(l.acc_bits_datatype), str(l.acc_bits_l1), str(l.acc_bits_exact),
                  "-" if l.target_acc_bits is None else str(l.target_acc_bits), used,
                  f"{l.simd} x {l.pe}" if l.architecture == "folded" else "unrolled")
    c = Console()
    c.print(t)
    if plan.unsafe:
        c.print("[bold red]warning:[/] some layers use fewer bits than their exact bound and can overflow")
    c.print(f"wrote {build}/plan.json, plan.md, ir.json, ir.npz, model_int.onnx")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from a2qflow.flows.config import load_hw_config
    from a2qflow.hw.compiler.compile import compile_model

    hw = load_hw_config(args.config) if args.config is not None else None
    with Console(stderr=True).status(f"compiling {args.model}"):
        plan = compile_model(args.model, args.out, acc_bits=args.acc_bits, allow_unsafe=args.allow_unsafe,
                             folding=hw.folding if hw else None,
                             architecture=hw.architecture_config() if hw else None,
                             dsp=hw.dsp if hw else None)
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for n in plan.notes:
        print(f"note: {n}", file=sys.stderr)
    print_plan(plan, args.out)
    return 0
