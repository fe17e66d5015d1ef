"""Accumulator-aware post-training quantization on mnist5k: rtn vs AXE-GPFQ vs AXE-OPTQ, real vs zero-shot data.

Float models (trained here by training.fit.fit, the trainer's own loop, one per seed):
  mlp = MLP 784-64-32-10 (the model of flows/configs/mnist5k_mlp.yaml; no BatchNorm, so no zero-shot rows)
  cnn = LeNet-style CNN conv 8 -> BN -> ReLU -> pool, conv 16 -> BN -> ReLU -> pool, fc 784 -> 10
        (flows/configs/mnist5k_cnn.yaml with batch_norm: true, which zero-shot calibration needs)
Grid: W4A4 and W8A8 (A2Q weights, unsigned inputs, every layer), P in {12, 14, 16}; methods rtn, axe-gpfq,
axe-optq (training.axe); calibration = 512 training images, or (cnn) 512 inputs synthesised from the BN statistics
(training.zeroshot, 200 Adam steps per batch of 64). Each row is `training.ptq.quantize_float_model` followed by
`a2qflow.export_qonnx`, which audits every channel of the exported file against its bound; the accuracy is top-1
on mnist5k's 1,000 test images. One model per (model, precision) is also compiled and C-simulated on 200 test
images against the golden model (g++), so the PTQ path is checked down to the generated C++.

Rows are cached one by one in benchmarks/results/ptq.json: a re-run skips finished rows. Order: the mlp's rows
(all seeds, then its ablation rows), then the cnn's, seed 0 of every cnn row before seed 1. `--budget-minutes`
stops starting new rows; the .md says how many seeds each row has.
Ablation (`--ablation`): AXE as published (the quantizer's max-scale, AXE's untuned soft threshold, GPFQ without
damping) on the mlp, to show what a2qflow's changes to it buy.
Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ptq.py --budget-minutes 60 [--ablation]
     .venv/bin/python benchmarks/ptq.py --readme-only   (re-render ptq.md from ptq.json, copy its tables to README)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import fill_readme_block, publish, training_header  # noqa: E402

from a2qflow.hw.files import atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEEDS = (0, 1, 2)
BITS = (4, 8)
PS = (12, 14, 16)
METHODS = ("rtn", "axe-gpfq", "axe-optq")
SAMPLES = 512
MODELS = {"mlp": {"kind": "mlp", "hidden": [64, 32]},
          "cnn": {"kind": "cnn", "conv_channels": [8, 16], "kernel_size": 3, "batch_norm": True, "pool": True,
                  "hidden": []}}
ABLATION = ("axe-gpfq-paper", "axe-optq-paper")  # AXE as published (max-scale, AXE's lambda, undamped GPFQ)
GOALS = [("W4A4", "P14", 0.98), ("W8A8", "P16", 0.98)]  # AXE with real data: share of float (the goals)


def row_key(model: str, bits: int, P: int, method: str, calib: str, seed: int) -> str:
    return f"{model}/W{bits}A{bits}/P{P}/{method}/{calib}/seed{seed}"


def all_rows() -> list[tuple]:
    """mlp before cnn (the mlp is cheap), seed-major inside a model, goal rows first inside a seed."""
    rows = []
    for model in MODELS:
        for seed in SEEDS:
            cals = ("data", "zero-shot") if model == "cnn" else ("data",)
            grid = [(model, b, p, m, c, seed) for b in BITS for p in PS for m in METHODS for c in cals]
            goal = [r for r in grid if (f"W{r[1]}A{r[1]}", f"P{r[2]}") in [(g[0], g[1]) for g in GOALS]]
            rows += goal + [r for r in grid if r not in goal]
    return rows


def ablation_rows() -> list[tuple]:
    """AXE as published on the mlp, every precision and P, real data: what a2qflow's three changes buy."""
    return [("mlp", b, p, m, "data", seed) for seed in SEEDS for b in BITS for p in PS for m in ABLATION]


