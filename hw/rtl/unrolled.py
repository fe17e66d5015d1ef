"""The unrolled (constant-weight) datapath of a dense layer: one input vector per clock, weights in the logic.

Why: in the folded MVAU a zero weight is an ordinary memory word and a small weight costs a full multiplier, so
what A2Q does to the weights (small L1 norms, many zeros) saves nothing there. With the weights as constants, every
output channel is a sum of shifted copies of its inputs, one per nonzero canonical-signed-digit (CSD) digit of its
weights (`hw.compiler.csd`): zero weights vanish and small weights are one or two terms. This is the architecture of
hls4ml's "latency" strategy and of LogicNets-style designs.

Per output channel the generator builds:
- a positive and a negative adder tree over the +1 and -1 digit terms `x_k << shift`, built Huffman-style (the two
  terms with the smallest ranges first), every node an explicit `(* keep *)` adder sized to its exact value range
  from the plan's integer weights and capped at the layer's P bits (arithmetic is modular, so the cap never changes
  the P-bit result; A2Q guarantees the true sum fits). Trailing zero bits of shifted terms are not added: a node
  stores its value >> shift and the low bits of the lower-shifted operand pass through;
- one subtraction at the channel's exact width (capped at P), sign-extended to P;
- multi-threshold comparators against constants: a threshold the channel can never or always reach is tied off,
  and the thermometer code is turned into the count with XORs (thresholds are ascending);
- optional pipeline registers inside the trees (`pipeline_depth`), then the output register between layers.
Handshake: valid/ready with a global stall, so the layer accepts one vector per clock while its output is taken.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import count

import numpy as np
from jinja2 import Environment, StrictUndefined

from a2qflow.hw.compiler.bounds import channel_ranges, signed_bits_for_range
from a2qflow.hw.compiler.csd import csd
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import A2QFlowError


@dataclass
class Node:
    """One value of the datapath: stores (true value >> shift) in `width` bits; `lo`/`hi` bound the stored value."""

    name: str
    lo: int
    hi: int
    shift: int
    width: int
    level: int = 0  # adders between the inputs and this node
    expr: str | None = None  # Verilog of the adder (None for an input)
    low: str | None = None  # bits passed through below the adder
    add_width: int = 0

    @property
    def signed(self) -> bool:
        return self.lo < 0


def range_bits(lo: int, hi: int) -> int:
    """Bits to store every integer of [lo, hi]: unsigned when lo >= 0, two's complement otherwise."""
    if lo >= 0:
        return max(1, int(hi).bit_length())
    return signed_bits_for_range(lo, hi)


def bits(node: Node, name: str, msb: int, lsb: int) -> str:
    """Verilog for bits [msb:lsb] of `node`'s stored value, sign- or zero-extended beyond its width."""
    parts = []
    if msb >= node.width:
        n_ext = msb - max(lsb, node.width) + 1
        fill = f"{name}[{node.width - 1}]" if node.signed else "1'b0"
        parts.append(f"{{{n_ext}{{{fill}}}}}")
    if lsb < node.width:
        top = min(msb, node.width - 1)
        parts.append(f"{name}[{top}:{lsb}]" if top > lsb else f"{name}[{lsb}]")
    return parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"


def shifted(node: Node | None, name: str, width: int, base: int) -> str:
    """Verilog of width `width`: (node's true value >> base) truncated, i.e. the stored value << (shift - base)."""
    if node is None:
        return f"{width}'d0"
    up = node.shift - base
    if up >= width:
        return f"{width}'d0"
    body = bits(node, name, width - up - 1, 0)
    return body if up == 0 else f"{{{body}, {up}'d0}}"


