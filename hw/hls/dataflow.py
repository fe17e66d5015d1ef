"""A token-level model of the generated dataflow: does it deadlock with the FIFO depths the design gives it?

Every stage of `a2qflow.hw.hls.design.Design` reads and writes its streams in a fixed order, the one its kernel in
hls_templates/ has (a sliding window or max pool reads its line buffer only as far as the next window needs, then
emits it, an MVAU reads the input vector during its first channel group and writes once per channel group, a
duplicator reads one beat and writes it twice, ...).
`simulate` runs those read / write sequences for a few inferences back to back with every internal stream bounded
by its `depth`, a blocked read or write stalling its stage as in hardware, the input port always full and the
output port always drained. It reports a deadlock (no stage can move, some are unfinished) and the peak occupancy
of every stream.

Why a model: C-simulation runs the stages of a dataflow region one after another on unbounded streams, so it can
never show a FIFO that is too shallow; only RTL co-simulation would, and it needs the Xilinx tools. This model checks
the skip-FIFO sizing of `lowering.skip_fifo_depths` on every design the tests build.
"""

from __future__ import annotations

from dataclasses import dataclass

from a2qflow.hw.hls.design import Design, Stage

Op = tuple[bool, str]  # (is a write, stream name)


def _consts(d: Design, ns: str) -> dict[str, int]:
    return next(dict(l.constants) for l in d.layers if l.ns == ns)


def stage_ops(d: Design, st: Stage) -> list[Op]:
    """The reads and writes of one inference of stage `st`, in the order its kernel issues them."""
    i, o = st.inp.name, st.out.name
    r, w = (False, i), (True, o)
    if st.kind == "duplicate":
        return [r, w, (True, st.out2.name)] * st.inp.beats
    if st.kind == "add":
        return [r, (False, st.inp2.name), w] * st.inp.beats
    if st.kind == "requant":
        return [r, w] * st.inp.beats
    if st.kind == "convert_width":
        a, b, n = st.args["in_beat"], st.args["out_beat"], st.args["elems"]
        return [op for k in range(n) for op in ([r] if k % a == 0 else []) + ([w] if k % b == b - 1 else [])]
    c = _consts(d, st.ns)
    if st.kind in ("sliding_window", "dw_sliding_window"):
        per_pixel = c["K"] // c["SIMD"] * (c["C"] // c["PE"] if st.kind == "dw_sliding_window" else 1)
        return _line_buffer_ops(st, c, per_pixel)
    if st.kind == "maxpool":
        return _line_buffer_ops(st, c, c["C"] // c["BEAT"])
    if st.kind in ("mvau", "vvau"):
        sf_n, nf_n = c["K"] // c["SIMD"], c["C"] // c["PE"]
        return [op for _ in range(c["ROWS"]) for nf in range(nf_n) for sf in range(sf_n)
                for op in ([r] if st.kind == "vvau" or nf == 0 else []) + ([w] if sf == sf_n - 1 else [])]
    if st.kind == "dense_unrolled":
        return [r, w]
    raise ValueError(f"no dataflow model for stage kind {st.kind!r}")


def _line_buffer_ops(st: Stage, c: dict[str, int], per_pixel: int) -> list[Op]:
    """A line-buffered window (sliding_window.hpp, LineBuffer): before each output pixel, read beats until the
    window's last element has arrived, then write the pixel's beats; read the rest of the frame at the end."""
    ih, iw = c.get("IH", c.get("H")), c.get("IW", c.get("W"))
    ch = c.get("IC", c.get("C"))
    pt, pl = c.get("PT", 0), c.get("PL", 0)
    beat, ops, filled = st.inp.beat, [], 0
    for oy in range(c["OH"]):
        ly = min(ih - 1, oy * c["SH"] + c["KH"] - 1 - pt)
        for ox in range(c["OW"]):
            lx = min(iw - 1, ox * c["SW"] + c["KW"] - 1 - pl)
            need = (ly * iw + lx) * ch + ch
            while filled < need:
                ops.append((False, st.inp.name))
                filled += beat
            ops.extend([(True, st.out.name)] * per_pixel)
    return ops + [(False, st.inp.name)] * ((st.inp.elems - filled) // beat)


@dataclass
class DataflowResult:
    deadlock: bool
    stalled: list[str]  # comments of the stages that could not finish (empty unless deadlock)
    peak: dict[str, int]  # stream name -> highest occupancy in beats


def simulate(d: Design, inferences: int = 2, depths: dict[str, int] | None = None) -> DataflowResult:
    """Run the stages' read / write sequences with bounded FIFOs (`depths` overrides a stream's depth by name)."""
    depths = depths or {}
    cap = {s.name: depths.get(s.name, s.depth) for s in d.streams}
    fill = {s.name: 0 for s in d.streams}
    fill[d.input.name], cap[d.input.name] = 1, 1  # the input port always has a beat ready
    cap[d.output.name] = 1 << 62  # the output port is always drained
    fill[d.output.name] = 0
    progs = [stage_ops(d, st) * inferences for st in d.stages]
    pos = [0] * len(progs)
    peak = dict(fill)
    moved = True
    while moved:
        moved = False
        for k, prog in enumerate(progs):
            while pos[k] < len(prog):
                write, s = prog[pos[k]]
                if write and fill[s] >= cap[s] or not write and fill[s] == 0:
                    break
                fill[s] += 1 if write else -1
                if s == d.input.name:
                    fill[s] = 1
                peak[s] = max(peak[s], fill[s])
                pos[k] += 1
                moved = True
    stalled = [st.comment for st, p, prog in zip(d.stages, pos, progs) if p < len(prog)]
    return DataflowResult(bool(stalled), stalled, {s.name: peak[s.name] for s in d.streams})
