"""Streaming LeNet-style CNN on 28x28 mnist5k in the HLS backend: g++ C-sim, bit-exactness and loop iterations.

Writes benchmarks/results/hls_stream.{json,md}. Steps (each a public a2qflow entry point):

1. the trained and compiled LeNet of benchmarks/cnn_stream.py (`a2qflow train` + `a2qflow compile` of
   flows/configs/mnist5k_lenet.yaml, the folding solver's fastest folding; reused when --work already holds it);
2. `run_csim` on the whole mnist5k test split: outputs against the golden model, top-1;
3. the monitor build's testbench with `--loops` (tb.cpp): the iterations of every stage's pipelined loop per image
   (clock cycles at II = 1; Vitis is not installed here, so no csynth schedule backs the "II = 1") next to its input
   and output beats, and each window stage's line buffer (KH x KW banks, each pixel stored once) next to one frame
   and to the RTL's (its built bits and interval, copied from benchmarks/results/cnn_stream.json when it is there).

Usage (2 shared cores: run it niced):  nice -n 10 .venv/bin/python benchmarks/hls_stream.py [--work DIR] [--epochs E]
       .venv/bin/python benchmarks/hls_stream.py --refresh-rtl   (no C-sim: copy the RTL columns again from the
       current cnn_stream.json into hls_stream.{json,md}, after cnn_stream.py re-measured the RTL)
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, table_row  # noqa: E402
from cnn_stream import CONFIG, ROOT, lenet_test_split  # noqa: E402  (the same trained LeNet)

RESULTS = ROOT / "benchmarks" / "results"


def stage_loops(build: Path, x_int: np.ndarray) -> tuple[list[dict], str]:
    """Per stage of top.cpp: kind, beats in / out per image, loop iterations per image (min = max checked)."""
    from a2qflow.hw.compiler.plan import load_build
    from a2qflow.hw.hls.csim import compile_testbench
    from a2qflow.hw.hls.dataflow import WINDOW_KINDS, WindowState, window_beats, window_schedule
    from a2qflow.hw.hls.lowering import build_design

    model, plan = load_build(build)
    d = build_design(model, plan, build)
    exe, _, _ = compile_testbench(build / "hls", monitor=True)
    with tempfile.TemporaryDirectory() as td:
        inp, outp, loops = Path(td) / "in.bin", Path(td) / "out.bin", Path(td) / "loops.txt"
        inp.write_bytes(np.ascontiguousarray(x_int, dtype=np.int32).tobytes())
        subprocess.run([str(exe), str(inp), str(outp), "--loops", str(loops)], check=True, capture_output=True)
        counts = [tuple(int(v) for v in line.split()) for line in loops.read_text().splitlines()]
    # beats per image: a window stream's shape is one window, so count its writes from the window schedule
    beats = {s.name: s.beats for s in [d.input, *d.streams, d.output]}
    for st in d.stages:
        if st.kind in WINDOW_KINDS:
            c = next(dict(l.constants) for l in d.layers if l.ns == st.ns)
            beats[st.out.name] = sum(w for w, _ in window_schedule(c, st.inp.beat, window_beats(d, st)))
    rows = []
    for st, (k, lo, hi) in zip(d.stages, counts, strict=True):
        row = dict(stage=k, kind=st.kind, what=st.comment, in_beat=st.inp.beat, in_beats=beats[st.inp.name],
                   out_beat=st.out.beat, out_beats=beats[st.out.name], iterations_min=lo, iterations_max=hi)
        if st.kind in WINDOW_KINDS:
            c = next(dict(l.constants) for l in d.layers if l.ns == st.ns)
            ws = WindowState(c, st.inp.beat, 1)
            ch, bits = c.get("IC", c.get("C")), st.inp.elem.bits
            row.update(read_ahead_pixels=ws.depth, banks=c["KH"] * c["KW"], bank_words=ws.rb * ws.xb,
                       built_bits=ws.bank_pixels * ch * bits, window_register_bits=c["KH"] * c["KW"] * ch * bits,
                       frame_bits=c["IH"] * c["IW"] * ch * bits, layer=st.comment.split(":")[0])
        rows.append(row)
    return rows, exe.name


def markdown(res: dict) -> str:
    """benchmarks/results/hls_stream.md: the table the README copies, from the JSON document."""
    s = res["csim"]
    lines = [
        "# Streaming LeNet-style CNN on mnist5k (28x28) in the HLS backend (g++ C-sim)",
        "",
        f"Written by `benchmarks/hls_stream.py`; config `{res['config']}` (trained {res['epochs']} epochs, the "
        f"build of benchmarks/cnn_stream.py). Tool: {s['tool']}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| test images through C-sim | {s['samples']} |",
        f"| mismatches vs golden model | {s['mismatches']} |",
        f"| top-1 of the C-sim outputs | {s['top1_accuracy']} |",
        f"| slowest stage's loop iterations per image (cycles at II = 1) | {res['slowest_iterations']} |",
        f"| input pixels per image | {res['pixels']} |",
        f"| RTL initiation interval (Verilator, benchmarks/results/cnn_stream.md) | {res.get('rtl_ii')} |",
        "",
        "| stage | kind | in beat | in beats | out beat | out beats | loop iterations / image | read-ahead "
        "(pixels) | banks x words | line buffer bits (HLS, each pixel once) | window register bits | one frame "
        "bits | RTL line buffer bits (built, cnn_stream.json) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["stages"]:
        r = dict(r, banks_words=f"{r['banks']} x {r['bank_words']}" if "banks" in r else None)
        lines.append(table_row(r, ("what", "kind", "in_beat", "in_beats", "out_beat", "out_beats", "iterations_max",
                                   "read_ahead_pixels", "banks_words", "built_bits", "window_register_bits",
                                   "frame_bits", "rtl_built_bits")))
    lines += ["", res["note"], ""]
    return "\n".join(lines)


def attach_rtl(res: dict) -> None:
    """The RTL's figures next to the HLS ones: cnn_stream.json's interval and per-layer built line-buffer bits (read
    at publish time, so a re-measured RTL is picked up by --refresh-rtl without re-running C-sim)."""
    path = RESULTS / "cnn_stream.json"
    rtl = json.loads(path.read_text()) if path.is_file() else {}
    res["rtl_ii"] = rtl.get("rtlsim", {}).get("initiation_interval_cycles")
    rtl_bits = {r["layer"]: r.get("built_bits") for r in rtl.get("layers", [])}
    for row in res["stages"]:
        if "layer" in row:
            row["rtl_built_bits"] = rtl_bits.get(row["layer"])


def note(res: dict) -> str:
    """The paragraph under the table, from the measured figures in `res`."""
    stages = res["stages"]
    same = ("min = max on every stage: the schedule does not depend on the data"
            if all(r["iterations_min"] == r["iterations_max"] for r in stages) else "min != max on some stage")
    return (
        f"Loop iterations are counted in the monitor build on the first 50 images ({same}). The slowest stage "
        f"is `{res['slowest_stage']}` with {res['slowest_iterations']} "
        f"iterations per image for {res['pixels']} input pixels: a window stage takes max(input beats, lag(last "
        "window) + 1, lag(first window) + output beats), lag = input beats up to a window's last pixel, so a "
        "\"same\" 5x5 conv on 28x28 pays its first window's 59-beat lag once per image (the RTL overlaps "
        "consecutive frames and does not). Streams: one pixel (C channels, or the producer's PE) per input beat "
        "of a window stage, one whole window (SIMD = K) or SIMD elements per output beat, PE-wide MVAU results. "
        "Line buffer: the reader runs (KH - 1) * W + KW + 1 pixels ahead; the pixels are held once in KH x KW "
        "banks by (y mod KH, x mod KW) (one window read per clock, one read port per bank), KH rows rounded up to "
        "whole KW-pixel column groups; the RTL's line buffer is banked the same way over KH rows (its built bits "
        "in the last column).")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--refresh-rtl", action="store_true")
    known, rest = ap.parse_known_args(argv)
    if known.refresh_rtl:
        res = json.loads((RESULTS / "hls_stream.json").read_text())
        attach_rtl(res)
        res["note"] = note(res)
        publish(RESULTS, "hls_stream", res, markdown)
        return
    a, build, x, y = lenet_test_split(__doc__.splitlines()[0], "hls_stream_", rest)

    from a2qflow.hw.compiler.ir import load_model
    from a2qflow.hw.compiler.reference import prepare_inputs
    from a2qflow.hw.hls.csim import run_csim

    print(f"C-sim: {len(x)} test images", flush=True)
    r = run_csim(build, x, labels=y, progress=False)
    model = load_model(build)
    stages, _ = stage_loops(build, prepare_inputs(model, x[:50]))
    slowest = max(stages, key=lambda s: s["iterations_max"])
    res = dict(config=str(CONFIG.relative_to(ROOT)), epochs=a.epochs,
               csim={k: getattr(r.summary, k) for k in ("samples", "mismatches", "top1_accuracy", "tool")},
               pixels=int(np.prod(model.input_shape[1:])), slowest_iterations=slowest["iterations_max"],
               slowest_stage=slowest["what"], stages=stages)
    attach_rtl(res)
    res["note"] = note(res)
    publish(RESULTS, "hls_stream", res, markdown)
    print(json.dumps({k: res[k] for k in ("csim", "slowest_iterations", "slowest_stage", "pixels")}), flush=True)


if __name__ == "__main__":
    main()
