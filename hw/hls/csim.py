"""C-simulation of the generated HLS design with g++ and the ap_types headers shipped by the hls4ml package.

`run_csim` regenerates BUILD/hls (unchanged files are left alone), compiles the testbench once per source hash
(BUILD/csim/bin/), runs the whole input set in one process and compares every output integer with the golden
model (hw.reference.run at the plan's widths). The default build defines A2Q_OVERFLOW_MONITOR: each MAC unit
(MVAU, VVAU, add, requant) also keeps a 64-bit shadow accumulator and counts, per layer, the outputs whose ACC_BITS
value differs; those counts must equal the golden model's overflow_events. The monitor only adds counting code;
the datapath is the one HLS synthesizes (`monitor=False` builds exactly that).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2qflow.hw.arrays import check_labels
from a2qflow.hw.cache_key import content_key
from a2qflow.hw.compiler.golden_compare import GoldenComparison, compare_with_golden
from a2qflow.hw.compiler.ir import num_classes
from a2qflow.hw.compiler.plan import load_build
from a2qflow.hw.compiler.reference import GoldenRun, prepare_inputs
from a2qflow.hw.compiler.reference import logits as golden_logits
from a2qflow.hw.compiler.reference import run as golden_run
from a2qflow.hw.config import VitisConfig
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_npy, atomic_write_text, cache_dir
from a2qflow.hw.results import CsimSummary

CXX_FLAGS = ["-O2", "-std=c++14", "-Wno-unknown-pragmas"]
SOURCES = ("top.cpp", "tb.cpp")
PCH_HEADER = "#include <ap_int.h>\n#include <hls_stream.h>\n"  # what the precompiled header pre-includes


def ap_types_dir() -> Path:
    """The ap_types headers (ap_int.h, hls_stream.h) inside the installed hls4ml package, without importing it."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise A2QFlowError("the hls4ml package is not installed; C-sim needs its ap_types headers "
                           "(pip install hls4ml==1.3.0)")
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (d / "ap_int.h").is_file() or not (d / "hls_stream.h").is_file():
        raise A2QFlowError(f"{d}: ap_int.h / hls_stream.h not found; reinstall hls4ml (pip install --force-reinstall "
                           "hls4ml==1.3.0)")
    return d


def find_cxx() -> str:
    """The C++ compiler: $CXX or g++ on PATH."""
    cxx = os.environ.get("CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        raise A2QFlowError(f"C++ compiler {cxx!r} not found on PATH; install g++ (apt-get install g++) or set CXX")
    return path


def _compiler_id(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        raise A2QFlowError(f"cannot run the C++ compiler {cxx}: {e}") from None
    return out.stdout.splitlines()[0].strip() if out.stdout else cxx


_ERR = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?:fatal )?error: (?P<msg>.*)$", re.M)


def _toolchain(compiler: str, ap: Path) -> dict:
    """What a compiled C-sim object depends on beyond its sources: the compiler, and which ap_types headers (their
    folder, the hls4ml version that ships them, ap_int.h's modification time)."""
    return {"compiler": compiler, "ap_types": str(ap), "hls4ml": _hls4ml_version(),
            "ap_int_mtime_ns": (ap / "ap_int.h").stat().st_mtime_ns}


def _precompiled_header(cxx: str, compiler: str, ap: Path) -> list[str]:
    """Flags that pre-include ap_int.h + hls_stream.h from a cached precompiled header (built once per compiler,
    flags and header folder; parsing ap_types dominates compile time). [] when it cannot be built."""
    key = content_key(texts={"a2q_ap.h": PCH_HEADER}, params={**_toolchain(compiler, ap), "flags": CXX_FLAGS},
                      code_modules=[__name__], follow_imports=False, length=16)
    d = cache_dir("pch", key)
    gch = d / "a2q_ap.h.gch"
    flags = ["-I", str(d), "-include", "a2q_ap.h"]
    if gch.is_file():
        return flags
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / "a2q_ap.h").write_text(PCH_HEADER)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".a2q_ap.", suffix=".gch.tmp")
        os.close(fd)
        res = subprocess.run([cxx, *CXX_FLAGS, "-isystem", str(ap), "-x", "c++-header", str(d / "a2q_ap.h"),
                              "-o", tmp], capture_output=True, text=True)
        if res.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            return []
        os.replace(tmp, gch)
        return flags
    except OSError:
        return []


