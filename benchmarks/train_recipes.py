"""Training recipes vs accumulator width: does the quantized model keep its float twin's accuracy at narrow P?

Grid: datasets digits (flows/configs/digits_mlp.yaml, MLP 64-32-32-10) and mnist5k (flows/configs/mnist5k_mlp.yaml,
MLP 784-64-32-10); W4A4 and W8A8; P in {12, 14, 16} (and 20 for W8A8 on mnist5k); A2Q and A2Q+; recipe
  off   = scratch training, Brevitas' own init        (train.recipe: scratch,    train.init: brevitas)
  init  = scratch training, budget-aware init          (train.recipe: scratch,    train.init: budget)
  full  = float twin -> budget init -> calibrate -> fine-tune at finetune_lr 0.003 (train.recipe: float_twin)
  full-lr0.01 = the same at finetune_lr 0.01, the default of train.finetune_lr (the Done-when table uses it)
3 seeds each; plus reference rows: the float twin (per dataset and seed) and unconstrained integer weights
(`unconstrained` preset, W4A4 and W8A8, full recipe). Every row is a complete `run_training` (train, QONNX export,
audit), so every accuracy comes from a model whose exported integers passed the accumulator audit.

Rows are cached one by one in benchmarks/results/train_recipes.json (key: dataset/preset/WxAx/P/recipe/seed):
a re-run skips finished rows, so the grid can be run in pieces and a partial grid is still a valid result file.
Rows run in priority order (the "Done when" rows, the accuracy each recipe must reach, first). `--budget-minutes`
stops starting new rows.
Writes benchmarks/results/train_recipes.{json,md}; the .md says which rows were run.
Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/train_recipes.py [--rows priority|all]
     .venv/bin/python benchmarks/train_recipes.py --readme-only   (copy the result tables into README.md)
     .venv/bin/python benchmarks/train_recipes.py --markdown-only (rewrite train_recipes.md from the stored JSON)
Rows stored under the preset's old name `baseline` are read as `unconstrained` (same rows, not re-trained).
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

import yaml  # noqa: E402
from _common import fill_readme_block, publish, result_options, rewrite_markdown, training_header  # noqa: E402

from a2qflow.training.config import current_weight_quant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = {"digits": ROOT / "flows" / "configs" / "digits_mlp.yaml",
           "mnist5k": ROOT / "flows" / "configs" / "mnist5k_mlp.yaml"}
SEEDS = (0, 1, 2)
RECIPES = {"off": {"recipe": "scratch", "init": "brevitas"}, "init": {"recipe": "scratch", "init": "budget"},
           # the float-twin recipe at two fine-tune learning rates; the Done-when table uses the one that is the
           # default of train.finetune_lr (0.01 since this benchmark showed 0.003 short at W8A8 A2Q+ P=12)
           "full": {"recipe": "float_twin", "init": "budget", "finetune_lr": 0.003},
           "full-lr0.01": {"recipe": "float_twin", "init": "budget", "finetune_lr": 0.01},
           # the float-twin recipe whose fine-tune also trains the mixed models (training.block_replacement)
           "block-replacement": {"recipe": "block-replacement", "init": "budget", "finetune_lr": 0.01}}
# block-replacement rows (mnist5k, the config's A2Q+), each against the default recipe at the same point
BLOCK_ROWS = [("mnist5k", "a2q+", 8, 12), ("mnist5k", "a2q+", 8, 14), ("mnist5k", "a2q+", 4, 10),
              ("mnist5k", "a2q+", 4, 12), ("mnist5k", "a2q+", 2, 10)]
# "Done when": (dataset, preset, bits, P, share of the float twin that the full recipe must reach)
CRITERIA = [("digits", "a2q", 8, 16, 0.99), ("digits", "a2q", 8, 14, 0.99), ("digits", "a2q+", 8, 12, 0.97)] + \
           [("digits", q, 4, p, 0.99) for q in ("a2q", "a2q+") for p in (12, 14, 16)] + \
           [("mnist5k", "a2q+", 4, 12, 0.99), ("mnist5k", "a2q", 8, 16, 0.99), ("mnist5k", "a2q+", 8, 16, 0.99)]


def _default_full() -> str:
    """The `full*` recipe whose fine-tune learning rate is train.finetune_lr's default."""
    from a2qflow.training.config import TrainConfig

    lr = TrainConfig().finetune_lr
    return next(k for k, v in RECIPES.items() if k.startswith("full") and v["finetune_lr"] == lr)


