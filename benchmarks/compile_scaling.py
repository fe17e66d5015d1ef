"""Compile time vs graph size: the demo model plus a chain of N Identity nodes.

Why: qonnx' RemoveIdentityOps (run inside GemmToMatMul) removes one node per transformation step and re-runs
shape inference and the graph clean-up after each, so compile was quadratic or worse in the number of Identity
nodes (5.8 s at N = 50, 27 s at 200, > 2 min at 1000 on this machine class). `hw.compiler.passes.bypass_identities`
removes them in one linear pass before qonnx sees the graph. This script times `a2qflow compile` (load, checks,
clean-up, lowering, plan, build folder) for N = 10 .. 10,000, and, for N <= 200, the same compile with the linear
pass switched off (qonnx' GemmToMatMul and its RemoveIdentityOps alone: the "before" column), and a chain of N
real post-ops (Mul by 1.001), which is still quadratic in qonnx' own clean-up. Writes
benchmarks/results/compile_scaling.json and compile_scaling.md.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/compile_scaling.py [--model MODEL.onnx]

Without --model the demo config (flows/configs/digits_mlp.yaml) is trained for 1 epoch (its weights do not matter
for the timing; its graph is the demo's).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import publish, result_options, rewrite_markdown  # noqa: E402

SIZES = (10, 30, 100, 200, 300, 1000, 3000, 10000)
BEFORE_SIZES = (10, 30, 100, 200)  # qonnx' removal alone: quadratic, so only small N
MUL_SIZES = (10, 30, 100, 200)  # real post-ops: still quadratic in qonnx' own clean-up (see markdown())


def demo_model(work: Path) -> Path:
    """The demo config's model.onnx, trained for 1 epoch into `work`."""
    from a2qflow.flows.config import load_config
    from a2qflow.training.train import run_training

    text = (ROOT / "flows/configs/digits_mlp.yaml").read_text().replace("epochs: 20", "epochs: 1")
    (work / "demo.yaml").write_text(text)
    run_training(load_config(work / "demo.yaml"), work / "train", progress=False)
    return work / "train" / "model.onnx"


def with_identity_chain(src: Path, dst: Path, n: int) -> Path:
    """`src` with N Identity nodes chained after its input quantizer (what a careless exporter may leave)."""
    import onnx

    m = onnx.load(str(src))
    q = next(x for x in m.graph.node if x.op_type == "Quant" and x.input[0] == m.graph.input[0].name)
    out, prev = q.output[0], q.output[0]
    users = [x for x in m.graph.node if out in x.input]
    chain = []
    for i in range(n):
        chain.append(onnx.helper.make_node("Identity", [prev], [f"chain_{i}"], name=f"chain_id{i}"))
        prev = f"chain_{i}"
    for u in users:
        u.input[:] = [prev if t == out else t for t in u.input]
    m.graph.node.extend(chain)
    onnx.save(m, str(dst))
    return dst


def with_mul_chain(src: Path, dst: Path, n: int) -> Path:
    """`src` with N real scale nodes (x * 1.001, not removable) before its first ReLU: a chain of N post-ops."""
    import numpy as np
    import onnx

    m = onnx.load(str(src))
    relu = next(x for x in m.graph.node if x.op_type == "Relu")
    prev = relu.input[0]
    for i in range(n):
        m.graph.initializer.append(onnx.numpy_helper.from_array(np.array(1.001, dtype=np.float32), f"k_{i}"))
        m.graph.node.append(onnx.helper.make_node("Mul", [prev, f"k_{i}"], [f"scaled_{i}"], name=f"scale{i}"))
        prev = f"scaled_{i}"
    relu.input[0] = prev
    onnx.save(m, str(dst))
    return dst


def time_compile(onnx_path: Path, build: Path, repeat: int = 1) -> float:
    """Median wall seconds of `repeat` compiles of `onnx_path` into `build`."""
    from a2qflow.hw.compiler.compile import compile_model

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        compile_model(onnx_path, build)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _qonnx_gemm_to_matmul():
    """qonnx' own GemmToMatMul (with its RemoveIdentityOps), for the "before" column."""
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul

    return GemmToMatMul


