"""The HLS window kernels (hls_templates/sliding_window.hpp, pool.hpp) against a naive im2col reference, with g++.

One translation unit instantiates every case below; each streams three frames back to back through the kernel (so
the line buffer's schedule restarts cleanly) and writes the output beats flattened, plus the iterations of the
kernel's pipelined loop per frame (clock cycles at II = 1, from the monitor build's loop log). The reference is the
plain definition: window (oy, ox) of the zero-padded frame in (kh, kw, c) order for a convolution, channel group x
kernel fold beats for a depthwise unit, the max of each channel's window for a pool. Iterations must equal the
Python twin of the schedule (hw.hls.dataflow.window_schedule), and for one window per beat they are
max(input beats, the last window's lag + 1, the first window's lag + output beats), lag = input beats up to the
window's last pixel.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from _hls_util import _thresholds, write_build
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from a2qflow.hw.compiler.ir import Affine, ConvLayer, DenseLayer, InputQuant, IntType, MaxPoolLayer, Model
from a2qflow.hw.compiler.plan import load_plan
from a2qflow.hw.compiler.reference import accumulate, maxpool
from a2qflow.hw.compiler.reference import run as golden_run
from a2qflow.hw.hls.csim import CXX_FLAGS, ap_types_dir, compile_testbench, find_cxx
from a2qflow.hw.hls.dataflow import WINDOW_KINDS, WindowState, window_beats, window_schedule
from a2qflow.hw.hls.generate import generate, template_dir
from a2qflow.hw.hls.lowering import build_design

FRAMES = 3
BITS = 6  # signed elements: negative values tell a zero-padded position from a real one in max pooling

# conv: IC, IH, IW, KH, KW, SH, SW, PT, PL, PB, PR, IN_W, SIMD
CONV = [
    (2, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 2, 18),  # "same" 3x3, C > 1, a whole window per beat
    (3, 7, 6, 3, 2, 2, 1, 1, 0, 0, 1, 1, 3),  # KH != KW, stride 2 x 1, uneven padding, one element in per beat
    (4, 9, 9, 5, 5, 2, 2, 2, 2, 2, 2, 2, 20),  # 5x5 stride 2 "same", two beats per pixel in, 5 beats per window
    (1, 8, 8, 3, 3, 1, 1, 0, 0, 0, 0, 1, 9),  # valid 3x3
    (6, 5, 5, 5, 5, 1, 1, 2, 2, 2, 2, 3, 25),  # SIMD beats that cut pixels (25 of 6-channel pixels)
    (2, 1, 9, 1, 3, 1, 2, 0, 1, 0, 1, 2, 6),  # 1-D (C, 1, L), stride 2
    (1, 7, 7, 2, 2, 3, 3, 0, 0, 0, 0, 1, 4),  # stride larger than the kernel: pixels no window reads
    (1, 28, 28, 5, 5, 1, 1, 2, 2, 2, 2, 1, 25),  # LeNet's first conv ("same" 5x5 on 28x28): CONV[-2]
    (2, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6),  # a frame as narrow as the kernel: two row groups per bank
]
# depthwise: C, IH, IW, KH, KW, SH, SW, PT, PL, PB, PR, IN_W, SIMD, PE
DW = [
    (4, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 3, 2),
    (3, 5, 7, 2, 3, 2, 2, 0, 1, 1, 0, 3, 6, 3),
    (2, 4, 4, 4, 4, 1, 1, 0, 0, 0, 0, 2, 16, 2),  # a global average pool's window: one row group holds the frame
]
# maxpool: C, IH, IW, KH, KW, SH, SW, W
POOL = [
    (2, 8, 8, 2, 2, 2, 2, 2),
    (4, 7, 7, 3, 3, 2, 2, 2),  # overlapping windows, odd size (the last column / row is never pooled)
    (6, 24, 24, 2, 2, 2, 2, 6),  # LeNet's first pool, a pixel per beat
]


def _geometry(kind: str, p: tuple) -> dict[str, int]:
    if kind == "pool":
        c, ih, iw, kh, kw, sh, sw, w = p
        pt = pl = pb = pr = 0
    else:
        c, ih, iw, kh, kw, sh, sw, pt, pl, pb, pr = p[:11]
    return dict(IC=c, IH=ih, IW=iw, KH=kh, KW=kw, SH=sh, SW=sw, PT=pt, PL=pl, PB=pb, PR=pr,
                OH=(ih + pt + pb - kh) // sh + 1, OW=(iw + pl + pr - kw) // sw + 1)


def _cases() -> list[tuple[str, tuple]]:
    return [("conv", p) for p in CONV] + [("dw", p) for p in DW] + [("pool", p) for p in POOL]


def _in_beat(kind: str, p: tuple) -> int:
    return p[7] if kind == "pool" else p[11]


def _out_beat(kind: str, p: tuple) -> int:
    return {"conv": lambda: p[12], "dw": lambda: p[12] * p[13], "pool": lambda: p[7]}[kind]()


def _call(kind: str, p: tuple) -> str:
    args = ", ".join(str(v) for v in p)
    return {"conv": f"sliding_window<{args}, T>", "dw": f"dw_sliding_window<{args}, T>",
            "pool": f"maxpool<{args}, T>"}[kind]


def _source() -> str:
    cases = []
    for i, (kind, p) in enumerate(_cases()):
        g = _geometry(kind, p)
        cases.append(f"  if (id == {i}) return run<{g['IC'] * g['IH'] * g['IW']}, {_in_beat(kind, p)}, "
                     f"{_out_beat(kind, p)}>([](hls::stream<Word<T, {_in_beat(kind, p)}> >& a, "
                     f"hls::stream<Word<T, {_out_beat(kind, p)}> >& b) {{ {_call(kind, p)}(a, b); }}, argv);")
    return """#include <cstdio>