DEFAULT_FULL = _default_full()


def p_values(dataset: str, bits: int) -> list[int]:
    return [12, 14, 16] + ([20] if dataset == "mnist5k" and bits == 8 else [])


def row_key(dataset: str, wq: str, bits: int, P: int | None, recipe: str, seed: int) -> str:
    return f"{dataset}/{wq}/W{bits}A{bits}/P{P if P else '-'}/{recipe}/seed{seed}"


def all_rows() -> list[tuple]:
    """Every row of the grid, highest priority first: Done-when rows, unconstrained rows, the W8 off/init contrast,
    rest."""
    rows: list[tuple] = []
    crit = [(d, q, b, p, "full") for d, q, b, p, _ in CRITERIA]
    base = [(d, "unconstrained", b, None, r) for r in ("full", DEFAULT_FULL) for d in CONFIGS for b in (4, 8)]
    lr8 = [(d, q, b, p, "full-lr0.01") for d, q, b, p, _ in CRITERIA if b == 8]
    lr4 = [(d, q, b, p, "full-lr0.01") for d, q, b, p, _ in CRITERIA if b == 4]
    contrast = [(d, q, b, p, r) for r in ("off", "init") for d, q, b, p, _ in CRITERIA[:3]]  # digits W8A8 rows
    rest = [(d, q, b, p, r) for d in CONFIGS for b in (4, 8) for q in ("a2q", "a2q+") for p in p_values(d, b)
            for r in ("off", "init", DEFAULT_FULL)]
    blocks = [(*r, rec) for r in BLOCK_ROWS for rec in ("block-replacement", DEFAULT_FULL)]
    for group in (crit[:9], crit[9:], base, lr8, contrast, lr4, rest, blocks):  # digits criteria, mnist5k, ...
        for seed in SEEDS:
            for row in group:
                if (*row, seed) not in rows:
                    rows.append((*row, seed))
    return rows


def row_config(dataset: str, wq: str, bits: int, P: int | None, recipe: str, seed: int) -> dict:
    d = yaml.safe_load(CONFIGS[dataset].read_text())
    d["name"] = row_key(dataset, wq, bits, P, recipe, seed).replace("/", "_")
    d["seed"] = seed
    d["quant"].update(weight_quant=wq, weight_bits=bits, input_bits=bits, act_bits=bits, acc_bits=P, layers={})
    d["train"].update(float_reference=True, **RECIPES[recipe])
    d.pop("hw", None)
    return d


def run_row(row: tuple, twin_cache) -> dict:
    """Train one row into a temporary folder; the numbers kept in the JSON."""
    from a2qflow.flows.config import parse_config
    from a2qflow.training.train import run_training

    cfg = parse_config(row_config(*row), row_key(*row))
    with tempfile.TemporaryDirectory(prefix="a2qflow-bench-") as tmp:
        t0 = time.perf_counter()
        m = run_training(cfg, Path(tmp), progress=False, twin_cache=twin_cache)
        wall = time.perf_counter() - t0
        audit = json.loads((Path(tmp) / "audit.json").read_text())
    weights = sum(l["K"] * l["channels"] for l in audit["layers"])
    zeros = sum(l["weight_sparsity"] * l["K"] * l["channels"] for l in audit["layers"]) / weights
    return {"test_accuracy": m["test_accuracy"], "float_test_accuracy": m["float_test_accuracy"],
            "zero_fraction": zeros, "seconds_per_epoch": m["seconds_per_epoch"], "audit_ok": m["audit_ok"],
            "phases": m["phases"], "recipe": m["recipe"], "init": m["init"], "wall_seconds": wall,
            "acc_bits_exact": {l["name"]: l["acc_bits_exact"] for l in audit["layers"]}}