class Floats:
    """Float models and calibration sets, one per (model, seed), built once per process."""

    def __init__(self):
        from a2qflow.training.config import DataConfig
        from a2qflow.training.data import load_dataset

        self.splits = load_dataset(DataConfig(dataset="mnist5k"))
        self.cache: dict = {}

    def data(self, model: str) -> dict:
        import numpy as np
        import torch

        from a2qflow.training.config import ModelConfig
        from a2qflow.training.models import model_input_shape

        shape = model_input_shape(ModelConfig(**MODELS[model]), self.splits.image_shape)
        sp = self.splits
        x = lambda a: torch.from_numpy(np.ascontiguousarray(a.reshape(len(a), *shape), dtype=np.float32))  # noqa
        return {"x_train": x(sp.x_train), "y_train": torch.from_numpy(sp.y_train), "x_val": x(sp.x_val),
                "y_val": torch.from_numpy(sp.y_val), "x_test": x(sp.x_test), "y_test": torch.from_numpy(sp.y_test)}

    def get(self, model: str, seed: int) -> dict:
        """{"net", "data", "float_test_accuracy", "train_seconds", "calib": {"data": x, "zero-shot": x}}."""
        if (model, seed) in self.cache:
            return self.cache[(model, seed)]
        import torch

        from a2qflow.training.config import ModelConfig, TrainConfig
        from a2qflow.training.fit import accuracy, fit, seed_everything
        from a2qflow.training.models import build_model
        from a2qflow.training.quant import LayerSpec

        cfg = ModelConfig(**MODELS[model])
        n = len(cfg.hidden) + 1 + (len(cfg.conv_channels) if model == "cnn" else 0)
        specs = [LayerSpec(f"l{i}", "float", 8, 8, False, None) for i in range(n)]
        data = self.data(model)
        seed_everything(seed)
        net = build_model(cfg, specs, self.splits.image_shape, self.splits.num_classes, float_twin=True)
        t0 = time.perf_counter()
        fit(net, data, TrainConfig(epochs=20, lr=0.01), seed, f"{model} float seed {seed}", False)
        entry = {"net": net.eval(), "data": data, "train_seconds": time.perf_counter() - t0,
                 "float_test_accuracy": accuracy(net, data["x_test"], data["y_test"]), "calib": {}}
        gen = torch.Generator().manual_seed(seed)
        entry["calib"]["data"] = data["x_train"][torch.randperm(len(data["x_train"]), generator=gen)[:SAMPLES]]
        self.cache[(model, seed)] = entry
        return entry

    def calibration(self, model: str, seed: int, kind: str):
        e = self.get(model, seed)
        if kind not in e["calib"]:
            from a2qflow.training.zeroshot import synthesize

            t0 = time.perf_counter()
            e["calib"][kind] = synthesize(e["net"], tuple(e["data"]["x_train"].shape[1:]), samples=SAMPLES, seed=seed)
            e["zero_shot_seconds"] = time.perf_counter() - t0
        return e["calib"][kind]


def run_row(row: tuple, floats: Floats) -> dict:
    """Quantize, measure, export (the export audits every channel); the numbers kept in the JSON."""
    import warnings

    import a2qflow
    from a2qflow.training.fit import accuracy
    from a2qflow.training.ptq import quantize_float_model

    model, bits, P, method, calib, seed = row
    paper = method.endswith("-paper")
    method = method.removesuffix("-paper")
    e = floats.get(model, seed)
    x = floats.calibration(model, seed, calib)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        res = quantize_float_model(e["net"], x, method=method, acc_bits=P, weight_bits=bits, act_bits=bits,
                                   input_bits=bits, seed=seed, input_shape=tuple(e["data"]["x_train"].shape[1:]),
                                   paper_axe=paper)
        seconds = time.perf_counter() - t0
        acc = accuracy(res.net, e["data"]["x_test"], e["data"]["y_test"])
        with tempfile.TemporaryDirectory() as tmp:
            audit = a2qflow.export_qonnx(res.net, e["data"]["x_val"][:16], Path(tmp) / "m.onnx")["audit"]
    return {"test_accuracy": acc, "float_test_accuracy": e["float_test_accuracy"], "seconds": seconds,
            "zero_shot_seconds": e.get("zero_shot_seconds") if calib == "zero-shot" else None,
            "audit_ok": audit["ok"], "l1_margin_min": min(l["l1_margin"] for l in audit["layers"]),
            "zero_fraction": {k: v["zero_fraction"] for k, v in res.layers.items()},
            "acc_bits_exact": {l["name"]: l["acc_bits_exact"] for l in audit["layers"]}}


