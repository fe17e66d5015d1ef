"""Golden model vs qonnx execution on the whole digits test set (the agreement figure).

Trains the default digits MLP and CNN configs (or reuses finished training folders), compiles each, and compares
hw.reference (integer-only) with qonnx.core.onnx_exec.execute_onnx on every test sample: top-1 agreement and the
max |logit difference| in output quantization steps. Writes benchmarks/results/golden_vs_qonnx.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/golden_vs_qonnx.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from a2qflow.flows.config import load_config  # noqa: E402
from a2qflow.hw.compiler.qonnx_check import golden_vs_qonnx  # noqa: E402
from a2qflow.hw.files import atomic_write_json  # noqa: E402
from a2qflow.training.train import run_training  # noqa: E402

CONFIGS = ("flows/configs/digits_mlp.yaml", "flows/configs/digits_cnn.yaml")


def measure(cfg_path: str, work: Path) -> dict:
    cfg = load_config(ROOT / cfg_path)
    out = work / cfg.name
    if not (out / "model.onnx").is_file():
        run_training(cfg, out, progress=False)
    x, y = np.load(out / "test_inputs.npy"), np.load(out / "test_labels.npy")
    t0 = time.perf_counter()
    gold, ref, steps = golden_vs_qonnx(out / "model.onnx", x)
    seconds = time.perf_counter() - t0
    agree = int((gold.argmax(1) == ref.argmax(1)).sum())
    return {"config": cfg_path, "samples": int(len(x)), "top1_identical": agree,
            "max_abs_diff_output_steps": steps,
            "golden_accuracy": float((gold.argmax(1) == y).mean()),
            "qonnx_accuracy": float((ref.argmax(1) == y).mean()), "seconds_incl_qonnx": round(seconds, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", help="training folder root to reuse / keep (default: a temp folder)")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="a2qflow-gvq-"))
    rows = [measure(c, work) for c in CONFIGS]
    from importlib.metadata import version

    result = {"tool": f"qonnx {version('qonnx')} execute_onnx (one sample at a time) vs "
                      "a2qflow.hw.compiler.reference (int64)", "results": rows}
    atomic_write_json(ROOT / "benchmarks/results/golden_vs_qonnx.json", result)
    for r in rows:
        print(f"{r['config']}: {r['top1_identical']}/{r['samples']} top-1 identical, max diff "
              f"{r['max_abs_diff_output_steps']:.3g} output steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
