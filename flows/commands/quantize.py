"""`a2qflow quantize CONFIG.yaml --out DIR`: post-training quantization of a float checkpoint (no training)."""

from __future__ import annotations

import argparse
from pathlib import Path

help = ("quantize a float checkpoint of the config's model (rtn / AXE-GPFQ / AXE-OPTQ, real or zero-shot "
        "calibration), export model.onnx and audit every layer's accumulator bound")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="flow config YAML; its model: section describes the float model")
    p.add_argument("--out", type=Path, required=True, help="output folder (the files `a2qflow train` writes)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="float state_dict of the config's float twin (overrides model.float_checkpoint)")
    p.add_argument("--method", choices=("rtn", "axe-gpfq", "axe-optq"), default=None,
                   help="override quant.ptq.method")
    p.add_argument("--calibration", choices=("data", "zero-shot"), default=None,
                   help="override quant.ptq.calibration (zero-shot: synthesised from BatchNorm statistics)")
    p.add_argument("--samples", type=int, default=None, help="override quant.ptq.samples (calibration set size)")
    p.add_argument("--seed", type=int, default=None, help="override seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from a2qflow.flows.config import load_config, parse_config
    from a2qflow.hw.files import ensure_out_dir
    from a2qflow.training.ptq_job import run_quantization

    cfg = load_config(args.config)
    d = cfg.model_dump(mode="json")
    if args.checkpoint is not None:
        d["model"]["float_checkpoint"] = str(args.checkpoint)
    for key in ("method", "calibration", "samples"):
        if getattr(args, key) is not None:
            d["quant"]["ptq"][key] = getattr(args, key)
    if args.seed is not None:
        d["seed"] = args.seed
    cfg = parse_config(d, f"{args.config} (with command-line overrides)")
    m = run_quantization(cfg, ensure_out_dir(args.out), progress=not args.no_progress)
    con = Console()
    p = m["ptq"]
    con.print(f"[bold]{m['name']}[/]: {p['method']} ({p['calibration']} calibration, {p['samples']} samples) "
              f"test accuracy {m['test_accuracy']:.2%} (float {m['float_test_accuracy']:.2%}), {p['seconds']:.1f} s")
    for name, l in m["layers"].items():
        con.print(f"  {name}: {l['weight_quant']} W{l['weight_bits']} A{l['input_bits']}"
                  f"{'s' if l['input_signed'] else 'u'} P={l['target_acc_bits']} max ||q||_1 {l['ptq']['l1_max']} "
                  f"<= {l['ptq']['budget']:.4g}, sparsity {l['weight_sparsity']:.1%}")
    con.print(f"audit passed; outputs in {args.out}/ (model.onnx, metrics.json, audit.json, model.pt)")
    return 0