#include <vector>
#include "sliding_window.hpp"
#include "pool.hpp"
typedef ap_int<%d> T;

// argv: case, frames, input (int32, HWC frames), output (int64 beats flattened), iterations (text, one per frame)
template <unsigned ELEMS, unsigned IN_W, unsigned OUT_W, class F>
int run(F kernel, char** argv) {
  const unsigned frames = std::atoi(argv[2]);
  std::vector<int> x(frames * ELEMS);
  FILE* f = std::fopen(argv[3], "rb");
  if (std::fread(x.data(), sizeof(int), x.size(), f) != x.size()) return 2;
  std::fclose(f);
  FILE* o = std::fopen(argv[4], "wb");
  FILE* it = std::fopen(argv[5], "w");
  for (unsigned n = 0; n < frames; n++) {
    hls::stream<Word<T, IN_W> > in("in");
    hls::stream<Word<T, OUT_W> > out("out");
    for (unsigned b = 0; b < ELEMS / IN_W; b++) {
      Word<T, IN_W> w;
      for (unsigned j = 0; j < IN_W; j++) w.v[j] = x[n * ELEMS + b * IN_W + j];
      in.write(w);
    }
    a2q_loop_log().clear();
    kernel(in, out);
    if (!in.empty()) return 3;
    while (!out.empty()) {
      const Word<T, OUT_W> w = out.read();
      for (unsigned j = 0; j < OUT_W; j++) {
        const long long v = w.v[j].to_int64();
        std::fwrite(&v, sizeof v, 1, o);
      }
    }
    std::fprintf(it, "%%llu\\n", a2q_loop_log().at(0));
  }
  std::fclose(o);
  std::fclose(it);
  return 0;
}