def compile_testbench(hls_dir: Path, monitor: bool = True) -> tuple[Path, float, bool]:
    """Compile hls_dir/{top,tb}.cpp; returns (executable, seconds, compiled_now). Skips work when the hash of the
    sources, headers, flags and compiler is unchanged. A compile error is an A2QFlowError naming file:line."""
    cxx = find_cxx()
    ap = ap_types_dir()
    compiler = _compiler_id(cxx)
    flags = CXX_FLAGS + (["-DA2Q_OVERFLOW_MONITOR"] if monitor else [])
    # the generated sources carry the templates' and emitters' output; this module runs the compiler
    key = content_key(files=sorted(p for p in hls_dir.iterdir() if p.suffix in (".cpp", ".h", ".hpp")),
                      params={**_toolchain(compiler, ap), "flags": flags}, code_modules=[__name__],
                      follow_imports=False, length=16)
    flavour = "monitor" if monitor else "plain"
    csim_dir = hls_dir.parent / "csim"
    bindir = csim_dir / "bin"
    exe = bindir / f"tb-{flavour}-{key}"
    if exe.is_file():
        return exe, 0.0, False
    bindir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pch = _precompiled_header(cxx, compiler, ap)
    log = csim_dir / f"compile-{flavour}.log"
    with tempfile.TemporaryDirectory(dir=bindir, prefix=".build-") as td:
        # the two translation units compile in parallel, then link
        jobs = []
        for src in SOURCES:
            cmd = [cxx, *flags, "-isystem", str(ap), *pch, "-I", str(hls_dir), "-c", str(hls_dir / src),
                   "-o", str(Path(td) / (src + ".o"))]
            try:
                jobs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
            except OSError as e:
                raise A2QFlowError(f"cannot run {cxx}: {e}") from None
        results = [(cmd, *p.communicate(), p.returncode) for cmd, p in jobs]
        link = [cxx, *(str(Path(td) / (s + ".o")) for s in SOURCES), "-o", str(Path(td) / "tb")]
        if all(rc == 0 for *_, rc in results):
            r = subprocess.run(link, capture_output=True, text=True)
            results.append((link, r.stdout, r.stderr, r.returncode))
        atomic_write_text(log, "\n".join(" ".join(c) + "\n" + o + e for c, o, e, _ in results))
        failed = [(c, e) for c, _, e, rc in results if rc != 0]
        if failed:
            stderr = failed[0][1]
            m = _ERR.search(stderr)
            where = f"{m['file']}:{m['line']}: {m['msg']}" if m else (stderr.strip().splitlines() or ["?"])[0]
            raise A2QFlowError(f"generated C++ does not compile: {where} (full log: {log})")
        os.replace(Path(td) / "tb", exe)
    seconds = time.perf_counter() - t0
    for old in bindir.glob(f"tb-{flavour}-*"):  # keep one binary per flavour
        if old != exe:
            old.unlink(missing_ok=True)
    return exe, seconds, True


