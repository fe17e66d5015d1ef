"""A token-level model of the generated dataflow: does it deadlock with the FIFO depths the design gives it?

Every stage of `a2qflow.hw.hls.design.Design` reads and writes its streams in a fixed order, the one its kernel in
hls_templates/ has (a sliding window or max pool reads its line buffer up to DEPTH pixels ahead of the windows and
emits each window once its last pixel is in, an MVAU reads the input vector during its first channel group and
writes once per channel group, a duplicator reads one beat and writes it twice, ...).
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


WINDOW_KINDS = ("sliding_window", "dw_sliding_window", "maxpool")


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
    if st.kind in WINDOW_KINDS:  # with the input always there and the output always drained
        return [op for wr, rd in window_schedule(_consts(d, st.ns), st.inp.beat, window_beats(d, st))
                for op in ([w] if wr else []) + ([r] if rd else [])]
    c = _consts(d, st.ns)
    if st.kind in ("mvau", "vvau"):
        sf_n, nf_n = c["K"] // c["SIMD"], c["C"] // c["PE"]
        return [op for _ in range(c["ROWS"]) for nf in range(nf_n) for sf in range(sf_n)
                for op in ([r] if st.kind == "vvau" or nf == 0 else []) + ([w] if sf == sf_n - 1 else [])]
    if st.kind == "global_pool":  # every pixel's C / BEAT beats read; the last pixel's beats also written
        nb = c["C"] // c["BEAT"]
        return [r] * ((c["N"] - 1) * nb) + [r, w] * nb
    if st.kind == "dense_unrolled":
        return [r, w]
    raise ValueError(f"no dataflow model for stage kind {st.kind!r}")


class WindowState:
    """The schedule of one frame of a window kernel (sliding_window.hpp: WindowSchedule + window_loop), step by step,
    and where its banked line buffer keeps each pixel (`slot`).

    Each loop iteration reads the next input beat when the pixel it fills is < first + DEPTH (`first`: the first
    pixel this or a later window needs) and a beat is waiting (a non-blocking read, so a window never waits for
    input it does not need), latches the next window once its last pixel has been read (decided on the state
    before this iteration's read) and writes one of that window's `nb` beats (a blocking write).

    Args:
        c: the layer's constants (IC or C, IH / IW, KH, KW, SH, SW, PT, PL, OH, OW as in params_<layer>.h).
        in_beat: elements per input beat (divides the channel count).
        nb: output beats per window (K / SIMD, (C / PE) * (K / SIMD) or C / W).
    """

    def __init__(self, c: dict[str, int], in_beat: int, nb: int):
        self.ih, self.iw, self.kh, self.kw = c["IH"], c["IW"], c["KH"], c["KW"]
        self.sh, self.sw, self.oh, self.ow = c["SH"], c["SW"], c["OH"], c["OW"]
        self.pt, self.pl = c.get("PT", 0), c.get("PL", 0)
        self.depth = (self.kh - 1) * self.iw + self.kw + 1  # SPAN + 1: how far the reader runs ahead
        groups = min(-(-self.depth // (self.kh * self.iw)),  # two pixels share an address KH * RB rows apart
                     -(-self.ih // self.kh))  # or never, when the groups cover the frame's rows
        self.rb = 1 << max(0, (groups - 1).bit_length())  # row groups per bank, a power of 2
        self.xb = -(-self.iw // self.kw)  # column groups per bank
        self.bank_pixels = self.kh * self.kw * self.rb * self.xb  # what the KH x KW banks hold in total
        self.pixels, self.bpp, self.nb = self.ih * self.iw, c.get("IC", c.get("C")) // in_beat, nb
        self.px = self.cb = self.oy = self.ox = self.kb = 0

    def slot(self, p: int) -> tuple[int, int]:
        """(bank, address) of pixel p: bank (y mod KH, x mod KW), address ((y / KH) mod RB) * XB + x / KW."""
        y, x = divmod(p, self.iw)
        return (y % self.kh) * self.kw + x % self.kw, ((y // self.kh) % self.rb) * self.xb + x // self.kw

    def _y0(self, oy: int) -> int:
        return max(0, oy * self.sh - self.pt)

    def more(self) -> bool:
        return self.px < self.pixels or self.oy < self.oh or self.kb != 0

    def wants_read(self) -> bool:
        if self.oy >= self.oh:
            return self.px < self.pixels
        same = self.oy + 1 < self.oh and self._y0(self.oy + 1) == self._y0(self.oy)
        first = self._y0(self.oy) * self.iw + (0 if same else max(0, self.ox * self.sw - self.pl))
        return self.px < self.pixels and self.px < first + self.depth

    def wants_write(self) -> bool:
        if self.kb or self.oy >= self.oh:
            return self.kb != 0
        last = (min(self.ih - 1, self.oy * self.sh + self.kh - 1 - self.pt) * self.iw
                + min(self.iw - 1, self.ox * self.sw + self.kw - 1 - self.pl))
        return last < self.px

    def step(self, write: bool, read: bool) -> None:
        """One iteration: write a beat (latching the next window first when none is held), read a beat."""
        if write:
            if self.kb == 0:
                self.ox, self.oy = (0, self.oy + 1) if self.ox + 1 == self.ow else (self.ox + 1, self.oy)
            self.kb = 0 if self.kb + 1 == self.nb else self.kb + 1
        if read:
            self.px, self.cb = (self.px + 1, 0) if self.cb + 1 == self.bpp else (self.px, self.cb + 1)


def window_schedule(c: dict[str, int], in_beat: int, nb: int) -> list[tuple[bool, bool]]:
    """(writes a beat, reads a beat) of every iteration of one frame of a window kernel's loop with its input always
    available and its output always drained: the length is the loop's clock cycles at II = 1 (`WindowState`)."""
    state, out = WindowState(c, in_beat, nb), []
    while state.more():
        wr, rd = state.wants_write(), state.wants_read()
        state.step(wr, rd)
        out.append((wr, rd))
    return out


def window_beats(d: Design, st: Stage) -> int:
    """Output beats per window of a window stage."""
    c = _consts(d, st.ns)
    if st.kind == "maxpool":
        return c["C"] // c["BEAT"]
    return c["K"] // c["SIMD"] * (c["C"] // c["PE"] if st.kind == "dw_sliding_window" else 1)


class _WindowRunner:
    """A window stage in `simulate`: `inferences` frames of `WindowState`, reads non-blocking, writes blocking."""

    def __init__(self, d: Design, st: Stage, inferences: int):
        self.c, self.beat, self.nb = _consts(d, st.ns), st.inp.beat, window_beats(d, st)
        self.inp, self.out, self.left = st.inp.name, st.out.name, inferences
        self.state = WindowState(self.c, self.beat, self.nb)

    def done(self) -> bool:
        return self.left == 0

    def run(self, fill: dict[str, int], cap: dict[str, int], refill: str) -> bool:
        """Advance while an iteration can act; True when something moved."""
        moved = False
        while self.left:
            wr, rd = self.state.wants_write(), self.state.wants_read() and fill[self.inp] > 0
            if wr and fill[self.out] >= cap[self.out] or not (wr or rd):
                break  # a full output stalls the whole iteration; nothing to do until a beat arrives
            fill[self.out] += wr
            fill[self.inp] -= rd
            fill[refill] = 1  # the input port always has a beat
            self.state.step(wr, rd)
            moved = True
            if not self.state.more():
                self.left -= 1
                self.state = WindowState(self.c, self.beat, self.nb)
        return moved


@dataclass
class DataflowResult:
    deadlock: bool
    stalled: list[str]  # comments of the stages that could not finish (empty unless deadlock)
    peak: dict[str, int]  # stream name -> highest occupancy in beats


def simulate(d: Design, inferences: int = 2, depths: dict[str, int] | None = None,
             blocking_windows: bool = False) -> DataflowResult:
    """Run the stages' read / write sequences with bounded FIFOs (`depths` overrides a stream's depth by name).

    `blocking_windows` replays the window kernels' ideal schedule with blocking reads instead (the design the
    kernels avoid: tests show it needs deeper skip FIFOs than the non-blocking reads)."""
    depths = depths or {}
    cap = {s.name: depths.get(s.name, s.depth) for s in d.streams}
    fill = {s.name: 0 for s in d.streams}
    fill[d.input.name], cap[d.input.name] = 1, 1  # the input port always has a beat ready
    cap[d.output.name] = 1 << 62  # the output port is always drained
    fill[d.output.name] = 0
    runners = {k: _WindowRunner(d, st, inferences) for k, st in enumerate(d.stages)
               if st.kind in WINDOW_KINDS and not blocking_windows}
    progs = [[] if k in runners else stage_ops(d, st) * inferences for k, st in enumerate(d.stages)]
    pos = [0] * len(progs)
    peak = dict(fill)
    moved = True
    while moved:
        moved = False
        for k, prog in enumerate(progs):
            if k in runners:
                moved |= runners[k].run(fill, cap, d.input.name)
                for s in (d.stages[k].inp.name, d.stages[k].out.name):
                    peak[s] = max(peak[s], fill[s])
                continue
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
    stalled = [st.comment for k, (st, p, prog) in enumerate(zip(d.stages, pos, progs))
               if (not runners[k].done() if k in runners else p < len(prog))]
    return DataflowResult(bool(stalled), stalled, {s.name: peak[s.name] for s in d.streams})
