"""The check of the Ray executor: the same sweep under `local` and `ray` gives the same sweep.json figures.

Runs (or, when the folders already hold a finished sweep, re-reads) `a2qflow sweep flows/configs/digits_mlp.yaml
--acc-bits 11,13 --stages csim` with --executor local (--jobs 2) and --executor ray (a local Ray runtime), then
compares every point's figures. Writes benchmarks/results/sweep_ray.{json,md}.

Run: nice -n 10 .venv/bin/python benchmarks/sweep_ray.py [--local runs/dw_local] [--ray runs/dw_ray]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
KEYS = ("name", "status", "accuracy", "accuracy_source", "torch_accuracy", "csim_accuracy", "acc_bits_built",
        "acc_bits_datatype", "overflow_events", "luts_estimate")


def sweep(out: Path, executor: str) -> dict:
    from a2qflow.flows.sweep import run_sweep

    done = out / "sweep.json"
    if done.is_file():  # a finished sweep: keep its own timing (a re-run would only re-read the folders)
        return json.loads(done.read_text())
    return run_sweep(ROOT / "flows/configs/digits_mlp.yaml", out, [11, 13], stages=["csim"], jobs=2,
                     executor=executor, progress=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--local", default=str(ROOT / "runs" / "dw_local"))
    ap.add_argument("--ray", default=str(ROOT / "runs" / "dw_ray"))
    a = ap.parse_args(argv)
    loc, ray = sweep(Path(a.local), "local"), sweep(Path(a.ray), "ray")
    rows = [{"local": {k: p.get(k) for k in KEYS}, "ray": {k: q.get(k) for k in KEYS}}
            for p, q in zip(loc["points"], ray["points"])]
    same = len(loc["points"]) == len(ray["points"]) and all(r["local"] == r["ray"] for r in rows)
    res = {"benchmark": "sweep_ray", "command": "a2qflow sweep flows/configs/digits_mlp.yaml --acc-bits 11,13 "
           "--stages csim (--executor local --jobs 2 | --executor ray)", "identical": same, "compared_keys": KEYS,
           "executors": [loc.get("executor"), ray.get("executor")], "seconds": [loc["seconds"], ray["seconds"]],
           "points": rows,
           "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sweep_ray.json").write_text(json.dumps(res, indent=1) + "\n")
    L = ["# Sweep on Ray vs local (benchmarks/sweep_ray.py)", "", f"`{res['command']}`: the {len(rows)} points' "
         f"figures ({', '.join(KEYS)}) are **{'identical' if same else 'DIFFERENT'}**; sweep.json records "
         f"{ray.get('executor')}. Wall time: local {loc['seconds']} s, Ray {ray['seconds']} s ({res['machine']}, "
         "shared machine).", "", "| point | accuracy (C-sim) local | Ray | built P local | Ray |",
         "|---|---:|---:|---:|---:|"]
    L += [f"| {r['local']['name']} | {r['local']['accuracy']} | {r['ray']['accuracy']} | "
          f"{r['local']['acc_bits_built']} | {r['ray']['acc_bits_built']} |" for r in rows]
    (RESULTS / "sweep_ray.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
