"""Measure `make demo` (a2qflow run on the default digits config) from a fresh run folder.

Writes benchmarks/results/demo_time.json: wall seconds, per-stage seconds (from RUN/run.json), whether the run
ended in a bitstream and a report, and the machine it ran on. "Fresh machine" is approximated by an empty run
folder and, unless --warm-cache, an empty yowasp cache (so the one-off WebAssembly compile of yosys / nextpnr is
included); the virtualenv itself is assumed installed (`make install` time is pip's, not the flow's).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/demo_time.py [--warm-cache] [--config CFG] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from a2qflow.hw.files import atomic_write_json  # noqa: E402


def copy_report(src: Path, dest: Path) -> None:
    """Replace `dest` with the run's report folder (report.md and its plots; report.json stays out: it names the
    temporary run folder), through a sibling temp folder so a reader never sees half a report."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.suffix in (".md", ".png"):
            shutil.copy2(f, tmp / f.name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="flows/configs/digits_mlp.yaml")
    ap.add_argument("--warm-cache", action="store_true", help="reuse the user's yowasp cache")
    ap.add_argument("--keep", action="store_true", help="keep the run folder (printed at the end)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/demo_time.json"))
    ap.add_argument("--report-to", default=None, metavar="DIR",
                    help="also copy the run's report folder there (README's copy: benchmarks/results/demo_report)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="a2qflow-demo-"))
    run = work / "demo"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if not args.warm_cache:
        env["YOWASP_CACHE_DIR"] = str(work / "yowasp-cache")
    cmd = [str(ROOT / ".venv/bin/a2qflow"), "run", args.config, "--out", str(run), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    stages = json.loads((run / "run.json").read_text())["stages"] if (run / "run.json").is_file() else []
    bit = run / "build/bitstream/bitstream.json"
    bitinfo = json.loads(bit.read_text()) if bit.is_file() else None
    result = {
        "command": "make demo = " + " ".join(["a2qflow", "run", args.config, "--out", "runs/demo"]),
        "exit_code": proc.returncode,
        "error": proc.stderr.strip().splitlines()[-1] if proc.returncode and proc.stderr.strip() else None,
        "wall_seconds": round(wall, 1),
        "under_15_minutes": wall < 900 and proc.returncode == 0,
        "ended_in_bitstream": bitinfo is not None,
        "bitstream": {k: bitinfo.get(k) for k in ("target", "bitstream", "fmax_mhz", "utilisation_text")}
        if bitinfo else None,
        "report_written": (run / "report/report.md").is_file(),
        "stages": [{"name": s["name"], "status": s["status"], "seconds": s.get("seconds")} for s in stages],
        "yowasp_cache": "warm (user cache)" if args.warm_cache else "cold (empty cache: includes the wasm compile)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "omp_num_threads": env["OMP_NUM_THREADS"], "load_average_at_end": os.getloadavg()},
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "tool": "benchmarks/demo_time.py (wall clock of the a2qflow run subprocess)",
    }
    atomic_write_json(args.out, result)
    if args.report_to and result["report_written"]:
        copy_report(run / "report", Path(args.report_to))
    print(json.dumps({k: result[k] for k in ("wall_seconds", "exit_code", "ended_in_bitstream", "error")}))
    if args.keep:
        print(f"run folder: {run}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
