"""`a2qflow audit MODEL.onnx [--acc-bits P | --acc-bits fc0=12,fc1=14]`: check a QONNX file's accumulator bounds.

Prints, per MAC layer, K, N, M, the largest channel L1 norm, the three bounds (data type, A2Q L1, exact), the
target P and pass / fail; exits 1 when a target is violated or cannot be checked (a float layer, an unquantized
input, or no quantized MAC layer at all under --acc-bits), 2 for a file compile would refuse (the file goes through
compile's checked loading), 0 otherwise. Targets come from a2qflow's metadata or from --acc-bits.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

help = "check every layer of a QONNX file against its accumulator target (exit 1 on a violated bound)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="QONNX model (from a2qflow.export_qonnx, `a2qflow train` or any exporter)")
    p.add_argument("--acc-bits", default=None, metavar="P | LAYER=P,...",
                   help="targets to check: one P for every layer, or per layer (fc0=12,fc1=14); default: the "
                        "targets in the file's a2qflow metadata")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="also write the audit as JSON")


def parse_acc_bits(text: str | None) -> int | dict[str, int] | None:
    """'12' -> 12; 'fc0=12,fc1=14' -> {'fc0': 12, 'fc1': 14}; anything else is a one-line error."""
    from a2qflow.hw.compiler.bounds import ACC_BITS_RANGE
    from a2qflow.hw.errors import A2QFlowError

    if text is None:
        return None
    text = text.strip()
    lo, hi = ACC_BITS_RANGE.start, ACC_BITS_RANGE.stop - 1
    if re.fullmatch(r"\d+", text):
        if int(text) not in ACC_BITS_RANGE:
            raise A2QFlowError(f"--acc-bits {text!r}: widths must be between {lo} and {hi}")
        return int(text)
    out: dict[str, int] = {}
    for part in text.split(","):
        m = re.fullmatch(r"\s*([^=\s]+)\s*=\s*(\d+)\s*", part)
        if not m:
            raise A2QFlowError(f"--acc-bits {text!r}: expected one width (12) or LAYER=P pairs (fc0=12,fc1=14)")
        out[m.group(1)] = int(m.group(2))
    if any(v not in ACC_BITS_RANGE for v in out.values()):
        raise A2QFlowError(f"--acc-bits {text!r}: widths must be between {lo} and {hi}")
    return out


def _status(l: dict) -> str:
    if not l.get("audited"):
        return "-" if l.get("target_acc_bits") is None else "[bold red]UNCHECKED[/]"
    if l.get("target_acc_bits") is None:
        return "no target"
    return "[green]pass[/]" if l.get("ok") else "[bold red]FAIL[/]"


def print_audit(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Accumulator audit: {report['model']}")
    cols = ("layer", "op", "K", "N", "M", "max L1", "datatype", "L1", "exact", "target", "status")
    for col in cols:
        t.add_column(col, justify="left" if col in ("layer", "op", "status") else "right")
    for l in report["layers"]:
        if not l.get("audited"):
            target = "-" if l.get("target_acc_bits") is None else str(l["target_acc_bits"])
            t.add_row(l["name"], l["op"], *["-"] * 7, target, f"{_status(l)} ({l.get('note', '')})")
            continue
        n = f"{l['input_bits']}{'s' if l['input_signed'] else 'u'}"
        target = "-" if l.get("target_acc_bits") is None else str(l["target_acc_bits"])
        t.add_row(l["name"], l["op"], str(l["K"]), n, str(l["weight_bits"]), str(l["l1_max"]),
                  str(l["acc_bits_datatype"]), str(l["acc_bits_l1"]), str(l["acc_bits_exact"]), target, _status(l))
    c = Console()
    c.print(t)
    if not report["exported_by_a2qflow"]:
        c.print("note: no a2qflow metadata in this file (not exported by a2qflow.export_qonnx); targets only come "
                "from --acc-bits")
    for v in report["violations"][:5]:
        c.print(f"[bold red]violation:[/] {v}", highlight=False)
    if len(report["violations"]) > 5:
        c.print(f"... and {len(report['violations']) - 5} more (see --json)")


def run(args: argparse.Namespace) -> int:
    from a2qflow.hw.files import atomic_write_text, check_out_file
    from a2qflow.training.audit import audit_onnx

    if args.json is not None:
        check_out_file(args.json, "--json")
    report = audit_onnx(args.model, raise_on_violation=False, acc_bits=parse_acc_bits(args.acc_bits))
    print_audit(report)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    if not report["ok"]:
        print(f"audit failed: {len(report['violations'])} violated or unchecked target(s)", file=sys.stderr)
        return 1
    return 0
