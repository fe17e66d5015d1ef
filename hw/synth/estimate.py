"""Fast analytic resource model of the folded MVAU: LUT / FF / CARRY per layer in microseconds instead of a yosys run.

Why: a yosys run of one digits design takes one to two minutes on this machine class, so a sweep or a search that
wants to rank hundreds of per-layer configurations cannot synthesise them all. The model counts the structures the
RTL library builds (hw/rtl/verilog/a2q_mvau.v) and weighs each with a coefficient fitted to yosys
`synth_xilinx -family xc7 -nodsp` runs by benchmarks/fit_resource_model.py:

  multipliers   PE*SIMD lanes of N x M bits at full product width
  adder trees   PE*(SIMD-1) nodes at ACC_BITS (P)
  accumulators  PE registers + adders at P
  thresholds    PE*(2^n - 1) comparators at THR_BITS, and their C/PE-deep memory (logic, not block RAM)
  buffers       the double-buffered K-element input bank, the PE-wide output serializer, weight-ROM words
  control       counters over K/SIMD and C/PE

FF (model v2) is counted rather than regressed: ff_registers() counts the flip-flops a2q_mvau.v declares and
thr_columns() the threshold-word flip-flops that survive yosys' constant removal and merging; the fit only confirms
their coefficients (~1) and the one-bit flags (constant). The v1 regression over the structures above missed the
10% goal (held-out median 18.4%) because it could not see that merging.

Every figure it returns is an **estimate** and says so (`source`); yosys still measures the final designs. The
coefficients live in resource_model.json beside this module (versioned; the benchmark writes it).

Unrolled layers (hw/rtl/unrolled.py: constant weights, one input vector per clock) are built from other structures,
so they have their own coefficients (resource_model.json, `unrolled`), fitted to yosys channel-group runs of
unrolled layers by the same benchmark. Their cost follows the weights' nonzero canonical signed digits
(hw/compiler/csd.py), each one an adder input: `unrolled_features` counts the adders (digits - C: each channel's
terms in a positive and a negative tree, then one subtraction), their width (the input bits and, with the
data-type / forced policies, P), the comparators (C x thresholds at P) and the output register. The folded MVAU
reads its weights from a memory, so there the digits change nothing and the model ignores them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from a2qflow.hw.errors import A2QFlowError

MODEL_FILE = "resource_model.json"
MODEL_FORMAT = 1
TARGETS = ("LUT", "FF", "CARRY")
PRICED_KINDS = ("dense", "conv")  # plan.json kinds built from a2q_mvau.v, what the coefficients were fitted to
UNIT = {"dwconv": "a2q_vvau", "avgpool": "a2q_vvau window sum, or a2q_gap when global", "add": "a2q_add",
        "requant": "a2q_requant"}


@dataclass(frozen=True)
class LayerShape:
    """What the folded MVAU's size depends on (names as in a2q_mvau.v and plan.json).

    K / C: dot-product length / output channels; simd / pe: folding; N / M / P: input, weight and accumulator bits;
    n_thr: thresholds per channel (2^n - 1 for an n-bit output; 0 for the last layer, which outputs P-bit
    accumulators); thr_bits: threshold width (P or P + 1); out_bits: output word (n, or P without thresholds).
    signed_digits: non-zero signed digits of the weights (unrolled designs only; see the module docstring).
    architecture: folded (a2q_mvau.v) | unrolled (constant weights: simd = K, pe = C, priced by signed_digits).
    tree_widths: unrolled only, as plan.json: exact (every adder its exact range) | acc_bits (every adder P wide).
    """

    K: int
    C: int
    simd: int
    pe: int
    N: int
    M: int
    P: int
    n_thr: int
    thr_bits: int | None = None
    out_bits: int | None = None
    signed_digits: int | None = None
    architecture: str = "folded"
    tree_widths: str = "exact"

    def __post_init__(self):
        for f in ("K", "C", "simd", "pe", "N", "M", "P"):
            if int(getattr(self, f)) < 1:
                raise A2QFlowError(f"resource estimate: {f}={getattr(self, f)} must be a positive integer")
        if self.K % self.simd or self.C % self.pe:
            raise A2QFlowError(f"resource estimate: simd={self.simd} must divide K={self.K} and pe={self.pe} "
                               f"must divide C={self.C}")
        if self.architecture not in ("folded", "unrolled"):
            raise A2QFlowError(f"resource estimate: architecture {self.architecture!r}; use folded or unrolled")
        if self.architecture == "unrolled" and (self.signed_digits is None or self.signed_digits < 0):
            raise A2QFlowError(f"resource estimate: an unrolled layer (K={self.K}, C={self.C}) is priced by its "
                               f"weights' signed digits; got signed_digits={self.signed_digits}")


def _clog2(x: int) -> int:
    return max(1, math.ceil(math.log2(max(x, 2))))


def ff_registers(s: LayerShape) -> int:
    """Flip-flops a2q_mvau.v declares and yosys keeps, counted from the RTL (all but the threshold word `tq`).

    input side: the SIMD-word shift register (its oldest element unused) and the issued input word `xq`;
    `prod` (kept) at full N + M product width per lane; PE accumulators at P; `pend` and `ser` PE output words;
    the counters wsf / isf (SF), wsi (SIMD), iwa (weight address), ser_cnt (PE), and inf / nf1 / nf2 (NF; nf1 / nf2
    are dropped without thresholds). The weight word `wq` costs no flip-flop: the (* rom_style = "block" *) ROM
    maps to block RAM with its output register inside. The ~13 one-bit flags are in the fitted constant.
    """
    ow = s.out_bits or (s.N if s.n_thr else s.P)
    sf, nf = s.K // s.simd, s.C // s.pe
    data = (2 * s.simd - 1) * s.N + s.pe * s.simd * (s.N + s.M) + s.pe * s.P + 2 * s.pe * ow
    ctrl = 2 * _clog2(sf) + _clog2(s.simd) + _clog2(s.pe) + _clog2(sf * nf) + (3 if s.n_thr else 1) * _clog2(nf)
    return data + ctrl


def thr_columns(s: LayerShape, fraction: float = 1.0) -> float:
    """Expected flip-flops of the registered threshold word `tq` (PE x n_thr x thr_bits bits, read from a C/PE-deep
    ROM by the fold index).

    Each `tq` bit is a Boolean function of the fold index over its C/PE words; yosys drops the constant ones and
    merges flip-flops with identical inputs (opt_merge), so at most U = 2^(C/PE) - 2 distinct ones survive (2 at
    C/PE = 2, 14 at 4, exactly what yosys keeps). With T columns drawn from U values, the expected number of distinct
    ones is U (1 - exp(-T / U)) (occupancy). Sorted thresholds share high bits, so only a `fraction` of the T bits
    behave as independent draws; that fraction is fitted (resource_model.json, `thr_column_fraction`).
    """
    nf = s.C // s.pe
    if not s.n_thr or nf < 2:
        return 0.0
    t = fraction * s.pe * s.n_thr * (s.thr_bits or s.P)
    if nf > 60:  # U is astronomically larger than T: every drawn column is distinct
        return t
    u = 2.0 ** nf - 2
    return -u * math.expm1(-t / u)


def features(s: LayerShape, thr_fraction: float = 1.0) -> dict[str, float]:
    """Structure counts of one folded MVAU (the regressors; each is a count of bits or cells the RTL builds)."""
    lanes = s.pe * s.simd
    pw = s.N + s.M
    tb = s.thr_bits or s.P
    ow = s.out_bits or (s.N if s.n_thr else s.P)
    depth_t = s.C // s.pe  # threshold memory words
    depth_w = (s.K // s.simd) * depth_t  # weight memory words
    thr = s.pe * s.n_thr
    return {
        "const": 1.0,
        "mul_bits": lanes * s.N * s.M,  # LUT-only multiplier area grows with N x M
        "prod_bits": lanes * pw,  # kept full-width product registers
        "tree_bits": s.pe * (s.simd - 1) * s.P,  # adder-tree nodes at P
        "tree_carry": s.pe * (s.simd - 1) * math.ceil(s.P / 4),
        "acc_bits": s.pe * s.P,
        "acc_carry": s.pe * math.ceil(s.P / 4),
        "cmp_bits": thr * tb,  # comparators acc >= T
        "cmp_carry": thr * math.ceil(tb / 4),
        # threshold memory in LUTs: one LUT5 half per bit up to 32 words, ceil(words / 64) LUT6 beyond; constant
        # (no logic) when a layer has one word
        "thr_rom_bits": thr * tb * ((0.5 if depth_t <= 32 else math.ceil(depth_t / 64)) if depth_t > 1 else 0),
        "thr_reg_bits": thr * tb * (1 if depth_t > 1 else 0),  # the registered threshold word
        "out_bits": s.pe * ow,  # pending + serializer registers
        "in_buf_bits": s.K * s.N,  # two banks of K inputs
        "w_rom_bits": lanes * s.M * (math.ceil(depth_w / 64) if depth_w > 1 else 0),
        "ctrl_bits": _clog2(s.K // s.simd) + _clog2(depth_t) + _clog2(s.pe),
        "ff_regs": ff_registers(s),  # the RTL's flip-flops, counted (FF model)
        "thr_cols": thr_columns(s, thr_fraction),  # surviving threshold-word flip-flops (FF model)
    }


def unrolled_features(s: LayerShape) -> dict[str, float]:
    """Structure counts of one unrolled layer (the regressors of the `unrolled` coefficients).

    Each channel sums its weights' nonzero signed-digit terms (x_k << shift) in a positive and a negative adder
    tree, then subtracts them: digits - C adders in all (none for a channel without digits, hence the max). An
    exact-width adder is about the input bits plus a few (leaves are N-bit; the sum grows towards P at the root),
    so its cost is u_add (per adder) + u_add_n (per adder and input bit); with tree_widths acc_bits every adder is P
    wide (u_add_p). Comparators: C x n_thr at P bits, plus the thermometer-to-count logic (u_thr). The output
    register holds C words (the n-bit count, or P bits without thresholds); u_chan counts the channels (what each
    one adds beyond its adders: the flip-flops yosys keeps for its sign and handshake).
    """
    adders = max(float(s.signed_digits or 0) - s.C, 0.0)
    ow = s.out_bits or (s.N if s.n_thr else s.P)
    uniform = s.tree_widths == "acc_bits"
    return {
        "const": 1.0,
        "u_add": adders,
        "u_add_n": 0.0 if uniform else adders * s.N,
        "u_add_p": adders * s.P if uniform else 0.0,
        "u_cmp_bits": s.C * s.n_thr * (s.thr_bits or s.P),
        "u_thr": s.C * s.n_thr,
        "u_out_bits": s.C * ow,
        "u_chan": float(s.C),
    }


@dataclass
class Estimate:
    LUT: float
    FF: float
    CARRY: float
    source: str

    def as_dict(self) -> dict:
        return {k: round(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


@lru_cache(maxsize=4)
def _load(path: str | None) -> dict:
    if path is None:
        text = resources.files("a2qflow.hw.synth").joinpath(MODEL_FILE).read_text()
        where = f"a2qflow/hw/synth/{MODEL_FILE}"
    else:
        text, where = Path(path).read_text(), path
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        raise A2QFlowError(f"{where}: not valid JSON ({e}); re-run benchmarks/fit_resource_model.py") from None
    if m.get("format") != MODEL_FORMAT or set(m.get("coefficients", {})) != set(TARGETS):
        raise A2QFlowError(f"{where}: format {m.get('format')!r} with targets {sorted(m.get('coefficients', {}))}; "
                           f"expected format {MODEL_FORMAT} with {', '.join(TARGETS)}; re-run "
                           "benchmarks/fit_resource_model.py")
    return m


def load_resource_model(path: str | Path | None = None) -> dict:
    """The fitted coefficients (the packaged file unless `path` names another)."""
    return _load(None if path is None else str(path))


def estimate_layer(s: LayerShape, model: dict | None = None) -> Estimate:
    """LUT / FF / CARRY estimate of one folded MVAU or unrolled layer (xc7 LUT-only mapping, the flow the
    coefficients came from)."""
    m = model or load_resource_model()
    if s.architecture == "unrolled":
        coefs, f = _unrolled_coefficients(m), unrolled_features(s)
    else:
        coefs, f = m["coefficients"], features(s, m.get("thr_column_fraction", 1.0))
    vals = {t: sum(c * f[name] for name, c in coefs[t].items()) for t in TARGETS}
    return Estimate(**{t: max(0.0, v) for t, v in vals.items()}, source=estimate_label(m))


def _unrolled_coefficients(m: dict) -> dict:
    u = m.get("unrolled", {}).get("coefficients", {})
    if set(u) != set(TARGETS):
        raise A2QFlowError("resource estimate: the resource model has no coefficients for unrolled layers; re-run "
                           "benchmarks/fit_resource_model.py --unrolled-only")
    return u


def estimate_label(model: dict | None = None) -> str:
    m = model or load_resource_model()
    return f"estimate: a2qflow resource model v{m['version']} fitted to {m['fitted_to']}"


def shape_from_plan_layer(layer: dict) -> LayerShape:
    """A LayerShape from one plan.json layer entry (its folding, widths and threshold count).

    Only the MVAU layers the coefficients were fitted to (dense, conv) have one: a depthwise conv or average pool
    (a2q_vvau), a residual add or a requant (a2q_thr) builds other structures, and pricing them with the MVAU's
    coefficients would be a number nobody measured, so they are a one-line error naming the layer.
    """
    kind = layer.get("kind", "dense")
    unrolled = layer.get("architecture", "folded") == "unrolled"
    if unrolled and kind != "dense":
        raise A2QFlowError(f"resource estimate: layer {layer.get('name')} is an unrolled {kind}; the resource model's "
                           "unrolled coefficients are fitted to unrolled dense layers only: measure the design with "
                           "`a2qflow synth` (yosys) instead")
    if kind not in PRICED_KINDS:
        unit = UNIT.get(kind, "not an MVAU")
        raise A2QFlowError(f"resource estimate: layer {layer.get('name')} is a {kind} ({unit}); the resource "
                           f"model is fitted to the folded MVAU only ({', '.join(PRICED_KINDS)} layers) and cannot "
                           "price it: measure the design with `a2qflow synth` (yosys) instead")
    out_bits = layer.get("out_bits")
    n_thr = (2 ** out_bits - 1) if (layer.get("thr_bits") is not None and out_bits) else 0
    return LayerShape(K=layer["K"], C=layer["out_channels"], simd=layer["simd"], pe=layer["pe"],
                      N=layer["input_bits"], M=layer["weight_bits"], P=layer["acc_bits"], n_thr=n_thr,
                      thr_bits=layer.get("thr_bits"), out_bits=out_bits if n_thr else None,
                      signed_digits=layer.get("signed_digits") if unrolled else None,
                      architecture="unrolled" if unrolled else "folded",
                      tree_widths=layer.get("tree_widths", "exact"))


def estimate_design(layers: list[LayerShape], model: dict | None = None) -> dict:
    """Per-layer estimates plus the design total (layers + the top level's fixed glue, also fitted)."""
    m = model or load_resource_model()
    per = [estimate_layer(s, m) for s in layers]
    glue = m.get("top_glue", {})
    total = {t: sum(getattr(e, t) for e in per) + glue.get(t, 0.0) for t in TARGETS}
    return {"layers": [e.as_dict() for e in per], "total": {t: round(v) for t, v in total.items()},
            "source": estimate_label(m)}


def estimate_plan(plan_json: Path | str | dict, model: dict | None = None) -> dict:
    """Estimate a compiled BUILD from its plan.json (a path or the loaded dict); a plan with a layer the model
    cannot price (see `shape_from_plan_layer`) is a one-line A2QFlowError, never a partial total."""
    plan = plan_json if isinstance(plan_json, dict) else json.loads(Path(plan_json).read_text())
    res = estimate_design([shape_from_plan_layer(l) for l in plan["layers"]], model)
    res["layer_names"] = [l["name"] for l in plan["layers"]]
    return res
