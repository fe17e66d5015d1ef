"""Measure `a2qflow search` on the digits MLP with a budget of 80 % of the demo design's LUTs.

The demo design's LUTs are read from the sweep result that measured the demo configuration (a2q-W4-P12 in
benchmarks/results/sweep_digits/sweep.json: yosys synth_xilinx -family xc7, LUT-only, the figure README quotes).
The search's chosen design is confirmed by yosys; its accuracy (C-sim top-1) is compared with the best point of that
sweep whose yosys LUTs fit the same budget. Writes benchmarks/results/search_digits.{json,md}.

Run: nice -n 10 .venv/bin/python benchmarks/search_digits.py [--out runs/search_digits] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
SWEEP = ROOT / "benchmarks" / "results" / "sweep_digits" / "sweep.json"
RESULTS = ROOT / "benchmarks" / "results"
DEMO_POINT = "a2q-W4-P12"  # flows/configs/digits_mlp.yaml as `make demo` builds it


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "search_digits"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--executor", default="local")
    a = ap.parse_args(argv)
    from a2qflow.flows.search import run_search
    from a2qflow.hw.errors import A2QFlowError

    sweep = json.loads(SWEEP.read_text())
    demo = next(p for p in sweep["points"] if p["name"] == DEMO_POINT)
    budget = int(0.8 * demo["luts"])
    fits = [p for p in sweep["points"] if p["status"] == "ok" and p.get("luts") is not None and p["luts"] <= budget]
    best = max(fits, key=lambda p: p["accuracy"]) if fits else None
    t0 = time.time()
    try:
        run_search(ROOT / "flows/configs/digits_mlp.yaml", a.out, budget, jobs=a.jobs, executor=a.executor,
                   progress=False)
        error = None
    except A2QFlowError as e:
        error = str(e)
    # search.json as written (candidates' run folders relative to the search folder), also when nothing fitted
    s = json.loads((Path(a.out) / "search.json").read_text()) if (Path(a.out) / "search.json").is_file() else {}
    res = {"benchmark": "search_digits", "config": "flows/configs/digits_mlp.yaml",
           "demo_luts": demo["luts"], "demo_luts_tool": demo["luts_tool"], "budget_luts": budget,
           "budget_rule": f"int(0.8 * {demo['luts']}) (demo design {DEMO_POINT}, {SWEEP.relative_to(ROOT)})",
           "error": error, "chosen": s.get("chosen"), "chosen_bits": s.get("chosen_bits"),
           "chosen_name": s.get("chosen_name"), "luts": s.get("luts"), "luts_tool": s.get("luts_tool"),
           "accuracy": s.get("accuracy"), "accuracy_source": s.get("accuracy_source"),
           "fits": s.get("luts") is not None and s["luts"] <= budget,
           "best_sweep_point_in_budget": None if best is None else {
               k: best[k] for k in ("name", "accuracy", "luts", "accuracy_source", "epochs") if k in best},
           "sweep_epochs": sweep["epochs"],
           "gap_points": None if (best is None or s.get("accuracy") is None)
           else round(100 * (best["accuracy"] - s["accuracy"]), 2),
           "candidates": s.get("candidates"), "search_seconds": s.get("seconds"),
           "seconds": round(time.time() - t0, 1), "command": f"run_search(..., budget_luts={budget}, jobs={a.jobs})",
           "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in ("search.json", "search.md"):  # the search's own report (sensitivity table), linked from README
        if (Path(a.out) / name).is_file():
            (RESULTS / "search_digits").mkdir(exist_ok=True)
            shutil.copy2(Path(a.out) / name, RESULTS / "search_digits" / name)
    (RESULTS / "search_digits.json").write_text(json.dumps(res, indent=1) + "\n")
    (RESULTS / "search_digits.md").write_text(markdown(res))
    print(markdown(res))
    return 0 if res["fits"] else 1


def _gap(points: float | None) -> str:
    """gap_points (sweep point minus search, in accuracy points) said in words: its sign was easy to misread."""
    if points is None:
        return "no comparison"
    if points == 0:
        return "the same accuracy"
    return f"the search's design is {abs(points):.2f} points {'less' if points > 0 else 'more'} accurate"


def markdown(r: dict) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f} %"

    b = r["best_sweep_point_in_budget"]
    L = ["# a2qflow search on the digits MLP under 80 % of the demo's LUTs (benchmarks/search_digits.py)", "",
         f"Budget: {r['budget_luts']} LUTs = {r['budget_rule']}; LUTs by {r['demo_luts_tool']}.", ""]
    if r["error"]:
        L += [f"**No design found:** {r['error']}", ""]
    else:
        L += [f"- Chosen: `{r['chosen_name']}` (bits {r['chosen_bits']}, P {r['chosen']}): **{r['luts']} LUTs** "
              f"({r['luts_tool']}), {'within' if r['fits'] else 'OVER'} the budget; accuracy **{pct(r['accuracy'])}** "
              f"({r['accuracy_source']})."]
    if b:
        L += [f"- Best sweep point within the same budget ({SWEEP.relative_to(ROOT)}, {r['sweep_epochs']} epochs): "
              f"`{b['name']}` {pct(b['accuracy'])} at {b['luts']} LUTs; {_gap(r['gap_points'])}."]
    L += ["", "| candidate | bits | P | LUT estimate | LUT (yosys) | accuracy | status |",
          "|---|---|---|---:|---:|---:|---|"]
    for c in r["candidates"] or []:
        L.append(f"| {c['name']} | {list(c['bits'].values())} | {list(c['acc_bits'].values())} | "
                 f"{c['luts_estimate']} | {c['luts']} | {pct(c['accuracy'])} | {c['status']} |")
    L += ["", f"Search time: {r['search_seconds']} s on {r['machine']} (shared machine, load from other jobs).", ""]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