def summarize(runs: dict) -> tuple[list[dict], dict]:
    """Per (dataset, preset, bits, P, recipe): mean / std / min / max over the seeds run; float twin per dataset."""
    groups: dict[tuple, list[dict]] = {}
    twins: dict[str, dict[int, float]] = {}
    for key, r in runs.items():
        dataset, wq, wa, p, recipe, seed = key.split("/")
        groups.setdefault((dataset, wq, wa, p, recipe), []).append({**r, "seed": int(seed[4:])})
        twins.setdefault(dataset, {})[int(seed[4:])] = r["float_test_accuracy"]
    table = []
    for (dataset, wq, wa, p, recipe), rs in sorted(groups.items()):
        accs = [r["test_accuracy"] for r in rs]
        floats = [twins[dataset][r["seed"]] for r in rs]
        table.append({"dataset": dataset, "weight_quant": wq, "precision": wa, "P": p, "recipe": recipe,
                      "seeds": sorted(r["seed"] for r in rs), "mean": statistics.fmean(accs),
                      "std": statistics.pstdev(accs), "min": min(accs), "max": max(accs),
                      "float_mean": statistics.fmean(floats),
                      "of_float": statistics.fmean(accs) / statistics.fmean(floats),
                      "zero_fraction": statistics.fmean(r["zero_fraction"] for r in rs),
                      "seconds_per_epoch": statistics.fmean(r["seconds_per_epoch"] for r in rs),
                      "audit_ok": all(r["audit_ok"] for r in rs)})
    floats = {d: {"seeds": sorted(t), "mean": statistics.fmean(t.values()), "std": statistics.pstdev(t.values())}
              for d, t in twins.items()}
    return table, floats


def criteria(table: list[dict], recipe: str) -> list[dict]:
    """The Done-when rows: pass only with all 3 seeds run and mean >= share x float-twin mean."""
    out = []
    for d, q, b, p, share in CRITERIA:
        row = next((t for t in table if (t["dataset"], t["weight_quant"], t["precision"], t["P"], t["recipe"])
                    == (d, q, f"W{b}A{b}", f"P{p}", recipe)), None)
        status = "not run" if row is None else ("partial" if len(row["seeds"]) < len(SEEDS) else
                                               "pass" if row["of_float"] >= share else "FAIL")
        out.append({"dataset": d, "weight_quant": q, "precision": f"W{b}A{b}", "P": p, "required": share,
                    "of_float": None if row is None else row["of_float"], "status": status})
    return out