def run_csim(model: str, bits: int, floats: Floats) -> dict:
    """One PTQ model (seed 0, axe-optq, real data, P=14) compiled and C-simulated on 200 test images."""
    import warnings

    import a2qflow
    from a2qflow.training.ptq import quantize_float_model

    e = floats.get(model, 0)
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.filterwarnings("ignore")
        res = quantize_float_model(e["net"], e["calib"]["data"], method="axe-optq", acc_bits=14, weight_bits=bits,
                                   act_bits=bits, input_bits=bits, seed=0)
        a2qflow.export_qonnx(res.net, e["data"]["x_val"][:16], Path(tmp) / "m.onnx")
        plan = a2qflow.compile(Path(tmp) / "m.onnx", Path(tmp) / "b")
        cs = a2qflow.csim(Path(tmp) / "b", e["data"]["x_test"][:200].numpy(), e["data"]["y_test"][:200].numpy())
    return {"samples": cs.summary["samples"], "mismatches": cs.summary["mismatches"],
            "overflow_events": cs.summary["overflow_events"], "acc_bits": plan.acc_bits()}


def summarize(runs: dict) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for key, r in runs.items():
        model, wa, p, method, calib, seed = key.split("/")
        groups.setdefault((model, wa, p, method, calib), []).append({**r, "seed": int(seed[4:])})
    out = []
    for (model, wa, p, method, calib), rs in sorted(groups.items()):
        accs = [r["test_accuracy"] for r in rs]
        flt = statistics.fmean(r["float_test_accuracy"] for r in rs)
        out.append({"model": model, "precision": wa, "P": p, "method": method, "calibration": calib,
                    "seeds": sorted(r["seed"] for r in rs), "mean": statistics.fmean(accs),
                    "std": statistics.pstdev(accs), "float_mean": flt, "of_float": statistics.fmean(accs) / flt,
                    "seconds": statistics.fmean(r["seconds"] for r in rs),
                    "audit_ok": all(r["audit_ok"] for r in rs)})
    return out


def _cell(by: dict, key: tuple) -> str:
    t = by.get(key)
    return "-" if t is None else f"{100 * t['mean']:.1f} ({100 * t['of_float']:.0f}%, n={len(t['seeds'])})"


def goals(table: list[dict]) -> list[str]:
    """The goals, stated against what was measured (no verdict without all 3 seeds)."""
    by = {(t["model"], t["precision"], t["P"], t["method"], t["calibration"]): t for t in table}
    lines = []
    for model in MODELS:
        for wa, p, share in GOALS:
            for m in ("axe-gpfq", "axe-optq"):
                t = by.get((model, wa, p, m, "data"))
                if t:
                    ok = "meets" if t["of_float"] >= share else "misses"
                    lines.append(f"- {model} {wa} {p} {m} (real data): {100 * t['of_float']:.1f}% of float, {ok} "
                                 f"the >= {100 * share:.0f}% goal ({len(t['seeds'])} seed(s))")
    for t in table:
        if t["calibration"] == "zero-shot" and t["method"] != "rtn":
            d = by.get((t["model"], t["precision"], t["P"], t["method"], "data"))
            if d:
                gap = 100 * (d["mean"] - t["mean"])
                within = "within" if gap <= 2 else "outside"
                lines.append(f"- {t['model']} {t['precision']} {t['P']} {t['method']}: "
                             f"zero-shot {100 * t['mean']:.1f}% vs real data {100 * d['mean']:.1f}% "
                             f"({within} the 2-point goal; {len(t['seeds'])} seed(s))")
    return lines


