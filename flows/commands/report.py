"""`a2qflow report BUILD`: report.md + report.json + PNG plots from a run's (or a build's) results."""

from __future__ import annotations

import argparse

help = "collect a run's results into report.md, report.json and PNG plots"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="BUILD", help="a RUN folder (from `a2qflow run`) or a BUILD folder with plan.json")
    p.add_argument("--train", metavar="DIR", help="training folder with metrics.json / audit.json "
                   "(default: RUN/train, or a train/ folder beside BUILD)")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default: RUN/report)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from a2qflow.flows.report import Layout, build_report

    lay = Layout.find(args.path, args.train, args.out)
    build_report(args.path, args.train, args.out, plots=not args.no_plots)
    Console().print(f"report: [bold]{lay.out / 'report.md'}[/] (+ report.json, plots)")
    return 0
