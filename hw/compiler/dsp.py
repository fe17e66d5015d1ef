"""Several MAC lanes per DSP slice: the packing arithmetic that only a proven accumulator width makes safe.

L output channels that read the same input x can share one multiplier: put their weights into one operand,
W = sum_l w_l * 2^(l*P), so x * W = sum_l (x * w_l) * 2^(l*P), and accumulate all K products in one L*P-bit
register. The L dot products come out as P-bit fields -- if, and only if, every channel's whole dot product fits P
bits for every input in range. That is what the exact bound proves (A2Q, Colbert et al., ICCV 2023, bounds the
same thing through ||q||_1 at training time); a 32-bit or data-type-bound accumulator never fits two lanes in a
48-bit DSP accumulator, which is why FINN's packed MVU spends logic on carry recovery and Xilinx WP486 limits the
accumulation chain instead.

Two details the property tests pin down:
- the packed operand needs (L - 1) * P + M bits, plus one when a weight can be -2^(M-1) (the top lane's most
  negative weight plus a negative remainder falls one below the M-bit range);
- extraction by borrow correction (add back the sign of the lane below) is off by one when a middle lane is exactly
  -2^(P-1) with three lanes. Starting the accumulator at B = sum_l 2^(P-1) * 2^(l*P) instead makes every lane an
  unsigned field u_l = acc_l + 2^(P-1) in [0, 2^P): the fields never borrow from one another, and lane l is its field
  with the top bit inverted, read as a signed P-bit number.

All functions are exact integer arithmetic (Python ints), the reference the RTL and HLS packed units are checked
against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2qflow.hw.compiler.bounds import acc_bits_exact
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import A2QFlowError

PACKING_MODES = ("auto", "off")


@dataclass(frozen=True)
class DspFamily:
    """A DSP slice as the packing sees it: a signed multiplier a_bits x b_bits and an acc_bits accumulator."""

    name: str
    a_bits: int  # the wide multiplier port: carries the packed weights
    b_bits: int  # the other port: carries the (shared) input activation, signed
    acc_bits: int  # the accumulator / post-adder register


# DSP48E1 (7 series): 25 x 18 signed, 48-bit P; DSP48E2 (UltraScale): 27 x 18, 48; iCE40 SB_MAC16: 16 x 16, 32.
FAMILIES: dict[str, DspFamily] = {
    "dsp48e1": DspFamily("dsp48e1", 25, 18, 48),
    "dsp48e2": DspFamily("dsp48e2", 27, 18, 48),
    "sb_mac16": DspFamily("sb_mac16", 16, 16, 32),
}


def family(name: str) -> DspFamily:
    """The DSP family named `name`, or a one-line error naming the allowed ones."""
    if name not in FAMILIES:
        raise A2QFlowError(f"hw.dsp.family: {name!r} is not a DSP family; use one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def weight_operand_bits(weight_bits: int, weights: np.ndarray | None = None) -> int:
    """M, or M + 1 when a weight is (or, without `weights`, can be) -2^(M-1): the top lane's share of the operand."""
    if weights is None:
        return weight_bits + 1
    w = np.asarray(weights, dtype=np.int64)
    return weight_bits + (1 if w.size and int(w.min()) == -(1 << (weight_bits - 1)) else 0)


def input_operand_bits(in_type: IntType) -> int:
    """Signed width of the shared input on the multiplier's other port (an unsigned N-bit input takes N + 1)."""
    return in_type.bits + (0 if in_type.signed else 1)


def packed_operand_bits(lanes: int, acc_bits: int, m_eff: int) -> int:
    """Signed bits of the packed weight word: (L - 1) * P + M_eff (exact for P >= M_eff, see the module doc)."""
    return (lanes - 1) * acc_bits + m_eff


