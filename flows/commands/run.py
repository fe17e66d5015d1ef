"""`a2qflow run CONFIG.yaml --out RUN`: the whole flow, resumable stage by stage."""

from __future__ import annotations

import argparse

from a2qflow.flows.stages import ALL_STAGES

help = "train -> compile -> hls -> csim -> rtl -> rtlsim -> synth (+ the 32-bit design) -> bitstream -> report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG.yaml", help="flow config (e.g. flows/configs/digits_mlp.yaml)")
    p.add_argument("--out", metavar="RUN", required=True, help="run folder; re-running with the same folder resumes")
    p.add_argument("--from", dest="redo_from", metavar="STAGE", choices=ALL_STAGES,
                   help=f"redo this stage and every later one even if up to date ({', '.join(ALL_STAGES)})")
    p.add_argument("--stages", metavar="A,B,..",
                   help="run only these stages (and what they need), e.g. --stages csim or --stages train,compile")
    p.add_argument("--acc-bits", type=int, metavar="P", help="force every layer's accumulator to P bits "
                   "(default: each layer's exact bound)")
    p.add_argument("--allow-unsafe", action="store_true", help="allow --acc-bits below a layer's exact bound")
    p.add_argument("--no-progress", action="store_true", help="no live progress display")


def parse_stages(text: str | None) -> list[str] | None:
    from a2qflow.hw.errors import A2QFlowError

    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in ALL_STAGES]
    if bad:
        raise A2QFlowError(f"--stages {','.join(bad)}: unknown stage; stages are {', '.join(ALL_STAGES)}")
    return names


def run(args: argparse.Namespace) -> int:
    from rich import get_console
    from rich.table import Table

    from a2qflow.flows.config import load_config
    from a2qflow.flows.stages import make_pipeline

    cfg = load_config(args.config)
    only = parse_stages(args.stages)
    hint = f"re-run `{getattr(args, '_command_line', None) or f'a2qflow run {args.config} --out {args.out}'}`"
    pipe = make_pipeline(cfg, args.out, acc_bits=args.acc_bits, allow_unsafe=args.allow_unsafe, command_hint=hint)
    console = get_console()  # shared with backends' own progress bars, so rich nests them in one display
    result = pipe.run(only=only, redo_from=args.redo_from, progress=not args.no_progress, console=console)
    t = Table(title=f"a2qflow run {cfg.name} -> {args.out}")
    for c in ("stage", "status", "seconds", "note"):
        t.add_column(c)
    for r in result.results:
        t.add_row(r.name, r.status, f"{r.seconds:.1f}", r.reason)
    console.print(t)
    report = pipe.stage_dir("report") / "report.md"
    if result.status("report") in ("done", "skipped"):
        console.print(f"report: [bold]{report}[/]")
    return 0
