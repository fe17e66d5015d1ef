"""Accuracy vs target accumulator width P on 8x8 digits: float, unconstrained (no P), A2Q and A2Q+ at
W8/A8 and W4/A4, P in {10, 12, 14, 16, 20}; plus seconds per training epoch.

Every point is a full `training.train.run_training` (train, QONNX export, audit), so each A2Q accuracy comes from a
model whose exported integer weights were checked against its P. Writes
  benchmarks/results/train_digits.json  (all numbers, with tool versions and settings)
  benchmarks/results/train_digits.md    (the Markdown table for the README)
  benchmarks/results/train_digits.png   (accuracy vs P)
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_digits.py [--epochs 20] [--out benchmarks/results]
     ... --markdown-only rewrites train_digits.md from the stored train_digits.json (trains nothing).
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
from _common import result_options, rewrite_markdown  # noqa: E402

from a2qflow.flows.config import parse_config  # noqa: E402
from a2qflow.hw.files import atomic_write_json, atomic_write_text  # noqa: E402
from a2qflow.training.config import current_weight_quant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
P_VALUES = [10, 12, 14, 16, 20]
PRECISIONS = [8, 4]
QUANTS = ["a2q", "a2q+"]


def point_config(base: dict, bits: int, wq: str, P: int | None, epochs: int, float_ref: bool) -> dict:
    d = yaml.safe_load(yaml.safe_dump(base))
    d["name"] = f"digits_mlp_w{bits}a{bits}_{wq}" + (f"_p{P}" if P else "")
    d["quant"].update(weight_quant=wq, weight_bits=bits, input_bits=bits, act_bits=bits, acc_bits=P, layers={})
    d["train"].update(epochs=epochs, float_reference=float_ref)
    return d


def main(argv: list[str] | None = None) -> int:
    import brevitas
    import torch
    from rich.progress import Progress

    from a2qflow.training.train import run_training

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "flows" / "configs" / "digits_mlp.yaml")
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's train.epochs")
    result_options(ap, "train_digits")
    args = ap.parse_args(argv)
    if args.markdown_only:
        return rewrite_markdown(args.out, "train_digits", markdown)
    base = yaml.safe_load(args.config.read_text())
    epochs = args.epochs or base.get("train", {}).get("epochs", 20)

    jobs = []
    for bits in PRECISIONS:
        jobs.append((bits, "unconstrained", None, bits == PRECISIONS[0]))  # the float twin once: it ignores bits
        jobs += [(bits, wq, P, False) for wq in QUANTS for P in P_VALUES]
    points, float_point = [], None
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Progress() as bar:
        task = bar.add_task("benchmark", total=len(jobs))
        for bits, wq, P, float_ref in jobs:
            cfg = parse_config(point_config(base, bits, wq, P, epochs, float_ref), str(args.config))
            bar.update(task, description=f"W{bits}A{bits} {wq} P={P or '-'}")
            m = run_training(cfg, Path(tmp) / cfg.name, progress=False)
            import json

            audit = json.loads((Path(tmp) / cfg.name / "audit.json").read_text())
            layers = [l for l in audit["layers"] if l.get("audited")]
            points.append({
                "weight_bits": bits, "input_bits": bits, "weight_quant": wq, "target_acc_bits": P,
                "test_accuracy": m["test_accuracy"], "val_accuracy": m["val_accuracy"], "best_epoch": m["best_epoch"],
                "seconds_per_epoch": m["seconds_per_epoch"], "audit_ok": audit["ok"],
                "acc_bits_exact_max": max(l["acc_bits_exact"] for l in layers),
                "l1_margin_min": min((l["l1_margin"] for l in layers if "l1_margin" in l), default=None),
                "weight_sparsity": {k: v["weight_sparsity"] for k, v in m["layers"].items()},
            })
            if float_ref:
                float_point = {"test_accuracy": m["float_test_accuracy"], "from_run": cfg.name}
            bar.advance(task)
    result = {
        "benchmark": "train_digits",
        "produced_by": "benchmarks/train_digits.py (a2qflow training.train.run_training)",
        "tools": {"torch": torch.__version__, "brevitas": brevitas.__version__, "python": platform.python_version()},
        "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "dataset": "digits (scikit-learn load_digits, 360-sample test split, split_seed 0)",
        "model": base["model"], "epochs": epochs, "seed": base.get("seed", 0),
        "train": {k: v for k, v in base.get("train", {}).items() if k != "epochs"},
        "float": float_point, "points": points,
        "wall_seconds": time.perf_counter() - t_start,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "train_digits.json", result)
    atomic_write_text(args.out / "train_digits.md", markdown(result))
    plot(result, args.out / "train_digits.png")
    print(markdown(result))
    return 0


def _acc(points, bits, wq, P=None) -> str:
    for p in points:  # results written before the preset rename say "baseline"
        if (p["weight_bits"], current_weight_quant(p["weight_quant"]), p["target_acc_bits"]) == (bits, wq, P):
            return f"{100 * p['test_accuracy']:.1f}"
    return "-"


def markdown(r: dict) -> str:
    pts = r["points"]
    cols = [(b, wq) for b in PRECISIONS for wq in QUANTS]
    head = "| target P | " + " | ".join(f"W{b}A{b} {wq}" for b, wq in cols) + " |\n"
    head += "|---:|" + "---:|" * len(cols) + "\n"
    rows = [f"| {P} | " + " | ".join(_acc(pts, b, wq, P) for b, wq in cols) + " |" for P in P_VALUES]
    base = "| unconstrained (no P) | " + " | ".join(_acc(pts, b, "unconstrained") if wq == QUANTS[0] else ""
                                                  for b, wq in cols)
    spe = [p["seconds_per_epoch"] for p in pts]
    flt = r["float"]["test_accuracy"] if r.get("float") else None
    return (f"Digits test accuracy (%), MLP {r['model'].get('hidden')} hidden, {r['epochs']} epochs, seed {r['seed']}; "
            f"measured by `benchmarks/train_digits.py` (torch {r['tools']['torch']}, brevitas "
            f"{r['tools']['brevitas']}, {r['machine']['torch_threads']} thread).\n\n"
            + head + "\n".join(rows) + "\n" + base + " |\n\n"
            + (f"Float twin (same architecture, no quantizers): {100 * flt:.1f}%. " if flt is not None else "")
            + f"Training time: {min(spe):.2f}-{max(spe):.2f} s per epoch (median "
            f"{sorted(spe)[len(spe) // 2]:.2f} s), quantized model, 1 CPU thread. Every A2Q / A2Q+ model passed the "
            f"audit of its exported QONNX file against its P.\n")


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for bits, color in zip(PRECISIONS, ("tab:blue", "tab:orange")):
        for wq, style in zip(QUANTS, ("-o", "--s")):
            ys = [next(p["test_accuracy"] for p in r["points"] if (p["weight_bits"], p["weight_quant"],
                                                                    p["target_acc_bits"]) == (bits, wq, P))
                  for P in P_VALUES]
            ax.plot(P_VALUES, [100 * y for y in ys], style, color=color, label=f"W{bits}A{bits} {wq}")
        b = next(p["test_accuracy"] for p in r["points"]
                 if (p["weight_bits"], current_weight_quant(p["weight_quant"])) == (bits, "unconstrained"))
        ax.axhline(100 * b, color=color, lw=0.8, ls=":", label=f"W{bits}A{bits} unconstrained (no P)")
    if r.get("float"):
        ax.axhline(100 * r["float"]["test_accuracy"], color="k", lw=0.8, label="float")
    ax.set_xlabel("target accumulator width P (bits)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("8x8 digits MLP: accuracy vs accumulator width (benchmarks/train_digits.py)", fontsize=9)
    ax.set_xticks(P_VALUES)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