def lanes_that_fit(fam: DspFamily, acc_bits: int, m_eff: int, in_type: IntType) -> int:
    """The most lanes of P = acc_bits bits one `fam` slice holds: (L-1)*P + M_eff <= a_bits and L*P <= acc_bits.

    Returns 1 (no packing) when even two lanes do not fit, the input does not fit the b port, or P < M_eff (the
    operand rule assumes each lane is at least as wide as a weight).
    """
    if input_operand_bits(in_type) > fam.b_bits or acc_bits < m_eff:
        return 1
    lanes = 1
    while (packed_operand_bits(lanes + 1, acc_bits, m_eff) <= fam.a_bits
           and (lanes + 1) * acc_bits <= fam.acc_bits):
        lanes += 1
    return lanes


def lanes_for_pe(fit: int, pe: int) -> int:
    """Lanes per DSP for a unit of `pe` parallel channels: the fewest lanes that reach the fewest DSPs.

    ceil(pe / fit) groups are needed at best; spreading pe over them evenly keeps every group as narrow as it can
    be (PE 4 with 3 lanes that fit: 2 groups of 2, not 3 + 1). A group with fewer channels than lanes gets
    zero-weight lanes.
    """
    fit = max(1, min(fit, pe))
    groups = -(-pe // fit)
    return -(-pe // groups)


def slices(pe: int, simd: int, lanes: int) -> int:
    """DSP slices (multipliers) of a folded unit with `lanes` channels per multiplier: one per group and SIMD element.

    ceil(PE / lanes) groups, each multiplying SIMD inputs at once; lanes = 1 is one multiplier per MAC (PE * SIMD).
    """
    return -(-pe // max(1, lanes)) * simd


def priced_lanes(fam: DspFamily, acc_bits: int, weight_bits: int, in_type: IntType, pe: int) -> int:
    """Lanes per DSP a layer gets at a target width P before its weights exist (search pricing).

    Assumes a weight can be -2^(M-1) (the operand's extra bit), so the trained layer, whose planned width is at
    most P, packs at least this many lanes: a price from this is an upper bound on the DSPs it will take.
    """
    return lanes_for_pe(lanes_that_fit(fam, acc_bits, weight_operand_bits(weight_bits), in_type), pe)


@dataclass(frozen=True)
class DspCandidate:
    """A packed layer competing for a limited number of DSP slices."""

    name: str
    lanes: int
    slices: int
    macs: int  # MACs per cycle it moves onto DSPs (PE * SIMD)


def choose_for_slices(cands: list[DspCandidate], max_slices: int | None) -> list[str]:
    """Which packed layers get DSP slices when only `max_slices` exist (an iCE40 UP5K has 8 SB_MAC16).

    Greedy on what a slice buys: most lanes per slice first (each slice then replaces the most LUT multipliers),
    then the layer moving the most MACs, then the earlier layer; a layer that does not fit the slices left is
    skipped for a smaller one. The others stay one lane per multiplier in logic: a packed multiply in LUTs costs
    about what its lanes cost unpacked, and synth_ice40 -dsp would otherwise infer every packed multiply into an
    SB_MAC16 and overflow the part. None: no limit, every candidate.
    """
    if max_slices is None:
        return [c.name for c in cands]
    order = sorted(range(len(cands)), key=lambda i: (-cands[i].lanes, -cands[i].macs, i))
    left, chosen = max_slices, set()
    for i in order:
        if cands[i].slices <= left:
            chosen.add(cands[i].name)
            left -= cands[i].slices
    return [c.name for c in cands if c.name in chosen]


def pack_weights(w: np.ndarray, acc_bits: int) -> list[int]:
    """(L, K) integer weights -> K packed words sum_l w[l, k] * 2^(l * P), as (signed) Python ints."""
    w = np.asarray(w, dtype=np.int64)
    return [sum(int(w[l, k]) << (l * acc_bits) for l in range(w.shape[0])) for k in range(w.shape[1])]


def lane_bias(lanes: int, acc_bits: int) -> int:
    """The accumulator's start value: 2^(P-1) in every lane, so every lane's field is unsigned (no borrows)."""
    return sum(1 << (l * acc_bits + acc_bits - 1) for l in range(lanes))


def accumulate(packed: list[int], x: np.ndarray, lanes: int, acc_bits: int) -> int:
    """The L*P-bit accumulator after bias + sum_k x_k * W_k, modulo 2^(L*P) (what the DSP register holds)."""
    total = lane_bias(lanes, acc_bits) + sum(int(xk) * wk for xk, wk in zip(np.asarray(x).tolist(), packed))
    return total & ((1 << (lanes * acc_bits)) - 1)


def extract(acc: int, lanes: int, acc_bits: int) -> list[int]:
    """The L signed P-bit lanes of a biased accumulator: each field with its top bit inverted, read as signed."""
    mask, half = (1 << acc_bits) - 1, 1 << (acc_bits - 1)
    return [((acc >> (l * acc_bits)) & mask) - half for l in range(lanes)]


def packed_dot(w: np.ndarray, x: np.ndarray, acc_bits: int) -> list[int]:
    """The L dot products w @ x computed the packed way (pack, bias, accumulate, extract)."""
    w = np.asarray(w, dtype=np.int64)
    lanes = w.shape[0]
    return extract(accumulate(pack_weights(w, acc_bits), x, lanes, acc_bits), lanes, acc_bits)


def layer_lanes(weights: np.ndarray, in_type: IntType, weight_bits: int, acc_bits: int, fam: DspFamily,
                pe: int) -> tuple[int, str]:
    """Lanes per DSP for a folded layer at width acc_bits, and the proof line plan.json records.

    The proof names the bound that permits it: the exact bound of these integer weights is <= P, so every lane's
    dot product fits its P-bit field for every input in range. A width below the exact bound never packs (it
    is unsafe; make_plan refuses it unless --allow-unsafe, and then the lanes may corrupt one another).
    """
    exact = acc_bits_exact(weights, in_type)
    m_eff = weight_operand_bits(weight_bits, weights)
    fit = lanes_that_fit(fam, acc_bits, m_eff, in_type)
    lanes = lanes_for_pe(fit, pe)
    head = f"{fam.name} ({fam.a_bits}x{fam.b_bits}, {fam.acc_bits}-bit acc)"
    if lanes < 2:
        why = (f"PE={pe}" if fit > 1 else
               f"2 x {acc_bits}-bit lanes need a {packed_operand_bits(2, acc_bits, m_eff)}-bit operand and "
               f"{2 * acc_bits}-bit accumulator")
        return 1, f"{head}: 1 lane ({why})"
    cond = f"exact bound {exact} <= P={acc_bits}" if exact <= acc_bits else \
        f"UNSAFE: P={acc_bits} below exact bound {exact}, lanes can corrupt one another"
    return lanes, (f"{head}: {lanes} lanes, operand {packed_operand_bits(lanes, acc_bits, m_eff)} <= {fam.a_bits} "
                   f"bits (M={weight_bits}{'+1' if m_eff > weight_bits else ''}), accumulator {lanes * acc_bits} "
                   f"<= {fam.acc_bits}; {cond}")


def pack_channels(w: np.ndarray, pe: int, lanes: int, acc_bits: int) -> np.ndarray:
    """(C, K) weights -> (C/PE, GROUPS, K) packed operands, the layout both packed backends fold from.

    A unit computes PE channels at a time (channels nf*PE + p); they form GROUPS = ceil(PE / lanes) groups of
    `lanes`, lane l of group g being channel nf*PE + g*lanes + l. Padding lanes of the last group are zero. The
    words are int64: a packed operand fits a DSP port (at most 27 bits).
    """
    w = np.asarray(w, dtype=np.int64)
    c, k = w.shape
    nf, groups = c // pe, -(-pe // lanes)
    padded = np.zeros((nf, groups * lanes, k), dtype=np.int64)
    padded[:, :pe] = w.reshape(nf, pe, k)
    padded = padded.reshape(nf, groups, lanes, k)
    return sum(padded[:, :, l] << (l * acc_bits) for l in range(lanes))
