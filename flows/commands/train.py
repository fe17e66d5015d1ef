"""`a2qflow train CONFIG.yaml --out DIR`: train, export QONNX, audit the accumulator bounds."""

from __future__ import annotations

import argparse
from pathlib import Path

help = "train the configured QNN, export model.onnx (QONNX) and audit every layer's accumulator bound"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="flow config YAML (e.g. flows/configs/digits_mlp.yaml)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created; existing outputs are replaced)")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    p.add_argument("--seed", type=int, default=None, help="override seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from a2qflow.flows.config import load_config, parse_config
    from a2qflow.hw.errors import A2QFlowError

    cfg = load_config(args.config)
    if args.epochs is not None or args.seed is not None:
        d = cfg.model_dump(mode="json")
        if args.epochs is not None:
            if args.epochs < 1:
                raise A2QFlowError(f"--epochs: must be >= 1, got {args.epochs}")
            d["train"]["epochs"] = args.epochs
        if args.seed is not None:
            d["seed"] = args.seed
        cfg = parse_config(d, f"{args.config} (with command-line overrides)")

    from a2qflow.hw.files import ensure_out_dir
    from a2qflow.training.train import run_training

    m = run_training(cfg, ensure_out_dir(args.out), progress=not args.no_progress)
    con = Console()
    flt = "n/a" if m["float_test_accuracy"] is None else f"{m['float_test_accuracy']:.2%}"
    con.print(f"[bold]{m['name']}[/]: test accuracy {m['test_accuracy']:.2%} (float twin {flt}), "
              f"best epoch {m['best_epoch']}/{m['epochs']}, {m['seconds_per_epoch']:.2f} s/epoch")
    steps = " -> ".join(f"{k} {v['test_accuracy']:.2%}" for k, v in m.get("phases", {}).items())
    con.print(f"  recipe {m.get('recipe')} (init {m.get('init')}): {steps}")
    for name, l in m["layers"].items():
        p = l["target_acc_bits"]
        con.print(f"  {name}: {l['weight_quant']} W{l['weight_bits']} A{l['input_bits']}"
                  f"{'s' if l['input_signed'] else 'u'} P={p if p is not None else '-'} "
                  f"sparsity {l['weight_sparsity']:.1%}")
    con.print(f"audit passed; outputs in {args.out}/ (model.onnx, metrics.json, audit.json, model.pt)")
    return 0