def markdown(res: dict) -> str:
    L = ["# Compile time vs graph size (benchmarks/compile_scaling.py)", "",
         f"The demo model (`flows/configs/digits_mlp.yaml`, {res['base_nodes']} nodes) plus a chain of N Identity "
         "nodes after its input quantizer; wall seconds of `compile_model` (load, checks, qonnx clean-up, lowering, "
         "the layer-by-layer golden == qonnx check on 8 inputs, plan, build folder), the median of 3 runs "
         "(\"before\": one run) after a warm-up compile, measured with "
         "Python's `time.perf_counter` on "
         f"{res['machine']} (2 cores shared with other jobs: expect a few percent of noise, more in \"before\"). "
         "\"before\": the same compile with `bypass_identities` switched off and qonnx' own GemmToMatMul, which runs "
         "RemoveIdentityOps after every Gemm (one node per step, a whole-graph clean-up after each).", "",
         "| N Identity nodes | file KB | compile s | before s |", "|---:|---:|---:|---:|"]
    before = {r["n"]: r["seconds"] for r in res["before"]}
    for r in res["after"]:
        b = before.get(r["n"])
        L.append(f"| {r['n']:,} | {r['kb']:.0f} | {r['seconds']:.2f} | {'-' if b is None else f'{b:.1f}'} |")
    L += ["", f"Without the chain: {res['base_seconds']:.2f} s.", "",
          "A chain of N real post-ops (`x * 1.001`, which no pass may remove) before the first ReLU: the lowering "
          "indexes readers and producers once (`GraphView`), but qonnx' ModelWrapper looks initializers, producers "
          "and shapes up by scanning lists, so its clean-up steps stay quadratic in the graph, and the golden == "
          "qonnx check executes every node:", "",
          "| N Mul nodes | compile s |", "|---:|---:|"]
    L += [f"| {r['n']:,} | {r['seconds']:.2f} |" for r in res["mul_chain"]]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="a model.onnx to use instead of training the demo's")
    result_options(ap, "compile_scaling")
    args = ap.parse_args()
    out = args.out
    if args.markdown_only:
        return rewrite_markdown(out, "compile_scaling", markdown)
    import onnx

    with tempfile.TemporaryDirectory(prefix="a2qflow-scaling-") as tmp:
        work = Path(tmp)
        base = args.model or demo_model(work)
        time_compile(base, work / "warm-up")  # imports and first-call costs are not the graph's
        res = {"tool": "benchmarks/compile_scaling.py", "machine": f"{platform.machine()} {platform.node()}",
               "python": platform.python_version(), "base_nodes": len(onnx.load(str(base)).graph.node),
               "base_seconds": round(time_compile(base, work / "b0", 3), 3), "after": [], "before": []}
        for n in SIZES:
            f = with_identity_chain(base, work / f"chain{n}.onnx", n)
            s = time_compile(f, work / f"b{n}", 3)
            res["after"].append({"n": n, "kb": f.stat().st_size / 1024, "seconds": round(s, 3)})
            print(f"N={n}: {s:.2f} s", flush=True)
        res["mul_chain"] = []
        for n in MUL_SIZES:
            s = time_compile(with_mul_chain(base, work / f"mul{n}.onnx", n), work / f"m{n}")
            res["mul_chain"].append({"n": n, "seconds": round(s, 3)})
            print(f"Mul chain, N={n}: {s:.1f} s", flush=True)
        with mock.patch("a2qflow.hw.compiler.passes.bypass_identities", lambda graph: 0), \
                mock.patch("a2qflow.hw.compiler.frontend.bypass_identities", lambda graph: 0), \
                mock.patch("a2qflow.hw.compiler.passes.GemmToMatMulLinear", _qonnx_gemm_to_matmul()):
            for n in BEFORE_SIZES:
                f = work / f"chain{n}.onnx" if (work / f"chain{n}.onnx").exists() else \
                    with_identity_chain(base, work / f"chain{n}.onnx", n)
                s = time_compile(f, work / f"before{n}")
                res["before"].append({"n": n, "seconds": round(s, 3)})
                print(f"before, N={n}: {s:.1f} s", flush=True)
    publish(out, "compile_scaling", res, markdown, echo=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