int main(int argc, char** argv) {
  const int id = std::atoi(argv[1]);
%s
  return 1;
}
""" % (BITS, "\n".join(cases))


@pytest.fixture(scope="module")
def window_tb(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("window_tb")
    (d / "tb.cpp").write_text(_source())
    exe = d / "tb"
    res = subprocess.run([find_cxx(), *CXX_FLAGS, "-DA2Q_OVERFLOW_MONITOR", "-isystem", str(ap_types_dir()),
                          "-I", str(template_dir()), str(d / "tb.cpp"), "-o", str(exe)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return exe


def _reference(kind: str, p: tuple, x: np.ndarray) -> np.ndarray:
    """The kernel's output stream of one (C, H, W) frame, flattened, by the definition."""
    g = _geometry(kind, p)
    c, kh, kw = g["IC"], g["KH"], g["KW"]
    fill = np.iinfo(np.int64).min if kind == "pool" else 0  # pools have no padding; windows never see `fill`
    padded = np.full((c, g["IH"] + g["PT"] + g["PB"], g["IW"] + g["PL"] + g["PR"]), fill, dtype=np.int64)
    padded[:, g["PT"]:g["PT"] + g["IH"], g["PL"]:g["PL"] + g["IW"]] = x
    out = []
    for oy in range(g["OH"]):
        for ox in range(g["OW"]):
            win = padded[:, oy * g["SH"]:oy * g["SH"] + kh, ox * g["SW"]:ox * g["SW"] + kw]  # (c, kh, kw)
            if kind == "conv":
                out.append(win.transpose(1, 2, 0).ravel())  # (kh, kw, c)
            elif kind == "dw":
                simd, pe = p[12], p[13]
                w = win.reshape(c // pe, pe, (kh * kw) // simd, simd)  # (nf, pe, sf, s)
                out.append(w.transpose(0, 2, 1, 3).ravel())  # beats (nf, sf), lanes (pe, s)
            else:
                out.append(win.reshape(c, -1).max(axis=1))
    return np.concatenate(out)


@pytest.mark.parametrize("index", range(len(_cases())), ids=[f"{k}{p}" for k, p in _cases()])
def test_window_kernel_equals_im2col_and_its_schedule(window_tb, tmp_path, index):
    kind, p = _cases()[index]
    g = _geometry(kind, p)
    rng = np.random.default_rng(index)
    x = rng.integers(-(1 << (BITS - 1)), 1 << (BITS - 1), size=(FRAMES, g["IC"], g["IH"], g["IW"]))
    x[1] = -(1 << (BITS - 1))  # an all-minimum frame: a zero from the padding would show in a pool's max
    x.transpose(0, 2, 3, 1).astype(np.int32).tofile(tmp_path / "in.bin")  # HWC stream order
    res = subprocess.run([str(window_tb), str(index), str(FRAMES), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"),
                          str(tmp_path / "it.txt")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = np.fromfile(tmp_path / "out.bin", dtype=np.int64)
    want = np.concatenate([_reference(kind, p, x[n]) for n in range(FRAMES)])
    assert got.shape == want.shape and np.array_equal(got, want)

    iterations = [int(v) for v in (tmp_path / "it.txt").read_text().split()]
    in_beat, out_beat = _in_beat(kind, p), _out_beat(kind, p)
    nb = want.size // FRAMES // (g["OH"] * g["OW"]) // out_beat
    schedule = window_schedule(g, in_beat, nb)
    assert iterations == [len(schedule)] * FRAMES  # the C++ loop and its Python twin (dataflow model) agree
    in_beats, out_beats = x[0].size // in_beat, want.size // FRAMES // out_beat
    assert sum(r for _, r in schedule) == in_beats and sum(w for w, _ in schedule) == out_beats
    if nb == 1:  # a window per beat: no bubble once the first window is in; the last one latches after its pixel
        def lag(oy: int, ox: int) -> int:  # input beats up to window (oy, ox)'s last pixel
            y1 = min(g["IH"] - 1, oy * g["SH"] + g["KH"] - 1 - g["PT"])
            return (y1 * g["IW"] + min(g["IW"] - 1, ox * g["SW"] + g["KW"] - 1 - g["PL"]) + 1) * (g["IC"] // in_beat)
        assert len(schedule) == max(in_beats, lag(g["OH"] - 1, g["OW"] - 1) + 1, lag(0, 0) + out_beats)


def test_lenet_first_conv_takes_its_pixels_plus_the_first_windows_lag():
    # 28x28 "same" 5x5: 784 pixels in, 784 windows out, the first window complete at pixel (2, 2) = 58
    g = _geometry("conv", CONV[-2])
    assert len(window_schedule(g, 1, 1)) == 784 + 59
    # the same conv without padding, and LeNet's first pool: the pixel count plus one
    g.update(PT=0, PL=0, PB=0, PR=0, OH=24, OW=24)
    assert len(window_schedule(g, 1, 1)) == 784 + 1
    assert len(window_schedule(_geometry("pool", POOL[-1]), 6, 1)) == 576 + 1


def _iterations(g: dict[str, int], beat: int, nb: int, depth: int) -> int:
    s = WindowState(g, beat, nb)
    s.depth, n = depth, 0
    while s.more():
        s.step(s.wants_write(), s.wants_read())
        n += 1
    return n


@pytest.mark.parametrize("layer", [("conv", CONV[-2], 1, 1), ("pool", (6, 28, 28, 2, 2, 2, 2, 6), 6, 1),
                                   ("conv", (6, 14, 14, 5, 5, 1, 1, 2, 2, 2, 2), 6, 1),
                                   ("pool", (16, 14, 14, 2, 2, 2, 2, 4), 4, 4)])
def test_the_rtls_extra_rows_would_not_make_lenets_windows_faster(layer):
    # HLS reads SPAN + 1 pixels ahead; the RTL's SH more rows serve its frame overlap, not this schedule
    kind, p, beat, nb = layer
    g = _geometry(kind, p)
    s = WindowState(g, beat, nb)
    span = (g["KH"] - 1) * g["IW"] + g["KW"]
    assert s.depth == span + 1
    assert s.bank_pixels < g["IH"] * g["IW"] or g["IH"] <= 2 * g["KH"]  # each pixel once: less than a frame
    rtl_depth = 1 << (span + g["SH"] * g["IW"] - 1).bit_length()
    assert _iterations(g, beat, nb, s.depth) == _iterations(g, beat, nb, rtl_depth)
    assert _iterations(g, beat, nb, span) > _iterations(g, beat, nb, s.depth)  # the span alone: read, latch, read...


# --- a small CNN through the generated design: bit-exact, and every stage's loop iterations per image -------------

def _stream_cnn(seed: int = 3) -> Model:
    """conv 3x3 "same" (stride 1) -> maxpool 2x2 -> conv 3x3 stride 2 pad 1 -> dense (affine), on 2 x 12 x 12."""
    rng = np.random.default_rng(seed)
    in_type, act_type, w_type = IntType(4, False), IntType(3, False), IntType(4, True)
    x = rng.integers(0, 16, size=(64, 2, 12, 12))

    def thresholded(layer, x):
        acc = accumulate(layer, x)
        layer.act = _thresholds(rng, acc, act_type)
        y = (np.moveaxis(acc, 1, -1)[..., None] >= layer.act.values).sum(-1)
        return np.moveaxis(y, -1, 1) + act_type.min

    c0 = ConvLayer("conv0", rng.integers(-8, 8, size=(4, 2, 3, 3)), in_type, w_type, Affine(np.ones(4), np.zeros(4)),
                   in_shape=(2, 12, 12), pad=(1, 1, 1, 1))
    x = thresholded(c0, x)
    p0 = MaxPoolLayer("pool0", c0.out_shape, (2, 2), (2, 2), act_type)
    x = maxpool(x, p0)
    c1 = ConvLayer("conv1", rng.integers(-8, 8, size=(6, 4, 3, 3)), act_type, w_type, Affine(np.ones(6), np.zeros(6)),
                   in_shape=p0.out_shape, stride=(2, 2), pad=(1, 1, 1, 1))
    x = thresholded(c1, x)
    fc = DenseLayer("fc", rng.integers(-8, 8, size=(5, int(np.prod(c1.out_shape)))), act_type, w_type,
                    Affine(rng.uniform(0.01, 0.1, size=5), rng.normal(size=5)))
    return Model("stream_cnn", (2, 12, 12), InputQuant(1 / 15, 0, in_type), [c0, p0, c1, fc])


def _trip_count(d, st) -> int:
    """Iterations of one inference of a fixed-count stage (its loop bounds in hls_templates/)."""
    c = next(dict(l.constants) for l in d.layers if l.ns == st.ns) if st.ns else {}
    if st.kind in ("mvau", "vvau", "mvau_packed"):
        return c["ROWS"] * (c["C"] // c["PE"]) * (c["K"] // c["SIMD"])
    if st.kind == "convert_width":  # a beat of the narrower side per iteration where one width divides the other
        a, b, n = st.args["in_beat"], st.args["out_beat"], st.args["elems"]
        return n // min(a, b) if max(a, b) % min(a, b) == 0 else n
    raise AssertionError(f"no trip count for {st.kind}")


def test_folded_cnn_is_bit_exact_and_streams_about_a_pixel_per_iteration(tmp_path):
    # SIMD = K and PE = C everywhere: every window is one beat, every pixel one beat, so the slowest stage should
    # take the 144 input pixels plus the first window's lag, not (as before) reads and windows one after the other
    model = _stream_cnn()
    build = write_build(model, tmp_path / "b", folding={"conv0": (18, 4), "conv1": (36, 6), "fc": (54, 5)})
    hls = generate(build)
    d = build_design(model, load_plan(build), build)
    exe, _, _ = compile_testbench(hls, monitor=True)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 16, size=(40, 2, 12, 12))
    x[0], x[1] = 0, 15  # saturating frames
    (tmp_path / "in.bin").write_bytes(x.astype(np.int32).tobytes())
    golden_run(model, x, load_plan(build).acc_bits()).acc.astype(np.int64).tofile(tmp_path / "expected.bin")
    res = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"), "--expect",
                          str(tmp_path / "expected.bin"), "--loops", str(tmp_path / "loops.txt")],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "40 samples, 0 mismatching outputs" in res.stdout, res.stdout + res.stderr

    loops = [tuple(int(v) for v in line.split()) for line in (tmp_path / "loops.txt").read_text().splitlines()]
    assert [k for k, *_ in loops] == list(range(len(d.stages)))  # one count per stage, in top.cpp's order
    assert all(lo == hi for _, lo, hi in loops)  # the schedule does not depend on the data
    per_stage = {sg.comment.split(":")[0] + " " + sg.kind: it for sg, (_, it, _) in zip(d.stages, loops)}
    for sg, (_, it, _) in zip(d.stages, loops):
        if sg.kind in WINDOW_KINDS:
            c = next(dict(l.constants) for l in d.layers if l.ns == sg.ns)
            assert it == len(window_schedule(c, sg.inp.beat, window_beats(d, sg))), sg.comment
            assert window_beats(d, sg) == 1  # a whole window (conv) or pooled pixel per beat
        else:
            assert it == _trip_count(d, sg), sg.comment
    assert d.input.beat == 2 and d.stages[0].out.beat == 18  # a pixel in, a window out per beat
    # conv0's window: 144 pixels in and 144 windows out, the first complete at pixel (1, 1): 14 + 144 iterations
    assert per_stage["conv0 sliding_window"] == 14 + 144
    assert per_stage["conv0 mvau"] == 144 and per_stage["pool0 maxpool"] == 144 + 1
    assert max(per_stage.values()) == 14 + 144  # the whole CNN's slowest stage: ~one input pixel per iteration


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.integers(1, 3), st.data())
def test_window_schedule_never_overwrites_a_pixel_a_window_still_needs(ic, ih, iw, kh, kw, sh, sw, data):
    # the line buffer's invariant on random geometries: every pixel a latched window reads is still in its slot
    pt, pb = (data.draw(st.integers(0, kh - 1)) for _ in range(2))
    pl, pr = (data.draw(st.integers(0, kw - 1)) for _ in range(2))
    assume(ih + pt + pb >= kh and iw + pl + pr >= kw)
    beat = data.draw(st.sampled_from([d for d in range(1, ic + 1) if ic % d == 0]))
    nb = data.draw(st.integers(1, 3))
    g = dict(IC=ic, IH=ih, IW=iw, KH=kh, KW=kw, SH=sh, SW=sw, PT=pt, PL=pl, OH=(ih + pt + pb - kh) // sh + 1,
             OW=(iw + pl + pr - kw) // sw + 1)
    s = WindowState(g, beat, nb)
    slots: dict[int, int] = {}  # slot -> the pixel it holds
    windows = 0
    for _ in range(10 * (ih * iw * ic + g["OH"] * g["OW"] * nb) + 10):
        if not s.more():
            break
        wr, rd = s.wants_write(), s.wants_read()
        assert wr or rd  # the loop never idles with its input available
        if wr and s.kb == 0:  # latch window (oy, ox): every pixel inside the frame must be in and still stored
            for y in range(s.oy * sh - pt, s.oy * sh - pt + kh):
                for x in range(s.ox * sw - pl, s.ox * sw - pl + kw):
                    if 0 <= y < ih and 0 <= x < iw:
                        p = y * iw + x
                        assert p < s.px and slots.get(s.slot(p)) == p
            windows += 1
        if rd and s.cb == 0:
            slots[s.slot(s.px)] = s.px
        s.step(wr, rd)
    assert not s.more() and windows == g["OH"] * g["OW"] and s.px == ih * iw