class TreeBuilder:
    """Builds the adder nodes of one layer; node names are unique within the layer."""

    def __init__(self, acc_bits: int, in_type: IntType, uniform: bool = False):
        self.P = acc_bits
        self.uniform = uniform  # every node acc_bits wide (a plain ap_int<P> datapath), not its exact range
        self.t = in_type
        self.nodes: list[Node] = []
        self._ids = count()

    def leaf(self, k: int, shift: int) -> Node:
        return Node(f"x{k}", self.t.min, self.t.max, shift, self.t.bits)

    def combine(self, a: Node, b: Node) -> Node:
        """a + b as a new node (a has the lower shift); its low shift-difference bits are a's, passed through."""
        if a.shift > b.shift:
            a, b = b, a
        d = b.shift - a.shift
        lo, hi = a.lo + (b.lo << d), a.hi + (b.hi << d)
        width = self.P - a.shift if self.uniform else min(range_bits(lo, hi), self.P - a.shift)
        n = Node(f"n{next(self._ids)}", lo, hi, a.shift, width, max(a.level, b.level) + 1)
        if width <= d:  # b sits entirely above the P-bit window: only a's low bits matter
            n.low, n.add_width = bits(a, "@A@", width - 1, 0), 0
        else:
            n.add_width = width - d
            n.expr = f"{bits(a, '@A@', width - 1, d)} + {bits(b, '@B@', width - d - 1, 0)}"
            n.low = bits(a, "@A@", d - 1, 0) if d else None
        n.args = (a, b)  # type: ignore[attr-defined]
        self.nodes.append(n)
        return n

    def tree(self, terms: list[Node]) -> Node | None:
        """Sum of `terms` (the two with the smallest magnitude first), or None when there are none."""
        terms = [t for t in terms if t.shift < self.P]  # a term shifted past P bits is 0 modulo 2^P
        if not terms:
            return None
        heap = [(max(abs(t.lo), abs(t.hi)) << t.shift, i, t) for i, t in enumerate(terms)]
        heapq.heapify(heap)
        tie = len(heap)
        while len(heap) > 1:
            _, _, a = heapq.heappop(heap)
            _, _, b = heapq.heappop(heap)
            n = self.combine(a, b)
            heapq.heappush(heap, (max(abs(n.lo), abs(n.hi)) << n.shift, tie, n))
            tie += 1
        return heap[0][2]


@dataclass
class Channel:
    """One output channel: its trees, exact range and the Verilog of its accumulator and output."""

    index: int
    pos: Node | None
    neg: Node | None
    width: int  # accumulator width (exact, capped at P)
    base: int  # shift of the subtraction
    level: int
    acc_lo: int
    acc_hi: int
    compares: list[str] = field(default_factory=list)  # per threshold: "1'b1", "1'b0" or a comparison
    count_bits: list[str] = field(default_factory=list)


