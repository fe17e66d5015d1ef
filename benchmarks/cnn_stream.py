"""Streaming LeNet-style CNN on 28x28 mnist5k: the folding solver's fastest folding, measured in Verilator.

Writes benchmarks/results/cnn_stream.{json,md}. Steps (each a public a2qflow entry point):

1. `a2qflow train flows/configs/mnist5k_lenet.yaml --epochs E` (a short run: the hardware figures do not depend on
   how well the weights are trained, the accuracy figure does and says so);
2. `a2qflow compile` at the exact accumulator widths, folded by the solver (hw/compiler/folding.py) at
   hw.folding.target_cycles (784) -- the slowest layer's stream floor (the first conv reads the 784-pixel input one
   pixel per beat), so this is the fastest folding the solver offers;
3. `a2qflow rtl` + Verilator (`run_rtlsim`) on the whole mnist5k test set against the golden model: mismatches,
   initiation interval (cycles per image in steady state), latency, top-1;
4. per layer: the solver's SIMD / PE and cycle estimate, and each sliding window's line buffer next to the
   two-bank frame buffer it replaced (bits, from BUILD/rtl/manifest.json).

Usage (2 shared cores: run it niced):  nice -n 10 .venv/bin/python benchmarks/cnn_stream.py [--work DIR] [--epochs E]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "flows" / "configs" / "mnist5k_lenet.yaml"
CLI = str(Path(sys.executable).with_name("a2qflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, table_row  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def _run(*args: str) -> None:
    print("$ a2qflow", " ".join(args), flush=True)
    subprocess.run([CLI, *args], check=True)


def train_and_compile(work: Path, epochs: int) -> tuple[Path, Path]:
    """The trained run folder and the compiled build folder (reused when already there)."""
    train, build = work / "train", work / "build"
    if not (train / "model.onnx").is_file():
        _run("train", str(CONFIG), "--out", str(train), "--epochs", str(epochs), "--no-progress")
    if not (build / "plan.json").is_file():
        _run("compile", str(train / "model.onnx"), "--out", str(build), "--config", str(CONFIG))
    return train, build


def layer_table(build: Path) -> list[dict]:
    """Per MAC layer: the plan's SIMD / PE and the solver's cycle estimate; per window: line buffer and window
    register vs the frame buffer; per max pool: its stream floor."""
    from a2qflow.flows.config import load_config
    from a2qflow.hw.compiler import folding as fo
    from a2qflow.hw.compiler.ir import load_model
    from a2qflow.hw.compiler.plan import load_plan

    model, plan = load_model(build), load_plan(build)
    target = load_config(CONFIG).hw.folding.target_cycles
    est = {f.name: f for f in fo.solve(model, target)}
    srcs = fo.stream_inputs(model)
    man = json.loads((build / "rtl" / "manifest.json").read_text())
    rows = []
    for layer in model.layers:
        lp = next((p for p in plan.layers if p.name == layer.name), None)
        lb = man["line_buffers"].get(layer.name)
        rows.append(dict(layer=layer.name, kind=layer.kind, simd=lp.simd if lp else None, pe=lp.pe if lp else None,
                         compute_cycles=est[layer.name].compute_cycles if layer.name in est else None,
                         stream_cycles=(est[layer.name].stream_cycles if layer.name in est
                                        else fo.stream_cycles(layer, srcs[layer.name])),
                         line_buffer_bits=lb["bits"] if lb else None,
                         built_bits=lb.get("banked_bits") if lb else None,
                         window_register_bits=lb["window_bits"] if lb else None,
                         frame_buffer_bits=lb["frame_buffer_bits"] if lb else None))
    return rows


def markdown(res: dict) -> str:
    """benchmarks/results/cnn_stream.md: the table the README copies, from the JSON document."""
    s = res["rtlsim"]
    lines = [
        "# Streaming LeNet-style CNN on mnist5k (28x28), folding solver's fastest folding",
        "",
        f"Written by `benchmarks/cnn_stream.py`; config `{res['config']}` (trained {res['epochs']} epochs), "
        f"hw.folding.target_cycles = {res['target_cycles']}; solver's fastest target (slowest layer's stream floor) "
        f"= {res['fastest_target']} cycles. Simulator: {res['simulator']}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| test images simulated | {s['samples']} |",
        f"| mismatches vs golden model | {s['mismatches']} |",
        f"| initiation interval (cycles / image, Verilator) | {s['initiation_interval_cycles']:.0f} |",
        f"| latency (cycles / image, Verilator) | {s['cycles_per_inference']} |",
        f"| predicted initiation interval (folding solver) | {res['predicted_ii_cycles']} |",
        f"| issue-24 goal (1.25 x 784) | {1.25 * 784:.0f} |",
        f"| top-1 of the RTL outputs | {s.get('top1_accuracy')} |",
        "",
        "| layer | kind | SIMD | PE | compute cycles (solver) | stream floor (solver) | line buffer bits (KH rows) | "
        "built bits (KH x KW one-read-port banks, each pixel once) | window register bits | "
        "frame buffer bits (replaced) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["layers"]:
        lines.append(table_row(r, ("layer", "kind", "simd", "pe", "compute_cycles", "stream_cycles",
                                   "line_buffer_bits", "built_bits", "window_register_bits", "frame_buffer_bits")))
    lines += ["", res["note"], ""]
    return "\n".join(lines)


def lenet_test_split(description: str, prefix: str,
                     argv: list[str] | None = None) -> tuple[argparse.Namespace, Path, np.ndarray, np.ndarray]:
    """The command line both LeNet streaming benchmarks take (--work, --epochs, --limit), the trained and compiled
    LeNet (train_and_compile) and its test split cut to --limit images.

    Args:
        description: the script's one-line description (its docstring's first line).
        prefix: the temporary work folder's prefix when --work is not given.
        argv: the command-line arguments (default: sys.argv[1:]).
    Returns:
        (the parsed arguments, the build folder, test inputs, test labels).
    """
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary folder)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="simulate only the first N test images")
    a = ap.parse_args(argv)
    train, build = train_and_compile(a.work or Path(tempfile.mkdtemp(prefix=prefix)), a.epochs)
    x, y = np.load(train / "test_inputs.npy"), np.load(train / "test_labels.npy")
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    return a, build, x, y


def main() -> None:
    a, build, x, y = lenet_test_split(__doc__.splitlines()[0], "cnn_stream_")

    from a2qflow.flows.config import load_config
    from a2qflow.hw.compiler import folding as fo
    from a2qflow.hw.compiler.ir import load_model
    from a2qflow.hw.rtl.generate import generate
    from a2qflow.hw.rtl.sim import run_rtlsim, verilator_version

    generate(build)
    print(f"Verilator: {len(x)} test images", flush=True)
    sim = run_rtlsim(build, x, source="test_inputs.npy", labels=y)
    model = load_model(build)
    res = dict(config=str(CONFIG.relative_to(ROOT)), epochs=a.epochs,
               target_cycles=load_config(CONFIG).hw.folding.target_cycles,
               fastest_target=fo.fastest_target(model), simulator=verilator_version(),
               rtlsim={k: sim[k] for k in ("samples", "mismatches", "initiation_interval_cycles",
                                           "cycles_per_inference", "top1_accuracy") if k in sim},
               layers=layer_table(build))
    predicted = max(max(r["compute_cycles"] or 0, r["stream_cycles"]) for r in res["layers"])
    measured = sim["initiation_interval_cycles"]
    res["predicted_ii_cycles"] = predicted
    res["predicted_vs_measured"] = round(measured / predicted, 4)
    res["note"] = (f"The solver predicts an interval of {predicted} cycles per image (its slowest layer, the larger "
                   f"of compute and stream floor); Verilator measures {measured:.0f} ({measured / predicted:.3f} x "
                   "the prediction). The streams carry one pixel (C channels) per beat into each line buffer, one "
                   "whole window per beat out of it, SIMD-wide window beats into each MVAU and PE-wide results out "
                   "(issue 24); the first conv reads the model's one-element-per-beat input, 784 beats per image. "
                   "Line buffer bits: KH rows of the frame (a pixel overwrites the one KH rows above it), in "
                   "KH x KW banks of ceil(W / KW) pixels, bank (y mod KH, x mod KW), each with one write and one read "
                   "port, so yosys maps them to LUT RAM and every pixel is stored once: the built bits are the line "
                   "buffer bits (the previous unit kept KH x KW whole copies, 25,600 built bits for conv0). The "
                   "window register (one whole window, the banks' registered reads) is extra; a KH:1 row and a "
                   "KW:1 column rotation put the bank outputs in (kh, kw, c) order.")
    publish(RESULTS, "cnn_stream", res, markdown)
    print(json.dumps(res["rtlsim"]), flush=True)


if __name__ == "__main__":
    main()