def markdown(doc: dict) -> str:
    table = doc["summary"]
    by = {(t["model"], t["precision"], t["P"], t["method"], t["calibration"]): t for t in table}
    lines = ["# Accumulator-aware post-training quantization on mnist5k (benchmarks/ptq.py)", "",
             f"{doc['rows_run']} of {doc['rows_total']} rows run ({doc['note']}). Every row: "
             "`training.ptq.quantize_float_model` then `a2qflow.export_qonnx`, whose audit checked every channel of "
             f"the exported file against its L1 bound (all passed: {doc['all_audits_ok']}). Torch {doc['torch']}, "
             f"Brevitas {doc['brevitas']}, {doc['threads']} thread, {doc['machine']}. Cells: top-1 test accuracy % "
             "(1,000 images), mean over the seeds run, (share of the float model's accuracy, number of seeds). "
             "A2Q weights, W = A bits, unsigned inputs; 512 calibration inputs.", "", "## Float models", "",
             "| model | seeds | mean % | train s |", "|---|---|---|---|"]
    for m, f in doc["float"].items():
        lines.append(f"| {m} | {','.join(map(str, f['seeds']))} | {100 * f['mean']:.1f} | {f['train_seconds']:.0f} |")
    for model in MODELS:
        cals = ("data", "zero-shot") if model == "cnn" else ("data",)
        cols = [(m, c) for c in cals for m in METHODS]
        lines += ["", f"## {model}", "", "| precision | P | " + " | ".join(f"{m} ({c})" for m, c in cols) + " |",
                  "|---|---|" + "---|" * len(cols)]
        for b in BITS:
            for p in PS:
                lines.append(f"| W{b}A{b} | {p} | " + " | ".join(_cell(by, (model, f"W{b}A{b}", f"P{p}", m, c))
                                                               for m, c in cols) + " |")
    cols = ["rtn", "axe-gpfq", "axe-gpfq-paper", "axe-optq", "axe-optq-paper"]
    lines += ["", "## Ablation: AXE as published vs a2qflow's AXE (mlp, real data)", "",
              "`-paper`: the quantizer's max-scale max|w| / (2^(M-1) - 1), AXE's soft threshold (the L1 projection's), "
              "GPFQ without damping. a2qflow's AXE: the scale at which each float channel fits its budget, the "
              "threshold raised per channel until the greedy pass stays inside the budget, GPFQ damped like OPTQ "
              "(docs/training.md).", "", "| precision | P | " + " | ".join(cols) + " |",
              "|---|---|" + "---|" * len(cols)]
    for b in BITS:
        for p in PS:
            lines.append(f"| W{b}A{b} | {p} | " + " | ".join(_cell(by, ("mlp", f"W{b}A{b}", f"P{p}", m, "data"))
                                                           for m in cols) + " |")
    lines += ["", "The mlp has no BatchNorm, so it has no zero-shot rows (zero-shot calibration needs BN statistics; "
              "`a2qflow.quantize(mlp, \"zero-shot\")` is a one-line error).", "", "## Against the issue's goals", ""]
    lines += goals(table) or ["- no goal row run yet"]
    lines += ["", "## C-simulation (g++, generated HLS C++ vs the golden model)", "",
              "| model | precision | model quantized | samples | mismatches | overflow events | acc bits |",
              "|---|---|---|---|---|---|---|"]
    for k, c in doc["csim"].items():
        lines.append(f"| {k.split('/')[0]} | {k.split('/')[1]} | axe-optq P=14 seed 0 | {c['samples']} | "
                     f"{c['mismatches']} | {c['overflow_events']} | {c['acc_bits']} |")
    lines.append("")
    return "\n".join(lines)