def run_testbench(exe: Path, x_int: np.ndarray, out_elems: int, workdir: Path,
                  progress: bool = True) -> tuple[np.ndarray, dict[str, tuple[int, int]], float]:
    """Run the compiled testbench on all samples; returns (outputs (N, out_elems) int64, {layer: (events,
    outputs)} from the monitor (empty for a plain build), seconds)."""
    workdir.mkdir(parents=True, exist_ok=True)
    n = int(x_int.shape[0])
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".run-") as td:
        inp, outp, ovf = Path(td) / "inputs.bin", Path(td) / "outputs.bin", Path(td) / "overflow.txt"
        inp.write_bytes(np.ascontiguousarray(x_int, dtype=np.int32).tobytes())
        cmd = [str(exe), str(inp), str(outp), "--overflow", str(ovf)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("C-sim"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          transient=True) as bar:
                task = bar.add_task("csim", total=n)
                for line in proc.stdout:
                    if line.startswith("progress "):
                        bar.update(task, completed=int(line.split()[1]))
        else:
            proc.stdout.read()
        err = proc.stderr.read()
        rc = proc.wait()
        seconds = time.perf_counter() - t0
        if rc != 0:
            raise A2QFlowError(f"C-sim testbench {exe.name} failed (exit {rc}): "
                               f"{(err.strip().splitlines() or ['no message'])[-1]}")
        y = np.fromfile(outp, dtype=np.int64)
        if y.size != n * out_elems:
            raise A2QFlowError(f"C-sim wrote {y.size} outputs, expected {n} x {out_elems}")
        counts: dict[str, tuple[int, int]] = {}
        if ovf.is_file():
            for line in ovf.read_text().splitlines():
                name, ev, outs = line.rsplit(" ", 2)
                counts[name] = (int(ev), int(outs))
    return y.reshape(n, out_elems), counts, seconds


@dataclass
class CsimResult:
    outputs: np.ndarray  # (N, out) int64, what the hardware streams out (last layer's ACC_BITS accumulators)
    golden: GoldenRun
    overflow: dict[str, int]  # per MAC layer, from the monitor build (empty for a plain build)
    summary: CsimSummary  # what csim.json holds

    @property
    def mismatches(self) -> int:
        return int(self.summary["mismatches"])

    @property
    def comparison(self) -> GoldenComparison:
        """The golden comparison (layer, channel and sample of the first mismatch), as csim.json holds it."""
        return self.summary.golden_comparison

    @property
    def overflow_events(self) -> int:
        return int(sum(self.overflow.values()))


def run_csim(build: Path | str, x: np.ndarray, labels: np.ndarray | None = None, monitor: bool = True,
             vitis: VitisConfig | None = None, progress: bool = True, write: bool = True,
             inputs_name: str = "inputs") -> CsimResult:
    """Generate, compile (cached) and run C-sim on x; compare with the golden model; write BUILD/csim/."""
    from a2qflow.hw.hls.generate import generate

    t_start = time.perf_counter()
    build = Path(build)
    model, plan = load_build(build)
    x_int = prepare_inputs(model, x, inputs_name)
    if labels is not None:
        labels = check_labels(labels, x_int.shape[0], num_classes(model), "labels")
    t0 = time.perf_counter()
    hls_dir = generate(build, vitis)
    t_gen = time.perf_counter() - t0
    exe, t_compile, compiled = compile_testbench(hls_dir, monitor=monitor)
    golden = golden_run(model, x_int, plan.acc_bits())
    out_elems = int(golden.acc.shape[1])
    y, counts, t_run = run_testbench(exe, x_int, out_elems, build / "csim", progress=progress)
    comparison = compare_with_golden(model, golden.acc, y, "C-sim")
    logits = golden_logits(model, y)
    pred = logits.argmax(axis=1)
    gold_pred = golden.logits.argmax(axis=1)
    overflow = {k: v[0] for k, v in counts.items()}
    summary = CsimSummary.model_validate({
        "model": model.name, "policy": plan.policy, "unsafe": plan.unsafe, "inputs": inputs_name,
        "samples": int(x_int.shape[0]),
        "mismatches": comparison.n_mismatches,  # samples with any output differing from the golden model
        "mismatching_outputs": comparison.mismatching_values,
        "first_mismatch": comparison.first_mismatch("csim"),
        "golden_comparison": comparison,
        "top1_accuracy": None if labels is None else float((pred == labels).mean()),
        "golden_top1_accuracy": None if labels is None else float((gold_pred == labels).mean()),
        "top1_agreement_with_golden": float((pred == gold_pred).mean()),
        "overflow_monitor": monitor,
        "overflow_events": int(sum(overflow.values())) if monitor else None,
        "overflow_events_per_layer": overflow if monitor else None,
        "golden_overflow_events_per_layer": {k: s.overflow_events for k, s in golden.stats.items()},
        "mac_outputs_per_layer": {k: v[1] for k, v in counts.items()} if monitor else None,
        "acc_bits": plan.acc_bits(),
        "seconds": {"generate": round(t_gen, 3), "compile": round(t_compile, 3), "run": round(t_run, 3),
                    "total": round(time.perf_counter() - t_start, 3)},
        "inferences_per_second": round(x_int.shape[0] / t_run, 1) if t_run > 0 else None,
        "compiled": compiled,
        "tool": f"{_compiler_id(find_cxx())}, ap_types from hls4ml {_hls4ml_version()}",
    })
    if write:
        out = build / "csim"
        atomic_write_npy(out / "outputs.npy", y)
        summary.write(out / "csim.json")
    return CsimResult(outputs=y, golden=golden, overflow=overflow, summary=summary)


def _hls4ml_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hls4ml")
    except PackageNotFoundError:
        return "?"