def markdown(doc: dict) -> str:
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    lines = ["# Training recipes vs accumulator width (benchmarks/train_recipes.py)", "",
             f"{doc['rows_run']} of {doc['rows_total']} grid rows run (each a full `run_training`: train, QONNX "
             f"export, audit; all audits passed: {doc['all_audits_ok']}). Torch {doc['torch']}, Brevitas "
             f"{doc['brevitas']}, {doc['threads']} thread(s), {doc['machine']}. Accuracy = top-1 on the test set "
             f"(digits 360, mnist5k 1,000 images), mean over the seeds listed; spread = population std and min-max.",
             "", "## Float twins (reference)", "", "| dataset | seeds | mean % | std |", "|---|---|---|---|"]
    for d, f in doc["float_twin"].items():
        lines.append(f"| {d} | {','.join(map(str, f['seeds']))} | {pct(f['mean'])} | {pct(f['std'])} |")
    lines += ["", f"## Done when (default recipe `{doc['default_recipe']}`, mean of 3 seeds vs the float twin)", "",
              "| dataset | preset | precision | P | required | reached | status | with finetune_lr 0.003 |",
              "|---|---|---|---|---|---|---|---|"]
    for c, v in zip(doc["criteria"], doc["criteria_finetune_lr_0.003"]):
        lines.append(f"| {c['dataset']} | {c['weight_quant']} | {c['precision']} | {c['P']} | "
                     f">= {100 * c['required']:.0f}% | {pct(c['of_float'])}% | {c['status']} | "
                     f"{pct(v['of_float'])}{'' if v['of_float'] is None else '%'} ({v['status']}) |")
    lines += ["", f"## Default recipe (`{doc['default_recipe']}`): accuracy (mean of the seeds run)", "",
              "| dataset | preset | precision | P | seeds | mean % | min-max % | % of float | zero weights |",
              "|---|---|---|---|---|---|---|---|---|"]
    for t in doc["summary"]:
        if t["recipe"] == DEFAULT_FULL:
            lines.append(f"| {t['dataset']} | {t['weight_quant']} | {t['precision']} | {t['P']} | "
                         f"{','.join(map(str, t['seeds']))} | {pct(t['mean'])} | {pct(t['min'])}-{pct(t['max'])} | "
                         f"{pct(t['of_float'])} | {pct(t['zero_fraction'])}% |")
    lines += ["", "## What each recipe step does (digits W8A8, % of the float twin, mean of the seeds run)", "",
              "| preset | P | off (scratch, Brevitas init) | init (scratch, budget-aware init) | full (lr 0.003) | "
              "full-lr0.01 |", "|---|---|---|---|---|---|"]
    by = {(t["dataset"], t["weight_quant"], t["precision"], t["P"], t["recipe"]): t for t in doc["summary"]}
    for d, q, b, p, _ in CRITERIA[:3]:
        cells = [by.get((d, q, f"W{b}A{b}", f"P{p}", r)) for r in ("off", "init", "full", "full-lr0.01")]
        lines.append(f"| {q} | {p} | " + " | ".join("-" if c is None else f"{pct(c['of_float'])}% "
                                                    f"({pct(c['mean'])}%, {len(c['seeds'])} seeds)" for c in cells)
                     + " |")
    lines += ["", "## All rows run", "", "recipe: off = scratch + Brevitas init; init = scratch + budget-aware init; "
              "full = float twin, budget-aware init, calibration, fine-tune at finetune_lr 0.003; full-lr0.01 = the "
              "same at finetune_lr 0.01 (the default). `unconstrained` = integer weights without an accumulator "
              "constraint (no P).", "",
              "| dataset | preset | precision | P | recipe | seeds | mean % | std | min-max % | % of float | "
              "zero weights | s/epoch |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in doc["summary"]:
        lines.append(f"| {t['dataset']} | {t['weight_quant']} | {t['precision']} | {t['P']} | {t['recipe']} | "
                     f"{','.join(map(str, t['seeds']))} | {pct(t['mean'])} | {pct(t['std'])} | "
                     f"{pct(t['min'])}-{pct(t['max'])} | {pct(t['of_float'])} | {pct(t['zero_fraction'])}% | "
                     f"{t['seconds_per_epoch']:.2f} |")
    lines += block_table(doc)
    missing = doc["rows_total"] - doc["rows_run"]
    lines += ["", f"Not run yet: {missing} rows (re-run the script to continue; finished rows are skipped)." if missing
              else "Every row of the grid was run.", ""]
    return "\n".join(lines)


def block_table(doc: dict) -> list[str]:
    """Block replacement against the default recipe at its points (BLOCK_ROWS): % of float, and what an epoch costs."""
    by = {(t["dataset"], t["weight_quant"], t["precision"], t["P"], t["recipe"]): t for t in doc["summary"]}
    lines = ["", f"## Block replacement vs the default recipe (`{DEFAULT_FULL}`), mnist5k", "",
             "% of the float twin (mean of the seeds run; in brackets the accuracy); s/epoch = wall-clock seconds per "
             "fine-tune epoch (block replacement also runs the mixed models), which depend on how loaded the shared "
             "machine was when each row ran: compare times only between rows run together.", "",
             "| preset | precision | P | block-replacement | default | s/epoch block-replacement | s/epoch default |",
             "|---|---|---|---|---|---|---|"]
    for d, q, b, p in BLOCK_ROWS:
        cells = [by.get((d, q, f"W{b}A{b}", f"P{p}", r)) for r in ("block-replacement", DEFAULT_FULL)]
        acc = ["-" if c is None else f"{100 * c['of_float']:.1f}% ({100 * c['mean']:.1f}%, {len(c['seeds'])} seeds)"
               for c in cells]
        sec = ["-" if c is None else f"{c['seconds_per_epoch']:.2f}" for c in cells]
        lines.append(f"| {q} | W{b}A{b} | {p} | {acc[0]} | {acc[1]} | {sec[0]} | {sec[1]} |")
    return lines


def current_names(doc: dict) -> dict:
    """The stored result with the preset's current name: rows and tables written before the rename say `baseline`
    (their keys too); the numbers are untouched."""
    def key(k: str) -> str:
        dataset, wq, rest = k.split("/", 2)
        return f"{dataset}/{current_weight_quant(wq)}/{rest}"

    rows = lambda ts: [{**t, "weight_quant": current_weight_quant(t["weight_quant"])} for t in ts]  # noqa: E731
    return {**doc, "runs": {key(k): v for k, v in doc.get("runs", {}).items()},
            **{name: rows(doc[name]) for name in ("summary", "criteria", "criteria_finetune_lr_0.003") if name in doc}}


def write(out: Path, runs: dict, total: int) -> dict:
    table, floats = summarize(runs)
    doc = {**training_header("train_recipes"),
           "seeds": list(SEEDS), "rows_total": total, "rows_run": len(runs),
           "all_audits_ok": all(r["audit_ok"] for r in runs.values()), "float_twin": floats,
           "default_recipe": DEFAULT_FULL, "criteria": criteria(table, DEFAULT_FULL),
           "criteria_finetune_lr_0.003": criteria(table, "full"),
           "summary": table, "runs": runs}
    return publish(out, "train_recipes", doc, markdown)


README_BEGIN = "<!-- train_recipes.md: begin (copied by benchmarks/train_recipes.py --readme-only) -->"
README_END = "<!-- train_recipes.md: end -->"


def copy_to_readme(md: str, readme: Path) -> None:
    """Put the result file's run summary, float-twin and Done-when tables between README's markers, verbatim."""
    keep = md.split("\n## All rows run")[0].split("\n", 2)[2].strip()  # drop the title, keep up to the full table
    keep = keep.replace("\n## ", "\n#### ")  # README nests them under its own "### Training" heading
    fill_readme_block(readme, README_BEGIN, README_END, keep)


def main(argv: list[str] | None = None) -> int:
    from a2qflow.training.recipe import TwinCache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", choices=("priority", "all", "block-replacement"), default="all",
                    help="priority: only the Done-when rows and the reference rows; block-replacement: only issue "
                         "21's block-replacement rows and their default-recipe partners")
    ap.add_argument("--budget-minutes", type=float, default=None, help="start no new row after this long")
    result_options(ap, "train_recipes")
    ap.add_argument("--readme-only", action="store_true",
                    help="train nothing: copy the tables of OUT/train_recipes.md into README.md")
    args = ap.parse_args(argv)
    if args.readme_only:
        copy_to_readme((args.out / "train_recipes.md").read_text(), ROOT / "README.md")
        return 0
    if args.markdown_only:
        return rewrite_markdown(args.out, "train_recipes", lambda doc: markdown(current_names(doc)))
    rows = all_rows()
    if args.rows == "priority":
        rows = [r for r in rows if r[4].startswith("full")]
    if args.rows == "block-replacement":
        rows = [r for r in rows if r[:4] in BLOCK_ROWS and r[4] in ("block-replacement", DEFAULT_FULL)]
    path = args.out / "train_recipes.json"
    runs = current_names(json.loads(path.read_text()))["runs"] if path.is_file() else {}
    twin_cache = TwinCache()
    t0 = time.monotonic()
    for row in rows:
        key = row_key(*row)
        if key in runs:
            continue
        if args.budget_minutes is not None and time.monotonic() - t0 > 60 * args.budget_minutes:
            print(f"budget of {args.budget_minutes} min reached; {len(runs)} rows done", flush=True)
            break
        runs[key] = run_row(row, twin_cache)
        doc = write(args.out, runs, len(all_rows()))
        print(f"{key}: {100 * runs[key]['test_accuracy']:.1f}% (float {100 * runs[key]['float_test_accuracy']:.1f}%)"
              f" {runs[key]['wall_seconds']:.0f}s  [{doc['rows_run']}/{doc['rows_total']}]", flush=True)
    write(args.out, runs, len(all_rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