def _thermometer_count(t: list[str]) -> list[str]:
    """Bits of #{l : t[l]} for a monotone (thermometer) t: bit b is the XOR of t[j*2^b - 1] over j >= 1."""
    n = len(t)
    out = []
    for b in range(max(1, n.bit_length())):
        terms = [t[j * (1 << b) - 1] for j in range(1, n // (1 << b) + 1)]
        ones = sum(x == "1'b1" for x in terms) % 2
        rest = [x for x in terms if x not in ("1'b1", "1'b0")]
        if not rest:
            out.append("1'b1" if ones else "1'b0")
        else:
            e = " ^ ".join(rest)
            out.append(f"~({e})" if ones else f"({e})")
    return out


def _signed_literal(v: int, width: int) -> str:
    return f"{width}'sd{v}" if v >= 0 else f"-{width}'sd{-v}"


def build_channels(weights: np.ndarray, in_type: IntType, acc_bits: int, thresholds: np.ndarray | None,
                   uniform: bool = False) -> tuple[TreeBuilder, list[Channel]]:
    """The adder trees, accumulators and tied-off comparators of every output channel of a (C, K) weight matrix."""
    tb = TreeBuilder(acc_bits, in_type, uniform)
    lo_c, hi_c = channel_ranges(weights, in_type)
    channels = []
    for c, row in enumerate(np.asarray(weights, dtype=np.int64).tolist()):
        plus, minus = [], []
        for k, w in enumerate(row):
            for shift, sign in csd(w):
                (plus if sign > 0 else minus).append(tb.leaf(k, shift))
        pos, neg = tb.tree(plus), tb.tree(minus)
        exact = signed_bits_for_range(int(lo_c[c]), int(hi_c[c]))
        width = acc_bits if uniform else min(exact, acc_bits)
        shifts = [n.shift for n in (pos, neg) if n is not None]
        base = min(shifts) if shifts else 0
        level = max([n.level for n in (pos, neg) if n is not None], default=0) + 1
        fits = exact <= acc_bits  # else the P-bit accumulator wraps and any P-bit value is reachable
        rlo, rhi = (int(lo_c[c]), int(hi_c[c])) if fits else (-(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1)
        ch = Channel(c, pos, neg, width, base, level, rlo, rhi)
        if thresholds is not None:
            for t in thresholds[c].tolist():
                if t <= rlo:
                    ch.compares.append("1'b1")
                elif t > rhi:
                    ch.compares.append("1'b0")
                else:
                    ch.compares.append(f"($signed(acc{c}) >= {_signed_literal(int(t), width)})")
            ch.count_bits = _thermometer_count(ch.compares)
        channels.append(ch)
    return tb, channels


def stage_of(level: int, max_level: int, depth: int) -> int:
    """Pipeline stage (0..depth) of logic at `level` (1..max_level); inputs (level 0) are stage 0."""
    if level <= 0 or depth == 0:
        return 0
    return (level - 1) * (depth + 1) // max_level


class _Stages:
    """Names of values as seen from a pipeline stage: a value produced earlier is read through delay registers."""

    def __init__(self) -> None:
        self.produced: dict[str, tuple[int, int]] = {}  # name -> (stage, width)
        self.needed: dict[str, int] = {}  # name -> latest stage that reads it

    def define(self, name: str, stage: int, width: int) -> None:
        self.produced[name] = (stage, width)

    def ref(self, name: str, stage: int) -> str:
        made, _ = self.produced[name]
        if stage <= made:
            return name
        self.needed[name] = max(self.needed.get(name, 0), stage)
        return f"{name}_p{stage}"

    def registers(self) -> list[tuple[str, int, str]]:
        """(register, width, source) for every delay register, in stage order."""
        regs = []
        for name, last in self.needed.items():
            made, width = self.produced[name]
            for s in range(made + 1, last + 1):
                regs.append((f"{name}_p{s}", width, name if s == made + 1 else f"{name}_p{s - 1}"))
        return regs


def _node_lines(tb: TreeBuilder, st: _Stages, max_level: int, depth: int) -> list[str]:
    lines = []
    for n in tb.nodes:
        s = stage_of(n.level, max_level, depth)
        a, b = n.args  # type: ignore[attr-defined]
        names = {"@A@": st.ref(a.name, s), "@B@": st.ref(b.name, s)}

        def fill(text: str) -> str:
            for k, v in names.items():
                text = text.replace(k, v)
            return text

        if n.expr is None:
            lines.append(f"wire [{n.width - 1}:0] {n.name} = {fill(n.low)};")
        elif n.low is None:
            lines.append(f"(* keep *) wire [{n.width - 1}:0] {n.name} = {fill(n.expr)};")
        else:
            lines.append(f"(* keep *) wire [{n.add_width - 1}:0] {n.name}_s = {fill(n.expr)};")
            lines.append(f"wire [{n.width - 1}:0] {n.name} = {{{n.name}_s, {fill(n.low)}}};")
        st.define(n.name, s, n.width)
    return lines


def _channel_lines(ch: Channel, st: _Stages, max_level: int, depth: int, acc_bits: int, out_w: int,
                   out_base: int | None) -> list[str]:
    """Accumulator (one subtraction), comparators and output value of one channel."""
    c, w, base = ch.index, ch.width, ch.base
    s_acc = stage_of(ch.level, max_level, depth)
    lines = []
    if base >= w:
        lines.append(f"wire [{w - 1}:0] acc{c} = {w}'d0;")
    else:
        pos = shifted(ch.pos, st.ref(ch.pos.name, s_acc) if ch.pos else "", w - base, base)
        neg = shifted(ch.neg, st.ref(ch.neg.name, s_acc) if ch.neg else "", w - base, base)
        expr = pos if ch.neg is None else f"{pos} - {neg}"
        low = f", {base}'d0" if base else ""
        lines.append(f"(* keep *) wire [{w - base - 1}:0] acc{c}_s = {expr};")
        lines.append(f"wire [{w - 1}:0] acc{c} = {{acc{c}_s{low}}};")
    st.define(f"acc{c}", s_acc, w)
    s_out = stage_of(ch.level + 1, max_level, depth)
    acc = st.ref(f"acc{c}", s_out)
    if out_base is None:  # raw accumulator out, sign-extended to the plan's P
        ext = f"{{{{{acc_bits - w}{{{acc}[{w - 1}]}}}}, {acc}}}" if acc_bits > w else acc
        lines.append(f"wire [{out_w - 1}:0] o{c} = {ext};")
    else:
        cmp = [x.replace(f"acc{c})", f"{acc})") for x in ch.compares]
        cnt = _thermometer_count(cmp)
        lines.append(f"wire [{len(cnt) - 1}:0] cnt{c} = {{{', '.join(reversed(cnt))}}};")
        pad = out_w - len(cnt)
        ext = f"{{{pad}'d0, cnt{c}}}" if pad > 0 else f"cnt{c}[{out_w - 1}:0]"
        add = f" + {out_w}'d{out_base % (1 << out_w)}" if out_base % (1 << out_w) else ""
        lines.append(f"wire [{out_w - 1}:0] o{c} = {ext}{add};")
    st.define(f"o{c}", s_out, out_w)
    return lines


@dataclass
class UnrolledRTL:
    """A rendered unrolled layer module and what the manifest / report say about it."""

    body: str
    adders: int  # explicit adders and subtractors kept in the netlist
    terms: int  # signed-digit terms (adder tree inputs)
    max_level: int
    depth: int


def render(module: str, weights: np.ndarray, in_type: IntType, acc_bits: int, thresholds: np.ndarray | None,
           out_w: int, out_base: int | None, in_lanes: int, depth: int, template: str,
           summary: str, uniform_widths: bool = False) -> UnrolledRTL:
    """Verilog module `module` for a dense layer with (C, K) constant `weights` (columns in input lane order).

    thresholds None: the layer outputs its raw P-bit accumulators (the last layer, affine off-chip); else the
    fitted (C, L) thresholds, out = out_base + #{l : acc >= T[c, l]}. in_lanes is K when the input arrives as one
    vector per beat, 1 when it streams one element per beat (an s2p adapter collects the vector).
    uniform_widths makes every tree node and accumulator acc_bits wide (a plain ap_int<P> datapath without range
    analysis): how the 32-bit and data-type designs are built, so their P is really in the logic.
    """
    C, K = weights.shape
    if thresholds is not None and thresholds.size and (np.diff(thresholds, axis=1) < 0).any():
        raise A2QFlowError(f"{module}: thresholds are not ascending per channel; the IR is inconsistent, re-run "
                           "`a2qflow compile`")
    tb, channels = build_channels(weights, in_type, acc_bits, thresholds, uniform_widths)
    max_level = max((ch.level for ch in channels), default=0) + 1
    depth = min(depth, max_level - 1)
    st = _Stages()
    for k in range(K):
        st.define(f"x{k}", 0, in_type.bits)
    lines = _node_lines(tb, st, max_level, depth)
    for ch in channels:
        lines += _channel_lines(ch, st, max_level, depth, acc_bits, out_w, out_base)
    outs = [st.ref(f"o{c}", depth) for c in range(C)]
    regs = st.registers()
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    body = env.from_string(template).render(
        module=module, K=K, C=C, N=in_type.bits, OW=out_w, in_lanes=in_lanes, depth=depth, lines=lines,
        regs=regs, outs=list(reversed(outs)), summary=summary)
    adders = sum(1 for n in tb.nodes if n.expr) + sum(1 for ch in channels if ch.base < ch.width)
    terms = int(sum(len(csd(w)) for w in np.asarray(weights).ravel().tolist() if w))
    return UnrolledRTL(body, adders, terms, max_level, depth)