def write(out: Path, runs: dict, csim: dict, floats: dict, note: str) -> dict:
    main_rows = sum(row_key(*r) in runs for r in all_rows())
    if main_rows < len(all_rows()) and note == "every row of the grid":
        note = "partial grid so far; a re-run continues it"
    doc = {**training_header("ptq"),
           "rows_total": len(all_rows()), "rows_run": sum(row_key(*r) in runs for r in all_rows()),
           "ablation_rows_run": sum(row_key(*r) in runs for r in ablation_rows()), "note": note,
           "all_audits_ok": all(r["audit_ok"] for r in runs.values()), "float": floats,
           "summary": summarize(runs), "csim": csim, "runs": runs}
    return publish(out, "ptq", doc, markdown)


README_BEGIN = "<!-- ptq.md: begin (copied by benchmarks/ptq.py --readme-only) -->"
README_END = "<!-- ptq.md: end -->"
README_SECTIONS = ("mlp", "cnn", "Ablation", "Against the issue's goals")


def copy_to_readme(md: str, readme: Path) -> None:
    """Put the result file's first paragraph and its accuracy / goal sections between README's markers, verbatim."""
    parts = md.split("\n## ")
    keep = [parts[0].split("\n", 2)[2].strip()] + [f"#### {p.strip()}" for p in parts[1:]
                                                  if p.startswith(README_SECTIONS)]
    fill_readme_block(readme, README_BEGIN, README_END, "\n\n".join(keep))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-minutes", type=float, default=None, help="start no new row after this long")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--ablation", action="store_true", help="run only the ablation rows (AXE as published)")
    ap.add_argument("--readme-only", action="store_true",
                    help="run nothing: re-render OUT/ptq.md from OUT/ptq.json and copy its tables into README.md")
    args = ap.parse_args(argv)
    if args.readme_only:  # re-render the .md from the JSON (so it uses this script's wording), then copy
        doc = json.loads((args.out / "ptq.json").read_text())
        atomic_write_text(args.out / "ptq.md", markdown(doc))
        copy_to_readme((args.out / "ptq.md").read_text(), ROOT / "README.md")
        return 0
    path = args.out / "ptq.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    runs, csim, flt = old.get("runs", {}), old.get("csim", {}), old.get("float", {})
    floats = Floats()
    t0 = time.monotonic()
    over = lambda: args.budget_minutes is not None and time.monotonic() - t0 > 60 * args.budget_minutes  # noqa
    note = "every row of the grid"
    for model in MODELS:
        for b in BITS:
            if f"{model}/W{b}A{b}" not in csim and not over() and not args.ablation:
                csim[f"{model}/W{b}A{b}"] = run_csim(model, b, floats)
    order = all_rows()
    n_mlp = sum(r[0] == "mlp" for r in order)
    order = ablation_rows() if args.ablation else order[:n_mlp] + ablation_rows() + order[n_mlp:]
    for row in order:
        if row_key(*row) in runs:
            continue
        if over():
            note = (f"stopped by the {args.budget_minutes:.0f}-minute budget: the grid was scaled down to the "
                    "seeds listed")
            break
        runs[row_key(*row)] = r = run_row(row, floats)
        e = floats.get(row[0], row[5])
        f = flt.setdefault(row[0], {"seeds": [], "accs": {}, "train_seconds": 0.0})
        f["accs"][str(row[5])] = e["float_test_accuracy"]
        f["seeds"] = sorted(int(s) for s in f["accs"])
        f["mean"] = statistics.fmean(f["accs"].values())
        f["train_seconds"] = e["train_seconds"]
        write(args.out, runs, csim, flt, note)
        print(f"{row_key(*row)}: {100 * r['test_accuracy']:.1f}% (float {100 * r['float_test_accuracy']:.1f}%) "
              f"{r['seconds']:.1f}s audit {r['audit_ok']}", flush=True)
    main_rows = sum(row_key(*r) in runs for r in all_rows())
    if main_rows < len(all_rows()) and note == "every row of the grid":
        note = "partial grid"
    write(args.out, runs, csim, flt, note if main_rows < len(all_rows()) else "every row of the grid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
