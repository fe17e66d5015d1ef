"""`a2qflow` command line: one sub-command per stage, each in its own module `flows/commands/<name>.py`.

Each module provides `help: str`, `add_arguments(parser)` and `run(args) -> int`. Modules import lazily so
`a2qflow --help` stays fast (no torch import). User errors (A2QFlowError) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import warnings

COMMANDS = ["train", "quantize", "compile", "audit", "hls", "csim", "rtl", "rtlsim", "synth", "bitstream", "report",
            "run", "sweep", "search"]


def _load(name: str):
    try:
        return importlib.import_module(f"a2qflow.flows.commands.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"a2qflow.flows.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    from a2qflow import __version__

    p = argparse.ArgumentParser(prog="a2qflow", description="Accumulator-aware QNNs from training to bitstream.")
    p.add_argument("--version", action="version", version=f"a2qflow {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = _load(name)
        if mod is None:
            continue
        sp = sub.add_parser(name, help=mod.help, description=mod.help)
        mod.add_arguments(sp)
        sp.set_defaults(_module=mod)
    return p


def _one_line_warnings(show):
    """A showwarning that prints a2qflow's own warnings (an all-zero layer, an old name) as one `warning: ...` line
    and hands every other warning to `show` (what was installed before)."""

    def f(message, category, filename, lineno, file=None, line=None) -> None:
        from a2qflow.hw.compiler.plan import AllZeroLayerWarning
        from a2qflow.hw.errors import DeprecatedNameWarning

        if issubclass(category, (AllZeroLayerWarning, DeprecatedNameWarning)):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return f


def main(argv: list[str] | None = None) -> int:
    # One torch thread per process unless the user says otherwise: 2-core machines train ~20x faster.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from a2qflow.hw.errors import A2QFlowError

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:  # `a2qflow` alone: show what it can do
        parser.print_help()
        return 0
    args._command_line = shlex.join(["a2qflow", *argv])  # resume hints repeat exactly what the user typed
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            from a2qflow.flows.lock import command_lock

            with command_lock(args.command, args):  # a command writing into a busy run folder fails at once
                return int(args._module.run(args) or 0)
    except A2QFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: finished stages are kept; re-run `{args._command_line}` to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
