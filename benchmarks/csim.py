"""Measure C-sim compile seconds and inferences per second -> benchmarks/results/csim.json.

Models: the random integer MLP and CNN of tests/_hls_util.py (no training needed, so the numbers depend only on
the generated C++, g++ and the machine), plus a digits-sized MLP 64-64-64-10 and CNN 1x8x8 conv(8)+pool,
conv(16)+pool, fc. For each: a cold compile (fresh build folder; the precompiled ap_types header is built once
beforehand and reported separately), a cached re-run (hash hit) and the run time on N random inputs, for the
overflow-monitor build and the plain build.

usage: python benchmarks/csim.py [--samples 2000]
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
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


from _hls_util import conv_model, dense_model, random_inputs, write_build  # noqa: E402

from a2qflow.hw.compiler.ir import IntType  # noqa: E402
from a2qflow.hw.files import atomic_write_json  # noqa: E402
from a2qflow.hw.hls.csim import _cache_dir, _compiler_id, _precompiled_header, ap_types_dir, find_cxx, run_csim  # noqa: E402


def models():
    return {
        "rand_mlp_24-16-12-10": dense_model(seed=0),
        "mlp_64-64-64-10_w4a4": dense_model(seed=1, sizes=(64, 64, 64, 10), act_type=IntType(4, False)),
        "rand_cnn_2x8x8": conv_model(seed=0),
        "cnn_1x8x8_w4a4": conv_model(seed=1, in_shape=(1, 8, 8), act_type=IntType(4, False)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    cxx = find_cxx()
    t0 = time.perf_counter()
    pch_existed = any((_cache_dir() / "pch").glob("*/a2q_ap.h.gch"))
    pch = _precompiled_header(cxx, _compiler_id(cxx), ap_types_dir())
    pch_seconds = time.perf_counter() - t0
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for name, model in models().items():
            x = random_inputs(model, args.samples, seed=3)
            for monitor in (True, False):
                build = write_build(model, Path(td) / f"{name}-{monitor}")
                cold = run_csim(build, x, monitor=monitor, progress=False, write=False)
                warm = run_csim(build, x, monitor=monitor, progress=False, write=False)
                assert cold.mismatches == 0 and warm.mismatches == 0, name
                rows.append({
                    "model": name, "overflow_monitor": monitor, "samples": args.samples,
                    "acc_bits": cold.summary["acc_bits"],
                    "compile_seconds": cold.summary["seconds"]["compile"],
                    "cached_compile_seconds": warm.summary["seconds"]["compile"],
                    "run_seconds": warm.summary["seconds"]["run"],
                    "inferences_per_second": warm.summary["inferences_per_second"],
                    "mismatches_vs_golden": warm.mismatches,
                })
                print(f"{name:24s} monitor={monitor!s:5s} compile {rows[-1]['compile_seconds']:6.2f} s  "
                      f"{rows[-1]['inferences_per_second']:>10} inferences/s")
    result = {
        "tool": f"{_compiler_id(cxx)} -O2 -std=c++14, ap_types from hls4ml (hw/hls/csim.py)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "precompiled_header": {"used": bool(pch), "already_cached": pch_existed,
                               "build_seconds": None if pch_existed else round(pch_seconds, 2)},
        "note": "compile = top.cpp and tb.cpp in parallel + link, with the cached precompiled ap_types header; "
                "run = one testbench process over all samples (includes file I/O)",
        "results": rows,
    }
    out = ROOT / "benchmarks" / "results" / "csim.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
